"""The rule form of the admin: structured fields a merchandiser fills in, turned into the rule
document (merchandising.contracts.RuleIn) and validated through it, so the admin and /v1/rules
accept exactly the same rules. Each contract error comes back on the field it belongs to."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog.selectors import (
    catalog_attribute_known,
    catalog_attribute_names,
    catalog_attribute_value_known,
    catalog_attribute_values,
    catalog_brands_known,
    catalog_item_ids_near,
    catalog_items_find,
    catalog_items_known,
)
from customers.models import Customer
from customers.shop_time import UTC_ZONE, parse_shop_time, shop_text, shop_zone, zone_words
from merchandising.conflicts import RuleWarning, rule_warnings
from merchandising.contracts import (
    ACTION_TYPES,
    BOOST_STRENGTHS,
    BURY_STRENGTHS,
    MAX_HOLDOUT_PERCENT,
    SURFACES,
    Pin,
    RuleIn,
    Window,
)
from merchandising.models import Rule
from merchandising.preview import MAX_CANDIDATES
from merchandising.services import rule_experiment_errors

LINES = {"rows": 4, "cols": 60}
WINDOWS_HELP = (
    "One window per line: start / end in the shop's time, {zone}, e.g. 2026-12-01 09:00 / "
    "2026-12-24 00:00 (a date alone is its midnight), or pick them beside it; 'open' for no "
    "start or end. None: always on. Stored in UTC."
)
STRENGTHS = ("weak", "medium", "strong", "max")

# Which form field shows an error of a document field (the longest matching prefix wins).
DOCUMENT_FIELDS: dict[tuple[str, ...], str] = {
    ("name",): "name",
    ("description",): "description",
    ("enabled",): "enabled",
    ("priority",): "priority",
    ("surfaces",): "surfaces",
    ("windows",): "windows",
    ("query",): "query_patterns",
    ("query", "match"): "query_match",
    ("query", "patterns"): "query_patterns",
    ("page_categories",): "page_categories",
    ("context",): "context",
    ("selector",): "selector_attributes",
    ("selector", "brands"): "selector_brands",
    ("selector", "categories"): "selector_categories",
    ("selector", "price_min"): "selector_price_min",
    ("selector", "price_max"): "selector_price_max",
    ("selector", "in_stock"): "selector_in_stock",
    ("selector", "attributes"): "selector_attributes",
    ("selector", "item_ids"): "selector_item_ids",
    ("action",): "action_kind",
    ("action", "type"): "action_kind",
    ("action", "boost"): "action_factor",
    ("action", "boost", "strength"): "action_strength",
    ("action", "bury"): "action_factor",
    ("action", "bury", "strength"): "action_strength",
    ("action", "pin"): "action_pins",
    ("action", "pin", "pins"): "action_pins",
    ("action", "slot"): "slot_positions",
    ("action", "slot", "positions"): "slot_positions",
    ("action", "diversity"): "diversity_max_items",
    ("action", "diversity", "field"): "diversity_field",
    ("action", "diversity", "max_items"): "diversity_max_items",
    ("action", "diversity", "top_k"): "diversity_top_k",
    ("holdout_percent",): "holdout_percent",
}
# Whole-document errors name no field; their message says which one they are about.
MESSAGE_FIELDS = (
    ("price_max", "selector_price_max"),
    ("surface", "surfaces"),
    ("context key", "context"),
    ("leave the selector empty", None),
)
# Fields entered one entry per line: a contract error at index i is about the i-th entry.
LINE_FIELDS = {
    "windows",
    "query_patterns",
    "page_categories",
    "selector_brands",
    "selector_categories",
    "selector_item_ids",
    "action_pins",
}
# A conflict warning's `field` (merchandising.conflicts) -> the form field.
WARNING_FIELDS = {
    "action.pins": "action_pins",
    "action.positions": "slot_positions",
    "priority": "priority",
    "windows": "windows",
    "selector": None,
    "selector.price_max": "selector_price_max",
    "action.max_items": "diversity_max_items",
}
# Rules that could never act: the API saves them with a warning; a person typing one in the
# admin is told at once instead.
FORM_REFUSES = {"cap_never_applies", "empty_price_range"}


def unknown_brands(customer_id: int, brands: Sequence[str]) -> list[tuple[str, str | None]]:
    """The brands no item of the customer has (compared as the engine does, ignoring case), each
    with the closest brand the catalog has, if one is close."""
    if not brands:
        return []
    known = catalog_brands_known(customer_id=customer_id)
    by_fold = {brand.casefold(): brand for brand in known}
    unknown = []
    for brand in brands:
        if brand.casefold() not in by_fold:
            close = difflib.get_close_matches(brand.casefold(), list(by_fold), n=1, cutoff=0.7)
            unknown.append((brand, by_fold[close[0]] if close else None))
    return unknown


# Unknown item ids get a "did you mean" for at most this many of them (each costs a lookup).
MAX_ITEM_SUGGESTIONS = 20


def _closest(text: str, known: Sequence[str], cutoff: float = 0.7) -> str | None:
    close = difflib.get_close_matches(text, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def item_id_suggestion(customer_id: int, item_id: str) -> str | None:
    """The item a mistyped id probably meant: the closest id sharing a prefix with it, else the
    first item whose title has its words (someone typed the title), as "id (title)"."""
    near = _closest(item_id, catalog_item_ids_near(customer_id=customer_id, item_id=item_id))
    if near is not None:
        return repr(near)
    found = catalog_items_find(customer_id=customer_id, text=item_id, limit=1)
    return f"{found[0].id!r} ({found[0].title})" if found else None


def unknown_item_ids(customer_id: int, item_ids: Sequence[str]) -> dict[str, str | None]:
    """The ids the customer's catalog does not have, in order, each with the item it probably
    meant (for the first MAX_ITEM_SUGGESTIONS of them)."""
    if not item_ids:
        return {}
    known = catalog_items_known(customer_id=customer_id, item_ids=item_ids)
    unknown = [item_id for item_id in dict.fromkeys(item_ids) if item_id not in known]
    return {
        item_id: item_id_suggestion(customer_id, item_id) if n < MAX_ITEM_SUGGESTIONS else None
        for n, item_id in enumerate(unknown)
    }


def _did_you_mean(suggestion: str | None, question: str = " Did you mean {}?") -> str:
    return question.format(suggestion) if suggestion else ""


def unknown_attributes(customer_id: int, attributes: dict[str, list[str]]) -> list[str]:
    """A sentence for each attribute name no item has and each value no item has for its name,
    with the closest the catalog has (values compared as rules match them: exactly)."""
    if not attributes:
        return []
    names = catalog_attribute_names(customer_id=customer_id)
    problems = []
    for name, values in attributes.items():
        if name not in names and not catalog_attribute_known(customer_id=customer_id, name=name):
            meant = _closest(name, names) or next(
                (known for known in names if known.casefold() == name.casefold()), None
            )
            problems.append(
                f"No item has the attribute {name!r}."
                + _did_you_mean(repr(meant) if meant else None)
            )
            continue
        seen = catalog_attribute_values(customer_id=customer_id, name=name)
        by_fold = {value.casefold(): value for value in seen}
        for value in values:
            if value not in seen and not catalog_attribute_value_known(
                customer_id=customer_id, name=name, value=value
            ):
                meant = by_fold.get(value.casefold()) or _closest(value, seen)
                problems.append(
                    f"No item has {name} = {value!r}"
                    + (_did_you_mean(repr(meant), "; did you mean {}?") if meant else ".")
                )
    return problems


def warning_field(warning: RuleWarning) -> str | None:
    """The form field a conflict warning is about (None: the rule as a whole)."""
    if warning.field in WARNING_FIELDS:
        return WARNING_FIELDS[warning.field]
    head = warning.field.split("[", 1)[0]
    return WARNING_FIELDS.get(head)


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines, stripped, with their 1-based line numbers."""
    return [
        (number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()
    ]


def _part(location: Sequence[str | int]) -> str:
    return f" ({'.'.join(str(part) for part in location)})" if location else ""


def _checked_line(contract: type[pydantic.BaseModel], value: dict[str, Any], number: int) -> None:
    """Validate one line's entry by its part of the contract, so every bad line is named."""
    try:
        contract.model_validate(value)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [
                f"line {number}{_part(error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from exc


def _key_values(text: str, what: str) -> tuple[dict[str, list[str]], list[int]]:
    """Lines `key=value`; a key on several lines collects every value."""
    values: dict[str, list[str]] = {}
    numbers = []
    for number, line in _lines(text):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"line {number}: write {what} as key=value")
        values.setdefault(key.strip(), []).append(value.strip())
        numbers.append(number)
    return values, numbers


def _key_value_text(values: dict[str, list[str]]) -> str:
    return "\n".join(f"{key}={value}" for key, items in values.items() for value in items)


def _window_side(value: Any, zone: ZoneInfo) -> str:
    """One side of a stored window as the shop reads it (its wall-clock time in the zone)."""
    if value is None:
        return "open"
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return shop_text(instant, zone)


def _window_text(window: dict[str, Any], zone: ZoneInfo) -> str:
    return f"{_window_side(window.get('start'), zone)} / {_window_side(window.get('end'), zone)}"


def _shop_datetime(text: str, zone: ZoneInfo, number: int) -> datetime | None:
    """One side of a typed window: the shop's wall-clock time (or ISO 8601 with an offset), as
    a UTC instant; None for an open side."""
    if text.casefold() in ("", "open"):
        return None
    try:
        return parse_shop_time(text, zone)
    except ValueError as exc:
        raise ValidationError(
            f"line {number}: {text!r} is not a date and time (e.g. 2026-12-01 09:00)"
        ) from exc
    except ValidationError as exc:
        raise ValidationError(f"line {number}: {' '.join(exc.messages)}") from exc


# --- the action's part of the form: one fragment per action type -------------------------------
@dataclass(frozen=True)
class ActionFragment:
    """The rule form's fields for one action type, and how they map to the action's document
    (merchandising.contracts) and back. Adding an action adds its fragment here."""

    fields: tuple[str, ...]
    help: str
    document: Callable[[dict[str, Any]], dict[str, Any]] = lambda data: {}
    initial: Callable[[dict[str, Any]], dict[str, Any]] = lambda action: {}


def _factor_document(data: dict[str, Any]) -> dict[str, Any]:
    action: dict[str, Any] = {}
    if data.get("action_factor") is not None:
        action["factor"] = data["action_factor"]
    if data.get("action_strength"):
        action["strength"] = data["action_strength"]
    return action


def _factor_initial(action: dict[str, Any]) -> dict[str, Any]:
    return {"action_strength": action.get("strength") or "", "action_factor": action.get("factor")}


def _pins_initial(action: dict[str, Any]) -> dict[str, Any]:
    pins = action.get("pins", [])
    return {"action_pins": "\n".join(f"{pin['item_id']} @ {pin['position']}" for pin in pins)}


def _diversity_document(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "field": data.get("diversity_field") or "brand",
        "max_items": data.get("diversity_max_items"),
        "top_k": data.get("diversity_top_k"),
    }


def _diversity_initial(action: dict[str, Any]) -> dict[str, Any]:
    return {
        "diversity_field": action.get("field", "brand"),
        "diversity_max_items": action.get("max_items"),
        "diversity_top_k": action.get("top_k"),
    }


FACTOR_FIELDS = ("action_strength", "action_factor")
ACTION_FRAGMENTS: dict[str, ActionFragment] = {
    "boost": ActionFragment(
        FACTOR_FIELDS,
        "multiply the score of the selected items",
        _factor_document,
        _factor_initial,
    ),
    "bury": ActionFragment(
        FACTOR_FIELDS, "lower the score of the selected items", _factor_document, _factor_initial
    ),
    "pin": ActionFragment(
        ("action_pins",),
        "put given items at given positions",
        lambda data: {"pins": data.get("action_pins", [])},
        _pins_initial,
    ),
    "slot": ActionFragment(
        ("slot_positions",),
        "fill given positions with the best selected items",
        lambda data: {"positions": data.get("slot_positions", [])},
        lambda action: {"slot_positions": ", ".join(str(p) for p in action.get("positions", []))},
    ),
    "hide": ActionFragment((), "remove the selected items"),
    "sink": ActionFragment((), "move the selected items to the end, e.g. those out of stock"),
    "diversity": ActionFragment(
        ("diversity_field", "diversity_max_items", "diversity_top_k"),
        "at most N items per brand or category in the top K",
        _diversity_document,
        _diversity_initial,
    ),
}
ACTION_FIELDS = tuple(
    dict.fromkeys(f for fragment in ACTION_FRAGMENTS.values() for f in fragment.fields)
)


class RuleForm(forms.ModelForm):
    surfaces = forms.MultipleChoiceField(
        choices=[(s, s) for s in SURFACES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every surface.",
    )
    # data-window-picker: static/rankwell/rule_pickers.js adds two date pickers and "Add".
    windows = forms.CharField(
        widget=forms.Textarea(attrs={**LINES, "data-window-picker": "line"}),
        required=False,
        label="When (windows)",
        help_text=WINDOWS_HELP.format(zone="UTC"),
    )
    query_match = forms.ChoiceField(
        choices=[
            ("any", "any query (or none)"),
            ("exact", "the query is exactly"),
            ("contains", "the query contains the words"),
            ("starts_with", "the query starts with"),
        ],
        initial="any",
        label="Query",
    )
    query_patterns = forms.CharField(
        widget=forms.Textarea(attrs=LINES),
        required=False,
        label="Query patterns",
        help_text="One per line (compared after case folding and removing accents).",
    )
    page_categories = forms.CharField(
        widget=forms.Textarea(attrs=LINES),
        required=False,
        help_text="Browse pages: one category path per line, e.g. shoes/running (its "
        "subcategories too). None: every page.",
    )
    context = forms.CharField(
        widget=forms.Textarea(attrs=LINES),
        required=False,
        help_text="Request context, one key=value per line (e.g. device=mobile); a key on "
        "several lines accepts any of its values. None: any context.",
    )
    # data-picker: static/rankwell/rule_pickers.js adds a field that completes from the catalog
    # (the datalists of templates/admin/merchandising/rule/change_form.html).
    selector_brands = forms.CharField(
        widget=forms.Textarea(attrs={**LINES, "data-picker": "catalog-brands"}),
        required=False,
        label="Brands",
        help_text="One per line, or pick them from the catalog with the field beside it.",
    )
    selector_categories = forms.CharField(
        widget=forms.Textarea(attrs={**LINES, "data-picker": "catalog-categories"}),
        required=False,
        label="Categories",
        help_text="One category path per line (its subcategories too), or pick them beside it.",
    )
    selector_price_min = forms.FloatField(required=False, min_value=0, label="Price from")
    selector_price_max = forms.FloatField(required=False, min_value=0, label="Price up to")
    selector_in_stock = forms.TypedChoiceField(
        choices=[
            ("", "in stock or not"),
            ("true", "in stock only"),
            ("false", "out of stock only"),
        ],
        coerce=lambda value: value == "true",
        empty_value=None,
        required=False,
        label="Stock",
    )
    # data-attribute-picker, data-item-picker: pickers that ask the catalog as one types (the
    # admin's catalog/attributes/ and catalog/items/ of the rule's customer).
    selector_attributes = forms.CharField(
        widget=forms.Textarea(attrs={**LINES, "data-attribute-picker": "line"}),
        required=False,
        label="Attributes",
        help_text="One name=value per line, e.g. color=red, or pick the name and then the "
        "value from the catalog beside it.",
    )
    selector_item_ids = forms.CharField(
        widget=forms.Textarea(attrs={**LINES, "data-item-picker": "line"}),
        required=False,
        label="Items",
        help_text="One item id per line, or find items by id or by words of their title beside it.",
    )
    action_kind = forms.ChoiceField(
        choices=[(t, t) for t in ACTION_TYPES],
        label="Action",
        help_text="; ".join(f"{name}: {ACTION_FRAGMENTS[name].help}" for name in ACTION_TYPES)
        + ".",
        # Which fields each action shows (static/rankwell/rule_action_fields.js).
        widget=forms.Select(
            attrs={
                "data-action-fields": json.dumps(
                    {name: fragment.fields for name, fragment in ACTION_FRAGMENTS.items()}
                )
            }
        ),
    )
    action_strength = forms.ChoiceField(
        choices=[("", "---------")] + [(s, s) for s in STRENGTHS],
        required=False,
        label="Strength",
        help_text="Boost: "
        + ", ".join(f"{s} x{f:g}" for s, f in BOOST_STRENGTHS.items())
        + ". Bury: "
        + ", ".join(f"{s} x{f:g}" for s, f in BURY_STRENGTHS.items())
        + ".",
    )
    action_factor = forms.FloatField(
        required=False,
        label="Factor",
        help_text="Instead of a strength: above 1 for a boost, between 0 and 1 for a bury.",
    )
    action_pins = forms.CharField(
        widget=forms.Textarea(attrs={**LINES, "data-item-picker": "pin"}),
        required=False,
        label="Pins",
        help_text="One per line: item_id @ position (1 is the first position); an item found "
        "beside it is added at the next position.",
    )
    slot_positions = forms.CharField(
        required=False,
        label="Slot positions",
        help_text="Positions separated by commas, e.g. 1, 5, 9.",
    )
    diversity_field = forms.ChoiceField(
        choices=[("brand", "brand"), ("category", "top-level category")],
        required=False,
        label="Diversify by",
    )
    diversity_max_items = forms.IntegerField(required=False, min_value=1, label="At most")
    diversity_top_k = forms.IntegerField(required=False, min_value=1, label="In the top")
    holdout_percent = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_HOLDOUT_PERCENT,
        label="Hold out (% of shoppers)",
        help_text="To measure what this rule earns: this share of shoppers never sees it (they "
        "get the results as if the rule did not exist), and this page compares their revenue "
        "per search with everyone else's. 10 means 1 shopper in 10, always the same ones. "
        f"Blank or 0: every shopper sees the rule. At most {MAX_HOLDOUT_PERCENT}.",
    )

    class Meta:
        model = Rule
        fields = ["customer", "name", "description", "enabled", "priority", "experiment"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document: RuleIn | None = None
        self.warnings: list[RuleWarning] = []
        # The experiment the rule is tagged to as stored (the form's value replaces it on clean).
        self.stored_experiment_id: int | None = self.instance.experiment_id
        self._line_numbers: dict[str, list[int]] = {}
        # Windows are typed and shown in the shop's time zone: the rule's shop, or for a new
        # rule the one chosen (each offered shop's zone is named).
        self.zones = self.offered_zones()
        windows = self.fields["windows"]
        windows.help_text = WINDOWS_HELP.format(zone=zone_words(self.zones))
        if len(set(self.zones.values())) == 1:
            windows.widget.attrs["data-zone"] = next(iter(self.zones.values())).key
        if self.instance.pk is not None and not self.is_bound:
            self.initial.update(
                self.initial_from_document(self.instance.document(), self.shop_zone())
            )

    def offered_zones(self) -> dict[str, ZoneInfo]:
        """The time zone of each shop the rule may belong to, by the shop's name."""
        if self.instance.customer_id is not None:
            customer = self.instance.customer
            return {customer.name: shop_zone(customer)}
        field = self.fields.get("customer")
        queryset = getattr(field, "queryset", None)
        shops = list(queryset[:20]) if queryset is not None else []
        return {customer.name: shop_zone(customer) for customer in shops}

    def shop_zone(self) -> ZoneInfo:
        """The zone the windows are read in: the rule's shop's, or the chosen shop's."""
        if self.instance.customer_id is not None:
            return shop_zone(self.instance.customer)
        chosen = getattr(self, "cleaned_data", {}).get("customer")
        return shop_zone(chosen if isinstance(chosen, Customer) else None)

    @staticmethod
    def initial_from_document(
        document: dict[str, Any], zone: ZoneInfo = UTC_ZONE
    ) -> dict[str, Any]:
        """The form's fields for a stored rule document (its windows in `zone`)."""
        query = document.get("query") or {}
        selector = document.get("selector") or {}
        action = document.get("action") or {}
        fragment = ACTION_FRAGMENTS.get(str(action.get("type")))
        in_stock = selector.get("in_stock")
        return {
            "surfaces": document.get("surfaces", []),
            "windows": "\n".join(_window_text(w, zone) for w in document.get("windows", [])),
            "query_match": query.get("match", "any"),
            "query_patterns": "\n".join(query.get("patterns", [])),
            "page_categories": "\n".join(document.get("page_categories", [])),
            "context": _key_value_text(document.get("context", {})),
            "selector_brands": "\n".join(selector.get("brands", [])),
            "selector_categories": "\n".join(selector.get("categories", [])),
            "selector_price_min": selector.get("price_min"),
            "selector_price_max": selector.get("price_max"),
            "selector_in_stock": "" if in_stock is None else str(in_stock).lower(),
            "selector_attributes": _key_value_text(selector.get("attributes", {})),
            "selector_item_ids": "\n".join(selector.get("item_ids", [])),
            "action_kind": action.get("type"),
            **(fragment.initial(action) if fragment else {}),
            "holdout_percent": document.get("holdout_percent") or None,
        }

    # --- one clean_* per structured field: text -> the document's shape ------------------------

    def _listed(self, name: str) -> list[str]:
        lines = _lines(self.cleaned_data.get(name) or "")
        self._line_numbers[name] = [number for number, _ in lines]
        return [line for _, line in lines]

    def clean_windows(self) -> list[dict[str, datetime | None]]:
        windows, numbers, problems = [], [], []
        zone = self.shop_zone()
        for number, line in _lines(self.cleaned_data.get("windows") or ""):
            start, sep, end = line.partition(" / ") if " / " in line else line.partition("/")
            try:
                if not sep:
                    raise ValidationError(f"line {number}: write a window as start / end")
                window = {
                    "start": _shop_datetime(start.strip(), zone, number),
                    "end": _shop_datetime(end.strip(), zone, number),
                }
                _checked_line(Window, window, number)
            except ValidationError as exc:
                problems.extend(exc.messages)
                continue
            windows.append(window)
            numbers.append(number)
        if problems:
            raise ValidationError(problems)
        self._line_numbers["windows"] = numbers
        return windows

    def clean_context(self) -> dict[str, list[str]]:
        values, self._line_numbers["context"] = _key_values(
            self.cleaned_data.get("context") or "", "a context condition"
        )
        return values

    def clean_selector_attributes(self) -> dict[str, list[str]]:
        values, self._line_numbers["selector_attributes"] = _key_values(
            self.cleaned_data.get("selector_attributes") or "", "an attribute"
        )
        return values

    def clean_action_pins(self) -> list[dict[str, Any]]:
        pins, numbers, problems = [], [], []
        for number, line in _lines(self.cleaned_data.get("action_pins") or ""):
            item_id, sep, position = line.rpartition("@")
            try:
                if not sep or not item_id.strip():
                    raise ValidationError(f"line {number}: write a pin as item_id @ position")
                if not position.strip().isdigit():
                    raise ValidationError(
                        f"line {number}: the position {position.strip()!r} is not a whole number"
                    )
                pin = {"item_id": item_id.strip(), "position": int(position)}
                _checked_line(Pin, pin, number)
            except ValidationError as exc:
                problems.extend(exc.messages)
                continue
            pins.append(pin)
            numbers.append(number)
        if problems:
            raise ValidationError(problems)
        self._line_numbers["action_pins"] = numbers
        return pins

    def clean_slot_positions(self) -> list[int]:
        text = self.cleaned_data.get("slot_positions") or ""
        parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        try:
            return [int(part) for part in parts]
        except ValueError as exc:
            raise ValidationError("write whole numbers separated by commas, e.g. 1, 5, 9") from exc

    # --- the document ----------------------------------------------------------------------------

    def _action(self, data: dict[str, Any]) -> dict[str, Any]:
        action_type = data.get("action_kind")
        fragment = ACTION_FRAGMENTS.get(str(action_type))
        return {"type": action_type, **(fragment.document(data) if fragment else {})}

    def document_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """The rule document (before validation) from the cleaned fields."""
        selector: dict[str, Any] = {
            "brands": self._listed("selector_brands"),
            "categories": self._listed("selector_categories"),
            "price_min": data.get("selector_price_min"),
            "price_max": data.get("selector_price_max"),
            "in_stock": data.get("selector_in_stock"),
            "attributes": data.get("selector_attributes", {}),
            "item_ids": self._listed("selector_item_ids"),
        }
        return {
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "enabled": bool(data.get("enabled")),
            "priority": data.get("priority", 0),
            "surfaces": list(data.get("surfaces", [])),
            "windows": data.get("windows", []),
            "query": {
                "match": data.get("query_match") or "any",
                "patterns": self._listed("query_patterns"),
            },
            "page_categories": self._listed("page_categories"),
            "context": data.get("context", {}),
            "selector": selector,
            "action": self._action(data),
            "holdout_percent": data.get("holdout_percent") or 0,
        }

    def _add_contract_error(
        self, location: Sequence[str | int], message: str, skip: set[str]
    ) -> None:
        message = message.removeprefix("Value error, ")
        names = tuple(part for part in location if isinstance(part, str))
        field = next(
            (
                DOCUMENT_FIELDS[names[:n]]
                for n in range(len(names), 0, -1)
                if names[:n] in DOCUMENT_FIELDS
            ),
            None,
        )
        if not location:
            field = next((f for text, f in MESSAGE_FIELDS if text in message), None)
        elif field == "selector_attributes" and names == ("selector",) and "price" in message:
            field = "selector_price_max"
        if field in LINE_FIELDS:
            index = next((part for part in location if isinstance(part, int)), None)
            numbers = self._line_numbers.get(field, [])
            if index is not None and index < len(numbers):
                message = f"line {numbers[index]}: {message}"
        if field not in skip:
            self.add_error(field, message)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # The contract runs even when some fields could not be read, so every mistake shows at
        # once; a field that failed its own reading keeps that one error.
        unreadable = set(self.errors)
        try:
            document = RuleIn.model_validate(self.document_data(data))
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                self._add_contract_error(error["loc"], error["msg"], skip=unreadable)
            return data
        if unreadable:
            return data
        self.document = document
        customer = data.get("customer")
        customer_id = customer.pk if customer is not None else self.instance.customer_id
        if customer_id is None:
            return data
        if "experiment" in self.fields:
            stored = Rule(customer_id=customer_id, experiment_id=self.stored_experiment_id)
            errors = rule_experiment_errors(rule=stored, experiment=data.get("experiment"))
            for field, messages in errors.items():
                self.add_error(field, messages)
        self.warnings = rule_warnings(
            customer_id=customer_id,
            document=self.document,
            rule_id=self.instance.pk,
            at=timezone.now(),
        )
        for warning in self.warnings:
            if warning.blocking:
                self.add_error(warning_field(warning), f"Conflict: {warning.detail}")
            elif warning.code in FORM_REFUSES or (
                warning.field.startswith("action.pins") and warning.code != "no_matching_item"
            ):
                # (Unknown pinned ids are refused below, with the item probably meant.)
                self.add_error(warning_field(warning), warning.detail)
        self._refuse_unknown_catalog_values(customer_id, self.document)
        return data

    def _refuse_unknown_catalog_values(self, customer_id: int, document: RuleIn) -> None:
        """Brands, items and attributes the catalog does not know are typos until shown
        otherwise: field errors, with the value probably meant (the API saves them with a
        warning, for items a feed has not sent yet)."""
        for brand, suggestion in unknown_brands(customer_id, document.selector.brands):
            also = f" Did you mean {suggestion!r}?" if suggestion else ""
            self.add_error("selector_brands", f"No item of brand {brand!r} in the catalog.{also}")
        selected = document.selector.item_ids
        pinned = [pin.item_id for pin in getattr(document.action, "pins", [])]
        unknown = unknown_item_ids(customer_id, [*selected, *pinned])
        for field, item_ids in (("selector_item_ids", selected), ("action_pins", pinned)):
            numbers = self._line_numbers.get(field, [])
            for index, item_id in enumerate(item_ids):
                if item_id in unknown:
                    where = f"line {numbers[index]}: " if index < len(numbers) else ""
                    self.add_error(
                        field,
                        f"{where}No item {item_id!r} in the catalog."
                        + _did_you_mean(unknown[item_id]),
                    )
        for problem in unknown_attributes(customer_id, document.selector.attributes):
            self.add_error("selector_attributes", problem)


class PreviewForm(forms.Form):
    surface = forms.ChoiceField(choices=[(s, s) for s in SURFACES])
    query = forms.CharField(required=False, max_length=200, help_text="Search words.")
    category = forms.CharField(
        required=False, max_length=200, help_text="Browse: the page's category path."
    )
    context = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 30}),
        help_text="key=value per line, e.g. device=mobile.",
    )
    at = forms.CharField(
        required=False,
        label="At",
        help_text="In the shop's time, {zone}, e.g. 2026-12-01 09:00; blank: now. Rules' windows "
        "are evaluated then.",
    )
    candidates = forms.IntegerField(min_value=1, max_value=MAX_CANDIDATES, initial=50)
    top = forms.IntegerField(min_value=1, max_value=200, initial=20, label="Show the top")

    def __init__(self, *args: Any, zone: ZoneInfo = UTC_ZONE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        at = self.fields["at"]
        at.help_text = str(at.help_text).format(zone=zone.key)

    def clean_at(self) -> datetime:
        text = (self.cleaned_data.get("at") or "").strip()
        if not text:
            return timezone.now().replace(microsecond=0)
        try:
            at = parse_shop_time(text, self.zone)
        except ValueError as exc:
            raise ValidationError(
                f"{text!r} is not a date and time (e.g. 2026-12-01 09:00); blank: now."
            ) from exc
        if at is None:
            raise ValidationError("Give a date and time, or leave it blank for now.")
        return at

    def clean_context(self) -> dict[str, str]:
        context = {}
        for line in (self.cleaned_data.get("context") or "").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Write {line.strip()!r} as key=value.")
            context[key.strip()] = value.strip()
        return context

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("surface") in ("search", "autocomplete") and not data.get("query"):
            self.add_error("query", "A search needs a query.")
        return data


# --- the history in the form's words ------------------------------------------------------------
@dataclass(frozen=True)
class FieldChange:
    label: str
    before: str
    after: str


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(part) for part in value)
    return str(value).replace("\n", "; ")


def field_changes(
    before: dict[str, Any] | None, after: dict[str, Any], zone: ZoneInfo = UTC_ZONE
) -> list[FieldChange]:
    """What changed between two rule documents, field by field as the form shows them (its
    labels, its one-line-per-entry texts; lines joined by "; "). A first revision lists every
    field it set."""

    def as_form(document: dict[str, Any] | None) -> dict[str, str]:
        if document is None:
            return {}
        own = {
            "name": document.get("name", ""),
            "description": document.get("description", ""),
            "enabled": document.get("enabled", True),
            "priority": document.get("priority", 0),
        }
        values = {**own, **RuleForm.initial_from_document(document, zone)}
        kind = str(values.get("action_kind") or "")
        fragment = ACTION_FRAGMENTS.get(kind)
        shown_fields = set(fragment.fields) if fragment else set()
        # An action's fields count only for its own action (a pin has no strength).
        return {
            name: _shown(value)
            for name, value in values.items()
            if name not in ACTION_FIELDS or name in shown_fields
        }

    old, new = as_form(before), as_form(after)
    changes = []
    for name in dict.fromkeys([*new, *old]):
        if old.get(name, "") != new.get(name, ""):
            field = RuleForm.base_fields.get(name)
            label = str(field.label) if field is not None and field.label else name.capitalize()
            changes.append(FieldChange(label, old.get(name, ""), new.get(name, "")))
    return changes
