"""The feature registry: every signal the engine scores on, one entry each, in schema order.

An entry holds what a feature is everywhere it is used: its name (the schema's column, and so the
schema hash), its family (which block of the feature matrix, who computes it), how an item or
query-item feature is computed from the decayed counts and the catalog, its value for an item the
signal version does not know, its unit (how the explain pages show the stored value in the shop's
terms), and the merchandiser's words (a label and the two reason phrases). The schema
(schema.py), the refresh (refresh.py), training's rebuild (ranking/learning/replay.py) and the
explanations (explain/units.py, explain/reasons.py) read it; adding a feature is one entry here,
its docs (docs/signals.md) and a retrain (docs/architecture.md, "Where a change goes").

Shopper and session features are computed by ranking/signals/shopper.py (in both stores, in one
definition), the request's relevance by the engine: their entries carry the schema and the words.
Nothing here runs per request: schema.py derives its tuples, indexes and record types at import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ranking.signals.counts import (
    CARTS,
    CLICKS,
    IMPRESSIONS,
    LONG_HALF_LIFE_DAYS,
    LONG_WINDOW_DAYS,
    PAIR_CLICKS,
    PAIR_PURCHASES,
    PURCHASES,
    REVENUE,
    SHORT_HALF_LIFE_DAYS,
    SHORT_WINDOW_DAYS,
    effective_days,
)

# Pseudo-impressions of the Beta smoothing: item rates towards the customer's, query-item rates
# towards the item's.
PRIOR_STRENGTH = 50.0
QUERY_PRIOR_STRENGTH = 20.0
FRESHNESS_DAYS = 30.0
ENGAGEMENT_WEIGHTS = {"click": 1.0, "add_to_cart": 3.0, "purchase": 10.0}


class Family(StrEnum):
    """Which block of the feature matrix a feature is in, and who computes it."""

    ITEM_RATE = "item rate"  # the refresh: a count per examined impression, Beta-smoothed
    ITEM_COUNT = "item count"  # the refresh: decayed event counts
    CATALOG = "catalog"  # the refresh, from the catalog
    QUERY_ITEM = "query-item"  # the refresh, per (normalised query, item)
    SHOPPER = "shopper"  # ingest: the shopper's profile (ranking/signals/shopper.py)
    SESSION = "session"  # ingest: the shopper's current session (ranking/signals/shopper.py)
    REQUEST = "request"  # the request itself


ITEM_FAMILIES = frozenset({Family.ITEM_RATE, Family.ITEM_COUNT, Family.CATALOG})
SHOPPER_FAMILIES = frozenset({Family.SHOPPER, Family.SESSION})


class Unit(StrEnum):
    """What a stored value is, so that the explain pages can show it in the shop's terms."""

    RATE = "rate"  # a share in 0..1: shown in %
    MONEY = "money"  # an amount in the shop's currency
    LOG_MONEY = "log money"  # log1p of an amount
    LOG_COUNT = "log count"  # log1p of a decayed count
    LOG_CHANGE = "log change"  # a log ratio: shown as a relative change
    AGE = "age"  # exp(-days / FRESHNESS_DAYS): shown as days ago
    FLAG = "flag"  # 1 or 0: yes or no
    SCORE = "score"  # a z-score or other unitless number


@dataclass(frozen=True, slots=True)
class ItemInputs:
    """What item features are computed from, one row per item: the decayed counts of both windows
    (n x COLUMNS, ranking/signals/counts.py), the customer's prior rates (scalars, or one per row
    for training's past moments) and the catalog's values (filled for items it does not have)."""

    short_counts: np.ndarray
    long_counts: np.ndarray
    priors: Mapping[str, np.ndarray]
    prices: np.ndarray  # NaN where unknown
    price_percentile: np.ndarray
    median_price: float
    freshness: np.ndarray
    in_stock: np.ndarray


@dataclass(frozen=True, slots=True)
class UnknownItem:
    """What the value of an item the signal version does not know may depend on."""

    priors: Mapping[str, np.ndarray]
    median_price: float


@dataclass(frozen=True, slots=True)
class RateOf:
    """An item rate: a column of the long window's counts per examined impression, smoothed
    towards the customer's own rate (its prior, also the value of an unknown item)."""

    column: int
    capped: bool = True  # a share of impressions, at most 1 (revenue per impression is not)


@dataclass(frozen=True, slots=True)
class PairRateOf:
    """A query-item rate: a column of the pair's long-window counts per examined impression,
    smoothed towards the item's own value of `prior` (also the value of a pair never seen)."""

    column: int
    prior: str


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature: its schema name and family, how it is computed and defaulted (item and
    query-item features), and how the explain pages name, show and phrase it."""

    name: str
    family: Family
    label: str  # the merchandiser's name for it
    unit: Unit
    # Reasons: the words for a value above the customer's typical one, and below it.
    high: str
    low: str
    # A zero means "none" (no affinity, not viewed, out of stock): low even when typical.
    zero_is_low: bool = False
    # A higher value lifting the item goes without saying; otherwise the effect is spelled out.
    higher_helps: bool = True
    # How an item feature is computed: a rate (rate), or a function of the inputs (compute).
    rate: RateOf | None = None
    compute: Callable[[ItemInputs], np.ndarray] | None = None
    # An item unknown to the signal version: a constant or a function (rates: the prior).
    unknown: float | Callable[[UnknownItem], float] = 0.0
    # How a query-item feature is computed.
    pair_rate: PairRateOf | None = None

    def __post_init__(self) -> None:
        ways = (self.rate is not None) + (self.compute is not None)
        if ways != (1 if self.family in ITEM_FAMILIES else 0):
            raise ValueError(f"{self.name}: an item feature has a rate or a computation, no other")
        if (self.family == Family.ITEM_RATE) != (self.rate is not None):
            raise ValueError(f"{self.name}: the item rates, and only they, have a rate")
        if (self.family == Family.QUERY_ITEM) != (self.pair_rate is not None):
            raise ValueError(f"{self.name}: the query-item features, and only they, have a rate")


def smoothed(
    successes: np.ndarray, trials: np.ndarray, prior: np.ndarray | float, m: float
) -> np.ndarray:
    """A Beta-smoothed share: (successes + prior * m) / (trials + m), at most 1."""
    return np.minimum((successes + prior * m) / (trials + m), 1.0)


def engagement(counts: np.ndarray) -> np.ndarray:
    """Clicks + 3 add-to-carts + 10 purchases, per row of decayed counts."""
    return (
        counts[:, CLICKS] * ENGAGEMENT_WEIGHTS["click"]
        + counts[:, CARTS] * ENGAGEMENT_WEIGHTS["add_to_cart"]
        + counts[:, PURCHASES] * ENGAGEMENT_WEIGHTS["purchase"]
    )


def freshness_at(created_ts: np.ndarray, now_ts: float | np.ndarray) -> np.ndarray:
    """exp(-age in days / FRESHNESS_DAYS) from the catalog's creation time (epoch seconds)."""
    return np.exp(-np.maximum(now_ts - created_ts, 0.0) / 86400.0 / FRESHNESS_DAYS)


def _popularity(inputs: ItemInputs) -> np.ndarray:
    return np.log1p(engagement(inputs.long_counts))


def _trend(inputs: ItemInputs) -> np.ndarray:
    short_rate = engagement(inputs.short_counts) / effective_days(
        SHORT_WINDOW_DAYS, SHORT_HALF_LIFE_DAYS
    )
    long_rate = engagement(inputs.long_counts) / effective_days(
        LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS
    )
    return np.log1p(short_rate) - np.log1p(long_rate)


def long_count(column: int) -> Callable[[ItemInputs], np.ndarray]:
    """log1p of a decayed count of the long window."""

    def compute(inputs: ItemInputs) -> np.ndarray:
        return np.log1p(inputs.long_counts[:, column])

    return compute


def short_count(column: int) -> Callable[[ItemInputs], np.ndarray]:
    """log1p of a decayed count of the short window."""

    def compute(inputs: ItemInputs) -> np.ndarray:
        return np.log1p(inputs.short_counts[:, column])

    return compute


def _log_price(inputs: ItemInputs) -> np.ndarray:
    return np.log1p(np.where(np.isnan(inputs.prices), inputs.median_price, inputs.prices))


def _median_log_price(unknown: UnknownItem) -> float:
    return math.log1p(unknown.median_price)


REGISTRY: tuple[Feature, ...] = (
    Feature(
        "ctr",
        Family.ITEM_RATE,
        "click rate",
        Unit.RATE,
        "clicked often when shown",
        "rarely clicked when shown",
        rate=RateOf(CLICKS),
    ),
    Feature(
        "add_to_cart_rate",
        Family.ITEM_RATE,
        "add-to-cart rate",
        Unit.RATE,
        "often added to the cart",
        "rarely added to the cart",
        rate=RateOf(CARTS),
    ),
    Feature(
        "conversion_rate",
        Family.ITEM_RATE,
        "purchase rate",
        Unit.RATE,
        "often bought when shown",
        "rarely bought when shown",
        rate=RateOf(PURCHASES),
    ),
    Feature(
        "revenue_per_impression",
        Family.ITEM_RATE,
        "revenue each time shown",
        Unit.MONEY,
        "earns a lot each time it is shown",
        "earns little when shown",
        rate=RateOf(REVENUE, capped=False),
    ),
    Feature(
        "popularity",
        Family.ITEM_COUNT,
        "popularity (clicks + 3 carts + 10 purchases)",
        Unit.LOG_COUNT,
        "popular in the shop",
        "less popular than most items",
        compute=_popularity,
    ),
    Feature(
        "trend",
        Family.ITEM_COUNT,
        "engagement lately against usual",
        Unit.LOG_CHANGE,
        "trending up lately",
        "trending down lately",
        compute=_trend,
    ),
    Feature(
        "impressions_long",
        Family.ITEM_COUNT,
        "times shown, 90 days",
        Unit.LOG_COUNT,
        "shown a lot over the long window",
        "shown little over the long window",
        compute=long_count(IMPRESSIONS),
    ),
    Feature(
        "clicks_long",
        Family.ITEM_COUNT,
        "clicks, 90 days",
        Unit.LOG_COUNT,
        "many clicks over the long window",
        "few clicks over the long window",
        compute=long_count(CLICKS),
    ),
    Feature(
        "add_to_carts_long",
        Family.ITEM_COUNT,
        "add-to-carts, 90 days",
        Unit.LOG_COUNT,
        "often carted over the long window",
        "seldom carted in the long window",
        compute=long_count(CARTS),
    ),
    Feature(
        "purchases_long",
        Family.ITEM_COUNT,
        "purchases, 90 days",
        Unit.LOG_COUNT,
        "many purchases over the long window",
        "few purchases over the long window",
        compute=long_count(PURCHASES),
    ),
    Feature(
        "revenue_long",
        Family.ITEM_COUNT,
        "revenue, 90 days",
        Unit.LOG_MONEY,
        "high revenue over the long window",
        "low revenue over the long window",
        compute=long_count(REVENUE),
    ),
    Feature(
        "impressions_short",
        Family.ITEM_COUNT,
        "times shown, 7 days",
        Unit.LOG_COUNT,
        "shown a lot recently",
        "shown little recently",
        compute=short_count(IMPRESSIONS),
    ),
    Feature(
        "clicks_short",
        Family.ITEM_COUNT,
        "clicks, 7 days",
        Unit.LOG_COUNT,
        "many clicks recently",
        "few clicks recently",
        compute=short_count(CLICKS),
    ),
    Feature(
        "purchases_short",
        Family.ITEM_COUNT,
        "purchases, 7 days",
        Unit.LOG_COUNT,
        "many purchases recently",
        "few purchases recently",
        compute=short_count(PURCHASES),
    ),
    Feature(
        "price",
        Family.CATALOG,
        "price",
        Unit.LOG_MONEY,
        "pricier than most items",
        "cheaper than most items",
        higher_helps=False,
        compute=_log_price,
        unknown=_median_log_price,
    ),
    Feature(
        "price_percentile",
        Family.CATALOG,
        "price rank in its category",
        Unit.RATE,
        "pricey for its category",
        "cheap for its category",
        higher_helps=False,
        compute=lambda inputs: inputs.price_percentile,
        unknown=0.5,
    ),
    Feature(
        "freshness",
        Family.CATALOG,
        "added to the catalog",
        Unit.AGE,
        "new in the catalog",
        "in the catalog for a while",
        compute=lambda inputs: inputs.freshness,
    ),
    Feature(
        "in_stock",
        Family.CATALOG,
        "in stock",
        Unit.FLAG,
        "in stock",
        "out of stock",
        zero_is_low=True,
        compute=lambda inputs: inputs.in_stock,
        unknown=1.0,
    ),
    Feature(
        "query_ctr",
        Family.QUERY_ITEM,
        "click rate for this query",
        Unit.RATE,
        "clicked often for this query",
        "rarely clicked for this query",
        pair_rate=PairRateOf(PAIR_CLICKS, prior="ctr"),
    ),
    Feature(
        "query_conversion_rate",
        Family.QUERY_ITEM,
        "purchase rate for this query",
        Unit.RATE,
        "often bought after this query",
        "rarely bought after this query",
        pair_rate=PairRateOf(PAIR_PURCHASES, prior="conversion_rate"),
    ),
    Feature(
        "user_category_affinity",
        Family.SHOPPER,
        "shopper's interest in its category",
        Unit.RATE,
        "in this shopper's favourite category",
        "outside this shopper's usual categories",
        zero_is_low=True,
    ),
    Feature(
        "user_brand_affinity",
        Family.SHOPPER,
        "shopper's interest in its brand",
        Unit.RATE,
        "matches this shopper's favourite brand",
        "not a brand this shopper favours",
        zero_is_low=True,
    ),
    Feature(
        "user_price_gap",
        Family.SHOPPER,
        "price against what the shopper usually pays",
        Unit.LOG_CHANGE,
        "pricier than this shopper usually pays in its category",
        "cheaper than this shopper usually pays in its category",
        higher_helps=False,
    ),
    Feature(
        "user_recently_viewed",
        Family.SHOPPER,
        "viewed lately by the shopper",
        Unit.FLAG,
        "viewed recently by this shopper",
        "not viewed lately by this shopper",
        zero_is_low=True,
    ),
    Feature(
        "user_purchased",
        Family.SHOPPER,
        "bought before by the shopper",
        Unit.FLAG,
        "already bought by this shopper",
        "not bought by this shopper before",
        zero_is_low=True,
        higher_helps=False,
    ),
    Feature(
        "session_category_affinity",
        Family.SESSION,
        "this visit's interest in its category",
        Unit.RATE,
        "in the category this shopper is looking at right now",
        "outside what this shopper is looking at right now",
        zero_is_low=True,
    ),
    Feature(
        "session_brand_affinity",
        Family.SESSION,
        "this visit's interest in its brand",
        Unit.RATE,
        "the brand this shopper is looking at right now",
        "not a brand this shopper is looking at right now",
        zero_is_low=True,
    ),
    Feature(
        "relevance",
        Family.REQUEST,
        "search relevance against the other candidates",
        Unit.SCORE,
        "the search engine finds it very relevant",
        "the search engine finds it less relevant",
    ),
)

BY_NAME: dict[str, Feature] = {feature.name: feature for feature in REGISTRY}
