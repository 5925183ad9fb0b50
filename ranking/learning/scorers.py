"""The scorers of trained models, as the engine's `Scorer` protocol wants them.

Both score the K x F matrix in one vectorised call on one thread, on the float32 values the rank
log keeps, so a model sees at serving exactly the numbers it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ranking.learning.compiled import NativeSlot
from ranking.learning.lgbm import lightgbm
from ranking.signals.store import SignalMeta


def as_logged(features: np.ndarray) -> np.ndarray:
    """The feature values as the rank log stores them (float32), so training and serving agree."""
    return np.ascontiguousarray(features, dtype=np.float32)


@dataclass(frozen=True)
class LinearModelScorer:
    """score = intercept + sum_j coef_j * (x_j - mean_j) / std_j; contributions are the terms.

    Elementwise numpy only (no BLAS call), so it runs on the calling thread.
    """

    coef: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    intercept: float
    label: str | None
    method: str = "linear"

    def _terms(self, features: np.ndarray) -> np.ndarray:
        values = as_logged(features).astype(np.float64)
        return (values - self.mean) / self.std * self.coef

    def scores(self, features: np.ndarray, meta: SignalMeta | None) -> np.ndarray:
        return self._terms(features).sum(axis=1) + self.intercept

    def contributions(
        self, features: np.ndarray, meta: SignalMeta | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(features), self.intercept), self._terms(features)


@dataclass(frozen=True)
class TreeModelScorer:
    """A LightGBM LambdaMART booster; explanations are LightGBM's exact tree SHAP values.

    Scores come from the model compiled on this host once that is ready (`native`, filled in the
    background: ranking/learning/compiled.py), the same numbers several times faster; until then,
    or if it cannot be compiled, from LightGBM's predict on one thread."""

    booster: lightgbm.Booster
    label: str | None
    method: str = "tree_shap"
    native: NativeSlot | None = None

    def scores(self, features: np.ndarray, meta: SignalMeta | None) -> np.ndarray:
        compiled = self.native.trees if self.native is not None else None
        if compiled is not None:
            return compiled.predict(as_logged(features))
        result = self.booster.predict(as_logged(features), raw_score=True, num_threads=1)
        return np.asarray(result, dtype=np.float64)

    def contributions(
        self, features: np.ndarray, meta: SignalMeta | None
    ) -> tuple[np.ndarray, np.ndarray]:
        result = np.asarray(
            self.booster.predict(as_logged(features), pred_contrib=True, num_threads=1),
            dtype=np.float64,
        )
        return result[:, -1], result[:, :-1]
