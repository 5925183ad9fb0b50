"""Two rankers on the same candidates, side by side: positions, deltas and the features whose
contribution changed most for each item."""

from __future__ import annotations

from dataclasses import dataclass

from explain.services.explained import (
    Explained,
    ExplainedItem,
    ExplainParams,
    explain_ranking,
    position_move,
)
from ranking.engine.records import RuleEffect


@dataclass(frozen=True)
class CompareRow:
    item_id: str
    title: str
    position_a: int | None
    position_b: int | None
    moved_by: tuple[tuple[str, float], ...]  # features whose contribution changed most (b - a)
    rules_a: tuple[RuleEffect, ...]
    rules_b: tuple[RuleEffect, ...]

    @property
    def delta(self) -> str:
        """B's position against A's: ▲n up in B, ▼n down, = same; "only A"/"only B" if hidden."""
        if self.position_a is None:
            return "only B"
        if self.position_b is None:
            return "only A"
        return position_move(self.position_a, self.position_b)


@dataclass(frozen=True)
class Comparison:
    a: Explained
    b: Explained
    rows: tuple[CompareRow, ...]  # in A's order, then items only B returns

    @property
    def moved(self) -> int:
        return sum(1 for row in self.rows if row.position_a != row.position_b)


MOVED_BY = 3


def _moved_by(a: ExplainedItem | None, b: ExplainedItem | None) -> tuple[tuple[str, float], ...]:
    if a is None or b is None:
        return ()
    before = {c.feature: c.contribution for c in a.contributions}
    changes = [(c.feature, c.contribution - before[c.feature]) for c in b.contributions]
    changes.sort(key=lambda change: (-abs(change[1]), change[0]))
    return tuple(change for change in changes[:MOVED_BY] if abs(change[1]) > 1e-12)


def compare(params: ExplainParams, compare_key: str) -> Comparison:
    """The same candidates ranked by two rankers, each with its breakdowns, row by row."""
    a = explain_ranking(params)
    b = explain_ranking(params, ranker_key=compare_key)
    b_items = {item.item_id: item for item in b.items}
    rows = []
    for item in a.items:
        other = b_items.get(item.item_id)
        rows.append(
            CompareRow(
                item_id=item.item_id,
                title=item.title,
                position_a=item.position,
                position_b=other.position if other else None,
                moved_by=_moved_by(item, other),
                rules_a=item.rules,
                rules_b=other.rules if other else (),
            )
        )
    a_ids = {item.item_id for item in a.items}
    rows += [
        CompareRow(item.item_id, item.title, None, item.position, (), (), item.rules)
        for item in b.items
        if item.item_id not in a_ids
    ]
    return Comparison(a, b, tuple(rows))
