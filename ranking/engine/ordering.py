"""The engine's one ordering: best score first, equal scores by item id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def order_by_score(
    scores: np.ndarray, item_ids: Sequence[str], candidates: np.ndarray | None = None
) -> np.ndarray:
    """Indexes (of `candidates`, default all), best first; equal scores ordered by item id, so
    the order is stable and reproducible. Ties are rare among float scores, so only the items in
    runs of equal scores are sorted by id (sorting all 1000 ids took three times as long as the
    rest), all runs in one sort."""
    subset = scores if candidates is None else scores[candidates]
    # Equal scores are put in id order below, so the sort need not be stable (a stable sort of
    # 1000 floats costs three times as much), except among NaN scores, which never compare equal
    # and keep their input order. The method, not np.argsort: no dispatch through numpy's wrapper.
    order = (-subset).argsort(kind="stable" if np.isnan(subset).any() else "quicksort")
    ranked = subset[order]
    if candidates is not None:
        order = candidates[order]
    tied = ranked[1:] == ranked[:-1]
    if not tied.any():
        return order
    # The places held by runs of equal scores, each item keyed by its run (the runs are in score
    # order already) and its id: one sort puts every run in id order.
    places = np.flatnonzero(np.concatenate((tied, [False])) | np.concatenate(([False], tied)))
    runs = np.cumsum(np.concatenate(([True], ~tied)))[places].tolist()
    members = order[places].tolist()
    keys = [(run, item_ids[member]) for run, member in zip(runs, members, strict=True)]
    order[places] = [member for _, member in sorted(zip(keys, members, strict=True))]
    return order
