"""Turn one signal fetch into the K x F feature matrix, in schema.FEATURES column order."""

from __future__ import annotations

import numpy as np

from ranking.engine.records import MissingSignals, RankInput
from ranking.signals.schema import (
    FEATURE_INDEX,
    FEATURES,
    N_ITEM,
    QUERY_SLICE,
    RELEVANCE_COLUMN,
)
from ranking.signals.store import SignalFetch

_CTR = FEATURE_INDEX["ctr"]
_CONVERSION = FEATURE_INDEX["conversion_rate"]
_CATEGORY_AFFINITY = FEATURE_INDEX["user_category_affinity"]
_BRAND_AFFINITY = FEATURE_INDEX["user_brand_affinity"]
_VIEWED = FEATURE_INDEX["user_recently_viewed"]
_PURCHASED = FEATURE_INDEX["user_purchased"]


def standardised_relevance(relevance: np.ndarray) -> np.ndarray:
    """Relevance as z-scores within the request (retrievers' scales differ); 0 where missing."""
    given = ~np.isnan(relevance)
    result = np.zeros(len(relevance))
    if given.sum() >= 2:
        values = relevance[given]
        std = values.std()
        if std > 0:
            result[given] = (values - values.mean()) / std
    return result


def _shares(
    weights: dict[str, float], index: dict[str, int], size: int, total: float
) -> np.ndarray:
    """Weight share per dictionary code, with one extra 0 slot that code -1 (none) lands on."""
    shares = np.zeros(size + 1)
    for name, weight in weights.items():
        code = index.get(name)
        if code is not None:
            shares[code] = weight / total
    return shares


def build_features(request: RankInput, fetch: SignalFetch) -> tuple[np.ndarray, MissingSignals]:
    k = len(request.item_ids)
    matrix = np.zeros((k, len(FEATURES)))
    records = fetch.item_records
    matrix[:, :N_ITEM] = records["signals"]

    # A query-item pair never seen falls back to the item's own rates: the pair's prior.
    matrix[:, QUERY_SLICE.start] = matrix[:, _CTR]
    matrix[:, QUERY_SLICE.start + 1] = matrix[:, _CONVERSION]
    pairs_missing = 0
    if fetch.query_records is not None and fetch.query_found is not None:
        found = fetch.query_found
        matrix[found, QUERY_SLICE] = fetch.query_records["signals"][found]
        pairs_missing = int(k - found.sum())
    elif request.query:
        pairs_missing = k

    profile = fetch.shopper
    meta = fetch.meta
    if meta is not None and profile.total_weight > 0:
        total = profile.total_weight
        brand_shares = _shares(profile.brand_weights, meta.brand_index, len(meta.brands), total)
        category_shares = _shares(
            profile.category_weights, meta.category_index, len(meta.categories), total
        )
        matrix[:, _BRAND_AFFINITY] = brand_shares[records["brand"]]
        matrix[:, _CATEGORY_AFFINITY] = category_shares[records["categories"]].max(axis=1)
    if profile.recently_viewed:
        matrix[:, _VIEWED] = [item in profile.recently_viewed for item in request.item_ids]
    if profile.purchased:
        matrix[:, _PURCHASED] = [item in profile.purchased for item in request.item_ids]

    matrix[:, RELEVANCE_COLUMN] = standardised_relevance(request.relevance)
    missing = MissingSignals(
        items_without_signals=int(k - fetch.item_found.sum()),
        pairs_without_query_signals=pairs_missing,
        items_without_relevance=int(np.isnan(request.relevance).sum()),
        shopper_known=not profile.is_empty,
        signals_version=meta.version if meta is not None else None,
    )
    return matrix, missing
