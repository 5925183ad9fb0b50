"""The immutable inputs and outputs of one ranking pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from ranking.engine.scoring import Scorer
    from ranking.signals.store import SignalFetch

SCORE_TRANSFORM = "sigmoid"


@dataclass(frozen=True)
class RuleEffect:
    """One rule's effect on one item, as the explanation shows it."""

    rule_id: int
    name: str
    action: str
    effect: str


@dataclass(frozen=True)
class Removal:
    index: int  # into RankInput.item_ids
    rule_id: int
    reason: str


@dataclass(frozen=True)
class RulesApplied:
    """The rule stage's result: the whole order (hidden items left out) and adjusted scores."""

    order: np.ndarray
    scores: np.ndarray  # rank score per input item after boosts and buries
    removed: tuple[Removal, ...] = ()
    effects: dict[int, tuple[RuleEffect, ...]] = field(default_factory=dict)
    # Items a pin or slot placed (indexes into RankInput.item_ids): in an interleaved answer
    # they credit no team.
    placed: frozenset[int] = frozenset()


class RuleStage(Protocol):
    def matching(self, request: RankInput) -> Any:
        """The rules that apply to this request (computed before the signals are read)."""
        ...

    def hold_out(self, request: RankInput, active: Any) -> tuple[Any, dict[int, str] | None]:
        """The matching rules the shopper sees (not those whose holdout they are in), and the
        holdout group of each matching rule with a holdout (None: no such rule matched)."""
        ...

    def attribute_sets(self, active: Any) -> tuple[str, ...]:
        """The signal-store attribute sets those rules need, read with the signals."""
        ...

    def apply(
        self,
        request: RankInput,
        fetch: SignalFetch | None,
        rank_scores: np.ndarray,
        active: Any = None,
    ) -> RulesApplied:
        """Hide, boost/bury, order, diversify, slot and pin, as vectorised masks."""
        ...


@dataclass(frozen=True)
class Interleaving:
    """An interleaving experiment's B: the treatment's scorer, merged with the ranker's own
    (A) by team draft, the coin flips seeded by `salt` and the request id."""

    salt: str
    treatment: Scorer


@dataclass(frozen=True)
class RankerConfig:
    """A surface's ranker: the config's name, its scorer and the customer's rules."""

    name: str
    surface: str
    scorer: Scorer
    rules: RuleStage | None = None
    variant: str | None = None  # the experiment variant ("A", "B", "interleaved"), if any
    experiment_id: int | None = None  # the experiment whose variant it is
    # The shopper's variants of experiments in other layers: ((experiment id, variant), ...).
    layer_variants: tuple[tuple[int, str], ...] | None = None
    interleaving: Interleaving | None = None  # set: A and B merged (ranking/engine/interleaving)
    # Share of requests (0..1) in which one adjacent pair of the top 10 is swapped at random.
    exploration: float = 0.0


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
    at: datetime | None = None  # when the request is ranked (rules' windows); None: now


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
    rules: tuple[RuleEffect, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """As `/v1/rank` renders it with `explain: true`."""
        return {
            "method": self.method,
            "base_value": self.base_value,
            "contributions": [
                {"feature": c.feature, "value": c.value, "contribution": c.contribution}
                for c in self.contributions
            ],
            "model_score": self.model_score,
            "transform": self.transform,
            "rules": [
                {"rule_id": r.rule_id, "name": r.name, "action": r.action, "effect": r.effect}
                for r in self.rules
            ],
            "position_before_rules": self.position_before_rules,
        }


@dataclass(frozen=True)
class MissingSignals:
    """What the request had to default: counts of items, and whether the shopper was known."""

    items_without_signals: int
    pairs_without_query_signals: int
    items_without_relevance: int
    shopper_known: bool
    signals_version: int | None
    signals_at: str | None = None  # when that version was computed (ISO 8601)


@dataclass(frozen=True)
class RankOutcome:
    order: np.ndarray  # indexes into RankInput.item_ids, best first, truncated to the limit
    scores: np.ndarray  # rank score of each returned item, aligned with order
    degraded: bool
    config: str
    missing: MissingSignals
    features: np.ndarray | None  # K x F matrix the scores came from (None when degraded)
    explanations: tuple[Explanation, ...] | None = None
    model: str | None = None
    removed: tuple[Removal, ...] = ()
    # Seconds spent per stage ("features", "score", "rules", "explain"), for the metrics.
    stage_seconds: tuple[tuple[str, float], ...] = ()
    variant: str | None = None
    experiment_id: int | None = None  # the experiment `variant` belongs to
    layer_variants: tuple[tuple[int, str], ...] | None = None  # RankerConfig.layer_variants
    # Why the answer is degraded ("signal_store", "signal_store_breaker"), None when not.
    degraded_reason: str | None = None
    # Position k when exploration swapped the items at k and k + 1 (1-based), else None.
    swapped_at: int | None = None
    # Per matching rule with a holdout: "held_out" or "exposed" (None: no such rule matched).
    rule_holdouts: dict[int, str] | None = None
    # Interleaved answers: per returned position the team that picked the item ("A", "B", or
    # "-" for an item a pin or slot placed); None otherwise.
    teams: str | None = None
