"""The engine's one ordering: best score first, equal scores by item id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def order_by_score(
    scores: np.ndarray, item_ids: Sequence[str], candidates: np.ndarray | None = None
) -> np.ndarray:
    """Indexes (of `candidates`, default all), best first; equal scores ordered by item id, so
    the order is stable and reproducible. Ties are rare among float scores, so the ids are
    only compared when some scores are equal."""
    if candidates is None:
        candidates = np.arange(len(scores))
    subset = scores[candidates]
    order = np.argsort(-subset, kind="stable")
    ranked = subset[order]
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        ids = np.asarray([item_ids[index] for index in candidates.tolist()])
        order = np.lexsort((ids, -subset))
    return candidates[order]
