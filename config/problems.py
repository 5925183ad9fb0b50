"""RFC 9457 problem details: the one place where errors become HTTP responses for /v1.

Every error body is `application/problem+json` with `type`, `title`, `status`, `detail` and, for
bad input, an `errors` list naming each field: `{"field": "items[3].id", "pointer":
"/items/3/id", "code": "duplicate", "detail": "..."}`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# slug -> (title, what it means). Served at /problems/<slug> so every `type` resolves.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "invalid-request": (
        "Invalid request",
        "The body did not match the contract. `errors` lists each offending field.",
    ),
    "malformed-json": ("Malformed JSON", "The body is not valid JSON (RFC 8259)."),
    "malformed-protobuf": (
        "Malformed protobuf",
        "The body is not a valid protobuf message of this operation (wire/rankwell/v1/*.proto).",
    ),
    "unauthenticated": (
        "Missing or invalid API key",
        "Send `Authorization: Bearer <key>` with an active key of this customer.",
    ),
    "forbidden": ("Missing scope", "The API key is valid but lacks the scope this call needs."),
    "not-found": ("Not found", "No such resource for this customer."),
    "rule-conflict": (
        "Contradictory rule",
        "The rule contradicts another rule of this customer; `errors` names the fields and the "
        "rule. Nothing was stored.",
    ),
    "method-not-allowed": ("Method not allowed", "This resource does not accept that method."),
    "not-acceptable": (
        "Not acceptable",
        "The API answers `application/json` (errors `application/problem+json`); send an "
        "`Accept` header that admits one of them, or none.",
    ),
    "unsupported-media-type": (
        "Unsupported media type",
        "Bodies must be sent as `Content-Type: application/json`.",
    ),
    "body-too-large": ("Request body too large", "The body exceeds the size limit of this API."),
    "rate-limited": ("Too many requests", "Slow down and retry after the indicated delay."),
    "server-error": ("Internal server error", "An unexpected error; it has been logged."),
    "service-unavailable": (
        "Service unavailable",
        "A service the request needs is down; nothing was stored. Retry the same request after "
        "the `Retry-After` header's seconds (repeated event ids count as duplicates, so a retry "
        "never counts an event twice).",
    ),
}


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


class ApiError(Exception):
    """A domain error that becomes a problem+json response."""

    status = 400
    slug = "invalid-request"

    def __init__(self, detail: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)

    def as_response(self) -> HttpResponse:
        return problem_response(self.status, self.slug, self.detail, self.errors)


class InvalidRequest(ApiError):
    status = 400
    slug = "invalid-request"


class MalformedJson(ApiError):
    status = 400
    slug = "malformed-json"


class MalformedProtobuf(ApiError):
    status = 400
    slug = "malformed-protobuf"


class NotFound(ApiError):
    status = 404
    slug = "not-found"


class Conflict(ApiError):
    status = 409
    slug = "rule-conflict"


class UnsupportedMediaType(ApiError):
    status = 415
    slug = "unsupported-media-type"


class BodyTooLarge(ApiError):
    status = 413
    slug = "body-too-large"


class ServiceUnavailable(ApiError):
    """503: a dependency is down and nothing was done; the client retries after `retry_after`
    seconds (sent as Retry-After)."""

    status = 503
    slug = "service-unavailable"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def as_response(self) -> HttpResponse:
        headers = {"Retry-After": str(self.retry_after)}
        return problem_response(self.status, self.slug, self.detail, headers=headers)


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


def errors_from_pydantic(
    exc: pydantic.ValidationError, union_tags: frozenset[str] = frozenset()
) -> list[FieldError]:
    """Pydantic's errors as field errors; `union_tags` are the tags of tagged unions."""
    return [
        FieldError(_location(error, union_tags), error["type"], error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def raise_for_pydantic(
    exc: pydantic.ValidationError, union_tags: frozenset[str] = frozenset()
) -> None:
    errors = errors_from_pydantic(exc, union_tags)
    json_error = next((e for e in errors if e.code == "json_invalid"), None)
    if json_error is not None:
        raise MalformedJson(json_error.detail) from exc
    raise invalid_request(errors) from exc


def problem_response(
    status: int,
    slug: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    title = PROBLEM_TYPES[slug][0]
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [error.as_dict() for error in errors]
    response = HttpResponse(orjson.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _drf_validation_errors(data: Any, location: tuple[str | int, ...] = ()) -> list[FieldError]:
    if isinstance(data, dict):
        return [
            error
            for key, value in data.items()
            for error in _drf_validation_errors(
                value, location if key == "non_field_errors" else (*location, key)
            )
        ]
    if isinstance(data, list) and data and not all(isinstance(v, str) for v in data):
        return [
            error
            for index, value in enumerate(data)
            for error in _drf_validation_errors(value, (*location, index))
        ]
    messages = data if isinstance(data, list) else [data]
    return [
        FieldError(location, getattr(message, "code", "invalid"), str(message))
        for message in messages
    ]


def counted_not_logged(response: HttpResponse) -> HttpResponse:
    """Spare a refusal that comes in floods (bad keys, rate limits) Django's warning line per
    request: customers.auth and customers.ratelimit count each one in metrics and log at most a
    line per client address a minute."""
    response._has_been_logged = True  # type: ignore[attr-defined]  # django.utils.log
    return response


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's exception handler: domain and DRF errors as problem+json; others propagate."""
    if isinstance(exc, ApiError):
        return exc.as_response()
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _drf_validation_errors(exc.detail)
        return invalid_request(errors).as_response()
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return counted_not_logged(
            problem_response(
                401, "unauthenticated", str(exc.detail), headers={"WWW-Authenticate": "Bearer"}
            )
        )
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return problem_response(403, "forbidden", str(exc.detail))
    if isinstance(exc, drf_exceptions.NotFound):
        return problem_response(404, "not-found", str(exc.detail))
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return problem_response(405, "method-not-allowed", str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return problem_response(406, "not-acceptable", str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return problem_response(415, "unsupported-media-type", str(exc.detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return problem_response(400, "malformed-json", str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        wait = getattr(exc, "wait", None)
        headers = {"Retry-After": str(wait)} if wait else None
        return counted_not_logged(
            problem_response(429, "rate-limited", str(exc.detail), headers=headers)
        )
    if isinstance(exc, drf_exceptions.APIException):
        return problem_response(exc.status_code, "invalid-request", str(exc.detail))
    return None


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/v1/")


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


@csrf_exempt  # an API path that does not exist answers 404 to every method, never a CSRF page
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: problem+json under /v1, Django's page elsewhere."""
    if is_api_path(request):
        return problem_response(404, "not-found", f"No resource at {request.path}")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Exception())


def api_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: problem+json under /v1, Django's page elsewhere."""
    if is_api_path(request):
        return problem_response(500, "server-error", "Unexpected error")
    from django.views.defaults import server_error

    return server_error(request)
