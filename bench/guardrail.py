"""How often the experiment guardrail stops B when it looks every hour: the table of
docs/experiments.md, section 7.

Simulated shoppers (the same as tests/ranking/test_experiment_stats.py: 1 + Poisson(2) searches,
30% clicked, 30% of clicks bought, log-normal order values), B's order values scaled by each
row's factor; the guardrail (ranking.experiments.guardrail_breach, on the always-valid interval)
looks every 250 shoppers a side from 1,000 to 10,750 (40 looks), as hourly checks of a growing
experiment would; beside it, the fixed 95% interval looked at the same way (the guardrail before
sequential testing). No database: numpy only, about 40 s.

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

from ranking.experiments import (  # noqa: E402
    GUARDRAIL_METRIC,
    GUARDRAIL_MIN_SHOPPERS,
    guardrail_breach,
    guardrail_may_judge,
)
from tests.ranking.test_experiment_guardrail import cut, result_of  # noqa: E402
from tests.ranking.test_experiment_stats import shoppers  # noqa: E402

STEP = 250
LAST = 10_750


def stopped(price_factor: float, seed: int, last: int, confidence: float) -> tuple[bool, bool]:
    """Whether the guardrail stopped B at some look, and whether the fixed interval would have."""
    rng = np.random.default_rng(seed)
    control, treatment = shoppers(rng, last), shoppers(rng, last, price_factor=price_factor)
    always_valid = fixed = False
    for n in range(GUARDRAIL_MIN_SHOPPERS, last + 1, STEP):
        result = result_of(cut(control, n), cut(treatment, n), confidence)
        always_valid = always_valid or guardrail_breach(result) is not None
        lift = result.lifts[GUARDRAIL_METRIC]
        fixed = fixed or (lift is not None and lift.high < 0 and guardrail_may_judge(result))
    return always_valid, fixed


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
    print(
        f"| experiment ({args.confidence:.1%}) | looks | stopped: always-valid interval "
        "| stopped: fixed interval |"
    )
    print("|---|---|---|---|")
    for label, factor, last, seeds in rows:
        looks = len(range(GUARDRAIL_MIN_SHOPPERS, last + 1, STEP))
        outcomes = [stopped(factor, seed, last, args.confidence) for seed in range(seeds)]
        by_sequence = sum(always_valid for always_valid, _ in outcomes)
        by_fixed = sum(fixed for _, fixed in outcomes)
        print(
            f"| {label} | {looks} | {by_sequence} of {seeds} ({by_sequence / seeds:.1%}) "
            f"| {by_fixed} of {seeds} ({by_fixed / seeds:.1%}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
