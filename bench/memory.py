"""API worker memory while the catalog grows 100-fold (10k to 1M items by default), under the
same gunicorn workers: RSS must stay flat (no per-worker catalog copies).

It builds its own shop in the database `rankwell_bench_memory` and the Redis namespace `rwbenchmem`
(both removed at the end, with the host's snapshot files; `BENCH_DATABASE` and `BENCH_NAMESPACE`
name others, for a run beside another one): a catalog written with SQL (brands, two-level
categories, prices, stock, a colour attribute), a signal refresh, and rules that apply to every
search, among them an attribute rule matching a tenth of the catalog and a hide of explicit ids.
Then gunicorn as in production (`platform/gunicorn.conf.py`, one worker per core) serves searches of
1000 candidates drawn from the whole catalog for a while; the workers' VmRSS and VmHWM are read; the
catalog grows to its final size, signals are refreshed (a new version of every item, and the
attribute rule's set grows with the catalog), the same workers serve searches over the grown catalog
until both have mapped the host's copy of the new version (ranking/signals/snapshot.py), then for a
while more, and their memory is read again. Last, the copy is built once more by the process a
worker starts for it, whose peak is read. The ranker is the customer's default blend: a model's
memory does not depend on the catalog's size, and training one takes minutes.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/memory.py [--small N] [--large N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rank as served  # bench/rank.py: gunicorn, the load generator, /proc

DATABASE = "rankwell_bench_memory"
NAMESPACE = "rwbenchmem"
CANDIDATES = 1000


def configure(secret_key: str, quick: bool) -> dict[str, str]:
    # Its own database and namespace (not bench/rank.py's).
    served.DATABASE, served.NAMESPACE = DATABASE, NAMESPACE
    if quick:
        served.DATABASE, served.NAMESPACE = f"{DATABASE}_quick", f"{NAMESPACE}quick"
    return served.configure_environment(secret_key, quick=False)


def add_items(customer_id: int, first: int, last: int) -> None:
    """Items sku-<first>..sku-<last> straight into the catalog table; a tenth are red."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO catalog_item (customer_id, external_id, title, brand, categories,
                price, in_stock, attributes, created_at, updated_at)
            SELECT %s, 'sku-' || n, 'Item ' || n, 'brand' || (n %% 200),
                jsonb_build_array('dep' || (n %% 12), 'dep' || (n %% 12) || '/cat' || (n %% 240)),
                5 + (n %% 500), n %% 10 <> 0,
                jsonb_build_object('color', CASE WHEN n %% 10 = 3 THEN 'red' ELSE 'blue' END),
                now() - make_interval(days => n %% 365), now()
            FROM generate_series(%s, %s) AS n
            """,
            [customer_id, first, last],
        )
        cursor.execute("ANALYZE catalog_item")


def rules(catalog_size: int) -> list[dict[str, Any]]:
    hidden = [f"sku-{n}" for n in range(1, catalog_size, catalog_size // 50)]
    return [
        {"name": "hide a recall", "selector": {"item_ids": hidden}, "action": {"type": "hide"}},
        {
            "name": "bury red",
            "selector": {"attributes": {"color": ["red"]}},
            "action": {"type": "bury", "factor": 0.8},
        },
        {
            "name": "boost brand 7",
            "selector": {"brands": ["brand7"]},
            "action": {"type": "boost", "factor": 1.5},
        },
        {
            "name": "boost dep 1",
            "selector": {"categories": ["dep1"]},
            "action": {"type": "boost", "factor": 1.2},
        },
        {
            "name": "bury expensive",
            "selector": {"price_min": 400.0},
            "action": {"type": "bury", "factor": 0.7},
        },
        {
            "name": "brand diversity",
            "action": {"type": "diversity", "field": "brand", "max_items": 3, "top_k": 20},
        },
    ]


def bodies(catalog_size: int, count: int, seed: int) -> bytes:
    """Searches of 1000 candidates (fewer in a smaller catalog) drawn from the whole catalog."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    lines = []
    for n in range(count):
        size = min(CANDIDATES, catalog_size)
        picked = rng.choice(np.arange(1, catalog_size + 1), size=size, replace=False)
        body = {
            "surface": "search",
            "query": f"query {n % 50}",
            "user_id": f"shopper-{n % 500}",
            "items": [{"id": f"sku-{i}", "relevance": float(rng.normal(8, 2))} for i in picked],
        }
        lines.append(orjson.dumps(body))
    return b"\n".join(lines)


def serve_and_measure(port: int, master: int, key: str, path: Path, seconds: float) -> Any:
    common = {"path": "/v1/rank", "bodies": path, "header": [f"Authorization: Bearer {key}"]}
    load = served.loadgen("closed", port, duration=seconds, connections=8, **common)
    pids = served.worker_pids(master)
    memory = [served.memory_mb(pid) for pid in pids]
    # The signal snapshot's mapped pages count in VmRSS but are the host's one copy in the page
    # cache, shared by its workers (ranking/signals/snapshot.py): read apart.
    snapshot = [served.snapshot_pages_mb(pid) for pid in pids]
    return {
        "requests": load["completed"],
        "statuses": load["statuses"],
        "workers_mb": memory,
        "snapshot_pages_mb": snapshot,
    }


def snapshot_files_mb(customer_id: int) -> float | None:
    """The size of this host's copy of the customer's current version
    (ranking/signals/snapshot.py): 0 until it is built, None when copies are off."""
    from ranking.signals.backend import signal_store

    store = signal_store()
    snapshots = getattr(store, "snapshots", None)
    meta = store.current_meta(customer_id)
    if snapshots is None or meta is None:
        return None
    directory = snapshots.root / f"c{customer_id}-v{meta.version}-{meta.digest}"
    return sum(path.stat().st_size for path in directory.glob("*.npy")) / 2**20


def serve_until_mapped(
    port: int, master: int, key: str, path: Path, customer_id: int, seconds: float
) -> float:
    """Searches in rounds of `seconds` until every worker has mapped the current version's copy
    whole (built by one worker's short-lived process while requests read Redis; mapping it reads
    every page to check them): the seconds it took. Without copies, one round."""
    started = time.perf_counter()
    while time.perf_counter() - started < 300:
        serve_and_measure(port, master, key, path, seconds)
        size = snapshot_files_mb(customer_id)
        pages = [served.snapshot_pages_mb(pid)["resident_mb"] for pid in served.worker_pids(master)]
        if size is None or (size and all(resident >= 0.95 * size for resident in pages)):
            return round(time.perf_counter() - started, 1)
    raise SystemExit("the grown version's snapshot was not mapped by every worker in 300 s")


def remove_snapshot_files() -> None:
    """The host's copies of the bench's versions go with its namespace."""
    from ranking.signals.backend import signal_store

    snapshots = getattr(signal_store(), "snapshots", None)
    if snapshots is not None:
        shutil.rmtree(snapshots.root, ignore_errors=True)


def build_process_peak(customer_id: int, version: int) -> dict[str, float]:
    """The version's copy built once more, into a temporary directory, by the process a worker
    starts for it (ranking/signals/snapshot_build.py): its peak RSS (VmHWM) and seconds."""
    from ranking.signals.backend import signal_store
    from ranking.signals.redis_store import RedisSignalStore

    store = signal_store()
    assert isinstance(store, RedisSignalStore)
    # VmHWM, not getrusage's ru_maxrss: Linux carries the starting process's peak over exec.
    code = (
        "import json, runpy, time; started = time.perf_counter(); "
        "runpy.run_module('ranking.signals.snapshot_build', run_name='__main__'); "
        "seconds = round(time.perf_counter() - started, 1); "
        "status = dict(line.split(':', 1) for line in open('/proc/self/status')); "
        "peak = round(int(status['VmHWM'].split()[0]) / 1024, 1); "
        "print(json.dumps({'peak_mb': peak, 'seconds': seconds}))"
    )
    with tempfile.TemporaryDirectory() as tmp:
        job = {
            "url": os.environ["REDIS_URL"],
            "cluster": False,
            "timeout": 30.0,
            "version_keys": store._version_keys(customer_id, version),
            "directory": str(Path(tmp) / "copy"),
            "manifest": {},
        }
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a database and namespace of its "
        "own, so the suite's quick run never touches a full run's",
    )
    args = parser.parse_args()
    env = configure(secrets.token_urlsafe(50), args.quick)
    served.recreate_database()
    served.drop_namespace()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from customers.models import Scope
    from customers.services import api_key_create, customer_create
    from merchandising.contracts import RuleIn
    from merchandising.services import rule_create
    from ranking.services import signals_refresh

    result: dict[str, Any] = {"small_items": args.small, "large_items": args.large}
    try:
        call_command("migrate", verbosity=0)
        customer = customer_create(name="Memory bench", slug="memory", max_candidates=1000)
        add_items(customer.pk, 1, args.small)
        signals_refresh(customer_id=customer.pk)
        for document in rules(args.small):
            rule_create(customer=customer, document=RuleIn.model_validate(document))
        _, key = api_key_create(customer=customer, name="bench", scopes=[Scope.RANK])
        connections.close_all()
        with (
            tempfile.TemporaryDirectory() as tmp,
            served.gunicorn(env, args.workers) as (
                port,
                master,
            ),
        ):
            small_bodies, large_bodies = Path(tmp) / "small.jsonl", Path(tmp) / "large.jsonl"
            small_bodies.write_bytes(bodies(args.small, 100, seed=1))
            large_bodies.write_bytes(bodies(args.large, 100, seed=2))
            # Warm up first (imports, first-use allocations, caches), then measure.
            serve_and_measure(port, master.pid, key, small_bodies, args.seconds)
            result["small"] = serve_and_measure(port, master.pid, key, small_bodies, args.seconds)

            started = time.perf_counter()
            add_items(customer.pk, args.small + 1, args.large)
            refreshed = signals_refresh(customer_id=customer.pk)
            result["grow_seconds"] = round(time.perf_counter() - started, 1)
            result["large_refresh_items"] = refreshed.items
            connections.close_all()
            # Warm up again: until both workers map the grown version's copy.
            result["large_snapshot_ready_seconds"] = serve_until_mapped(
                port, master.pid, key, large_bodies, customer.pk, min(args.seconds, 5.0)
            )
            result["large"] = serve_and_measure(port, master.pid, key, large_bodies, args.seconds)
            result["large_build_process"] = build_process_peak(customer.pk, refreshed.version)
    finally:
        connections.close_all()
        served.drop_namespace()
        remove_snapshot_files()
        served.recreate_database(create=False)
    small = result["small"]["workers_mb"]
    large = result["large"]["workers_mb"]
    result["rss_growth_mb"] = [
        round(after["VmRSS"] - before["VmRSS"], 1)
        for before, after in zip(small, large, strict=True)
    ]
    # Each worker's own memory: VmRSS less the snapshot's shared pages (its private pages of
    # the snapshot, if any, stay counted).
    result["own_growth_mb"] = [
        round(
            (after["VmRSS"] - after_pages["resident_mb"] + after_pages["private_mb"])
            - (before["VmRSS"] - before_pages["resident_mb"] + before_pages["private_mb"]),
            1,
        )
        for before, after, before_pages, after_pages in zip(
            small,
            large,
            result["small"]["snapshot_pages_mb"],
            result["large"]["snapshot_pages_mb"],
            strict=True,
        )
    ]
    result["peak_growth_mb"] = [
        round(after["VmHWM"] - before["VmHWM"], 1)
        for before, after in zip(small, large, strict=True)
    ]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
