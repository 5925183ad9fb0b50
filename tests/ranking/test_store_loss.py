"""A signal store that lost its data (Redis restarted empty) never gives a silently wrong answer.

Against a redis-server of the test's own, restarted empty for real: answers are degraded and say
why until a refresh republishes, /readyz says so, the refresh beat republishes by itself, and the
new version is numbered past every old one, so a process that cached the old version's
vocabulary (brand and category codes) ranks exactly as a fresh process does.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis
from django.test import Client

from ranking import tasks
from ranking.models import SignalVersion
from ranking.services import signals_refresh
from ranking.signals.backend import reset_signal_store, signal_store
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller
from tests.processes import RedisProcess
from tests.ranking.helpers import ago, put_items, rank_all, ranked_ids, send_events

pytestmark = pytest.mark.django_db

BRANDS = ["Acme", "Borea", "Corvo", "Dunmore"]


def catalog(brand_of_first_ten: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": f"sku-{n}",
            "title": f"item {n}",
            "brand": brand_of_first_ten if brand_of_first_ten and n < 10 else BRANDS[n % 4],
            "categories": [f"cat-{n % 3}"],
            "price": 10.0 + n,
        }
        for n in range(40)
    ]


def shopper_clicks(prefix: str, brand_index: int) -> list[dict[str, Any]]:
    """A shopper who clicks items of one brand, and purchases that make some items popular."""
    events: list[dict[str, Any]] = []
    for n in range(brand_index, 40, 4):
        events.append(
            {
                "event_id": f"{prefix}-click-{n}",
                "type": "click",
                "timestamp": ago(minutes=5),
                "user_id": "shopper-1",
                "item_id": f"sku-{n}",
            }
        )
    for n in range(0, 40, 3):
        events.append(
            {
                "event_id": f"{prefix}-imp-{n}",
                "type": "impression",
                "timestamp": ago(hours=2),
                "request_id": f"{prefix}-r{n}",
                "surface": "browse",
                "items": [f"sku-{m}" for m in range(40)],
            }
        )
        for _ in range(n % 4):
            events.append(
                {
                    "event_id": f"{prefix}-buy-{n}-{_}",
                    "type": "purchase",
                    "timestamp": ago(hours=2),
                    "request_id": f"{prefix}-r{n}",
                    "item_id": f"sku-{n}",
                    "price": 12.0,
                }
            )
    return events


def requests() -> list[dict[str, Any]]:
    """30 fixed requests: browse and search, half of them personalised."""
    out = []
    for n in range(30):
        items = [{"id": f"sku-{(n * 7 + k) % 40}", "relevance": float(k % 5)} for k in range(20)]
        body: dict[str, Any] = {"surface": "search" if n % 2 else "browse", "items": items}
        if n % 2:
            body["query"] = "item"
        if n % 3 == 0:
            body["user_id"] = "shopper-1"
        out.append(body)
    return out


def answers(api: ApiCaller) -> list[dict[str, Any]]:
    return rank_all(api, requests())


def as_fresh_process() -> None:
    """Forget every per-process cache: the store's versions and the customers' runtimes."""
    from customers import runtime_sync

    reset_signal_store()
    runtime_sync.clear_caches()


def test_a_store_restarted_empty_degrades_visibly_then_republishes_under_new_numbers(
    api: ApiCaller, private_redis: RedisProcess
) -> None:
    put_items(api, catalog())
    send_events(api, shopper_clicks("before", brand_index=1))
    signals_refresh(customer_id=api.customer.pk)
    old_version = SignalVersion.objects.get(customer=api.customer).version
    warm = answers(api)  # this process now caches the version and its vocabulary
    assert not any(answer["degraded"] for answer in warm)

    private_redis.restart_empty()

    # The process that cached the old version, and a fresh one, both say the data is gone.
    for answer in answers(api):
        assert answer["degraded"] is True
        assert answer["degraded_reason"] == "signal_store_lost"
    as_fresh_process()
    for answer in answers(api):
        assert answer["degraded_reason"] == "signal_store_lost"
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert "lost" in ready.json()["checks"]["signal_data"]

    # Warm this process again on the degraded path, then the shop changes while the store is
    # empty: ten items change brand (the brand vocabulary's codes move) and the shopper's new
    # clicks point at another brand.
    answers(api)
    put_items(api, catalog(brand_of_first_ten="Zeta"))
    send_events(api, shopper_clicks("after", brand_index=2))

    assert tasks.schedule_first_refreshes() >= 1  # the beat republishes without an operator

    new_version = SignalVersion.objects.filter(customer=api.customer).latest("created_at").version
    assert new_version > old_version
    served = answers(api)
    assert not any(answer["degraded"] for answer in served)
    as_fresh_process()
    fresh = answers(api)
    assert [ranked_ids(a) for a in served] == [ranked_ids(a) for a in fresh]
    assert [[i["score"] for i in a["items"]] for a in served] == [
        [i["score"] for i in a["items"]] for a in fresh
    ]
    assert Client().get("/readyz").json()["status"] == "ok"


def test_a_process_that_cached_a_version_is_not_fooled_by_a_reused_number(
    api: ApiCaller, private_redis: RedisProcess
) -> None:
    """The old failure: numbers counted in Redis started again at 1 after the restart, and a
    process that cached version 1's vocabulary read the new version 1 with it."""
    put_items(api, catalog())
    send_events(api, shopper_clicks("before", brand_index=1))
    signals_refresh(customer_id=api.customer.pk)
    first = signal_store().current_versions([api.customer.pk])[api.customer.pk]
    answers(api)

    private_redis.restart_empty()
    put_items(api, catalog(brand_of_first_ten="Zeta"))
    send_events(api, shopper_clicks("after", brand_index=2))
    signals_refresh(customer_id=api.customer.pk)  # an operator's refresh, before any request

    second = signal_store().current_versions([api.customer.pk])[api.customer.pk]
    assert second is not None
    assert first is not None
    assert second > first
    served = answers(api)
    as_fresh_process()
    assert [ranked_ids(a) for a in served] == [ranked_ids(a) for a in answers(api)]


def test_the_in_process_store_of_a_restarted_process_degrades_until_republished(
    api: ApiCaller, memory_store: Any
) -> None:
    put_items(api, catalog())
    signals_refresh(customer_id=api.customer.pk)
    memory_store._current.clear()  # what a restart of the embedded default's process loses

    with pytest.raises(SignalStoreUnavailable) as lost:
        memory_store.fetch(api.customer.pk, ["sku-1"], "", "", published=True)
    assert lost.value.reason == "signal_store_lost"
    assert answers(api)[0]["degraded_reason"] == "signal_store_lost"
    tasks.schedule_first_refreshes()
    assert not answers(api)[0]["degraded"]


def test_a_catalog_write_with_redis_frozen_gives_up_on_the_bounded_client_and_is_stored(
    api: ApiCaller, private_redis: RedisProcess
) -> None:
    """The rules' attribute sets are updated on the catalog write's path, on the store's request
    client (REQUEST_WRITE_TIMEOUT_SECONDS) and behind its breaker: a frozen Redis is a counted
    failure there (it once waited on the refresh writer, which the breaker never saw), the items
    are stored, and the next refresh repairs the sets."""
    rule = {
        "name": "red",
        "enabled": True,
        "action": {"type": "hide"},
        "selector": {"attributes": {"colour": ["red"]}},
    }
    assert api.post("/v1/rules", rule).status_code == 201
    store = signal_store()
    private_redis.freeze()
    try:
        put_items(api, [{"id": "sku-red", "title": "t", "attributes": {"colour": "red"}}])
        failures = sum(bucket[2] for bucket in store.breaker._buckets)  # type: ignore[attr-defined]
    finally:
        private_redis.thaw()

    assert failures == 1
    assert api.get("/v1/catalog/items/sku-red").status_code == 200


def test_a_version_of_another_feature_schema_degrades_visibly_until_republished(
    api: ApiCaller, private_redis: RedisProcess
) -> None:
    """After a deploy that changes the features, the version in Redis was written for the old
    schema (records of another width and meaning): nothing is read from it, the answers say why,
    and the next refresh publishes a version of this schema, numbered past the old one."""
    put_items(api, catalog())
    send_events(api, shopper_clicks("before", brand_index=1))
    signals_refresh(customer_id=api.customer.pk)
    old_version = signal_store().current_versions([api.customer.pk])[api.customer.pk]
    assert old_version is not None
    client = redis.Redis.from_url(private_redis.url)
    (meta_key,) = client.keys(f"*:v{old_version}:meta")
    older = orjson.loads(client.get(meta_key))
    older["schema_hash"] = "0123456789abcdef"
    older["default_item"] = older["default_item"][:-8]  # one float32 feature fewer
    client.set(meta_key, orjson.dumps(older))
    as_fresh_process()

    for answer in answers(api):
        assert answer["degraded"] is True
        assert answer["degraded_reason"] == "signal_schema"

    signals_refresh(customer_id=api.customer.pk)
    new_version = signal_store().current_versions([api.customer.pk])[api.customer.pk]
    assert new_version is not None
    assert new_version > old_version
    assert not any(answer["degraded"] for answer in answers(api))
