"""A dependency outage answers 200 in the best order available, flagged degraded, never 5xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from customers import auth, runtime_sync
from customers.models import ApiKey
from customers.services import api_key_revoke
from ranking.services import ranking_config_save, signals_refresh
from ranking.signals.backend import reset_signal_store
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


def as_fresh_process() -> None:
    """Forget what this process cached and knew, as a process (worker) that just started."""
    runtime_sync.reset()


BROWSE = {"surface": "browse", "items": [{"id": "sku-2"}, {"id": "sku-0"}, {"id": "sku-1"}]}


@pytest.mark.django_db(transaction=True)
def test_a_change_just_before_a_postgres_outage_leaves_the_cache_warm(
    api: ApiCaller, postgres_outage: Callable[[], None]
) -> None:
    """A change of the customer (here its browse config) empties its cached key and runtime in
    every process. The sync thread reloads them at its next poll instead of waiting for a
    request, so an outage right after finds them, with the change."""
    put_items(api, [{"id": f"sku-{n}", "title": "x"} for n in range(3)])
    signals_refresh(customer_id=api.customer.pk)
    rank(api, BROWSE)
    runtime_sync.poller.poll_once()  # the sync thread knows the generations
    ranking_config_save(
        customer=api.customer,
        surface="browse",
        name="changed",
        weights={"popularity": 1.0},
        personalization_weight=1.0,
    )

    runtime_sync.poller.poll_once()  # its next poll, before any request of the customer
    postgres_outage()
    after = api.post("/v1/rank", BROWSE).json()

    assert after["degraded"] is False, after
    assert after["ranker"]["config"] == "changed"


@pytest.mark.django_db(transaction=True)
def test_a_process_that_never_served_a_customer_holds_its_key_and_runtime(
    api: ApiCaller, postgres_outage: Callable[[], None]
) -> None:
    """Another process served the customer (its key's last use is recorded); this one starts
    and its sync thread's first poll loads the key and the runtime before any request comes."""
    put_items(api, [{"id": f"sku-{n}", "title": "x"} for n in range(3)])
    signals_refresh(customer_id=api.customer.pk)
    rank(api, BROWSE)
    auth.flush_last_used()
    as_fresh_process()

    runtime_sync.poller.poll_once()
    postgres_outage()
    after = api.post("/v1/rank", BROWSE).json()

    assert after["degraded"] is False, after


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_before_the_outage_stays_refused(
    make_caller: Callable[..., ApiCaller], postgres_outage: Callable[[], None]
) -> None:
    """Reloading keys ahead never brings back a revoked one."""
    revoked, other = make_caller(), make_caller()
    rank(revoked, BROWSE)
    rank(other, BROWSE)
    runtime_sync.poller.poll_once()
    api_key_revoke(api_key=ApiKey.objects.get(customer=revoked.customer))

    runtime_sync.poller.poll_once()
    postgres_outage()
    refused = revoked.post("/v1/rank", BROWSE)

    assert refused.status_code == 200  # the database cannot say: input order, nothing read
    assert refused.json()["degraded"] is True
    assert refused.json()["degraded_reason"] == "key_store"
    assert other.post("/v1/rank", BROWSE).json()["degraded"] is False
