"""Sentry with the real SDK and a capturing transport: an exception in a view and one in a task
are reported with release and environment, and nothing identifies a key or a shopper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import Mock

import orjson
import pytest
import sentry_sdk
from django.test import Client
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from core.sentry import FILTERED, init_sentry
from events import services as event_services
from ranking import services as ranking_services
from ranking import tasks
from tests.conftest import ApiCaller

pytestmark = pytest.mark.django_db

SHOPPER = "u-shopper-4242"
SESSION = "s-session-9191"


class CapturingTransport(Transport):
    """Keeps the events the SDK would send, instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event" and item.payload.json is not None:
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events() -> Iterator[list[dict[str, Any]]]:
    transport = CapturingTransport()
    init_sentry(
        dsn="https://public@sentry.invalid/1",
        environment="test",
        release="rankwell@abc123",
        transport=transport,
    )
    yield transport.events
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: the SDK is off again for the rest of the suite


def test_view_exception_is_reported_without_keys_or_shopper_ids(
    api: ApiCaller, sentry_events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    bug = RuntimeError(f"could not store events sent with {api.key}")
    monkeypatch.setattr(event_services, "events_ingest", Mock(side_effect=bug))
    client = Client(raise_request_exception=False)
    event = {
        "event_id": "e-1",
        "type": "click",
        "timestamp": "2026-11-26T10:00:00Z",
        "user_id": SHOPPER,
        "session_id": SESSION,
        "item_id": "sku-1",
    }

    response = client.post(
        "/v1/events",
        orjson.dumps({"events": [event]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
        HTTP_COOKIE="sessionid=abcdef",
    )

    assert response.status_code == 500
    assert len(sentry_events) == 1
    reported = sentry_events[0]
    assert reported["exception"]["values"][-1]["type"] == "RuntimeError"
    assert reported["release"] == "rankwell@abc123"
    assert reported["environment"] == "test"
    assert reported["tags"]["request_id"] == response["X-Request-ID"]
    headers = reported["request"].get("headers", {})
    assert headers.get("Authorization", FILTERED) == FILTERED
    assert headers.get("Cookie", FILTERED) == FILTERED
    sent = orjson.dumps(reported).decode()
    assert api.key not in sent
    assert api.key[:12] not in sent
    assert SHOPPER not in sent
    assert SESSION not in sent
    assert "abcdef" not in sent


def test_task_exception_is_reported_with_its_task(
    api: ApiCaller, sentry_events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    bug = RuntimeError(f"refresh failed; the caller used {api.key}")
    monkeypatch.setattr(ranking_services, "signals_refresh", Mock(side_effect=bug))

    with pytest.raises(RuntimeError):
        tasks.refresh_signals.delay(api.customer.pk)

    assert len(sentry_events) == 1
    reported = sentry_events[0]
    assert reported["exception"]["values"][-1]["type"] == "RuntimeError"
    assert reported["release"] == "rankwell@abc123"
    assert reported["extra"]["celery-job"]["task_name"] == "ranking.tasks.refresh_signals"
    assert api.key not in orjson.dumps(reported).decode()
