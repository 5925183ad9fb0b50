"""Helpers to build catalog and events for ranking tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import ApiCaller


def put_items(api: ApiCaller, items: list[dict[str, Any]]) -> None:
    response = api.put("/v1/catalog/items", {"items": items})
    assert response.status_code == 200, response.content


def send_events(api: ApiCaller, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post("/v1/events", {"events": events})
    assert response.status_code == 202, response.content
    return response.json()


def ago(**delta: float) -> str:
    return (timezone.now() - timedelta(**delta)).isoformat()


def impression_with_purchases(
    item_ids: list[str], purchases: dict[str, int], *, prefix: str, at: datetime | None = None
) -> list[dict[str, Any]]:
    """One impression of all items per purchase round, and the given purchases of each."""
    at = at or timezone.now() - timedelta(hours=2)
    events: list[dict[str, Any]] = []
    rounds = max(purchases.values(), default=0) or 1
    for round_ in range(rounds):
        request_id = f"{prefix}-r{round_}"
        events.append(
            {
                "event_id": f"{prefix}-imp-{round_}",
                "type": "impression",
                "timestamp": at.isoformat(),
                "request_id": request_id,
                "surface": "browse",
                "items": item_ids,
            }
        )
        for item_id, count in purchases.items():
            if round_ < count:
                events.append(
                    {
                        "event_id": f"{prefix}-buy-{item_id}-{round_}",
                        "type": "purchase",
                        "timestamp": at.isoformat(),
                        "request_id": request_id,
                        "item_id": item_id,
                        "price": 20.0,
                    }
                )
    return events


def rank(api: ApiCaller, body: dict[str, Any]) -> dict[str, Any]:
    """A rank answer computed from the signals: a degraded one (the signal store failed, on a
    machine too busy, say) fails the test here, saying so, not later on a count or an order."""
    response = api.post("/v1/rank", body)
    assert response.status_code == 200, response.content
    answer = response.json()
    if answer["degraded"]:
        pytest.fail("the rank answer was degraded (signal store unavailable); this test needs one")
    return answer


def rank_all(api: ApiCaller, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each body's answer through /v1/rank, every one a 200."""
    replies = [api.post("/v1/rank", body) for body in bodies]
    assert all(reply.status_code == 200 for reply in replies), replies[0].content
    return [reply.json() for reply in replies]


def ranked_ids(response: dict[str, Any]) -> list[str]:
    return [item["id"] for item in response["items"]]
