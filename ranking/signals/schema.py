"""The feature schema: every signal the engine scores on, in matrix column order, derived at
import from the feature registry (features.py: one entry per feature, its family, computation,
default, unit and words).

Item signals are computed by the refresh and stored as one packed record per item. Query-item
signals are stored per (normalised query, item). Shopper signals are updated at ingest. The
request's relevance comes with the candidates. The schema hash is stored with each signal version
and with each trained model, so a model never scores on columns it was not trained on.

Defaults for missing data (documented in docs/signals.md; the item's in the registry's `unknown`):
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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ranking.signals.features import (
    ITEM_FAMILIES,
    REGISTRY,
    SHOPPER_FAMILIES,
    Family,
    Feature,
)

# Categories per item kept in the packed record (the most specific ones win when an item has more).
MAX_ITEM_CATEGORIES = 8

# The blocks of the feature matrix, in column order. The request's block is always the last
# column, in every schema this project has had (training reads the relevance of log rows of an
# older schema from there).
_BLOCKS: tuple[frozenset[Family], ...] = (
    ITEM_FAMILIES,
    frozenset({Family.QUERY_ITEM}),
    SHOPPER_FAMILIES,
    frozenset({Family.REQUEST}),
)


@dataclass(frozen=True)
class Schema:
    """The columns a registry gives: names per block, indexes, record types and the hash."""

    features: tuple[Feature, ...]
    item: tuple[Feature, ...]
    query: tuple[Feature, ...]
    shopper: tuple[Feature, ...]
    request: tuple[Feature, ...]
    names: tuple[str, ...]
    index: dict[str, int]
    item_record: np.dtype
    query_record: np.dtype
    hash: str

    @property
    def n_item(self) -> int:
        return len(self.item)

    @property
    def query_slice(self) -> slice:
        return slice(self.n_item, self.n_item + len(self.query))

    @property
    def shopper_slice(self) -> slice:
        start = self.query_slice.stop
        return slice(start, start + len(self.shopper))

    @property
    def query_prior_columns(self) -> np.ndarray:
        """Per query-item feature, the item column it falls back to for a pair never seen."""
        return np.array([self.index[f.pair_rate.prior] for f in self.query if f.pair_rate])


def build_schema(features: Sequence[Feature]) -> Schema:
    """The schema of a registry: its features must come block by block (item, query-item,
    shopper and session, request) with unique names; a query-item feature's prior is an item's."""
    blocks: list[tuple[Feature, ...]] = [
        tuple(f for f in features if f.family in families) for families in _BLOCKS
    ]
    ordered = tuple(f for block in blocks for f in block)
    if ordered != tuple(features):
        raise ValueError("features must come in blocks: item, query-item, shopper, request")
    names = tuple(f.name for f in ordered)
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    item, query, shopper, request = blocks
    item_names = {f.name for f in item}
    if any(f.pair_rate is None or f.pair_rate.prior not in item_names for f in query):
        raise ValueError("a query-item feature falls back to an item feature")
    return Schema(
        features=ordered,
        item=item,
        query=query,
        shopper=shopper,
        request=request,
        names=names,
        index={name: column for column, name in enumerate(names)},
        # One packed item record: the item signals, the brand code and category codes (-1 =
        # none), both indexes into the dictionaries stored with the version.
        item_record=np.dtype(
            [
                ("signals", "<f4", (len(item),)),
                ("brand", "<i4"),
                ("categories", "<i4", (MAX_ITEM_CATEGORIES,)),
            ]
        ),
        query_record=np.dtype([("signals", "<f4", (len(query),))]),
        hash=hashlib.sha256(
            ("|".join(names) + f"|cats={MAX_ITEM_CATEGORIES}").encode()
        ).hexdigest()[:16],
    )


SCHEMA = build_schema(REGISTRY)

ITEM_FEATURES: tuple[str, ...] = tuple(f.name for f in SCHEMA.item)
QUERY_FEATURES: tuple[str, ...] = tuple(f.name for f in SCHEMA.query)
# What the shopper's own actions say (ranking/signals/shopper.py has their definitions).
SHOPPER_FEATURES: tuple[str, ...] = tuple(f.name for f in SCHEMA.shopper)
REQUEST_FEATURES: tuple[str, ...] = tuple(f.name for f in SCHEMA.request)

FEATURES: tuple[str, ...] = SCHEMA.names
FEATURE_INDEX: dict[str, int] = SCHEMA.index

N_ITEM = SCHEMA.n_item
QUERY_SLICE = SCHEMA.query_slice
SHOPPER_SLICE = SCHEMA.shopper_slice
RELEVANCE_COLUMN = FEATURE_INDEX["relevance"]
# The item columns a query-item pair never seen takes its values from (its prior).
QUERY_PRIOR_COLUMNS = SCHEMA.query_prior_columns

ITEM_RECORD = SCHEMA.item_record
QUERY_RECORD = SCHEMA.query_record

SCHEMA_HASH = SCHEMA.hash
