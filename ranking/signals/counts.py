"""The decayed counts the item and query-item signals are computed from: their columns, windows
and decay (docs/signals.md, "Windows and decay"). Plain numbers and numpy, no database: the
feature registry (features.py), the refresh (refresh.py) and training's rebuild of past signals
(ranking/learning/replay.py) all read them."""

from __future__ import annotations

import numpy as np

SHORT_WINDOW_DAYS, SHORT_HALF_LIFE_DAYS = 7, 2.0
LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS = 90, 14.0

# The columns of an item's decayed sums, per window: one per event type, then the revenue, then
# the impressions weighted by how likely their position was looked at.
IMPRESSIONS, CLICKS, CARTS, PURCHASES = range(4)
REVENUE = 4
EXAMINED = 5
COLUMNS = 6
# An impression at position p was looked at with probability about p ** -EXAMINATION_ETA.
EXAMINATION_ETA = 1.0

# The columns of a (query, item) pair's long-window sums: the item's columns it keeps.
PAIR_COLUMNS = (IMPRESSIONS, CLICKS, PURCHASES, EXAMINED)
PAIR_IMPRESSIONS, PAIR_CLICKS, PAIR_PURCHASES, PAIR_EXAMINED = range(len(PAIR_COLUMNS))
# Query-item pairs need this many decayed impressions, or any engagement, to be stored.
MIN_QUERY_IMPRESSIONS = 3.0


def decay(age_days: np.ndarray, window_days: int, half_life: float) -> np.ndarray:
    """The weight of an event `age_days` old: 0.5 ** (age / half_life) within the window, else 0."""
    weights = np.power(0.5, age_days / half_life)
    weights[(age_days < 0) | (age_days >= window_days)] = 0.0
    return weights


def effective_days(window_days: int, half_life: float) -> float:
    """The days a window counts once decayed (the sum of its daily weights)."""
    return float(np.sum(np.power(0.5, np.arange(window_days) / half_life)))
