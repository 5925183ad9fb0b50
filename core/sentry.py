"""Error reporting to Sentry, on when SENTRY_DSN is set, from the API and the Celery workers.

What leaves the process is scrubbed: API keys (`rwk_...` anywhere in the event), authorization
and cookie headers, and shopper ids (`user_id`, `session_id`, `shopper_key` in request bodies,
task arguments and extras). Stack frames carry no local variables, and the SDK's default
collects no personal data (no `send_default_pii`).
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.transport import Transport

from core.logs import API_KEY_PATTERN

FILTERED = "[Filtered]"
BEARER_PATTERN = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
# Keys whose values never leave the process, wherever they appear in an event.
DENYLIST = [
    *DEFAULT_DENYLIST,
    "authorization",
    "http_authorization",
    "api_key",
    "key",
    "raw_key",
    "key_hash",
    "user_id",
    "session_id",
    "shopper_key",
    "shopper",
]


def _scrub_strings(value: Any) -> Any:
    """API keys and bearer tokens inside any string (messages, bodies, reprs of locals)."""
    if isinstance(value, str):
        return BEARER_PATTERN.sub(f"Bearer {FILTERED}", API_KEY_PATTERN.sub(FILTERED, value))
    if isinstance(value, dict):
        return {key: _scrub_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_strings(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub_strings(item) for item in value)
    return value


def _scrub_body(request: dict[str, Any]) -> None:
    """A request body Sentry kept as raw text (unparsed JSON) may name shoppers: drop it."""
    data = request.get("data")
    if isinstance(data, str | bytes) and data:
        request["data"] = FILTERED


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """The last pass over every event: the denylist scrubber has run; strings are checked here."""
    request = event.get("request")
    if isinstance(request, dict):
        _scrub_body(request)
    scrubbed: dict[str, Any] = _scrub_strings(event)
    return scrubbed


def init_sentry(
    *,
    dsn: str,
    environment: str,
    release: str | None,
    traces_sample_rate: float = 0.0,
    transport: type[Transport] | Transport | None = None,
) -> None:
    """Start the SDK with the Django and Celery integrations."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        event_scrubber=EventScrubber(denylist=DENYLIST, recursive=True),
        before_send=before_send,  # type: ignore[arg-type]
        traces_sample_rate=traces_sample_rate,
        max_request_body_size="medium",
        # Locals hold request bodies and shopper ids under any name; stack frames go without them.
        include_local_variables=False,
        transport=transport,
    )
