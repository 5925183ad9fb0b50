"""The structure of the rank path in steady state (DESIGN.md, "The ranking engine"), asserted
without timing anything: a warm rank request with an active LambdaMART, rules and a known shopper
makes no database query and one Redis round trip, instantiates no DRF serializer, and predicts on
one thread (the model's compiled trees on the request's thread, or LightGBM with one thread)."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import pytest
import redis.connection
import threadpoolctl
from django.utils import timezone
from rest_framework import serializers

from catalog.contracts import CatalogItemIn
from catalog.services import items_upsert
from customers import runtime_sync
from ranking.learning import registry
from ranking.learning.compiled import CompiledTrees, NativeSlot
from ranking.learning.lgbm import lightgbm
from ranking.learning.scorers import TreeModelScorer
from ranking.runtime import customer_runtime
from ranking.services import signals_refresh
from ranking.signals import backend as store_backend
from ranking.signals.backend import signal_store
from ranking.signals.redis_store import RedisSignalStore
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, rank, send_events
from tests.ranking.learning_shop import register

pytestmark = pytest.mark.django_db

IDS = [f"sku-{i}" for i in range(40)]
SHOPPER = "shopper-1"


@pytest.fixture
def warm_shop(
    api: ApiCaller, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> ApiCaller:
    """A shop with signals, a personalised shopper, an active LambdaMART and three rules, after
    one request has warmed every per-process cache."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    put_items(
        api,
        [
            {
                "id": item_id,
                "title": f"Shoe {i}",
                "brand": ("Nike", "Puma", "Asics")[i % 3],
                "categories": ["shoes", "shoes/running" if i % 2 else "shoes/trail"],
                "price": 10.0 + i,
                "in_stock": i % 7 != 0,
            }
            for i, item_id in enumerate(IDS)
        ],
    )
    now = timezone.now().isoformat()
    send_events(
        api,
        [
            {
                "event_id": "imp",
                "type": "impression",
                "timestamp": now,
                "user_id": SHOPPER,
                "request_id": "r1",
                "surface": "search",
                "query": "shoes",
                "items": IDS[:10],
            },
            {
                "event_id": "click",
                "type": "click",
                "timestamp": now,
                "user_id": SHOPPER,
                "request_id": "r1",
                "surface": "search",
                "query": "shoes",
                "item_id": IDS[3],
            },
            {
                "event_id": "buy",
                "type": "purchase",
                "timestamp": now,
                "user_id": SHOPPER,
                "request_id": "r1",
                "item_id": IDS[3],
                "price": 13.0,
            },
        ],
    )
    signals_refresh(customer_id=api.customer.pk)
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_activate(model=register(api.customer), user="tester")
    for rule in (
        {"name": "pin", "action": {"type": "pin", "pins": [{"item_id": IDS[5], "position": 1}]}},
        {
            "name": "boost Nike",
            "selector": {"brands": ["Nike"]},
            "action": {"type": "boost", "factor": 1.5},
        },
        # Its items are a signal-store set, read in the request's one round trip.
        {
            "name": "bury blue",
            "selector": {"attributes": {"color": ["blue"]}},
            "action": {"type": "bury", "factor": 0.8},
        },
    ):
        response = api.post("/v1/rules", rule)
        assert response.status_code == 201, response.content
    search(api)
    assert compiled_model(api).wait(60), "the model's compile never finished"
    snapshot_ready(api)
    return api


def snapshot_ready(api: ApiCaller) -> None:
    """Wait until this process answers from the host's snapshot of the signal version
    (ranking/signals/snapshot.py): its build reads Redis in a thread of its own, once."""
    store = signal_store()
    assert isinstance(store, RedisSignalStore)
    assert store.snapshots is not None
    store.snapshots.wait(60)
    assert store.snapshots._mapped, "the signal snapshot was never mapped"


def compiled_model(api: ApiCaller) -> NativeSlot:
    """Where the search surface's LambdaMART, in this process, keeps its compiled trees."""
    scorer = customer_runtime(api.customer.pk).config_for("search").scorer
    assert isinstance(scorer, TreeModelScorer)
    assert scorer.native is not None
    return scorer.native


def search(api: ApiCaller) -> dict[str, Any]:
    body = {
        "surface": "search",
        "query": "running shoes",
        "user_id": SHOPPER,
        "items": [{"id": item_id, "relevance": 40.0 - i} for i, item_id in enumerate(IDS)],
    }
    return rank(api, body)


def test_the_warm_shop_ranks_with_its_model_rules_and_shopper(warm_shop: ApiCaller) -> None:
    config = customer_runtime(warm_shop.customer.pk).config_for("search")
    profile = signal_store().shopper_profile(warm_shop.customer.pk, f"u:{SHOPPER}")

    response = search(warm_shop)

    assert isinstance(config.scorer, TreeModelScorer)
    assert config.rules is not None
    assert profile.total_weight > 0
    assert response["ranker"]["model"] == "lambdamart@1"
    assert response["degraded"] is False
    assert response["items"][0]["id"] == IDS[5]


def test_a_warm_rank_request_makes_no_database_query(
    warm_shop: ApiCaller, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        search(warm_shop)


@pytest.fixture
def redis_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the commands written to Redis per round trip (a pipeline is one round trip)."""
    trips: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        trips.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return trips


def test_a_warm_rank_request_makes_one_redis_round_trip(
    warm_shop: ApiCaller, redis_round_trips: list[int]
) -> None:
    search(warm_shop)

    assert len(redis_round_trips) == 1


def test_the_round_trip_counter_sees_every_command(
    warm_shop: ApiCaller, redis_round_trips: list[int]
) -> None:
    store = signal_store()
    store.shopper_profile(warm_shop.customer.pk, f"u:{SHOPPER}")  # one pipeline
    store.ping()

    assert len(redis_round_trips) == 2


@pytest.fixture
def serializers_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    built: list[str] = []
    original = serializers.BaseSerializer.__init__

    def recording(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(serializers.BaseSerializer, "__init__", recording)
    return built


def test_the_rank_path_builds_no_drf_serializer(
    warm_shop: ApiCaller, serializers_built: list[str]
) -> None:
    serializers.Serializer(data={})  # the recorder sees a serializer being built
    assert serializers_built == ["Serializer"]
    serializers_built.clear()

    search(warm_shop)

    assert serializers_built == []


def test_the_model_predicts_with_its_compiled_trees_on_the_calling_thread(
    warm_shop: ApiCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compiled_model(warm_shop).trees is not None, "this host has a C compiler"
    compiled_calls: list[int] = []
    lightgbm_calls: list[int] = []
    original = CompiledTrees.predict

    def recording(self: CompiledTrees, features: Any) -> Any:
        compiled_calls.append(len(features))
        return original(self, features)

    monkeypatch.setattr(CompiledTrees, "predict", recording)
    monkeypatch.setattr(
        lightgbm.Booster, "predict", lambda *args, **kwargs: lightgbm_calls.append(1)
    )
    threads_before = threading.active_count()

    search(warm_shop)

    # One call for every candidate, in plain C on the request's thread: no pool, no new thread.
    assert compiled_calls == [len(IDS)]
    assert lightgbm_calls == []
    assert threading.active_count() == threads_before


def test_without_its_compiled_trees_the_model_predicts_on_one_thread_without_a_threaded_blas(
    warm_shop: ApiCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled_model(warm_shop), "trees", None)  # not compiled yet, or no cc
    calls: list[dict[str, Any]] = []
    blas_threads: list[int] = []
    original = lightgbm.Booster.predict

    def recording(self: lightgbm.Booster, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        blas_threads.extend(
            pool["num_threads"]
            for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"
        )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(lightgbm.Booster, "predict", recording)

    search(warm_shop)

    assert len(calls) == 1
    assert calls[0].get("num_threads") == 1
    assert set(blas_threads) <= {1}


def _retained_by_a_cold_request(api: ApiCaller) -> int:
    """Bytes the process still holds after one rank request that had to load every cache (the
    host's snapshot of the signal version is written beforehand: a host builds it once, and its
    build's Redis connections are no per-item cost). Two requests: the first may find the
    pointer moved (a catalog write refreshes the signals) and the second asks for that version."""
    search(api)
    search(api)
    snapshot_ready(api)
    runtime_sync.clear_caches()
    store_backend.reset_signal_store()
    gc.collect()
    tracemalloc.start()
    try:
        search(api)
        # The snapshot it maps is the host's page cache, shared by every worker, not this
        # process's heap; its build's reads are let go once it is mapped.
        snapshot_ready(api)
        gc.collect()
        # Not counted: a resize of weakref.finalize's process-wide registry (Django's signal
        # receivers; 36 KB at once), which lands in whichever request the registry's churn
        # reaches its next size in, whatever the catalog holds.
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, weakref.__file__)]
        )
    finally:
        tracemalloc.stop()
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _grow_catalog(api: ApiCaller, attributes: dict[str, str]) -> None:
    items = [
        CatalogItemIn.model_validate(
            {
                "id": f"more-{n}",
                "title": f"More {n}",
                "brand": f"brand-{n % 30}",
                "categories": ["shoes", f"shoes/line-{n % 20}"],
                "price": 5.0 + n % 90,
                "attributes": attributes,
            },
            strict=False,
        )
        for n in range(4000)
    ]
    items_upsert(customer_id=api.customer.pk, items=items)
    signals_refresh(customer_id=api.customer.pk)


# 4000 more items at even 16 bytes each would be 64 KB more.
PER_CATALOG_SLACK_BYTES = 32 * 1024


def test_the_api_process_holds_nothing_per_catalog_item(warm_shop: ApiCaller) -> None:
    """The catalog lives in PostgreSQL and Redis, never in the API process: growing it 100-fold
    leaves what a worker keeps after loading its caches unchanged (the RSS-flat check of
    `make bench` at a test's scale)."""
    _retained_by_a_cold_request(warm_shop)  # imports and first-use allocations
    small = _retained_by_a_cold_request(warm_shop)

    _grow_catalog(warm_shop, {"color": "red"})
    large = _retained_by_a_cold_request(warm_shop)

    assert large - small < PER_CATALOG_SLACK_BYTES, (small, large)


def test_an_attribute_rule_holds_nothing_per_catalog_item(warm_shop: ApiCaller) -> None:
    """An attribute selector matching every new item still leaves nothing per item in the
    process (its items are a set in the signal store), and still applies to them."""
    response = warm_shop.post(
        "/v1/rules",
        {
            "name": "red",
            "selector": {"attributes": {"color": ["red"]}},
            "action": {"type": "hide"},
        },
    )
    assert response.status_code == 201, response.content
    _retained_by_a_cold_request(warm_shop)
    small = _retained_by_a_cold_request(warm_shop)

    _grow_catalog(warm_shop, {"color": "red"})
    large = _retained_by_a_cold_request(warm_shop)

    assert large - small < PER_CATALOG_SLACK_BYTES, (small, large)
    body = {
        "surface": "search",
        "query": "shoes",
        "explain": True,
        "items": [{"id": "more-7"}, {"id": IDS[1]}, {"id": "more-3999"}],
    }
    ranked = rank(warm_shop, body)
    assert [item["id"] for item in ranked["items"]] == [IDS[1]]
    assert {removed["id"] for removed in ranked["removed"]} == {"more-7", "more-3999"}
