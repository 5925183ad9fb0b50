"""A rule saved in one process changes the rankings of another, already warm, API process
within 2 seconds (the issue's promise), with no database query per rank request."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from catalog.contracts import CatalogItemIn
from catalog.services import items_upsert
from customers.models import Scope
from customers.services import api_key_create
from merchandising import services
from merchandising.contracts import RuleIn
from tests.factories import CustomerFactory
from tests.processes import api_process

IDS = ["sku-a", "sku-b", "sku-c"]


@pytest.fixture
def server(transactional_db: None) -> Iterator[str]:
    """A separate API process on the test database, polling generations every second."""
    with api_process(RUNTIME_REFRESH_SECONDS="1") as base:
        yield base


def rank(base: str, key: str) -> list[str]:
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
    return [item["id"] for item in payload["items"]]


def test_a_rule_change_reaches_a_running_api_process_within_two_seconds(server: str) -> None:
    customer = CustomerFactory()
    items_upsert(
        customer_id=customer.pk, items=[CatalogItemIn(id=item_id, title=item_id) for item_id in IDS]
    )
    _, key = api_key_create(customer=customer, name="t", scopes=[Scope.RANK])
    deadline = time.monotonic() + 30
    while True:
        try:
            assert rank(server, key) == IDS  # warm: the process has cached this customer
            break
        except (ConnectionError, urllib.error.URLError):
            assert time.monotonic() < deadline, "the API process never answered"
            time.sleep(0.2)

    document = RuleIn.model_validate(
        {
            "name": "c first",
            "action": {"type": "pin", "pins": [{"item_id": "sku-c", "position": 1}]},
        }
    )
    services.rule_create(customer=customer, document=document)
    saved = time.monotonic()
    while rank(server, key)[0] != "sku-c":
        assert time.monotonic() - saved < 2.0, "the rule did not reach the API process in 2 s"
        time.sleep(0.05)
