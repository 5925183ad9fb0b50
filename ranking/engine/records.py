"""The immutable inputs and outputs of one ranking pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SCORE_TRANSFORM = "sigmoid"


@dataclass(frozen=True)
class RankerConfig:
    """A surface's blend of signals: weights over schema.FEATURES, personalisation applied."""

    name: str
    surface: str
    weights: np.ndarray


@dataclass(frozen=True)
class RankInput:
    surface: str
    query: str  # normalised; "" for none
    category: str
    shopper_key: str
    item_ids: tuple[str, ...]
    relevance: np.ndarray  # float64, NaN where the retriever sent none
    context: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    explain: bool = False


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    method: str
    base_value: float
    contributions: tuple[Contribution, ...]
    model_score: float
    transform: str
    position_before_rules: int


@dataclass(frozen=True)
class MissingSignals:
    """What the request had to default: counts of items, and whether the shopper was known."""

    items_without_signals: int
    pairs_without_query_signals: int
    items_without_relevance: int
    shopper_known: bool
    signals_version: int | None


@dataclass(frozen=True)
class RankOutcome:
    order: np.ndarray  # indexes into RankInput.item_ids, best first, truncated to the limit
    scores: np.ndarray  # rank score of each returned item, aligned with order
    degraded: bool
    config: str
    missing: MissingSignals
    features: np.ndarray | None  # K x F matrix the scores came from (None when degraded)
    explanations: tuple[Explanation, ...] | None = None
