"""Position bias: how likely a shopper is to look at each position, estimated from the clicks.

The method (docs/learning.md): a position-based click model, P(click) = theta_position x
gamma, fitted by expectation-maximisation over every logged impression (Chuklin et al., "Click
Models for Web Search", 2015). gamma, how much the shopper wants the item, is first one number
per item, then (regression EM, Wang et al., WSDM 2018) a function of the request's features,
shopper signals included, fitted by gradient-boosted trees at each M step: a personalised ranker
puts what this shopper likes on top, and a per-item gamma would read that as position bias.
theta is normalised to theta_1 = 1, and a power law theta_k = k ** -eta is fitted to it for
reporting and to smooth thin positions.

When the log holds enough randomly swapped pairs (a ranking config's exploration share), theta of
the top 10 comes from them instead (intervention harvesting, Joachims et al., WSDM 2017; Agarwal
et al., WSDM 2019): the two items of a pair have the same distribution whether swapped or not, so
their clicks at k and k + 1 in both cases give theta_(k+1) / theta_k without any model of what
shoppers want. The features cannot confound it, which a personalised ranker's log can do to EM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EM_ITERATIONS = 60
# Inverse propensity weights are capped: a click at position 80 must not outweigh a whole page.
MAX_WEIGHT = 20.0
MIN_IMPRESSIONS_PER_POSITION = 30


REGRESSION_ITERATIONS = 8
REGRESSION_TREES = 40
# Randomly swapped pairs measure theta from the top down, as far as each pair has this many
# clicks on each side when swapped; at least MIN_SWAPPED_PAIRS pairs are needed to use them.
MIN_SWAPPED_CLICKS = 10
MIN_SWAPPED_PAIRS = 3
SWAP_TOP = 10


@dataclass(frozen=True)
class PositionBias:
    examination: np.ndarray  # theta per position 1..P, theta_1 = 1
    eta: float  # power-law exponent fitted to theta
    impressions: int
    method: str = "position-based click model, EM"
    # Per impression fitted on: the posterior probability that the shopper wanted the item
    # (not kept in the registry; training fits the click model to it).
    wanted: np.ndarray | None = field(default=None, repr=False, compare=False)

    def examination_at(self, positions: np.ndarray) -> np.ndarray:
        """theta of each 1-based position (positions past the estimate take the power law)."""
        index = positions - 1
        known = index < len(self.examination)
        theta = np.where(known, self.examination[np.clip(index, 0, len(self.examination) - 1)], 0.0)
        return np.where(known, theta, np.maximum(positions, 1).astype(np.float64) ** -self.eta)

    def weights(self, positions: np.ndarray) -> np.ndarray:
        """Inverse propensity weight per row (1-based positions), capped at MAX_WEIGHT."""
        index = np.clip(positions - 1, 0, len(self.examination) - 1)
        theta = np.maximum(self.examination[index], 1.0 / MAX_WEIGHT)
        return 1.0 / theta

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "eta": round(self.eta, 4),
            "examination": [round(float(t), 5) for t in self.examination[:30]],
            "impressions": self.impressions,
        }


def estimate_position_bias(
    positions: np.ndarray,
    items: np.ndarray,
    clicked: np.ndarray,
    *,
    features: np.ndarray | None = None,
    group_starts: np.ndarray | None = None,
    swapped_at: np.ndarray | None = None,
) -> PositionBias:
    """Fit the position-based click model to logged impressions (1-based position, an item code
    per row, clicked or not) and return the examination probability of each position. With
    `features` (a row per impression), gamma is a function of them (regression EM). With
    `swapped_at` (per request of `group_starts`: k when exploration swapped k and k + 1, else 0)
    and enough swaps, theta of the top positions is measured from the swaps."""
    positions = positions.astype(np.int64) - 1
    n_positions = int(positions.max()) + 1 if len(positions) else 1
    n_items = int(items.max()) + 1 if len(items) else 1
    clicks = clicked.astype(np.float64)
    per_position = np.bincount(positions, minlength=n_positions).astype(np.float64)
    per_item = np.bincount(items, minlength=n_items).astype(np.float64)
    theta = np.full(n_positions, 0.5)
    gamma = np.full(n_items, 0.5)
    for _ in range(EM_ITERATIONS):
        theta, liked = _e_and_theta(theta, gamma[items], positions, clicks, per_position)
        gamma = np.bincount(items, liked, n_items) / np.maximum(per_item, 1.0)
        gamma = np.clip(gamma, 1e-6, 1.0 - 1e-6)
    method = "position-based click model, EM"
    swapped_eta = None
    if swapped_at is not None and group_starts is not None:
        swapped_eta = swap_exponent(positions + 1, clicks, group_starts, swapped_at)
    wanted = None
    if swapped_eta is not None:
        theta = np.arange(1, n_positions + 1, dtype=np.float64) ** -swapped_eta
        method = "power law fitted to randomised adjacent swaps (intervention harvesting)"
    if features is not None and clicks.sum() >= 50:
        theta, wanted = _regression_em(
            theta,
            gamma[items],
            positions,
            clicks,
            per_position,
            features,
            fixed=swapped_eta is not None,
        )
        if swapped_eta is None:
            method = "position-based click model, regression EM on the features"
    if swapped_eta is not None:
        return PositionBias(
            examination=theta,
            eta=swapped_eta,
            impressions=len(positions),
            method=method,
            wanted=wanted,
        )
    theta = theta / theta[0]
    eta = _power_law_exponent(theta, per_position)
    # Thin positions take the power law's value rather than a noisy estimate.
    thin = per_position < MIN_IMPRESSIONS_PER_POSITION
    theta[thin] = np.arange(1, n_positions + 1)[thin] ** -eta
    return PositionBias(
        examination=np.minimum(theta, 1.0),
        eta=eta,
        impressions=len(positions),
        method=method,
        wanted=wanted,
    )


def _e_and_theta(
    theta: np.ndarray,
    gamma_rows: np.ndarray,
    positions: np.ndarray,
    clicks: np.ndarray,
    per_position: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One E step and theta's M step: the new theta, and each row's posterior of "liked"."""
    t = theta[positions]
    unclicked = 1.0 - t * gamma_rows
    seen = clicks + (1.0 - clicks) * t * (1.0 - gamma_rows) / unclicked
    liked = clicks + (1.0 - clicks) * (1.0 - t) * gamma_rows / unclicked
    theta = np.bincount(positions, seen, len(theta)) / np.maximum(per_position, 1.0)
    return np.clip(theta, 1e-4, 1.0 - 1e-6), liked


def _regression_em(
    theta: np.ndarray,
    gamma_rows: np.ndarray,
    positions: np.ndarray,
    clicks: np.ndarray,
    per_position: np.ndarray,
    features: np.ndarray,
    fixed: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Regression EM: gamma = f(features), f boosted trees fitted to the posterior of "liked"
    (cross-entropy on soft labels), warm-started from the per-item estimate. Returns theta and
    the final posterior of "liked" per row; `fixed` keeps theta as given (measured)."""
    from ranking.learning.lgbm import lightgbm

    values = np.ascontiguousarray(features, dtype=np.float32)
    params = {
        "objective": "cross_entropy",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": 50,
        "num_threads": 1,
        "deterministic": True,
        "seed": 7,
        "verbose": -1,
    }
    given = theta
    for _ in range(REGRESSION_ITERATIONS):
        theta, liked = _e_and_theta(theta, gamma_rows, positions, clicks, per_position)
        theta = given if fixed else theta
        dataset = lightgbm.Dataset(
            values, label=liked, params={"feature_pre_filter": False, "verbose": -1}
        )
        booster = lightgbm.train(params, dataset, num_boost_round=REGRESSION_TREES)
        gamma_rows = np.clip(np.asarray(booster.predict(values)), 1e-6, 1.0 - 1e-6)
    theta, liked = _e_and_theta(theta, gamma_rows, positions, clicks, per_position)
    return (given if fixed else theta), liked


def swap_exponent(
    positions: np.ndarray, clicks: np.ndarray, group_starts: np.ndarray, swapped_at: np.ndarray
) -> float | None:
    """eta of theta_k = k^-eta from randomly swapped adjacent pairs of the top 10, or None with
    fewer than MIN_SWAPPED_PAIRS pairs of MIN_SWAPPED_CLICKS clicks on each side when swapped.

    For the pair at k: in requests left alone the items at k and k + 1 get clicks theta_k a and
    theta_(k+1) b; swapped, theta_k b and theta_(k+1) a (a and b, what shoppers think of the
    two items, are the same in both: the swap was random). So log(theta_(k+1) / theta_k) is half
    the log of the product of the k + 1 click rates over that of the k click rates, whatever a
    and b are. eta is the least-squares slope of these against log((k + 1) / k), each pair
    weighted by the inverse of its variance (from its click counts)."""
    sizes = np.diff(np.append(group_starts, len(positions)))
    swaps = np.repeat(swapped_at, sizes)
    alone = swaps == 0
    n_alone = int((swapped_at == 0).sum())
    xs, ys, weights = [], [], []
    for k in range(1, SWAP_TOP):
        chosen = swaps == k
        n_swapped = int((swapped_at == k).sum())
        counts = np.array(
            [
                clicks[alone & (positions == k)].sum(),
                clicks[alone & (positions == k + 1)].sum(),
                clicks[chosen & (positions == k)].sum(),
                clicks[chosen & (positions == k + 1)].sum(),
            ],
            dtype=np.float64,
        )
        if counts[2:].min() < MIN_SWAPPED_CLICKS or counts[:2].min() <= 0:
            continue
        rates = counts / np.array([n_alone, n_alone, n_swapped, n_swapped])
        xs.append(np.log((k + 1) / k))
        ys.append(0.5 * np.log(rates[1] * rates[3] / (rates[0] * rates[2])))
        weights.append(1.0 / (0.25 * (1.0 / counts).sum()))
    if len(xs) < MIN_SWAPPED_PAIRS:
        return None
    x, y, w = np.array(xs), np.array(ys), np.array(weights)
    return float(max(0.0, -(w * x * y).sum() / (w * x * x).sum()))


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
