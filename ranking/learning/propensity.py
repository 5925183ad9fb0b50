"""Position bias: how likely a shopper is to look at each position, estimated from the clicks.

The method (docs/learning.md): a position-based click model, P(click) = theta_position x
gamma_item, fitted by expectation-maximisation over every logged impression (Chuklin et al.,
"Click Models for Web Search", 2015; Wang et al., WSDM 2018). Because the same item is shown at
different positions across requests (different shoppers, queries and signal versions), the
model can tell "seen less" apart from "liked less". theta is normalised to theta_1 = 1, and a
power law theta_k = k ** -eta is fitted to it for reporting and to smooth thin positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EM_ITERATIONS = 60
# Inverse propensity weights are capped: a click at position 80 must not outweigh a whole page.
MAX_WEIGHT = 20.0
MIN_IMPRESSIONS_PER_POSITION = 30


@dataclass(frozen=True)
class PositionBias:
    examination: np.ndarray  # theta per position 1..P, theta_1 = 1
    eta: float  # power-law exponent fitted to theta
    impressions: int

    def weights(self, positions: np.ndarray) -> np.ndarray:
        """Inverse propensity weight per row (1-based positions), capped at MAX_WEIGHT."""
        index = np.clip(positions - 1, 0, len(self.examination) - 1)
        theta = np.maximum(self.examination[index], 1.0 / MAX_WEIGHT)
        return 1.0 / theta

    def to_json(self) -> dict[str, object]:
        return {
            "method": "position-based click model, EM",
            "eta": round(self.eta, 4),
            "examination": [round(float(t), 5) for t in self.examination[:30]],
            "impressions": self.impressions,
        }


def estimate_position_bias(
    positions: np.ndarray, items: np.ndarray, clicked: np.ndarray
) -> PositionBias:
    """Fit the position-based click model to logged impressions (1-based position, an item code
    per row, clicked or not) and return the examination probability of each position."""
    positions = positions.astype(np.int64) - 1
    n_positions = int(positions.max()) + 1 if len(positions) else 1
    n_items = int(items.max()) + 1 if len(items) else 1
    clicks = clicked.astype(np.float64)
    per_position = np.bincount(positions, minlength=n_positions).astype(np.float64)
    per_item = np.bincount(items, minlength=n_items).astype(np.float64)
    theta = np.full(n_positions, 0.5)
    gamma = np.full(n_items, 0.5)
    for _ in range(EM_ITERATIONS):
        t = theta[positions]
        g = gamma[items]
        unclicked = 1.0 - t * g
        seen = clicks + (1.0 - clicks) * t * (1.0 - g) / unclicked
        liked = clicks + (1.0 - clicks) * (1.0 - t) * g / unclicked
        theta = np.bincount(positions, seen, n_positions) / np.maximum(per_position, 1.0)
        gamma = np.bincount(items, liked, n_items) / np.maximum(per_item, 1.0)
        theta = np.clip(theta, 1e-4, 1.0 - 1e-6)
        gamma = np.clip(gamma, 1e-6, 1.0 - 1e-6)
    theta = theta / theta[0]
    eta = _power_law_exponent(theta, per_position)
    # Thin positions take the power law's value rather than a noisy estimate.
    thin = per_position < MIN_IMPRESSIONS_PER_POSITION
    theta[thin] = np.arange(1, n_positions + 1)[thin] ** -eta
    return PositionBias(examination=np.minimum(theta, 1.0), eta=eta, impressions=len(positions))


def _power_law_exponent(theta: np.ndarray, counts: np.ndarray) -> float:
    """Least squares of log theta on log position, weighted by impressions per position."""
    usable = (counts >= MIN_IMPRESSIONS_PER_POSITION) & (theta > 0)
    usable[0] = False  # log theta_1 = 0 by construction: it carries no information
    if usable.sum() < 2:
        return 0.0
    x = np.log(np.arange(1, len(theta) + 1)[usable])
    y = np.log(theta[usable])
    w = counts[usable]
    return float(max(0.0, -(w * x * y).sum() / (w * x * x).sum()))
