"""The signal store, on both backends (Redis, also as a real 3-node Redis Cluster, and the
in-process store): round trips, the atomic version swap, shopper profiles."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import hiredis
import numpy as np
import pytest
import redis
from redis.crc import key_slot

from ranking.signals import redis_store
from ranking.signals.backend import build_store
from ranking.signals.schema import FEATURE_INDEX, FEATURES, ITEM_RECORD, QUERY_RECORD, SCHEMA_HASH
from ranking.signals.shopper import ProfileBuilder, ShopperAction
from ranking.signals.store import (
    SignalMeta,
    SignalSnapshot,
    SignalStore,
    item_keys,
    query_field,
    query_keys,
)

CTR = FEATURE_INDEX["ctr"]
CUSTOMER = 4242


def store_config(settings: Any, backend: str, cluster_url: str = "") -> dict[str, Any]:
    # These tests are about what the store answers, not about its deadlines: a generous profile
    # write deadline keeps a busy machine from turning a write into "ran too late to apply".
    base = {**settings.SIGNAL_STORE, "PROFILE_WRITE_TIMEOUT_SECONDS": 5.0}
    if backend == "cluster":
        return {**base, "BACKEND": "redis", "URL": cluster_url, "CLUSTER": True}
    return {**base, "BACKEND": backend}


@pytest.fixture(params=["redis", "cluster", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(settings: Any, backend: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each call is a separate store instance: for Redis, like another process."""
    cluster_url = request.getfixturevalue("redis_cluster_url") if backend == "cluster" else ""
    shared = build_store(store_config(settings, backend, cluster_url))

    def make() -> SignalStore:
        if backend == "memory":
            return shared
        return build_store(store_config(settings, backend, cluster_url))

    yield make
    shared.drop_customer(CUSTOMER)


def snapshot(version: int, n_items: int, ctr: float, queries: int = 0) -> SignalSnapshot:
    records = np.zeros(n_items, dtype=ITEM_RECORD)
    records["signals"][:, CTR] = ctr
    records["brand"] = 0
    records["categories"] = -1
    default = np.zeros((), dtype=ITEM_RECORD)
    default["signals"][CTR] = 0.01
    default["brand"] = -1
    default["categories"] = -1
    meta = SignalMeta(
        version=version,
        created_at="2026-11-26T00:00:00+00:00",
        schema_hash=SCHEMA_HASH,
        default_item=default,
        feature_mean=np.zeros(len(FEATURES)),
        feature_std=np.ones(len(FEATURES)),
        brands=("Acme",),
        categories=(),
        stats={},
    )
    query_records = np.zeros(queries, dtype=QUERY_RECORD)
    query_records["signals"][:, 0] = ctr
    return SignalSnapshot(
        meta=meta,
        item_ids=[f"i{n}" for n in range(n_items)],
        item_records=records,
        query_keys=[("shoes", f"i{n}") for n in range(queries)],
        query_records=query_records,
    )


_versions = itertools.count(1)


def publish(store: SignalStore, n_items: int, ctr: float, queries: int = 0) -> int:
    version = next(_versions)  # numbered in PostgreSQL in the service; unique here
    return store.publish(CUSTOMER, snapshot(version, n_items, ctr, queries))


def test_a_published_version_reads_back_with_defaults_for_unknown_items(make_store: Any) -> None:
    store = make_store()
    version = publish(store, 10, ctr=0.2, queries=3)

    fetch = make_store().fetch(CUSTOMER, ["i1", "nope", "i5"], "shoes", "")

    assert fetch.meta is not None
    assert fetch.meta.version == version
    assert fetch.item_found.tolist() == [True, False, True]
    assert fetch.item_records["signals"][:, CTR] == pytest.approx([0.2, 0.01, 0.2])
    assert fetch.query_found is not None
    assert fetch.query_found.tolist() == [True, False, False]


def test_nothing_published_reads_as_all_missing(make_store: Any) -> None:
    fetch = make_store().fetch(CUSTOMER, ["a", "b"], "", "")

    assert fetch.meta is None
    assert not fetch.item_found.any()


def test_a_reader_during_a_refresh_sees_the_old_or_the_new_version_never_a_mix(
    make_store: Any, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small write batches make the new version take many round trips to write.
    monkeypatch.setattr(redis_store, "WRITE_BATCH", 100)
    writer, reader = make_store(), make_store()
    n_items = 6000
    old = publish(writer, n_items, ctr=0.1)
    ids = [f"i{n}" for n in range(0, n_items, 7)]
    seen: list[tuple[float, int | None, set[float]]] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            fetch = reader.fetch(CUSTOMER, ids, "", "")
            values = set(np.round(fetch.item_records["signals"][:, CTR].astype(float), 3).tolist())
            seen.append((time.monotonic(), fetch.meta.version if fetch.meta else None, values))

    thread = threading.Thread(target=read_continuously)
    thread.start()
    while len(seen) < 3:
        time.sleep(0.001)
    started = time.monotonic()
    new = publish(writer, n_items, ctr=0.9)
    finished = time.monotonic()
    time.sleep(0.05)
    reads_after = len(seen)
    while len(seen) < reads_after + 3:
        time.sleep(0.001)
    stop.set()
    thread.join()

    assert all(values in ({0.1}, {0.9}) for _, _, values in seen), "a read mixed two versions"
    assert all((version, values) in ((old, {0.1}), (new, {0.9})) for _, version, values in seen), (
        "a read's values did not belong to its version"
    )
    assert seen[-1][1] == new
    if backend != "memory":
        # The test only proves something if reads happened while the new version was written.
        assert any(started <= at <= finished and version == old for at, version, _ in seen)


def test_a_write_redis_refuses_fails_the_publish_and_the_next_publish_works(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The version's records go out batch after batch before any reply is read: a refused batch
    # must fail the publish (nothing swapped in), and the pooled connection, every reply read,
    # must serve the next publish.
    monkeypatch.setattr(redis_store, "WRITE_BATCH", 100)
    store = build_store(store_config(settings, "redis"))
    try:
        good = publish(store, 500, ctr=0.1)
        version = next(_versions)
        items_key = store._version_keys(CUSTOMER, version)[1]  # type: ignore[attr-defined]
        store._writer.set(items_key, "not a hash")  # type: ignore[attr-defined]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            store.publish(CUSTOMER, snapshot(version, 500, ctr=0.5))
        # The writer's pooled connection (the one just handed back) has no reply left unread.
        pool = store._writer.connection_pool  # type: ignore[attr-defined]
        connection = pool.get_connection()
        try:
            assert connection.is_connected
            assert not connection.can_read(timeout=0.2)
        finally:
            pool.release(connection)
        assert store.fetch(CUSTOMER, ["i1"], "", "").meta.version == good  # type: ignore[union-attr]

        newer = publish(store, 500, ctr=0.9, queries=250)
        fetch = build_store(store_config(settings, "redis")).fetch(
            CUSTOMER, ["i1", "i499"], "shoes", ""
        )
        assert fetch.meta is not None
        assert fetch.meta.version == newer
        assert fetch.item_records["signals"][:, CTR] == pytest.approx([0.9, 0.9])
        assert fetch.query_found is not None
        assert fetch.query_found.tolist() == [True, False]
    finally:
        store.drop_customer(CUSTOMER)


def test_a_reader_holding_the_old_pointer_still_reads_it_whole(settings: Any) -> None:
    writer = build_store(store_config(settings, "redis"))
    reader = build_store(store_config(settings, "redis"))
    try:
        old = publish(writer, 50, ctr=0.1)
        assert reader.fetch(CUSTOMER, ["i1"], "", "").meta.version == old  # type: ignore[union-attr]

        publish(writer, 50, ctr=0.9)
        first = reader.fetch(CUSTOMER, ["i1", "i2"], "", "")
        second = reader.fetch(CUSTOMER, ["i1", "i2"], "", "")

        # The pointer came back with the first read; that read still used the old version.
        assert first.item_records["signals"][:, CTR] == pytest.approx([0.1, 0.1])
        assert second.item_records["signals"][:, CTR] == pytest.approx([0.9, 0.9])
    finally:
        writer.drop_customer(CUSTOMER)


def test_the_replaced_version_expires_and_an_unfinished_one_cannot_linger(
    settings: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = build_store(store_config(settings, "redis"))
    client = redis.Redis.from_url(redis_url)
    prefix = f"{settings.SIGNAL_STORE['NAMESPACE']}:{{c{CUSTOMER}}}"
    try:
        old = publish(store, 20, ctr=0.1)
        new = publish(store, 20, ctr=0.2)
        assert client.ttl(f"{prefix}:v{old}:items") > 0
        assert client.ttl(f"{prefix}:v{new}:items") == -1

        # A writer that dies mid-way leaves keys that expire by themselves.
        def die(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("worker killed")

        monkeypatch.setattr(redis_store.RedisSignalStore, "_write_hash", die)
        version = next(_versions)
        monkeypatch.undo()
        store._write_hash(  # type: ignore[attr-defined]
            f"{prefix}:v{version}:items",
            ["x"],
            np.zeros(1, dtype=ITEM_RECORD),
            ITEM_RECORD.itemsize,
        )
        assert 0 < client.ttl(f"{prefix}:v{version}:items") <= redis_store.UNPUBLISHED_TTL_SECONDS
        assert int(client.get(f"{prefix}:ptr")) == new
    finally:
        store.drop_customer(CUSTOMER)
        client.close()


NOW = 1_764_900_000.0  # 2025-12-05, a time of realistic size for the forward decay
DAY = 86400.0


def test_shopper_actions_build_a_profile_read_in_the_same_fetch(make_store: Any) -> None:
    store = make_store()
    publish(store, 5, ctr=0.1)
    store.record_shopper_actions(
        CUSTOMER,
        [
            ShopperAction("u:1", "i1", "click", NOW, "Acme", ("shoes", "shoes/running"), 99.0),
            ShopperAction("u:1", "i2", "purchase", NOW + 1, "Zeta", ("shoes",), 49.0),
        ],
    )

    profile = make_store().fetch(CUSTOMER, ["i1"], "", "u:1").shopper

    shares = {brand: w / profile.total_weight for brand, w in profile.brand_weights.items()}
    assert shares == pytest.approx({"Acme": 1 / 6, "Zeta": 5 / 6}, rel=1e-5)
    categories = {c: w / profile.total_weight for c, w in profile.category_weights.items()}
    assert categories == pytest.approx({"shoes": 1.0, "shoes/running": 1 / 6}, rel=1e-5)
    usual_shoe_price = profile.price_sums["shoes"] / profile.price_weights["shoes"]
    assert usual_shoe_price == pytest.approx((math.log1p(99) + 5 * math.log1p(49)) / 6, rel=1e-5)
    assert profile.session_categories == pytest.approx({"shoes": 6.0, "shoes/running": 1.0})
    assert profile.session_active(NOW + 600)
    assert not profile.session_active(NOW + 3600)
    assert profile.recently_viewed == {"i1"}
    assert profile.purchased == {"i2"}
    assert make_store().fetch(CUSTOMER, ["i1"], "", "u:2").shopper.is_empty


def test_older_interests_count_less_with_a_thirty_day_half_life(make_store: Any) -> None:
    store = make_store()
    store.record_shopper_actions(
        CUSTOMER,
        [
            ShopperAction("u:1", "i1", "purchase", NOW - 30 * DAY, "Acme", ()),
            ShopperAction("u:1", "i2", "purchase", NOW, "Zeta", ()),
        ],
    )

    profile = store.shopper_profile(CUSTOMER, "u:1")

    assert profile.brand_weights["Acme"] / profile.brand_weights["Zeta"] == pytest.approx(0.5)


def test_a_pause_of_over_half_an_hour_starts_a_new_session(make_store: Any) -> None:
    store = make_store()
    store.record_shopper_actions(
        CUSTOMER,
        [
            ShopperAction("u:1", "i1", "click", NOW, "Acme", ("tents",)),
            ShopperAction("u:1", "i2", "click", NOW + 20 * 60, "Acme", ("tents",)),
        ],
    )
    # A later batch: a click two hours on, then one that arrives late from the first session.
    store.record_shopper_actions(
        CUSTOMER,
        [
            ShopperAction("u:1", "i3", "add_to_cart", NOW + 7200, "Zeta", ("lamps",)),
            ShopperAction("u:1", "i4", "click", NOW + 60, "Acme", ("tents",)),
        ],
    )

    profile = store.shopper_profile(CUSTOMER, "u:1")

    assert profile.session_categories == pytest.approx({"lamps": 3.0})
    assert profile.session_brands == pytest.approx({"Zeta": 3.0})
    assert profile.session_last == pytest.approx(NOW + 7200)
    assert profile.category_weights.keys() == {"tents", "lamps"}


def test_every_backend_folds_actions_as_the_profile_builder_does(make_store: Any) -> None:
    """The Redis script and the in-process store against ProfileBuilder, the definition that
    training also rebuilds past profiles with."""
    rng = np.random.default_rng(4)
    kinds = ["click", "add_to_cart", "purchase"]
    actions = [
        ShopperAction(
            f"u:{rng.integers(3)}",
            f"i{rng.integers(70)}",
            kinds[rng.integers(3)],
            NOW + float(rng.uniform(0, 5 * DAY)),
            ["Acme", "Zeta", ""][rng.integers(3)],
            (("shoes", "shoes/running"), ("tents",), ())[rng.integers(3)],
            [None, 19.5, 120.0][rng.integers(3)],
        )
        for _ in range(400)
    ]
    actions.sort(key=lambda action: action.timestamp)
    store = make_store()
    for start in range(0, len(actions), 90):
        store.record_shopper_actions(CUSTOMER, actions[start : start + 90])

    for shopper in ("u:0", "u:1", "u:2"):
        builder = ProfileBuilder()
        for action in actions:
            if action.shopper_key == shopper:
                builder.add(action)
        expected = builder.profile()
        got = store.shopper_profile(CUSTOMER, shopper)
        for field in (
            "brand_weights",
            "category_weights",
            "price_sums",
            "price_weights",
            "session_brands",
            "session_categories",
        ):
            assert getattr(got, field) == pytest.approx(getattr(expected, field), rel=1e-9)
        assert got.total_weight == pytest.approx(expected.total_weight, rel=1e-9)
        assert got.session_total == expected.session_total
        assert got.session_last == pytest.approx(expected.session_last, abs=1e-5)
        assert got.recently_viewed == expected.recently_viewed
        assert got.purchased == expected.purchased


def test_recent_items_are_capped(make_store: Any) -> None:
    store = make_store()
    store.record_shopper_actions(
        CUSTOMER,
        [ShopperAction("u:1", f"i{n}", "click", NOW + n, "", ()) for n in range(80)],
    )

    viewed = store.shopper_profile(CUSTOMER, "u:1").recently_viewed

    assert len(viewed) == 50
    assert "i79" in viewed
    assert "i0" not in viewed


def test_redis_keys_carry_no_shopper_id_and_share_one_cluster_slot(
    settings: Any, redis_url: str
) -> None:
    store = build_store(store_config(settings, "redis"))
    client = redis.Redis.from_url(redis_url)
    try:
        publish(store, 3, ctr=0.1)
        store.record_shopper_actions(
            CUSTOMER, [ShopperAction("u:jane@example.com", "i1", "click", 1.0, "Acme", ())]
        )
        keys = [
            key.decode()
            for key in client.scan_iter(match=f"{settings.SIGNAL_STORE['NAMESPACE']}:*")
        ]
        assert keys
        assert not any("jane" in key for key in keys)
        assert {key_slot(key.encode()) for key in keys} == {key_slot(f"c{CUSTOMER}".encode())}
    finally:
        store.drop_customer(CUSTOMER)
        client.close()


def test_attribute_sets_are_read_with_the_signals_and_replaced_whole(make_store: Any) -> None:
    writer, reader = make_store(), make_store()
    writer.attribute_set_replace(CUSTOMER, "red", ["a", "c"])
    writer.attribute_set_replace(CUSTOMER, "big", ["b"])

    fetch = reader.fetch(CUSTOMER, ["a", "b", "c", "d"], "", "", ["red", "big", "never"])

    assert fetch.attribute_masks["red"].tolist() == [True, False, True, False]
    assert fetch.attribute_masks["big"].tolist() == [False, True, False, False]
    assert fetch.attribute_masks["never"].tolist() == [False] * 4  # no such set: nothing in it
    # boolean masks the rules may combine in place (tolist() alone would take 0/1 for them)
    assert all(
        mask.dtype == bool and mask.flags.writeable for mask in fetch.attribute_masks.values()
    )

    writer.attribute_set_replace(CUSTOMER, "red", ["d"])
    writer.attribute_sets_update(CUSTOMER, {"big": (["a"], ["b"])})
    fetch = reader.fetch(CUSTOMER, ["a", "b", "c", "d"], "", "", ["red", "big"])
    assert fetch.attribute_masks["red"].tolist() == [False, False, False, True]
    assert fetch.attribute_masks["big"].tolist() == [True, False, False, False]


def test_attribute_sets_not_retained_are_deleted(make_store: Any) -> None:
    store = make_store()
    store.attribute_set_replace(CUSTOMER, "keep", ["a"])
    store.attribute_set_replace(CUSTOMER, "stale", ["a"])
    store.attribute_set_replace(CUSTOMER + 1, "stale", ["a"])  # another customer's: untouched

    store.attribute_sets_retain(CUSTOMER, ["keep"])

    fetch = store.fetch(CUSTOMER, ["a"], "", "", ["keep", "stale"])
    assert fetch.attribute_masks["keep"].tolist() == [True]
    assert fetch.attribute_masks["stale"].tolist() == [False]
    assert store.fetch(CUSTOMER + 1, ["a"], "", "", ["stale"]).attribute_masks["stale"][0]
    store.drop_customer(CUSTOMER + 1)


@pytest.mark.parametrize("backend", ["redis", "cluster"])
def test_a_refresh_finds_stale_attribute_sets_without_scanning_redis(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    # Sets written before the name index existed: the first retain finds them by a scan.
    store.attribute_set_replace(CUSTOMER, "old", ["a"])
    store._writer.delete(store._attribute_index(CUSTOMER))
    store.attribute_sets_retain(CUSTOMER, [])
    assert not store.fetch(CUSTOMER, ["a"], "", "", ["old"]).attribute_masks["old"][0]
    store.attribute_set_replace(CUSTOMER, "keep", ["a"])
    store.attribute_set_replace(CUSTOMER, "stale", ["a"])
    store.attribute_sets_update(CUSTOMER, {"updated": (["a"], [])})

    def no_scan(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("scanned every key in Redis")

    monkeypatch.setattr(store._writer, "scan_iter", no_scan)
    store.attribute_sets_retain(CUSTOMER, ["keep"])

    masks = store.fetch(CUSTOMER, ["a"], "", "", ["keep", "stale", "updated"]).attribute_masks
    assert masks["keep"].tolist() == [True]
    assert masks["stale"].tolist() == [False]
    assert masks["updated"].tolist() == [False]


def test_an_emptied_attribute_set_matches_nothing(make_store: Any) -> None:
    store = make_store()
    store.attribute_set_replace(CUSTOMER, "red", ["a"])
    store.attribute_set_replace(CUSTOMER, "red", [])
    assert store.fetch(CUSTOMER, ["a"], "", "", ["red"]).attribute_masks["red"].tolist() == [False]


@pytest.mark.parametrize("backend", ["redis", "cluster"])
def test_a_hosts_copy_of_a_version_answers_what_redis_answers(make_store: Any) -> None:
    """The copy is built by a process of its own (ranking/signals/snapshot_build.py), from a
    Redis Cluster as from one node."""
    publish(make_store(), 12, ctr=0.3, queries=4)
    store = make_store()
    wanted = ["i1", "nope", "i11", "i3"]
    plain = store.fetch(CUSTOMER, wanted, "shoes", "")  # from Redis; starts the build
    assert store.snapshots is not None
    store.snapshots.wait(60)
    assert store.snapshots._mapped, "the copy was never mapped"

    copied = store.fetch(CUSTOMER, wanted, "shoes", "")

    assert copied.item_records.tobytes() == plain.item_records.tobytes()
    assert copied.item_found.tolist() == plain.item_found.tolist() == [True, False, True, True]
    assert copied.query_records is not None
    assert plain.query_records is not None
    assert copied.query_records.tobytes() == plain.query_records.tobytes()


@pytest.mark.parametrize(
    "item_ids",
    [
        [],
        ["sku-1"],
        ["sku-1", "", "é", "サンダル-1", "a\x1fb", "x" * 300, "sku-1"],
    ],
)
@pytest.mark.parametrize("query", ["", "running shoes", "é\x1f", "nul\x00query"])
def test_keys_built_in_one_pass_equal_each_id_encoded(item_ids: list[str], query: str) -> None:
    """The snapshot's keys of a request, built from all its ids at once, are each id's UTF-8
    bytes and each pair's query_field."""
    keys = item_keys(item_ids)
    assert keys == [item_id.encode() for item_id in item_ids]
    assert query_keys(query, keys) == [query_field(query, item_id) for item_id in item_ids]


def test_ids_with_a_nul_byte_or_no_utf8_have_no_keys() -> None:
    assert item_keys(["sku-1", "sku\x002"]) is None
    assert item_keys(["\x00"]) is None
    assert item_keys(["sku-1", "\ud800"]) is None


def test_commands_of_many_ids_are_written_as_hiredis_writes_them() -> None:
    # The candidates' ids are packed without hiredis (its per-argument formatting is slow): the
    # bytes on the wire must be the same, whatever the ids hold.
    ids = ["sku-1", "é", "日本語の商品", "a b", "x" * 256, "ü" * 300, "\x1f"]
    keys = item_keys(ids)
    assert keys is not None
    for name in ("SMISMEMBER", "HMGET"):
        command = redis_store._ids_command(name, "rw:{c4242}:as:red", ids, keys)
        assert type(command) is redis_store._IdsCommand
        assert redis_store._packed(command) == hiredis.pack_command(
            (name, "rw:{c4242}:as:red", *ids)
        )
    # No ids as bytes (an id with a NUL byte) or none at all: an ordinary command.
    for plain in (
        redis_store._ids_command("HMGET", "k", ["a\x00b"], None),
        redis_store._ids_command("SMISMEMBER", "k", [], []),
    ):
        assert type(plain) is tuple
        assert redis_store._packed(plain) == hiredis.pack_command(plain)
    # An argument longer than the length table (1024 bytes) is left to hiredis.
    huge = [b"y" * 2000, b"z"]
    command = redis_store._ids_command("HMGET", "k", huge, huge)
    assert redis_store._packed(command) == hiredis.pack_command(("HMGET", "k", *huge))
