"""How long a rank request's snapshot side takes on a mapped signal snapshot (ranking/signals/
snapshot.py): building its keys, looking up its candidates' item records and its query-item
records. docs/performance.md, "The signal fetch and the features, cheaper".

Random requests of the snapshot's own item ids with one of its stored queries, timed warm (best
of several rounds over the same requests) and cold (a 64 MB read before each request, more than
the last-level cache). Read only: point it at a built snapshot directory, e.g. the bench shop's

    .venv/bin/python bench/snapshot_lookups.py /tmp/rankwell-signals-0/rwbenchshared/c1-v1-<digest>
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ranking.signals import snapshot as snapshot_module
from ranking.signals.schema import ITEM_RECORD
from ranking.signals.store import item_keys, query_keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--candidates", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    manifest = json.loads((args.directory / "manifest.json").read_text())
    expected = {key: manifest[key] for key in ("customer", "version", "digest") if key in manifest}
    snapshot = snapshot_module.load(args.directory, expected)
    items = [key.decode() for key in snapshot.items.tolist()]
    queries = sorted({key.split(b"\x1f")[0].decode() for key in snapshot.queries.tolist()})
    default = np.zeros(1, ITEM_RECORD)[0]
    rng = random.Random(7)
    flush = np.ones(8 * 1024 * 1024)  # 64 MB

    def one(query: str, ids: list[str]) -> None:
        keys = item_keys(ids)
        assert keys is not None
        snapshot.item_records(keys, default)
        snapshot.query_item_records(query_keys(query, keys))

    for candidates in args.candidates:
        requests = [
            (rng.choice(queries), rng.sample(items, candidates)) for _ in range(args.requests)
        ]
        warm = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for query, ids in requests:
                one(query, ids)
            warm.append((time.perf_counter() - started) / len(requests) * 1e6)
        cold = []
        for query, ids in requests:
            flush.sum()
            started = time.perf_counter()
            one(query, ids)
            cold.append((time.perf_counter() - started) * 1e6)
        cold.sort()
        result = {
            "candidates": candidates,
            "warm_best_us": round(min(warm), 1),
            "warm_median_us": round(sorted(warm)[len(warm) // 2], 1),
            "cold_median_us": round(cold[len(cold) // 2], 1),
            "cold_p90_us": round(cold[len(cold) * 9 // 10], 1),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
