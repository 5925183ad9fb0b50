"""RFC 9457 problem details: the one place where errors become HTTP responses for /v1.

Services and request parsing raise core.errors' classes, which know nothing of HTTP;
`PROBLEMS` below gives each its status and problem type, and DRF's exception handler
(`problem_exception_handler`) answers with them.

Every error body is `application/problem+json` with `type`, `title`, `status`, `detail` and, for
bad input, an `errors` list naming each field: `{"field": "items[3].id", "pointer":
"/items/3/id", "code": "duplicate", "detail": "..."}`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions

from core.errors import (
    BodyTooLarge,
    Conflict,
    DomainError,
    FieldError,
    InvalidRequest,
    MalformedJson,
    MalformedProtobuf,
    NotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
    invalid_request,
)

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


# Each domain error's status and problem type (a subclass takes its nearest listed class's).
PROBLEMS: dict[type[DomainError], tuple[int, str]] = {
    InvalidRequest: (400, "invalid-request"),
    MalformedJson: (400, "malformed-json"),
    MalformedProtobuf: (400, "malformed-protobuf"),
    NotFound: (404, "not-found"),
    Conflict: (409, "rule-conflict"),
    BodyTooLarge: (413, "body-too-large"),
    UnsupportedMediaType: (415, "unsupported-media-type"),
    ServiceUnavailable: (503, "service-unavailable"),
    DomainError: (400, "invalid-request"),
}


def problem_for(error: DomainError) -> HttpResponse:
    """The problem+json response of a domain error (a 503 says when to retry)."""
    status, slug = next(PROBLEMS[kind] for kind in type(error).__mro__ if kind in PROBLEMS)
    headers = (
        {"Retry-After": str(error.retry_after)} if isinstance(error, ServiceUnavailable) else None
    )
    return problem_response(status, slug, error.detail, error.errors, headers=headers)


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
    if isinstance(exc, DomainError):
        return problem_for(exc)
    if isinstance(exc, drf_exceptions.ValidationError):
        return problem_for(invalid_request(_drf_validation_errors(exc.detail)))
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
