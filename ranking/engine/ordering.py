"""The engine's one ordering: best score first, equal scores by item id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def order_by_score(
    scores: np.ndarray, item_ids: Sequence[str], candidates: np.ndarray | None = None
) -> np.ndarray:
    """Indexes (of `candidates`, default all), best first; equal scores ordered by item id, so
    the order is stable and reproducible. Ties are rare among float scores, so only the runs of
    equal scores are sorted by id (sorting all 1000 ids took three times as long as the rest)."""
    subset = scores if candidates is None else scores[candidates]
    order = (-subset).argsort(kind="stable")
    ranked = subset[order]
    if candidates is not None:
        order = candidates[order]
    tied = ranked[1:] == ranked[:-1]
    if not tied.any():
        return order
    edges = np.diff(np.concatenate(([0], tied.view(np.int8), [0])))
    positions = order.tolist()
    for start, last in zip(
        np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True
    ):
        positions[start : last + 1] = sorted(positions[start : last + 1], key=item_ids.__getitem__)
    return np.asarray(positions, dtype=order.dtype)
