"""Signal read of 1000 items x ~20 features: our store's fetch against a bare redis-py MGET of
the same bytes, in the same run. Prints medians and their ratio as JSON.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/signal_read.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from ranking.signals.redis_store import RedisSignalStore
from ranking.signals.schema import FEATURES, ITEM_RECORD, SCHEMA_HASH
from ranking.signals.store import SignalMeta, SignalSnapshot

CUSTOMER = 999_001
N_CATALOG, N_READ = 100_000, 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    store = RedisSignalStore(
        url=url, namespace="rwbench", timeout=1.0, breaker_seconds=1.0, grace_seconds=60
    )
    rng = np.random.default_rng(1)
    records = np.zeros(N_CATALOG, dtype=ITEM_RECORD)
    records["signals"] = rng.random((N_CATALOG, records["signals"].shape[1]))
    records["categories"] = -1
    ids = [f"sku-{n}" for n in range(N_CATALOG)]
    meta = SignalMeta(
        version=1,  # the bench publishes one version into a namespace of its own
        created_at="",
        schema_hash=SCHEMA_HASH,
        default_item=np.zeros((), dtype=ITEM_RECORD),
        feature_mean=np.zeros(len(FEATURES)),
        feature_std=np.ones(len(FEATURES)),
        brands=(),
        categories=(),
        stats={},
    )
    store.publish(CUSTOMER, SignalSnapshot(meta, ids, records, [], np.zeros(0)))

    # The same bytes as plain keys, one per item: the bare read fetches the very items ours does.
    client = redis.Redis.from_url(url)
    for start in range(0, N_CATALOG, 10_000):
        client.mset(
            {f"rwbench:bare:{ids[n]}": records[n].tobytes() for n in range(start, start + 10_000)}
        )

    ours, bare = [], []
    for _ in range(rounds):
        wanted = [ids[n] for n in rng.choice(N_CATALOG, N_READ, replace=False)]
        bare_keys = [f"rwbench:bare:{item_id}" for item_id in wanted]
        started = time.perf_counter()
        store.fetch(CUSTOMER, wanted, "", "")
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        raw = client.mget(bare_keys)
        np.frombuffer(b"".join(raw), dtype=ITEM_RECORD)
        bare.append(time.perf_counter() - started)
    store.drop_customer(CUSTOMER)
    for start in range(0, N_CATALOG, 10_000):
        client.delete(*(f"rwbench:bare:{ids[n]}" for n in range(start, start + 10_000)))
    result = {
        "items": N_READ,
        "features": int(records["signals"].shape[1]),
        "ours_median_ms": round(statistics.median(ours) * 1000, 3),
        "bare_mget_median_ms": round(statistics.median(bare) * 1000, 3),
    }
    result["ratio"] = round(result["ours_median_ms"] / result["bare_mget_median_ms"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
