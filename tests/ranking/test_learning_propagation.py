"""An activation in one process reaches another, already warm, API process within 2 seconds;
that process logs its requests off the request path, written by its sync thread."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.contracts import CatalogItemIn
from catalog.services import items_upsert
from customers.models import Customer, Scope
from customers.services import api_key_create
from ranking.learning import registry
from ranking.models import RankLog
from tests.factories import CustomerFactory
from tests.processes import api_process
from tests.ranking.learning_shop import register

IDS = ["sku-a", "sku-b", "sku-c"]


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def server(transactional_db: None, media: Path) -> Iterator[str]:
    """A separate API process on the test database and artifact storage, polling every second;
    tasks run eagerly in it (its rank log is written by its own sync thread)."""
    with api_process(
        RUNTIME_REFRESH_SECONDS="1", MEDIA_ROOT=str(media), CELERY_BROKER_URL=""
    ) as base:
        yield base


def rank(base: str, key: str) -> dict[str, Any]:
    items = [{"id": item_id, "relevance": 3.0 - n} for n, item_id in enumerate(IDS)]
    body = {"surface": "search", "query": "shoes", "items": items}
    request = urllib.request.Request(  # noqa: S310 (a local http URL)
        f"{base}/v1/rank",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        payload: dict[str, Any] = json.loads(response.read())
    return payload


def warm(server: str, customer: Customer) -> str:
    items_upsert(
        customer_id=customer.pk, items=[CatalogItemIn(id=item_id, title=item_id) for item_id in IDS]
    )
    _, key = api_key_create(customer=customer, name="t", scopes=[Scope.RANK])
    deadline = time.monotonic() + 30
    while True:
        try:
            assert rank(server, key)["ranker"]["model"] is None  # warm, on the config's blend
            return key
        except (ConnectionError, urllib.error.URLError):
            assert time.monotonic() < deadline, "the API process never answered"
            time.sleep(0.2)


def test_an_activation_reaches_a_running_api_process_within_two_seconds(server: str) -> None:
    customer = CustomerFactory()
    key = warm(server, customer)
    model = register(customer)

    registry.model_activate(model=model, user="tester")
    activated = time.monotonic()
    while (served := rank(server, key))["ranker"]["model"] != "lambdamart@1":
        assert time.monotonic() - activated < 2.0, "the model did not reach the API in 2 s"
        time.sleep(0.05)

    # The other process logged what it served: its sync thread flushes every second.
    deadline = time.monotonic() + 5
    while not RankLog.objects.filter(customer=customer, request_id=served["request_id"]).exists():
        assert time.monotonic() < deadline, "the rank log was never flushed"
        time.sleep(0.1)
    logged = RankLog.objects.get(customer=customer, request_id=served["request_id"])
    assert logged.model == "lambdamart@1"
    assert logged.item_ids == [item["id"] for item in served["items"]]
