"""Features as a merchandiser reads them: a name in the shop's words and the value in its own
unit (the price in money, rates in %, counts as counts), undoing the transform the signals store
(ranking/signals/refresh.py and shopper.py: log1p of counts and prices, freshness as a decay).
The exact stored values stay one click away on the pages that use this."""

from __future__ import annotations

import math
from collections.abc import Callable

from ranking.signals.schema import FEATURES


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _count(value: float) -> str:
    count = math.expm1(value)
    return f"{count:,.0f}" if count >= 10 else f"{count:.1f}"


def _money(value: float) -> str:
    return f"{math.expm1(value):,.2f}"


def _plain_money(value: float) -> str:
    return f"{value:,.2f}"


def _score(value: float) -> str:
    return f"{value:.2f}"


def _flag(value: float) -> str:
    return "yes" if value >= 0.5 else "no"


def _age(value: float) -> str:
    """freshness = exp(-age in days / 30)."""
    if value <= 0:
        return "long ago"
    days = -30.0 * math.log(min(value, 1.0))
    return "today" if days < 1 else f"{days:,.0f} days ago"


def _change(value: float) -> str:
    """A log ratio as a relative change."""
    return f"{math.expm1(value) * 100:+.0f}%"


# feature -> (the name a merchandiser reads, how its stored value reads)
FEATURE_NAMES: dict[str, tuple[str, Callable[[float], str]]] = {
    "ctr": ("click rate", _percent),
    "add_to_cart_rate": ("add-to-cart rate", _percent),
    "conversion_rate": ("purchase rate", _percent),
    "revenue_per_impression": ("revenue each time shown", _plain_money),
    "popularity": ("popularity (clicks + 3 carts + 10 purchases)", _count),
    "trend": ("engagement lately against usual", _change),
    "impressions_long": ("times shown, 90 days", _count),
    "clicks_long": ("clicks, 90 days", _count),
    "add_to_carts_long": ("add-to-carts, 90 days", _count),
    "purchases_long": ("purchases, 90 days", _count),
    "revenue_long": ("revenue, 90 days", _money),
    "impressions_short": ("times shown, 7 days", _count),
    "clicks_short": ("clicks, 7 days", _count),
    "purchases_short": ("purchases, 7 days", _count),
    "price": ("price", _money),
    "price_percentile": ("price rank in its category", _percent),
    "freshness": ("added to the catalog", _age),
    "in_stock": ("in stock", _flag),
    "query_ctr": ("click rate for this query", _percent),
    "query_conversion_rate": ("purchase rate for this query", _percent),
    "user_category_affinity": ("shopper's interest in its category", _percent),
    "user_brand_affinity": ("shopper's interest in its brand", _percent),
    "user_price_gap": ("price against what the shopper usually pays", _change),
    "user_recently_viewed": ("viewed lately by the shopper", _flag),
    "user_purchased": ("bought before by the shopper", _flag),
    "session_category_affinity": ("this visit's interest in its category", _percent),
    "session_brand_affinity": ("this visit's interest in its brand", _percent),
    "relevance": ("search relevance against the other candidates", _score),
}
assert set(FEATURE_NAMES) == set(FEATURES), "every feature needs its name and unit"


def feature_name(feature: str) -> str:
    return FEATURE_NAMES[feature][0]


def shown_value(feature: str, value: float | None) -> str:
    """The stored value in the feature's own unit ("—" when unknown)."""
    if value is None or not math.isfinite(value):
        return "—"
    return FEATURE_NAMES[feature][1](value)
