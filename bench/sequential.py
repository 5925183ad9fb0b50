"""Peeking at A/A experiments every hour: how often the always-valid interval and the fixed 95%
interval of revenue per search exclude 0 at some look, and how often each covers a true lift at
every look at once. The numbers of docs/experiments.md, section 5.

Simulated shoppers (tests/ranking/test_experiment_stats.py: 1 + Poisson(2) searches, 30%
clicked, 30% of clicks bought, log-normal order values); each experiment grows to 5,000 shoppers
a side and is looked at every 100 shoppers a side (50 looks). No database: numpy only, a few
seconds.

    .venv/bin/python bench/sequential.py [--seeds 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ranking.test_experiment_stats import PEEKS, peeked  # noqa: E402

TRUE_LIFT = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=400)
    args = parser.parse_args()
    seeds = args.seeds
    counts = {"a_a_fixed": 0, "a_a_always_valid": 0, "covered_fixed": 0, "covered_always": 0}
    for seed in range(seeds):
        fixed, always_valid = peeked(1.0, seed)
        counts["a_a_fixed"] += any(lift.significant for lift in fixed)
        counts["a_a_always_valid"] += any(lift.significant for lift in always_valid)
        fixed, always_valid = peeked(1 + TRUE_LIFT, 20_000 + seed)
        counts["covered_fixed"] += all(lift.low <= TRUE_LIFT <= lift.high for lift in fixed)
        counts["covered_always"] += all(lift.low <= TRUE_LIFT <= lift.high for lift in always_valid)

    def share(count: int) -> str:
        return f"{count} of {seeds} ({count / seeds:.1%})"

    print(f"{len(PEEKS)} looks, {PEEKS[0]:,} to {PEEKS[-1]:,} shoppers a side")
    print("| | always-valid interval | fixed 95% interval |")
    print("|---|---|---|")
    print(
        f"| A/A: excluded 0 at some look | {share(counts['a_a_always_valid'])} "
        f"| {share(counts['a_a_fixed'])} |"
    )
    print(
        f"| B +10%: covered it at every look | {share(counts['covered_always'])} "
        f"| {share(counts['covered_fixed'])} |"
    )


if __name__ == "__main__":
    main()
