"""How many sessions an A/B test and an interleaving experiment need to tell the same two rankers
apart: the table of docs/experiments.md, section 13.

The shopper simulator (demo/simulation.py) lays out a pool of sessions three ways: A's page
(popularity misjudged by a fixed per-item error), B's (popularity: each item's true revenue per
look), and the two team-drafted (ranking/engine/interleaving.py). B is truly better by the
expected clicks and revenue per session printed first. demo/interleaving.py then reads the whole
pool once per method to measure the per-shopper variance, sizes each test for 95% confidence
and 80% power from it (the fixed-horizon formula of section 5; for interleaving, the same on the
preference), and checks the size by repeated simulation: `--runs` experiments on random
shoppers of the pool with that many sessions, counting how many found B better. No database:
numpy only, about 2 minutes on 2 cores.

    .venv/bin/python bench/interleaving.py [--sessions 120000] [--runs 100] [--noise 0.5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from demo import interleaving as sim  # noqa: E402
from demo.simulation import build_world  # noqa: E402
from ranking.experiment_stats import fixed_horizon, preference_horizon  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=120_000, help="sessions in the pool")
    parser.add_argument("--shoppers", type=int, default=30_000, help="shoppers in the world")
    parser.add_argument("--runs", type=int, default=100, help="simulated experiments per size")
    parser.add_argument("--noise", type=float, default=0.5, help="A's error (log-normal sigma)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.monotonic()
    world = build_world(n_items=400, n_shoppers=args.shoppers, seed=args.seed)
    pool = sim.traffic(
        world,
        sim.noisy_ranker(world, args.noise, seed=args.seed),
        sim.popularity_ranker(world),
        sessions=args.sessions,
        seed=args.seed,
    )
    shoppers = len(np.unique(pool.shopper))
    truth = sim.true_outcomes(pool)
    print(
        f"{pool.sessions:,} sessions of {shoppers:,} shoppers "
        f"({pool.sessions / shoppers:.2f} per shopper), laid out in "
        f"{time.monotonic() - started:.0f} s"
    )
    for name in ("clicks", "revenue"):
        a, b = truth["A"][name], truth["B"][name]
        print(f"true {name} per session: A {a:.4f}, B {b:.4f} (B {b / a - 1:+.1%})")

    rng = np.random.default_rng(args.seed)
    everyone = np.arange(pool.sessions)
    # The variance of each readout, from the whole pool read once.
    needed: dict[tuple[str, str], int | None] = {}
    whole_ab = {}
    for name in ("revenue", "clicks"):
        rows = everyone
        shopper_ids, unit = np.unique(pool.shopper[rows], return_inverse=True)
        in_b = rng.random(len(shopper_ids)) < 0.5
        estimates = []
        for arm, pages in ((~in_b, pool.a), (in_b, pool.b)):
            chosen = rows[arm[unit]]
            clicked, earned = sim._draw(pages, chosen, rng)
            outcome = clicked.sum(axis=1) if name == "clicks" else earned.sum(axis=1)
            arm_unit = unit[arm[unit]]
            sums = np.bincount(arm_unit, weights=outcome, minlength=len(shopper_ids))[arm]
            searches = np.bincount(arm_unit, minlength=len(shopper_ids))[arm].astype(np.float64)
            estimates.append(sim.ratio_estimate(sums, searches))
        whole_ab[name] = estimates
        lift = truth["B"][name] / truth["A"][name] - 1
        horizon = fixed_horizon(estimates[0], estimates[1], 0.5, minimum_lift=lift)
        needed[("A/B", name)] = (
            None
            if horizon is None
            else sim.sessions_for(horizon.control_needed + horizon.treatment_needed, pool)
        )
    reading = sim.interleaving_test(pool, everyone, rng)
    for name, found in (("clicks", reading.clicks), ("revenue", reading.revenue)):
        print(
            f"interleaved, the whole pool: B's preference on {name} "
            f"{found.delta:+.1%} ({found.wins_b:,} searches won by B, {found.wins_a:,} by A)"
        )
    for name, found in (("revenue", reading.revenue), ("clicks", reading.clicks)):
        won_a, won_b = reading.wins[name]
        shoppers_needed = (
            None if found.delta is None else preference_horizon(won_a, won_b, delta=found.delta)
        )
        needed[("interleaving", name)] = (
            None if shoppers_needed is None else sim.sessions_for(shoppers_needed, pool)
        )

    print()
    print(
        "| test | B better on | sessions needed (95%, 80% power) | "
        f"B found better at that size, of {args.runs} runs |"
    )
    print("|---|---|---|---|")
    for (method, name), sessions in needed.items():
        label = f"{name} per session" if method == "A/B" else f"{name} credited per team"
        if sessions is None:
            print(f"| {method} | {label} | cannot be estimated | - |")
            continue
        if sessions > pool.sessions // 2:
            print(f"| {method} | {label} | {sessions:,} | (over half the pool: not run) |")
            continue
        found_better = 0
        for _ in range(args.runs):
            rows = sim.shopper_subset(pool, sessions, rng)
            if method == "A/B":
                ab = sim.ab_test(pool, rows, rng)
                lift = ab.revenue if name == "revenue" else ab.clicks
                found_better += bool(lift is not None and lift.low > 0)
            else:
                test = sim.interleaving_test(pool, rows, rng)
                preferred = test.revenue if name == "revenue" else test.clicks
                found_better += bool(preferred.low is not None and preferred.low > 0)
        share = found_better / args.runs
        print(f"| {method} | {label} | {sessions:,} | {found_better} ({share:.0%}) |", flush=True)
    print(f"\n{time.monotonic() - started:.0f} s in all")


if __name__ == "__main__":
    main()
