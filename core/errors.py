"""The errors services and request parsing raise: what went wrong and which fields, with no
HTTP in them. core/problems.py maps each class to its status and problem type, in one table.

A field is named by its location, a path of keys and indexes: `("items", 3, "id")` is
`items[3].id`, JSON pointer `/items/3/id`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: its location as a path of keys and indexes, a code and a message."""

    location: tuple[str | int, ...]
    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "field": field_name(self.location),
            "pointer": "/" + "/".join(str(part) for part in self.location),
            "code": self.code,
            "detail": self.detail,
        }


def field_name(location: Sequence[str | int]) -> str:
    """`("items", 3, "id")` -> `items[3].id`; the empty location is the whole body."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else part
    return name or "body"


class DomainError(Exception):
    """What went wrong, in the request's or the domain's terms: a sentence and, for bad input,
    the fields. core.problems.problem_for is the one place that makes it an HTTP response."""

    def __init__(self, detail: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)


class InvalidRequest(DomainError):
    """The input breaks the contract; `errors` names each field."""


class MalformedJson(DomainError):
    """The body is not JSON."""


class MalformedProtobuf(DomainError):
    """The body is not a protobuf message of the operation."""


class NotFound(DomainError):
    """No such thing for this customer (another customer's is not found either)."""


class Conflict(DomainError):
    """The write contradicts what is stored (a rule against another rule); nothing was stored."""


class UnsupportedMediaType(DomainError):
    """The body's media type is not one the operation reads."""


class BodyTooLarge(DomainError):
    """The body is over the size limit."""


class ServiceUnavailable(DomainError):
    """A dependency is down and nothing was done; the client retries after `retry_after`
    seconds."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def invalid_request(errors: Iterable[FieldError]) -> InvalidRequest:
    errors = list(errors)
    fields = ", ".join(dict.fromkeys(field_name(error.location) for error in errors))
    return InvalidRequest(f"Invalid fields: {fields}", errors)


def _location(error: Any, union_tags: frozenset[str]) -> tuple[str | int, ...]:
    """Pydantic's location without the tag it adds inside a tagged union (`union_tags` are
    the tag values; no field of a contract shares a name with one)."""
    location: list[str | int] = []
    for part in error["loc"]:
        if part in union_tags and location:
            continue
        location.append(part)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        location.append(error["ctx"]["discriminator"].strip("'"))
    return tuple(location)


def _code(error: Any, typed_dict_lists: frozenset[str]) -> str:
    """Pydantic's error type, but `model_type` for an item of a top-level list of TypedDicts
    (`typed_dict_lists` names those fields) that is no object: the code it had as a model."""
    location = error["loc"]
    if error["type"] == "dict_type" and len(location) == 2 and location[0] in typed_dict_lists:
        return "model_type"
    return str(error["type"])


def errors_from_pydantic(
    exc: pydantic.ValidationError,
    union_tags: frozenset[str] = frozenset(),
    typed_dict_lists: frozenset[str] = frozenset(),
) -> list[FieldError]:
    """Pydantic's errors as field errors; `union_tags` are the tags of tagged unions,
    `typed_dict_lists` the top-level lists of TypedDicts (see _code)."""
    return [
        FieldError(_location(error, union_tags), _code(error, typed_dict_lists), error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def raise_for_pydantic(
    exc: pydantic.ValidationError,
    union_tags: frozenset[str] = frozenset(),
    typed_dict_lists: frozenset[str] = frozenset(),
) -> None:
    errors = errors_from_pydantic(exc, union_tags, typed_dict_lists)
    json_error = next((e for e in errors if e.code == "json_invalid"), None)
    if json_error is not None:
        raise MalformedJson(json_error.detail) from exc
    raise invalid_request(errors) from exc


NUL_DETAIL = "Text may not contain the NUL character (\\u0000)."


def nul_errors(value: Any, location: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Every string (or object key) in a parsed JSON document that holds a NUL character:
    PostgreSQL cannot store one, so it is refused at the door, naming the field."""
    if isinstance(value, str):
        return [FieldError(location, "nul_character", NUL_DETAIL)] if "\x00" in value else []
    errors: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                errors.append(FieldError((*location, key), "nul_character", NUL_DETAIL))
            errors.extend(nul_errors(item, (*location, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors.extend(nul_errors(item, (*location, index)))
    return errors
