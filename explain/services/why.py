"""Why is A above B: the model-score gap split exactly into the base values' gap and one gap per
feature, and whether the order comes from the model or from rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

from explain.charts import DivergingBar, bar_scale, diverging_bar
from explain.services.explained import Explained, ExplainedItem, ExplainError
from ranking.engine.records import Contribution


@dataclass(frozen=True)
class FeatureGap:
    feature: str
    value_a: float
    value_b: float
    contribution_a: float
    contribution_b: float

    @property
    def gap(self) -> float:
        return self.contribution_a - self.contribution_b


@dataclass(frozen=True)
class Why:
    """A's model score minus B's, split exactly: the base values' gap plus one gap per feature."""

    a: ExplainedItem
    b: ExplainedItem
    base_gap: float
    gaps: tuple[FeatureGap, ...]  # largest first
    model_score_gap: float
    verdict: str
    rule_notes: tuple[str, ...]
    bar: DivergingBar

    @property
    def explained_gap(self) -> float:
        return self.base_gap + math.fsum(gap.gap for gap in self.gaps)

    @property
    def residual(self) -> float:
        return self.model_score_gap - self.explained_gap

    @property
    def a_above(self) -> bool:
        return self.a.position < self.b.position


def _effects_text(item: ExplainedItem) -> str:
    return "; ".join(f"{effect.effect} (rule {effect.name!r})" for effect in item.rules)


def why_above(explained: Explained, a_id: str, b_id: str) -> Why:
    """The per-feature differences that account for the model-score gap between A and B, and
    whether the order comes from the model or from rules (a pin, slot, boost...)."""
    a, b = explained.item(a_id), explained.item(b_id)
    if a is None:
        raise ExplainError("a", "Item A is not among the ranked (returned) items.")
    if b is None:
        raise ExplainError("b", "Item B is not among the ranked (returned) items.")
    if a.item_id == b.item_id:
        raise ExplainError("b", "Choose two different items.")
    by_feature_b = {c.feature: c for c in b.contributions}
    gaps = [
        FeatureGap(
            feature=c.feature,
            value_a=c.value,
            value_b=by_feature_b[c.feature].value,
            contribution_a=c.contribution,
            contribution_b=by_feature_b[c.feature].contribution,
        )
        for c in a.contributions
    ]
    gaps.sort(key=lambda gap: (-abs(gap.gap), gap.feature))
    base_gap = a.explanation.base_value - b.explanation.base_value
    score_gap = a.model_score - b.model_score
    above = a.position < b.position
    where = "above" if above else "below"
    model_above = a.position_before_rules < b.position_before_rules
    rule_notes = [f"{x.item_id}: {_effects_text(x)}" for x in (a, b) if x.rules]
    if above == model_above:
        higher = "higher" if score_gap > 0 else "lower" if score_gap < 0 else "equal"
        verdict = (
            f"The model puts {a.item_id} {where} {b.item_id}: its model score is {higher} by "
            f"{abs(score_gap):.4f}."
        )
        if score_gap == 0:
            verdict = f"The model scores them equally; {a.item_id} is {where} by item id."
        if rule_notes:
            verdict += " Rules touched them without changing their order."
    else:
        verdict = (
            f"Rules put {a.item_id} {where} {b.item_id}: the model alone ranks them the other way "
            f"(positions {a.position_before_rules} and {b.position_before_rules} without rules)."
        )
    gap_contributions = [Contribution(g.feature, 0.0, g.gap) for g in gaps]
    scale = bar_scale([gap_contributions])
    return Why(
        a=a,
        b=b,
        base_gap=base_gap,
        gaps=tuple(gaps),
        model_score_gap=score_gap,
        verdict=verdict,
        rule_notes=tuple(rule_notes),
        bar=diverging_bar(gap_contributions, scale, width=480, height=22),
    )
