"""Plain words for contributions, as the explain UI shows them.

Each feature has two descriptions of its value: above the customer's typical value, or below it
("clicked often for this query" / "rarely clicked for this query"). The contribution's sign says
whether the feature lifted or lowered the item against the model's base value. When the two agree
in the usual way (a high click rate lifting an item) the description says it all; otherwise the
effect is spelled out ("pricier than most items, which counts against it"), because a tree model
may well push an item down for a value most would call good. The phrases, and whether a zero
means "none" or a higher value goes without saying, are each feature's entry in the feature
registry (ranking/signals/features.py). Docs: docs/explain.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from explain.units import feature_name
from ranking.engine.records import Contribution
from ranking.signals.features import BY_NAME
from ranking.signals.schema import FEATURE_INDEX

LIFTS = "which counts in its favour"
LOWERS = "which counts against it"
# Contributions smaller than this say nothing worth a sentence.
NEGLIGIBLE = 1e-9


def phrase(feature: str, contribution: float, value: float, typical: float | None) -> str:
    """The plain words for one feature's contribution: how its value compares with the typical
    one, and whether that lifted or lowered the item."""
    if abs(contribution) <= NEGLIGIBLE:
        return "no effect"
    lifted = contribution >= 0
    effect = LIFTS if lifted else LOWERS
    entry = BY_NAME[feature]
    if entry.zero_is_low and value == 0:
        above = False
    elif typical is None:
        above = lifted  # no reference: the value is described by its effect
    elif value == typical:
        return f"{feature_name(feature)} at its typical value, {effect}"
    else:
        above = value > typical
    described = entry.high if above else entry.low
    usual = entry.higher_helps and above == lifted
    return described if usual else f"{described}, {effect}"


def top_reasons(
    contributions: Sequence[Contribution],
    typical: np.ndarray | None,
    count: int = 1,
    among: dict[str, float] | None = None,
) -> list[str]:
    """The phrases of the `count` largest contributions by size, largest first. `typical` is
    the customer's mean per feature (schema order), None when unknown. With `among` (each
    feature's mean contribution over a list of items), what sets the item apart in that list:
    its contributions less the list's mean, so that a feature lifting every item alike (the
    shop's popularity, say) is not everyone's reason; the first reason is what lifts it most above
    the others (what holds it back most when nothing does), the second what holds it back most."""
    if among is None:
        ranked = sorted(contributions, key=lambda c: (-abs(c.contribution), c.feature))
    else:
        apart = [
            Contribution(c.feature, c.value, c.contribution - among.get(c.feature, 0.0))
            for c in contributions
        ]
        # First what lifts it most above the others, then what holds it back most.
        ups = sorted((c for c in apart if c.contribution > 0), key=lambda c: -c.contribution)
        downs = sorted((c for c in apart if c.contribution < 0), key=lambda c: c.contribution)
        ranked = [*ups[:1], *downs[:1], *ups[1:], *downs[1:]]
    return [
        phrase(
            c.feature,
            c.contribution,
            c.value,
            None if typical is None else float(typical[FEATURE_INDEX[c.feature]]),
        )
        for c in ranked[:count]
        if abs(c.contribution) > NEGLIGIBLE
    ]


def mean_contributions(lists: Sequence[Sequence[Contribution]]) -> dict[str, float]:
    """Each feature's mean contribution over the items (the `among` of `top_reasons`)."""
    sums: dict[str, float] = {}
    for contributions in lists:
        for c in contributions:
            sums[c.feature] = sums.get(c.feature, 0.0) + c.contribution
    return {feature: total / max(len(lists), 1) for feature, total in sums.items()}
