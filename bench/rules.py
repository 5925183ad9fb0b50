"""What 50 active merchandising rules add to a 1000-candidate rank request.

Runs the engine in-process (the in-process signal store, so the network does not blur the
difference) on the same requests with and without the rules, and prints medians as JSON. All 50
rules match every request: 10 hide, 15 boost, 10 bury, 8 pin, 4 slot, 3 diversity, with
selectors on brand, category (with descendants), price, stock, item ids and attribute sets.

    .venv/bin/python bench/rules.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from merchandising.actions import Cap, Factor, Pins, Slots  # noqa: E402
from merchandising.compiled import CompiledRule, CompiledSelector  # noqa: E402
from merchandising.loading import rule_set  # noqa: E402
from ranking.configs import DEFAULT_CONFIGS  # noqa: E402
from ranking.engine.pipeline import rank  # noqa: E402
from ranking.engine.records import RankInput  # noqa: E402
from ranking.signals.idsets import IdSet  # noqa: E402
from ranking.signals.memory_store import MemorySignalStore  # noqa: E402
from ranking.signals.schema import (  # noqa: E402
    FEATURE_INDEX,
    FEATURES,
    ITEM_RECORD,
    MAX_ITEM_CATEGORIES,
    QUERY_RECORD,
    SCHEMA_HASH,
)
from ranking.signals.store import SignalMeta, SignalSnapshot  # noqa: E402

CUSTOMER = 1
N_CATALOG, N_CANDIDATES = 20_000, 1000
BRANDS = [f"brand{n}" for n in range(50)]
TOPS = [f"top{n}" for n in range(20)]
CATEGORIES = TOPS + [f"{top}/sub{n}" for top in TOPS for n in range(5)]


def publish(store: MemorySignalStore, rng: np.random.Generator) -> list[str]:
    records = np.zeros(N_CATALOG, dtype=ITEM_RECORD)
    records["signals"] = rng.random((N_CATALOG, records["signals"].shape[1]))
    records["signals"][:, FEATURE_INDEX["price"]] = np.log1p(rng.uniform(5, 500, N_CATALOG))
    records["signals"][:, FEATURE_INDEX["in_stock"]] = rng.random(N_CATALOG) < 0.9
    records["brand"] = rng.integers(0, len(BRANDS), N_CATALOG)
    records["categories"] = -1
    sub = rng.integers(len(TOPS), len(CATEGORIES), N_CATALOG)
    records["categories"][:, 0] = sub
    records["categories"][:, 1] = [TOPS.index(CATEGORIES[s].split("/")[0]) for s in sub]
    assert MAX_ITEM_CATEGORIES >= 2
    ids = [f"sku-{n}" for n in range(N_CATALOG)]
    meta = SignalMeta(
        version=1,  # the bench publishes one version into a namespace of its own
        created_at="",
        schema_hash=SCHEMA_HASH,
        default_item=np.zeros((), dtype=ITEM_RECORD),
        feature_mean=np.full(len(FEATURES), 0.5),
        feature_std=np.full(len(FEATURES), 0.3),
        brands=tuple(BRANDS),
        categories=tuple(CATEGORIES),
        stats={},
    )
    no_queries = np.zeros(0, dtype=QUERY_RECORD)
    store.publish(CUSTOMER, SignalSnapshot(meta, ids, records, [], no_queries))
    return ids


def fifty_rules(
    store: MemorySignalStore, ids: list[str], rng: np.random.Generator
) -> list[CompiledRule]:
    def some_ids(n: int) -> frozenset[str]:
        return frozenset(ids[i] for i in rng.choice(len(ids), n, replace=False))

    rules: list[CompiledRule] = []

    def add(action: str, **fields: object) -> None:
        n = len(rules) + 1
        rules.append(
            CompiledRule(
                id=n, name=f"rule {n}", priority=int(rng.integers(-5, 5)), action=action, **fields
            )
        )  # type: ignore[arg-type]

    for n in range(10):
        add("hide", selector=CompiledSelector(item_ids=IdSet(some_ids(20)), in_stock=n % 2 == 0))
    for n in range(15):
        selectors = [
            CompiledSelector(brands=(BRANDS[n], BRANDS[n + 1])),
            CompiledSelector(categories=(TOPS[n],)),
            CompiledSelector(price_min=50.0, price_max=150.0, in_stock=True),
        ]
        add("boost", selector=selectors[n % 3], params=Factor(1.5))
    for n in range(10):
        # An attribute clause: its matching items are a set in the signal store, read with the
        # request's signals (2000 items of the catalog each).
        attributes = (("colour", (f"colour{n}",)),)
        selector = CompiledSelector(categories=(f"{TOPS[n]}/sub{n % 5}",), attributes=attributes)
        store.attribute_set_replace(CUSTOMER, selector.attribute_set, sorted(some_ids(2000)))
        add("bury", selector=selector, params=Factor(0.5))
    for n in range(8):
        pins = [(ids[int(i)], n * 3 + j + 1) for j, i in enumerate(rng.integers(0, 1000, 2))]
        add("pin", params=Pins(tuple(pins)))
    for n in range(4):
        brand = CompiledSelector(brands=(BRANDS[20 + n],))
        add("slot", selector=brand, params=Slots((40 + n, 60 + n)))
    for n in range(3):
        add("diversity", params=Cap(("brand", "category")[n % 2], max_items=3, top_k=50))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    store = MemorySignalStore()
    ids = publish(store, rng)
    rules = fifty_rules(store, ids, rng)
    plain = DEFAULT_CONFIGS["search"]
    ruled = replace(plain, rules=rule_set(rules))

    without, with_rules = [], []
    for _ in range(args.rounds):
        picked = [ids[i] for i in rng.choice(1000 + N_CANDIDATES, N_CANDIDATES, replace=False)]
        request = RankInput(
            surface="search",
            query="shoes",
            category="",
            shopper_key="",
            item_ids=tuple(picked),
            relevance=rng.random(N_CANDIDATES),
        )
        started = time.perf_counter()
        rank(request, plain, store, CUSTOMER)
        without.append(time.perf_counter() - started)
        started = time.perf_counter()
        outcome = rank(request, ruled, store, CUSTOMER)
        with_rules.append(time.perf_counter() - started)
    assert len(ruled.rules.matching(request)) == len(rules) == 50  # type: ignore[union-attr]
    assert len(outcome.removed) > 0
    result = {
        "candidates": N_CANDIDATES,
        "active_rules": len(rules),
        "rounds": args.rounds,
        "without_rules_median_ms": round(statistics.median(without) * 1000, 3),
        "with_rules_median_ms": round(statistics.median(with_rules) * 1000, 3),
    }
    result["added_ms"] = round(
        result["with_rules_median_ms"] - result["without_rules_median_ms"], 3
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
