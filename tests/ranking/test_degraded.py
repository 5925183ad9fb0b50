"""A dependency outage answers 200 in the best order available, flagged degraded, never 5xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from ranking.services import signals_refresh
from ranking.signals.store import reset_signal_store
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, rank, ranked_ids

pytestmark = pytest.mark.django_db


def test_redis_down_answers_degraded_in_relevance_order(api: ApiCaller, settings: Any) -> None:
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "URL": "redis://127.0.0.1:1/0"}
    reset_signal_store()
    request = {
        "surface": "search",
        "query": "shoes",
        "items": [{"id": "a", "relevance": 1.0}, {"id": "b", "relevance": 3.0}, {"id": "c"}],
    }

    response = api.post("/v1/rank", request)

    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] is True
    assert ranked_ids(body) == ["b", "a", "c"]


@pytest.fixture
def postgres_outage() -> Iterator[Callable[[], None]]:
    """Call it to make the database unreachable for the rest of the test (a dead port)."""
    saved = dict(connection.settings_dict)

    def break_database() -> None:
        connection.close()
        connection.settings_dict["PORT"] = 1
        connection.settings_dict["HOST"] = "127.0.0.1"

    yield break_database
    connection.close()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_postgres_down_ranks_from_the_cache_and_new_keys_get_input_order(
    make_caller: Callable[..., ApiCaller], postgres_outage: Callable[[], None]
) -> None:
    warm, cold = make_caller(), make_caller()
    put_items(warm, [{"id": f"sku-{n}", "title": "x"} for n in range(3)])
    signals_refresh(customer_id=warm.customer.pk)
    request = {"surface": "browse", "items": [{"id": "sku-2"}, {"id": "sku-0"}, {"id": "sku-1"}]}
    before = rank(warm, request)

    postgres_outage()
    after = rank(warm, request)
    unknown = cold.post("/v1/rank", request)

    assert after["degraded"] is False
    assert ranked_ids(after) == ranked_ids(before)
    assert unknown.status_code == 200
    assert unknown.json()["degraded"] is True
    assert ranked_ids(unknown.json()) == ["sku-2", "sku-0", "sku-1"]
