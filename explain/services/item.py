"""One item's full breakdown, each feature against the customer's typical value."""

from __future__ import annotations

from dataclasses import dataclass

from explain.charts import DivergingBar, diverging_bar
from explain.reasons import phrase, top_reasons
from explain.services.explained import Explained, ExplainedItem, ExplainError
from explain.units import feature_name, shown_value
from ranking.signals.schema import FEATURE_INDEX


@dataclass(frozen=True)
class FeatureRow:
    feature: str
    value: float
    typical: float | None  # the customer's mean of the feature in the current signal version
    spread: float | None  # its standard deviation
    contribution: float
    words: str
    bar: DivergingBar

    @property
    def name(self) -> str:
        return feature_name(self.feature)

    @property
    def shown(self) -> str:
        return shown_value(self.feature, self.value)

    @property
    def typical_shown(self) -> str:
        return shown_value(self.feature, self.typical)

    @property
    def z(self) -> float | None:
        """How many standard deviations the value is from the typical one."""
        if self.typical is None or not self.spread:
            return None
        return (self.value - self.typical) / self.spread


@dataclass(frozen=True)
class ItemDetail:
    item: ExplainedItem
    rows: tuple[FeatureRow, ...]  # by size of contribution, largest first
    reasons: tuple[str, ...]


def item_detail(explained: Explained, item_id: str) -> ItemDetail:
    """The full breakdown of one returned item, each feature against the customer's typical."""
    item = explained.item(item_id)
    if item is None:
        raise ExplainError("item", "This item is not among the ranked (returned) items.")
    typical, spread = explained.typical, explained.spread
    scale = max((abs(c.contribution) for c in item.contributions), default=0.0) or 1e-12
    rows = []
    for contribution in sorted(item.contributions, key=lambda c: -abs(c.contribution)):
        column = FEATURE_INDEX[contribution.feature]
        rows.append(
            FeatureRow(
                feature=contribution.feature,
                value=contribution.value,
                typical=None if typical is None else float(typical[column]),
                spread=None if spread is None else float(spread[column]),
                contribution=contribution.contribution,
                words=phrase(
                    contribution.feature,
                    contribution.contribution,
                    contribution.value,
                    None if typical is None else float(typical[column]),
                ),
                bar=diverging_bar([contribution], scale, width=200, height=12),
            )
        )
    return ItemDetail(item, tuple(rows), tuple(top_reasons(item.contributions, typical, 3)))
