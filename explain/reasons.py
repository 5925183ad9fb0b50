"""Plain words for contributions, as the explain UI shows them.

Each feature has two descriptions of its value: above the customer's typical value, or below it
("clicked often for this query" / "rarely clicked for this query"). The contribution's sign says
whether the feature lifted or lowered the item against the model's base value. When the two agree
in the usual way (a high click rate lifting an item) the description says it all; otherwise the
effect is spelled out ("pricier than most items, which counts against it"), because a tree model
may well push an item down for a value most would call good. Docs: docs/explain.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from explain.units import feature_name
from ranking.engine.records import Contribution
from ranking.signals.schema import FEATURE_INDEX, FEATURES

# feature -> (its value is above the typical one, below it)
PHRASES: dict[str, tuple[str, str]] = {
    "ctr": ("clicked often when shown", "rarely clicked when shown"),
    "add_to_cart_rate": ("often added to the cart", "rarely added to the cart"),
    "conversion_rate": ("often bought when shown", "rarely bought when shown"),
    "revenue_per_impression": ("earns a lot each time it is shown", "earns little when shown"),
    "popularity": ("popular in the shop", "less popular than most items"),
    "trend": ("trending up lately", "trending down lately"),
    "impressions_long": ("shown a lot over the long window", "shown little over the long window"),
    "clicks_long": ("many clicks over the long window", "few clicks over the long window"),
    "add_to_carts_long": ("often carted over the long window", "seldom carted in the long window"),
    "purchases_long": ("many purchases over the long window", "few purchases over the long window"),
    "revenue_long": ("high revenue over the long window", "low revenue over the long window"),
    "impressions_short": ("shown a lot recently", "shown little recently"),
    "clicks_short": ("many clicks recently", "few clicks recently"),
    "purchases_short": ("many purchases recently", "few purchases recently"),
    "price": ("pricier than most items", "cheaper than most items"),
    "price_percentile": ("pricey for its category", "cheap for its category"),
    "freshness": ("new in the catalog", "in the catalog for a while"),
    "in_stock": ("in stock", "out of stock"),
    "query_ctr": ("clicked often for this query", "rarely clicked for this query"),
    "query_conversion_rate": ("often bought after this query", "rarely bought after this query"),
    "user_category_affinity": (
        "in this shopper's favourite category",
        "outside this shopper's usual categories",
    ),
    "user_brand_affinity": (
        "matches this shopper's favourite brand",
        "not a brand this shopper favours",
    ),
    "user_price_gap": (
        "pricier than this shopper usually pays in its category",
        "cheaper than this shopper usually pays in its category",
    ),
    "user_recently_viewed": (
        "viewed recently by this shopper",
        "not viewed lately by this shopper",
    ),
    "user_purchased": ("already bought by this shopper", "not bought by this shopper before"),
    "session_category_affinity": (
        "in the category this shopper is looking at right now",
        "outside what this shopper is looking at right now",
    ),
    "session_brand_affinity": (
        "the brand this shopper is looking at right now",
        "not a brand this shopper is looking at right now",
    ),
    "relevance": (
        "the search engine finds it very relevant",
        "the search engine finds it less relevant",
    ),
}
assert set(PHRASES) == set(FEATURES), "every feature needs its phrases"

# Features whose zero means "none" (no affinity, not viewed, out of stock): a zero is low even
# when the typical value is zero too.
ZERO_IS_LOW = frozenset({"user_category_affinity", "user_brand_affinity", "user_recently_viewed",
                         "user_purchased", "session_category_affinity", "session_brand_affinity",
                         "in_stock"})  # fmt: skip
# Features where a higher value lifting the item (and a lower one lowering it) goes without
# saying; for the others the effect is always spelled out.
HIGHER_HELPS = frozenset(FEATURES) - {
    "price",
    "price_percentile",
    "user_price_gap",
    "user_purchased",
}
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
    if feature in ZERO_IS_LOW and value == 0:
        above = False
    elif typical is None:
        above = lifted  # no reference: the value is described by its effect
    elif value == typical:
        return f"{feature_name(feature)} at its typical value, {effect}"
    else:
        above = value > typical
    high, low = PHRASES[feature]
    words = high if above else low
    usual = feature in HIGHER_HELPS and above == lifted
    return words if usual else f"{words}, {effect}"


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
