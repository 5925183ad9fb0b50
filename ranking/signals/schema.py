"""The feature schema: every signal the engine scores on, in matrix column order.

Item signals are computed by the refresh and stored as one packed record per item. Query-item
signals are stored per (normalised query, item). Shopper signals are updated at ingest. The
request's relevance comes with the candidates. The schema hash is stored with each signal version
and with each trained model, so a model never scores on columns it was not trained on.

Defaults for missing data (documented in docs/signals.md):
- item unknown to the signal version: the customer's prior means for rates, zero for counts,
  the median price, price percentile 0.5, freshness 0, in stock 1;
- query-item pair never seen: the item's own smoothed rates (the prior of the pair);
- shopper unknown, or no shopper in the request: all shopper signals 0 (the price gap too: no
  usual price to compare with); a shopper whose last action is over half an hour before the
  request has no session, so both session signals are 0;
- relevance not sent: 0 after standardisation within the request.
"""

from __future__ import annotations

import hashlib

import numpy as np

ITEM_FEATURES: tuple[str, ...] = (
    "ctr",
    "add_to_cart_rate",
    "conversion_rate",
    "revenue_per_impression",
    "popularity",
    "trend",
    "impressions_long",
    "clicks_long",
    "add_to_carts_long",
    "purchases_long",
    "revenue_long",
    "impressions_short",
    "clicks_short",
    "purchases_short",
    "price",
    "price_percentile",
    "freshness",
    "in_stock",
)
QUERY_FEATURES: tuple[str, ...] = ("query_ctr", "query_conversion_rate")
# What the shopper's own actions say (ranking/signals/shopper.py has their definitions).
SHOPPER_FEATURES: tuple[str, ...] = (
    "user_category_affinity",
    "user_brand_affinity",
    "user_price_gap",
    "user_recently_viewed",
    "user_purchased",
    "session_category_affinity",
    "session_brand_affinity",
)
# The request's own: always the last column, in every schema this project has had (training reads
# the relevance of log rows of an older schema from there).
REQUEST_FEATURES: tuple[str, ...] = ("relevance",)

FEATURES: tuple[str, ...] = ITEM_FEATURES + QUERY_FEATURES + SHOPPER_FEATURES + REQUEST_FEATURES
FEATURE_INDEX: dict[str, int] = {name: index for index, name in enumerate(FEATURES)}

N_ITEM = len(ITEM_FEATURES)
QUERY_SLICE = slice(N_ITEM, N_ITEM + len(QUERY_FEATURES))
SHOPPER_SLICE = slice(QUERY_SLICE.stop, QUERY_SLICE.stop + len(SHOPPER_FEATURES))
RELEVANCE_COLUMN = FEATURE_INDEX["relevance"]

# Categories per item kept in the packed record (the most specific ones win when an item has more).
MAX_ITEM_CATEGORIES = 8

# One packed item record: the item signals, the brand code and category codes (-1 = none), both
# indexes into the dictionaries stored with the version.
ITEM_RECORD = np.dtype(
    [
        ("signals", "<f4", (N_ITEM,)),
        ("brand", "<i4"),
        ("categories", "<i4", (MAX_ITEM_CATEGORIES,)),
    ]
)
QUERY_RECORD = np.dtype([("signals", "<f4", (len(QUERY_FEATURES),))])

SCHEMA_HASH = hashlib.sha256(
    ("|".join(FEATURES) + f"|cats={MAX_ITEM_CATEGORIES}").encode()
).hexdigest()[:16]
