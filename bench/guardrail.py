"""How often the experiment guardrail stops B when it looks every hour: the table of
docs/experiments.md, section 7.

Simulated shoppers (the same as tests/ranking/test_experiment_stats.py: 1 + Poisson(2) searches,
30% clicked, 30% of clicks bought, log-normal order values), B's order values scaled by each
row's factor; the guardrail (ranking.experiments.guardrail_breach) looks every 250 shoppers a
side from 1,000 to 10,750 (40 looks), as hourly checks of a growing experiment would. No
database: numpy only, about 30 s.

    .venv/bin/python bench/guardrail.py [--seeds 200] [--confidence 0.95]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from ranking.experiments import GUARDRAIL_MIN_SHOPPERS, guardrail_breach  # noqa: E402
from tests.ranking.test_experiment_guardrail import cut, result_of  # noqa: E402
from tests.ranking.test_experiment_stats import shoppers  # noqa: E402

STEP = 250
LAST = 10_750


def stopped(price_factor: float, seed: int, last: int, confidence: float) -> bool:
    rng = np.random.default_rng(seed)
    control, treatment = shoppers(rng, last), shoppers(rng, last, price_factor=price_factor)
    return any(
        guardrail_breach(result_of(cut(control, n), cut(treatment, n), confidence)) is not None
        for n in range(GUARDRAIL_MIN_SHOPPERS, last + 1, STEP)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    rows = [
        ("A/A, one look at 1,000 a side", 1.0, GUARDRAIL_MIN_SHOPPERS, 2 * args.seeds),
        ("A/A", 1.0, LAST, args.seeds),
        ("B earns 5% less", 0.95, LAST, args.seeds),
        ("B earns 10% less", 0.9, LAST, args.seeds),
    ]
    print(f"| experiment ({args.confidence:.1%} interval) | looks | stopped |")
    print("|---|---|---|")
    for label, factor, last, seeds in rows:
        looks = len(range(GUARDRAIL_MIN_SHOPPERS, last + 1, STEP))
        count = sum(stopped(factor, seed, last, args.confidence) for seed in range(seeds))
        print(f"| {label} | {looks} | {count} of {seeds} ({count / seeds:.1%}) |", flush=True)


if __name__ == "__main__":
    main()
