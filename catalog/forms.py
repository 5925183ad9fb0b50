"""The admin's item form: categories one per line and attributes as `key = value` lines instead of
JSON, checked by the catalog API's own contract so that a hand edit stores what an upload would."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pydantic
from django import forms

from catalog.contracts import CatalogItemIn
from catalog.models import Item

AttributeValue = str | bool | int | float | list[str]
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_SPECIAL = ("true", "false")


def _text_of(value: AttributeValue) -> str:
    """One attribute value as the form shows it (and `_value_of` reads it back unchanged)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_listed_text(part) for part in value) + "]"
    looks_like_other = (
        value in _SPECIAL
        or _NUMBER.fullmatch(value) is not None
        or value != value.strip()
        or not value.isprintable()  # a line break would split the line
    )
    starts = value[:1] in ('"', "[")
    return _quoted(value) if looks_like_other or starts else value


def _quoted(value: str) -> str:
    # Escaped to ASCII when it holds a line break of any kind (the form splits lines on them).
    return json.dumps(value, ensure_ascii=not value.isprintable())


def _listed_text(value: str) -> str:
    plain = (
        value == value.strip()
        and value.isprintable()
        and value
        and not any(c in value for c in ',[]"')
    )
    return value if plain else _quoted(value)


def _value_of(text: str) -> AttributeValue:
    """`red` text; `"42"` text kept as text; `42`, `4.5` numbers; `true`/`false`; `[a, b]` a list
    of texts."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_list_part(part) for part in _split_list(inner)] if inner else []
    if text.startswith('"'):
        decoded = json.loads(text)
        if not isinstance(decoded, str):
            raise ValueError("a quoted value must be text")
        return decoded
    if text in _SPECIAL:
        return text == "true"
    if _NUMBER.fullmatch(text):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("the number is too large")
        return int(text) if re.fullmatch(r"-?\d+", text) else number
    return text


def _split_list(inner: str) -> list[str]:
    """Comma-separated parts, commas inside "quoted" parts kept."""
    parts, current, quoted, escaped = [], "", False, False
    for char in inner:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
    if quoted:
        raise ValueError("a quote is not closed")
    return [*parts, current]


def _list_part(part: str) -> str:
    part = part.strip()
    if part.startswith('"'):
        decoded = json.loads(part)
        if not isinstance(decoded, str):
            raise ValueError("a quoted value must be text")
        return decoded
    return part


def attributes_text(attributes: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {_text_of(value)}" for key, value in attributes.items())


class ItemForm(forms.ModelForm):
    categories_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        required=False,
        label="Categories",
        help_text="One category path per line, e.g. shoes/running.",
    )
    attributes_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        required=False,
        label="Attributes",
        help_text="One per line: key = value. Several values: color = [red, blue]. Numbers and "
        'true/false are stored as such; quote a value to keep it as text: size = "42".',
    )

    class Meta:
        model = Item
        fields = ["customer", "external_id", "title", "brand", "price", "in_stock"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["categories_text"] = "\n".join(self.instance.categories or [])
            self.initial["attributes_text"] = attributes_text(self.instance.attributes or {})

    def clean_categories_text(self) -> list[str]:
        text = self.cleaned_data.get("categories_text") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def clean_attributes_text(self) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {}
        problems = []
        lines = (self.cleaned_data.get("attributes_text") or "").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                problems.append(f"line {number}: write an attribute as key = value")
                continue
            if key.strip() in attributes:
                problems.append(f"line {number}: {key.strip()!r} is given twice")
                continue
            try:
                attributes[key.strip()] = _value_of(value)
            except ValueError as exc:
                problems.append(f"line {number}: {exc}")
        if problems:
            raise forms.ValidationError(problems)
        return attributes

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        price = data.get("price")
        document = {
            "id": data.get("external_id") or "",
            "title": data.get("title") or "",
            "brand": data.get("brand") or None,
            "categories": data.get("categories_text", []),
            "price": None if price is None else float(price),
            "in_stock": bool(data.get("in_stock")),
            "attributes": data.get("attributes_text", {}),
        }
        try:
            CatalogItemIn.model_validate(document)
        except pydantic.ValidationError as exc:
            fields = {
                "id": "external_id",
                "categories": "categories_text",
                "attributes": "attributes_text",
            }
            for error in exc.errors():
                where = error["loc"][0] if error["loc"] else ""
                field = fields.get(str(where), str(where)) if where else None
                detail = error["msg"]
                if len(error["loc"]) > 1:
                    detail = f"{'.'.join(str(part) for part in error['loc'][1:])}: {detail}"
                self.add_error(field if field in self.fields else None, detail)
        return data

    def save(self, commit: bool = True) -> Item:
        item = super().save(commit=False)
        item.categories = self.cleaned_data["categories_text"]
        item.attributes = self.cleaned_data["attributes_text"]
        if commit:
            item.save()
        return item
