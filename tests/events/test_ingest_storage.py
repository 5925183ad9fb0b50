"""How events_ingest writes the log on PostgreSQL (COPY): the values it stores, and batches that
race each other with the same event ids."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.db import connections
from django.forms.models import model_to_dict
from django.utils import timezone
from pydantic import TypeAdapter

from events import services
from events.contracts import EventIn
from events.models import Event
from tests.factories import CustomerFactory

EVENTS = TypeAdapter(list[EventIn])


def events(*raw: dict[str, Any]) -> list[Any]:
    """Parsed from JSON, as the API does (the contract is strict)."""
    return EVENTS.validate_json(orjson.dumps(list(raw)))


def every_kind() -> list[dict[str, Any]]:
    """Each event type, with and without the optional fields, attributed or not."""
    now = timezone.now()
    at = [(now - timedelta(minutes=minutes)).isoformat() for minutes in range(60, 0, -5)]
    shopper = {"user_id": "u-1"}
    return [
        {
            "event_id": "i-1",
            "type": "impression",
            "timestamp": at[0],
            **shopper,
            "request_id": "r-1",
            "surface": "search",
            "query": " Café  CRÈME ",
            "items": ["sku-1", "sku-2", "sku-3"],
        },
        {
            "event_id": "i-2",
            "type": "impression",
            "timestamp": at[1],
            "session_id": "s-9",
            "items": ["sku-4"],
        },
        {
            "event_id": "c-1",
            "type": "click",
            "timestamp": at[2],
            **shopper,
            "request_id": "r-1",
            "item_id": "sku-2",
            "position": 2,
        },
        {
            "event_id": "c-2",
            "type": "click",
            "timestamp": at[3],
            "session_id": "s-9",
            "item_id": "sku-4",
        },
        {
            "event_id": "a-1",
            "type": "add_to_cart",
            "timestamp": at[4],
            **shopper,
            "item_id": "sku-2",
            "quantity": 2,
        },
        {
            "event_id": "a-2",
            "type": "add_to_cart",
            "timestamp": at[5],
            **shopper,
            "request_id": "r-1",
            "item_id": "sku-3",
        },
        {
            "event_id": "p-1",
            "type": "purchase",
            "timestamp": at[6],
            **shopper,
            "item_id": "sku-2",
            "quantity": 3,
            "price": 19.9,
        },
        {
            "event_id": "p-2",
            "type": "purchase",
            "timestamp": at[7],
            "session_id": "s-9",
            "surface": "browse",
            "item_id": "sku-4",
            "price": 60,
        },
    ]


def stored_values(customer_id: int) -> list[dict[str, Any]]:
    """Every stored field but those that differ between two ingests (id, tenant, receipt)."""
    rows = Event.objects.filter(customer_id=customer_id).order_by("event_id", "ordinal")
    return [
        model_to_dict(row, exclude=["id", "customer", "received_at"])
        | {"price": row.price, "revenue": row.revenue, "occurred_at": row.occurred_at}
        for row in rows
    ]


@pytest.mark.django_db
def test_copy_stores_the_same_values_as_the_orm_for_every_event_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_copy, by_orm = CustomerFactory(), CustomerFactory()
    batch = events(*every_kind())
    services.events_ingest(customer_id=by_copy.pk, events=batch)
    monkeypatch.setattr(services, "_store_copy", services._store_orm)

    services.events_ingest(customer_id=by_orm.pk, events=batch)

    copied, inserted = stored_values(by_copy.pk), stored_values(by_orm.pk)
    assert len(copied) == 10
    for copied_row, inserted_row in zip(copied, inserted, strict=True):
        assert copied_row == inserted_row
    # The values themselves, for the rows whose fields are filled at ingest.
    by_id = {(row["event_id"], row["ordinal"]): row for row in copied}
    assert by_id["i-1", 2]["query"] == "cafe creme"
    assert (by_id["i-1", 2]["item_id"], by_id["i-1", 2]["position"]) == ("sku-3", 3)
    assert (by_id["a-1", 0]["request_id"], by_id["a-1", 0]["request_attributed"]) == ("r-1", True)
    assert (by_id["p-1", 0]["price"], by_id["p-1", 0]["revenue"]) == (19.9, pytest.approx(59.7))
    assert (by_id["p-2", 0]["quantity"], by_id["p-2", 0]["revenue"]) == (1, 60.0)
    assert by_id["c-2", 0]["position"] is None


@pytest.mark.django_db
def test_ids_stored_by_a_racing_batch_after_the_look_up_count_as_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other batch commits between this batch's duplicate look-up and its COPY."""
    customer = CustomerFactory()
    raced = every_kind()[:3]
    look_up_attribution = services._impression_origins

    def racing_batch_stores_first(customer_id: int, fresh: Any) -> Any:
        monkeypatch.setattr(services, "_impression_origins", look_up_attribution)
        services.events_ingest(customer_id=customer_id, events=events(*raced))
        return look_up_attribution(customer_id, fresh)

    monkeypatch.setattr(services, "_impression_origins", racing_batch_stores_first)

    result = services.events_ingest(customer_id=customer.pk, events=events(*every_kind()))

    assert (result.accepted, result.duplicates) == (5, 3)
    assert Event.objects.filter(customer=customer).count() == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_ids_store_each_row_once() -> None:
    customer = CustomerFactory()
    batch = events(*every_kind())
    start = threading.Barrier(4)
    results: list[services.IngestResult] = []

    def ingest() -> None:
        try:
            start.wait()
            results.append(services.events_ingest(customer_id=customer.pk, events=batch))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ingest) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4
    assert sum(result.accepted for result in results) == len(batch)
    assert sum(result.duplicates for result in results) == 3 * len(batch)
    assert Event.objects.filter(customer=customer).count() == 10
