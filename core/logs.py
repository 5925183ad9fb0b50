"""Structured logs: one JSON object per line, with the request id and customer of the work.

The request id and customer live in context variables. `RequestContextMiddleware` sets them for
each HTTP request (and answers the id in `X-Request-ID`); API-key authentication adds the
customer; `config.celery` carries the request id into the headers of every task a request
enqueues and binds it again while the task runs. `RequestContextFilter` copies them onto every
log record, so any logger's lines carry them without passing them around.
"""

from __future__ import annotations

import contextvars
import logging
import re
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# An API key never reaches a log line or Sentry, whatever message or traceback carries it.
API_KEY_PATTERN = re.compile(r"rwk_[A-Za-z0-9_-]{20,}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rankwell_request_id", default=None
)
customer_var: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "rankwell_customer", default=None
)

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def current_request_id() -> str | None:
    return request_id_var.get()


def bind_customer(customer_id: int | None) -> None:
    customer_var.set(customer_id)


def new_request_id() -> str:
    return str(uuid.uuid4())


class RequestContextFilter(logging.Filter):
    """Puts the current request id and customer on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "customer_id"):
            record.customer_id = customer_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, customer, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "customer_id": getattr(record, "customer_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                # Django's request loggers attach the request: its query string may name a
                # shopper or a search, so only the method and path are written.
                entry[key] = (
                    f"{value.method} {value.path}" if isinstance(value, HttpRequest) else value
                )
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return API_KEY_PATTERN.sub("[Filtered]", orjson.dumps(entry, default=str).decode())


def logging_config(*, level: str, json_lines: bool) -> dict[str, Any]:
    """The LOGGING setting: every process logs to stderr, as JSON lines or readable text."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": "core.logs.RequestContextFilter"}},
        "formatters": {
            "json": {"()": "core.logs.JsonFormatter"},
            "text": {
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["request_context"],
                "formatter": "json" if json_lines else "text",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # One line per request: runserver's (the demo's) access lines, every status; gunicorn
            # writes its own JSON access log (platform/gunicorn.conf.py).
            # (Django's default config gives it a handler of its own and no propagation.)
            "django.server": {"level": "INFO", "propagate": True},
            # A 4xx is the client's expected answer, already in the access line: Django's own
            # warning for it (with a traceback for a 403) would only repeat it. 5xx stay errors.
            "django.request": {"level": "ERROR"},
            "celery": {"level": level},
            # django-axes logs every sign-in and its start at INFO; lockouts are WARNING.
            "axes": {"level": "WARNING"},
        },
    }


class RequestContextMiddleware:
    """Gives each request a fresh id, binds it and the customer for logs and Sentry, and answers
    it in X-Request-ID. A client's X-Request-ID is not reused: /v1/rank's request id must be
    unique, since events join impressions on it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        request_token = request_id_var.set(request_id)
        customer_token = customer_var.set(None)
        try:
            tag_sentry(request_id)
            response = self.get_response(request)
            response.setdefault(REQUEST_ID_HEADER, request_id)
            return response
        finally:
            request_id_var.reset(request_token)
            customer_var.reset(customer_token)


def tag_sentry(request_id: str) -> None:
    import sentry_sdk

    sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)
