"""Scorers: what turns the K x F feature matrix into model scores, and explains them exactly.

A ranking config without an active model scores with its weighted blend of standardised signals
(`BlendScorer`); a trained model brings its own scorer. Every scorer explains a score as a base
value plus one contribution per feature that sum to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ranking.signals.store import SignalMeta


class Scorer(Protocol):
    @property
    def method(self) -> str:
        """`linear` (coefficient x standardised value) or `tree_shap` (exact tree SHAP)."""
        ...

    @property
    def label(self) -> str | None:
        """What `ranker.model` shows, e.g. "lambdamart@3"; None for a config's blend."""
        ...

    def scores(self, features: np.ndarray, meta: SignalMeta | None) -> np.ndarray:
        """Model score per row of the K x F matrix, in one vectorised call."""
        ...

    def contributions(
        self, features: np.ndarray, meta: SignalMeta | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(base value per row, N x F contributions); each row's sum is its model score."""
        ...


@dataclass(frozen=True)
class BlendScorer:
    """A config's weights over the signals, standardised with the signal version's statistics
    (so a weight means the same whatever a feature's scale)."""

    weights: np.ndarray
    method: str = "linear"
    label: str | None = None

    def _standardised(self, features: np.ndarray, meta: SignalMeta | None) -> np.ndarray:
        if meta is None:
            return features
        return (features - meta.feature_mean) / meta.feature_std

    def scores(self, features: np.ndarray, meta: SignalMeta | None) -> np.ndarray:
        return self._standardised(features, meta) @ self.weights

    def contributions(
        self, features: np.ndarray, meta: SignalMeta | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(features)), self._standardised(features, meta) * self.weights
