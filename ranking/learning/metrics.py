"""Holdout metrics: NDCG@k on graded labels, and revenue-weighted NDCG@k.

Requests without any positive gain carry no ranking signal and are left out. Equal scores keep
the order that was shown, which favours the ranker that produced the log (a conservative choice
for a new model).
"""

from __future__ import annotations

import itertools

import numpy as np

# The keys of a ranker's holdout metrics (training.holdout_metrics), as a model stores them.
NDCG = "ndcg@10"
REVENUE_NDCG = "revenue_ndcg@10"
REVENUE = "revenue_per_search"
CLICKS = "clicks_per_search"


def ndcg_at_k(
    gains: np.ndarray,
    scores: np.ndarray,
    group_starts: np.ndarray,
    k: int = 10,
    *,
    pooled: bool = False,
) -> float:
    """NDCG@k over groups (rows group_starts[i]..group_starts[i+1]) of gains >= 0.

    Per group and averaged by default. `pooled` divides the summed DCG by the summed ideal DCG
    instead: with inverse-propensity-weighted gains the summed DCG is an unbiased estimate of
    the true DCG and the denominator does not depend on the scorer, so comparisons stay unbiased
    (a per-group ratio of weighted gains is not: see docs/learning.md).
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg, ideal_dcg = [], []
    for start, stop in itertools.pairwise(np.append(group_starts, len(gains))):
        gain = gains[start:stop]
        if not (gain > 0).any():
            continue
        order = np.lexsort((np.arange(len(gain)), -scores[start:stop]))[:k]
        ideal = np.sort(gain)[::-1][:k]
        dcg.append((gain[order] * discounts[: len(order)]).sum())
        ideal_dcg.append((ideal * discounts[: len(ideal)]).sum())
    if not dcg:
        return 0.0
    if pooled:
        return float(np.sum(dcg) / np.sum(ideal_dcg))
    return float(np.mean(np.asarray(dcg) / np.asarray(ideal_dcg)))


def label_gains(labels: np.ndarray) -> np.ndarray:
    """The standard exponential gain of graded labels: 2 ** label - 1."""
    return np.exp2(labels.astype(np.float64)) - 1.0
