"""POST /v1/rank: the contract, personalisation, popularity, tenancy, degraded mode."""

from __future__ import annotations

from typing import Any

import pytest

from customers.models import Customer
from ranking import services
from ranking.services import signals_refresh
from ranking.signals.backend import reset_signal_store
from tests.conftest import ApiCaller
from tests.ranking.helpers import (
    ago,
    impression_with_purchases,
    put_items,
    rank,
    ranked_ids,
    send_events,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["redis", "cluster", "memory"])
def backend(request: pytest.FixtureRequest, settings: Any) -> str:
    """Every test here runs on Redis, on a real Redis Cluster (as ElastiCache's cluster mode),
    and on the in-process store of the embedded default."""
    if request.param == "memory":
        request.getfixturevalue("memory_store")
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster_url")
        settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "URL": url, "CLUSTER": True}
        reset_signal_store()
    return str(request.param)


def catalog(n: int = 4, **overrides: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": f"sku-{i}",
            "title": f"Item {i}",
            "brand": f"Brand{i}",
            "categories": ["shoes", f"shoes/kind{i}"],
            "price": 50.0,
            **overrides,
        }
        for i in range(n)
    ]


def browse(ids: list[str], **extra: Any) -> dict[str, Any]:
    return {"surface": "browse", "items": [{"id": i} for i in ids], **extra}


def popularity_only(customer: Customer) -> None:
    services.ranking_config_save(
        customer=customer,
        surface="browse",
        name="popularity",
        weights={"popularity": 1.0},
        personalization_weight=0.0,
    )


def test_response_has_the_designed_shape(api: ApiCaller) -> None:
    put_items(api, catalog(3))
    signals_refresh(customer_id=api.customer.pk)

    body = rank(api, browse(["sku-0", "sku-1", "sku-2"], limit=2))

    assert set(body) == {"request_id", "surface", "degraded", "ranker", "items"}
    assert len(body["request_id"]) == 36
    assert body["surface"] == "browse"
    assert body["degraded"] is False
    assert body["ranker"] == {"config": "default", "model": None, "variant": None}
    assert [item["position"] for item in body["items"]] == [1, 2]
    assert all(set(item) == {"id", "position", "score"} for item in body["items"])
    assert all(item["score"] > 0 for item in body["items"])


def test_items_with_more_purchases_rise_under_a_popularity_config(api: ApiCaller) -> None:
    ids = ["sku-0", "sku-1", "sku-2", "sku-3"]
    put_items(api, catalog(4))
    send_events(api, impression_with_purchases(ids, {"sku-3": 5, "sku-1": 2}, prefix="p"))
    popularity_only(api.customer)
    signals_refresh(customer_id=api.customer.pk)

    assert ranked_ids(rank(api, browse(ids)))[:2] == ["sku-3", "sku-1"]


def test_a_click_changes_the_next_ranking_for_that_shopper(api: ApiCaller) -> None:
    ids = ["sku-0", "sku-1", "sku-2", "sku-3"]
    put_items(api, catalog(4))
    signals_refresh(customer_id=api.customer.pk)
    request = browse(ids, user_id="u-42")
    before = ranked_ids(rank(api, request))
    last = before[-1]

    send_events(
        api,
        [
            {
                "event_id": "c-1",
                "type": "click",
                "timestamp": ago(minutes=1),
                "user_id": "u-42",
                "item_id": last,
            }
        ],
    )

    after = ranked_ids(rank(api, request))
    assert after[0] == last
    # Another shopper's ranking is untouched.
    assert ranked_ids(rank(api, browse(ids, user_id="u-7"))) == before


def test_equal_scores_are_ordered_by_item_id(api: ApiCaller) -> None:
    put_items(api, catalog(3))
    signals_refresh(customer_id=api.customer.pk)

    body = rank(api, browse(["sku-2", "sku-0", "sku-1"]))

    assert ranked_ids(body) == ["sku-0", "sku-1", "sku-2"]


def test_a_tenant_ranks_only_on_its_own_signals(api: ApiCaller, other_api: ApiCaller) -> None:
    ids = ["sku-0", "sku-1", "sku-2", "sku-3"]
    for caller, best in ((api, "sku-0"), (other_api, "sku-3")):
        put_items(caller, catalog(4))
        send_events(caller, impression_with_purchases(ids, {best: 4}, prefix="t"))
        popularity_only(caller.customer)
        signals_refresh(customer_id=caller.customer.pk)

    assert ranked_ids(rank(api, browse(ids)))[0] == "sku-0"
    assert ranked_ids(rank(other_api, browse(ids)))[0] == "sku-3"


def test_search_without_a_query_is_refused(api: ApiCaller) -> None:
    response = api.post("/v1/rank", {"surface": "search", "items": [{"id": "a"}]})

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["query"]


def test_the_customer_candidate_limit_is_enforced(api: ApiCaller) -> None:
    api.customer.max_candidates = 3
    api.customer.save()

    response = api.post("/v1/rank", browse([f"i{n}" for n in range(4)]))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "items"
    assert "at most 3" in response.json()["errors"][0]["detail"]


def test_a_key_without_the_rank_scope_is_refused(make_caller: Any) -> None:
    caller = make_caller(scopes=["events"])

    response = caller.post("/v1/rank", browse(["a"]))

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
