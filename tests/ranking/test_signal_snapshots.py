"""Host-shared snapshots of signal versions (ranking/signals/snapshot.py) answer exactly what Redis
answers, and every fault of theirs falls back to Redis.

Each test ranks the same requests with snapshots off (every record from Redis: the reference) and
on, against the real Redis, and compares the answers field for field: ids, scores and every
feature value of the explanations.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from prometheus_client import REGISTRY

from ranking.services import signals_refresh
from ranking.signals import backend as store_backend
from ranking.signals import snapshot as snapshot_module
from ranking.signals.redis_store import RedisSignalStore
from ranking.signals.schema import ITEM_RECORD, QUERY_RECORD
from ranking.signals.snapshot_build import RedisVersion
from tests.conftest import ApiCaller
from tests.processes import ROOT, RedisProcess
from tests.ranking.helpers import ago, put_items, rank_all, send_events

pytestmark = pytest.mark.django_db

# Ids of every shape the fixed-width keys must tell apart: lengths from 1 to 200 bytes, non-ASCII,
# ids that are prefixes of others.
IDS = (
    [f"sku-{n}" for n in range(150)]
    + [f"sku-{n}-x" for n in range(20)]
    + ["a", "ab", "b", "é", "éé", "サンダル-1", "x" * 200, "x" * 199]
)
UNKNOWN = ["sku-1000", "sku-1-", "sku-1-xx", "x" * 201, "x" * 198, "", "é-?"]


def catalog(brand: str = "Acme") -> list[dict[str, Any]]:
    return [
        {
            "id": item_id,
            "title": f"item {n}",
            "brand": brand if n % 3 else "Borea",
            "categories": [f"cat-{n % 4}"],
            "price": 5.0 + n % 37,
        }
        for n, item_id in enumerate(IDS)
    ]


def traffic(prefix: str) -> list[dict[str, Any]]:
    """Searches for "item" and "shoe" with clicks and purchases (query-item signals), and a
    shopper with a history."""
    events: list[dict[str, Any]] = []
    for n in range(0, len(IDS), 5):
        shown = IDS[n : n + 10]
        request_id = f"{prefix}-r{n}"
        events.append(
            {
                "event_id": f"{prefix}-imp-{n}",
                "type": "impression",
                "timestamp": ago(hours=3),
                "request_id": request_id,
                "surface": "search",
                "query": "item" if n % 2 else "shoe",
                "items": shown,
            }
        )
        events.append(
            {
                "event_id": f"{prefix}-clk-{n}",
                "type": "click",
                "timestamp": ago(hours=3),
                "request_id": request_id,
                "item_id": shown[n % len(shown)],
                "user_id": "shopper-1",
            }
        )
        if n % 3 == 0:
            events.append(
                {
                    "event_id": f"{prefix}-buy-{n}",
                    "type": "purchase",
                    "timestamp": ago(hours=2),
                    "request_id": request_id,
                    "item_id": shown[0],
                    "price": 30.0,
                }
            )
    return events


def requests() -> list[dict[str, Any]]:
    """Searches and browses over known and unknown ids, with and without a shopper."""
    rng = np.random.default_rng(3)
    pool = IDS + UNKNOWN[:-2]  # "" and "é-?" are not valid ids for the API's contract
    out = []
    for n in range(24):
        chosen = rng.choice(len(pool), size=60, replace=False)
        body: dict[str, Any] = {
            "surface": "search" if n % 2 else "browse",
            "items": [{"id": pool[i], "relevance": float(k % 7)} for k, i in enumerate(chosen)],
            "explain": True,
            "limit": 60,
        }
        if n % 2:
            body["query"] = "item" if n % 4 == 1 else "shoe"
        if n % 3 == 0:
            body["user_id"] = "shopper-1"
        out.append(body)
    return out


def answers(api: ApiCaller) -> list[dict[str, Any]]:
    bodies = rank_all(api, requests())
    assert not any(body["degraded"] for body in bodies), "this test needs answers from signals"
    return [
        {
            "items": [
                {key: item[key] for key in ("id", "score", "explanation")} for item in body["items"]
            ]
        }
        for body in bodies
    ]


def difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two answers first differ, to say so when they do."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = difference(a.get(key), b.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def use_snapshots(settings: Any, directory: Path | None) -> RedisSignalStore:
    """A fresh store (as a new process has) with snapshots in `directory`, or off."""
    settings.SIGNAL_STORE = {
        **settings.SIGNAL_STORE,
        "SNAPSHOT_DIR": str(directory) if directory else None,
    }
    store_backend.reset_signal_store()
    store = store_backend.signal_store()
    assert isinstance(store, RedisSignalStore)
    return store


def mapped(store: RedisSignalStore, api: ApiCaller) -> bool:
    """Whether the store now answers this customer from a snapshot: one request starts the
    build, then the build is waited for."""
    assert store.snapshots is not None
    api.post("/v1/rank", requests()[0])
    store.snapshots.wait(30)
    return bool(store.snapshots._mapped)


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    put_items(api, catalog())
    send_events(api, traffic("t"))
    signals_refresh(customer_id=api.customer.pk)
    return api


@pytest.fixture
def reference(shop: ApiCaller, settings: Any) -> list[dict[str, Any]]:
    use_snapshots(settings, None)
    return answers(shop)


def test_answers_from_a_snapshot_equal_the_answers_from_redis(
    shop: ApiCaller, reference: list[dict[str, Any]], settings: Any, tmp_path: Path
) -> None:
    store = use_snapshots(settings, tmp_path)

    assert mapped(store, shop)
    assert difference(answers(shop), reference) is None


def test_fetched_records_equal_redis_records_field_for_field(
    shop: ApiCaller, settings: Any, tmp_path: Path
) -> None:
    customer = shop.customer.pk
    wanted = IDS[::-1] + UNKNOWN[:-2]
    plain = use_snapshots(settings, None).fetch(customer, wanted, "item", "shopper-1")
    store = use_snapshots(settings, tmp_path)
    assert mapped(store, shop)

    copied = store.fetch(customer, wanted, "item", "shopper-1")

    assert copied.item_records.tobytes() == plain.item_records.tobytes()
    assert copied.item_found.tolist() == plain.item_found.tolist()
    assert copied.item_found.sum() == len(IDS)
    assert copied.query_records is not None
    assert plain.query_records is not None
    assert copied.query_records.tobytes() == plain.query_records.tobytes()
    assert copied.query_found is not None
    assert plain.query_found is not None
    assert copied.query_found.tolist() == plain.query_found.tolist()
    assert plain.query_found.any()


@pytest.mark.parametrize(
    "damage",
    ["flip a record byte", "truncate the item keys", "manifest of another version"],
)
def test_a_damaged_snapshot_is_never_read_and_is_built_again(
    shop: ApiCaller, reference: list[dict[str, Any]], settings: Any, tmp_path: Path, damage: str
) -> None:
    assert mapped(use_snapshots(settings, tmp_path), shop)
    (directory,) = [path for path in tmp_path.rglob("c*-v*") if path.is_dir()]
    if damage == "flip a record byte":
        records = directory / "records.npy"
        data = bytearray(records.read_bytes())
        data[-5] ^= 0xFF
        records.write_bytes(bytes(data))
    elif damage == "truncate the item keys":
        keys = directory / "items.npy"
        keys.write_bytes(keys.read_bytes()[:-40])
    else:
        manifest = directory / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"version": ', '"version": 9'))

    rebuilt = REGISTRY.get_sample_value("rankwell_signal_snapshots_total", {"outcome": "rebuilt"})
    store = use_snapshots(settings, tmp_path)  # a new process finds the damaged files

    # read from Redis while the copy is rebuilt
    assert difference(answers(shop), reference) is None
    assert mapped(store, shop)
    assert difference(answers(shop), reference) is None
    assert store.snapshots is not None
    assert not store.snapshots._failed
    after = REGISTRY.get_sample_value("rankwell_signal_snapshots_total", {"outcome": "rebuilt"})
    assert (after or 0.0) == (rebuilt or 0.0) + 1


def test_a_build_process_that_fails_leaves_requests_on_redis(
    shop: ApiCaller, reference: list[dict[str, Any]], settings: Any, tmp_path: Path
) -> None:
    failed = REGISTRY.get_sample_value("rankwell_signal_snapshots_total", {"outcome": "failed"})
    store = use_snapshots(settings, tmp_path)
    store._url = "redis://127.0.0.1:1/0"  # the build process finds no Redis there

    assert not mapped(store, shop)
    assert difference(answers(shop), reference) is None
    assert store.snapshots is not None
    assert store.snapshots._failed  # tried again a minute later
    after = REGISTRY.get_sample_value("rankwell_signal_snapshots_total", {"outcome": "failed"})
    assert (after or 0.0) == (failed or 0.0) + 1
    assert not [path for path in tmp_path.rglob("*") if path.is_dir() and "-v" in path.name]


def test_a_directory_others_may_write_to_is_not_used(
    shop: ApiCaller, reference: list[dict[str, Any]], settings: Any, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # noqa: S103 - the unsafe directory is what this test is about

    store = use_snapshots(settings, shared)

    assert store.snapshots is None
    assert difference(answers(shop), reference) is None
    assert not list(shared.iterdir())


def test_an_id_with_a_nul_byte_is_read_from_redis(
    shop: ApiCaller, settings: Any, tmp_path: Path
) -> None:
    store = use_snapshots(settings, tmp_path)
    assert mapped(store, shop)
    meta = store._current[shop.customer.pk]

    assert store._snapshot(shop.customer.pk, meta, ["sku-1", "sku-2"]) is not None
    assert store._snapshot(shop.customer.pk, meta, ["sku-1", "sku-1\x00"]) is None


def test_a_new_version_is_read_from_redis_until_its_snapshot_is_ready(
    shop: ApiCaller, settings: Any, tmp_path: Path
) -> None:
    store = use_snapshots(settings, tmp_path)
    assert mapped(store, shop)
    first = store._current[shop.customer.pk].version

    put_items(shop, catalog(brand="Zeta"))
    send_events(shop, traffic("u"))
    signals_refresh(customer_id=shop.customer.pk)
    # The request that sees the pointer move is answered from the version it held (still in
    # Redis for the grace period), as without snapshots; the ones after read the new version,
    # from Redis until this host's copy of it is mapped.
    shop.post("/v1/rank", requests()[0])
    assert store._current[shop.customer.pk].version > first
    served = answers(shop)
    assert mapped(store, shop)
    copied = answers(shop)
    use_snapshots(settings, None)
    reference = answers(shop)

    assert difference(served, reference) is None
    assert difference(copied, reference) is None
    versions = sorted(path.name for path in tmp_path.rglob("c*-v*") if path.is_dir())
    assert len(versions) == 2  # the old one stays for readers within the grace period


def test_a_redis_that_lost_its_data_degrades_even_with_a_snapshot_mapped(
    api: ApiCaller, private_redis: RedisProcess, settings: Any, tmp_path: Path
) -> None:
    put_items(api, catalog())
    send_events(api, traffic("t"))
    signals_refresh(customer_id=api.customer.pk)
    store = use_snapshots(settings, tmp_path)
    assert mapped(store, api)

    private_redis.restart_empty()
    reply = api.post("/v1/rank", requests()[1]).json()

    assert reply["degraded"] is True
    assert reply["degraded_reason"] == "signal_store_lost"


class Stored:
    """A version held in dicts, read as a build reads Redis (VersionSource): four fields at a
    time, each slice repeating the last field of the one before, as HSCAN may."""

    def __init__(self, items: dict[bytes, bytes], queries: dict[bytes, bytes]) -> None:
        self.hashes = {"items": items, "qi": queries}
        self.expired = False

    def field_slices(self, table: str) -> Iterator[list[bytes]]:
        fields = list(self.hashes[table])
        for start in range(0, len(fields), 4):
            yield fields[max(start - 1, 0) : start + 4]

    def records(self, table: str, fields: list[bytes]) -> list[bytes | None]:
        return [None if self.expired else self.hashes[table].get(field) for field in fields]

    def lengths(self) -> tuple[int, int] | None:
        return len(self.hashes["items"]), len(self.hashes["qi"])


def stored_version(items: int, queries: int = 0) -> Stored:
    rng = np.random.default_rng(items)
    records = np.zeros(items, dtype=ITEM_RECORD)
    records["signals"] = rng.random((items, ITEM_RECORD["signals"].shape[0]))
    records["brand"] = np.arange(items)
    query_records = np.zeros(queries, dtype=QUERY_RECORD)
    query_records["signals"] = rng.random((queries, QUERY_RECORD["signals"].shape[0]))
    item_ids = [f"sku-{n}".encode() for n in rng.permutation(items)]
    fields = [f"q{n % 3}\x1fsku-{n}".encode() for n in range(queries)]
    return Stored(
        dict(zip(item_ids, (record.tobytes() for record in records), strict=True)),
        dict(zip(fields, (record.tobytes() for record in query_records), strict=True)),
    )


def test_a_build_writes_the_sorted_version_read_in_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fields a scan gives twice are kept once, in the order of their hashes with the hashes
    beside them and each record with its key; the files are what numpy saves of those arrays,
    and they load."""
    monkeypatch.setattr(snapshot_module, "BUILD_SLICE", 5)
    version = stored_version(items=23, queries=11)
    directory = tmp_path / "c1-v1-x"

    snapshot_module.write(directory, version, {"customer": 1})
    snapshot = snapshot_module.load(directory, {"customer": 1})

    for keys, hashes, records, table in (
        (snapshot.items, snapshot.item_hashes, snapshot.records, "items"),
        (snapshot.queries, snapshot.query_hashes, snapshot.query_records, "qi"),
    ):
        stored = version.hashes[table]
        assert sorted(keys.tolist()) == sorted(stored)
        assert hashes.tolist() == sorted(hashes.tolist())
        assert hashes.tolist() == snapshot_module.key_hashes(keys).tolist()
        assert [record.tobytes() for record in records] == [stored[key] for key in keys.tolist()]
    expected = np.array(sorted(version.hashes["items"]), dtype=snapshot.items.dtype)
    expected = expected[np.argsort(snapshot_module.key_hashes(expected), kind="stable")]
    saved = tmp_path / "expected.npy"
    np.save(saved, expected)
    assert (directory / "items.npy").read_bytes() == saved.read_bytes()


@pytest.mark.parametrize(
    ("fault", "message"),
    [("expired while read", "missing"), ("a NUL byte in an id", "NUL byte")],
)
def test_a_build_that_cannot_copy_the_version_leaves_nothing(
    tmp_path: Path, fault: str, message: str
) -> None:
    version = stored_version(items=12)
    if fault == "expired while read":
        version.expired = True
    else:
        version.hashes["items"][b"sku-\x00"] = bytes(ITEM_RECORD.itemsize)

    with pytest.raises(ValueError, match=message):
        snapshot_module.write(tmp_path / "c1-v1-x", version, {"customer": 1})

    assert not list(tmp_path.iterdir())


def test_a_build_holds_one_slice_of_records_whatever_the_catalog_size(
    settings: Any, tmp_path: Path
) -> None:
    """Issue 14: building the copy of a version four times larger holds more of its keys (a
    fixed-width key each, its 8-byte hash and the order by hash: 75 bytes an item measured with
    the sort's temporaries), not more records: the build that read the version whole held about
    700 bytes an item, 108 of them its record."""
    store = use_snapshots(settings, None)
    client = redis.Redis.from_url(settings.SIGNAL_STORE["URL"])

    def peak_of_building(customer_id: int, items: int) -> int:
        meta_key, items_key, _ = store._version_keys(customer_id, 1)
        records = np.zeros(items, dtype=ITEM_RECORD)
        records["brand"] = np.arange(items)
        for start in range(0, items, 10_000):
            client.hset(
                items_key,
                mapping={
                    f"sku-{n:07d}": records[n].tobytes()
                    for n in range(start, min(start + 10_000, items))
                },
            )
        client.set(meta_key, "{}")
        source = RedisVersion(store._writer, *store._version_keys(customer_id, 1))
        tracemalloc.start()
        try:
            snapshot_module.write(tmp_path / f"c{customer_id}-v1-x", source, {})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        snapshot = snapshot_module.load(tmp_path / f"c{customer_id}-v1-x", {})
        numbers = [int(key[4:]) for key in snapshot.items.tolist()]
        assert snapshot.records.tobytes() == records[numbers].tobytes()
        return peak

    items = 20_000
    small, large = peak_of_building(1, items), peak_of_building(2, 4 * items)
    client.close()

    assert large - small < 3 * items * ITEM_RECORD.itemsize


def test_the_build_process_imports_no_django_and_no_metrics() -> None:
    """It exits after each build: Django would only slow its start, and metrics would leave
    their files in the workers' multiprocess directory."""
    code = (
        "import sys, ranking.signals.snapshot_build; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'core', "
        "'prometheus_client')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert done.stdout.strip() == "[]"


def test_a_build_removes_the_customers_copies_no_reader_needs(tmp_path: Path) -> None:
    """Older versions, and another store's version under the same number (a database created
    anew), once untouched for the grace period, and temporary directories of builds that died;
    other customers' copies stay."""

    def write_version(
        customer_id: int, version: int, directory: Path, manifest: dict[str, object]
    ) -> None:
        records = np.zeros(2, dtype=ITEM_RECORD)
        records["brand"] = [version, customer_id]
        stored = Stored({b"a": records[0].tobytes(), b"b": records[1].tobytes()}, {})
        snapshot_module.write(directory, stored, manifest)

    cache = snapshot_module.SnapshotCache(tmp_path, "ns", write_version, grace_seconds=60)
    for customer, version, digest in ((1, 1, "old"), (1, 1, "other"), (1, 2, "old"), (2, 1, "x")):
        cache.get(customer, version, digest)
        cache.wait(10)
    for path in (tmp_path / "ns").iterdir():
        os.utime(path, (0, 0))  # untouched for longer than the grace period
    for name in (".c1-v2-died.abc", ".c1-v3-new.running", ".c2-v2-died.abc"):
        (tmp_path / "ns" / name).mkdir()  # builds' temporary directories
    os.utime(tmp_path / "ns" / ".c1-v2-died.abc", (0, 0))  # left by a build that died
    os.utime(tmp_path / "ns" / ".c2-v2-died.abc", (0, 0))
    cache.get(1, 3, "new")
    cache.wait(10)

    assert sorted(path.name for path in (tmp_path / "ns").iterdir() if path.is_dir()) == [
        ".c1-v3-new.running",
        ".c2-v2-died.abc",
        "c1-v3-new",
        "c2-v1-x",
    ]
    snapshot = cache.get(1, 3, "new")
    assert snapshot is not None
    assert snapshot.item_records([b"b", b"c"], np.zeros(1, ITEM_RECORD)[0])[1].tolist() == [
        True,
        False,
    ]


def test_keys_that_share_a_hash_are_each_found_with_their_own_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lookups search the keys' 64-bit hashes; two keys with one hash (forced here: a real pair
    is about one in 10**7 versions of a million keys) still answer each its own record, and a
    key not stored but sharing their hash is not found."""
    real = snapshot_module.key_hashes

    def colliding(keys: np.ndarray) -> np.ndarray:
        hashes = real(keys)
        hashes[np.isin(keys, np.array([b"sku-1", b"sku-2", b"sku-9"], dtype=keys.dtype))] = 7
        return hashes

    monkeypatch.setattr(snapshot_module, "key_hashes", colliding)
    ids = [f"sku-{n}".encode() for n in range(6)]
    records = np.zeros(len(ids), dtype=ITEM_RECORD)
    records["brand"] = np.arange(len(ids)) + 100
    version = Stored(dict(zip(ids, (r.tobytes() for r in records), strict=True)), {})
    directory = tmp_path / "c1-v1-d"
    snapshot_module.write(directory, version, {"customer": 1})
    snapshot = snapshot_module.load(directory, {"customer": 1})
    wanted = [b"sku-2", b"sku-1", b"sku-9", b"sku-5", b"sku-0"]
    found_records, found = snapshot.item_records(wanted, np.zeros(1, ITEM_RECORD)[0])
    assert found.tolist() == [True, True, False, True, True]
    assert found_records["brand"].tolist() == [102, 101, 0, 105, 100]


@pytest.mark.parametrize(
    "hashes",
    [
        np.random.default_rng(1).integers(0, 2**64, 5000, dtype=np.uint64),
        np.random.default_rng(2).integers(0, 2**64, 3, dtype=np.uint64),
        np.array([0, 0, 5, 5, 5, 2**63, 2**64 - 1, 2**64 - 1], dtype=np.uint64),
        np.array([7], dtype=np.uint64),
        # a run of 40 hashes in one bucket: windows of 40
        np.concatenate(
            [
                np.arange(40, dtype=np.uint64),
                np.random.default_rng(3).integers(2**60, 2**64, 60, dtype=np.uint64),
            ]
        ),
    ],
    ids=["random", "few", "repeated and extreme", "one", "a long run"],
)
def test_the_hash_directory_finds_what_a_binary_search_finds(hashes: np.ndarray) -> None:
    """The directory's search answers np.searchsorted's rows for stored hashes, hashes between
    and beside them, repeated hashes and the extremes."""
    hashes = np.sort(hashes)
    directory = snapshot_module.HashDirectory.of(hashes)
    assert directory is not None
    rng = np.random.default_rng(4)
    wanted = np.concatenate(
        [
            hashes,
            hashes + np.uint64(1),
            hashes - np.uint64(1),
            rng.integers(0, 2**64, 2000, dtype=np.uint64),
            np.array([0, 1, 2**63, 2**64 - 2, 2**64 - 1], dtype=np.uint64),
        ]
    )
    assert directory.search(wanted).tolist() == np.searchsorted(hashes, wanted).tolist()


def test_hashes_crowding_one_bucket_are_searched_without_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys whose hashes share their top bits (more than a window's worth) leave the version to
    the binary search, which finds each with its own record."""
    real = snapshot_module.key_hashes

    def crowded(keys: np.ndarray) -> np.ndarray:
        return real(keys) >> np.uint64(20)  # every hash in the lowest bucket

    monkeypatch.setattr(snapshot_module, "key_hashes", crowded)
    version = stored_version(items=200, queries=10)
    directory = tmp_path / "c1-v1-x"
    snapshot_module.write(directory, version, {"customer": 1})
    snapshot = snapshot_module.load(directory, {"customer": 1})

    assert snapshot.item_directory is None
    wanted = [*version.hashes["items"], b"sku-200", b"sku-1x"]
    records, found = snapshot.item_records(wanted, np.zeros(1, ITEM_RECORD)[0])
    assert found.tolist() == [True] * 200 + [False, False]
    assert [record.tobytes() for record in records[:200]] == [
        version.hashes["items"][key] for key in wanted[:200]
    ]


def test_ids_longer_than_every_stored_key_are_not_found(tmp_path: Path) -> None:
    """A wanted key is held one byte wider than the stored keys: one that is longer than all of
    them, even by one byte past a stored key it begins with, is never taken for it."""
    version = stored_version(items=20, queries=3)
    directory = tmp_path / "c1-v1-x"
    snapshot_module.write(directory, version, {"customer": 1})
    snapshot = snapshot_module.load(directory, {"customer": 1})
    width = snapshot.items.dtype.itemsize
    longest = max(version.hashes["items"], key=len)
    assert len(longest) == width

    wanted = [longest + b"1", longest + b"12", longest]
    records, found = snapshot.item_records(wanted, np.zeros(1, ITEM_RECORD)[0])

    assert found.tolist() == [False, False, True]
    assert records[2].tobytes() == version.hashes["items"][longest]
    assert records[0].tobytes() == bytes(ITEM_RECORD.itemsize)
