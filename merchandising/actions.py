"""Rule actions: one table entry per action type, each with its compiled parameters, how they are
compiled from the action's contract, and the stage function that applies the request's matching
rules of that type. Plain Python and numpy, like the engine that runs them.

Adding an action touches its contract (merchandising/contracts.py: the pydantic model and the
`Action` union), its entry here (parameters, compile, stage, phase), its form fragment
(merchandising/forms.py: `ACTION_FIELDS` and `action_document`) and docs/rules.md; nothing else.

Stages run in phase order, each given every matching rule of its type at once (highest priority
first), so that rules of one type combine the way docs/rules.md says:

- FILTER (hide): an item is hidden by the first hide rule that matches it;
- SCORE (boost, bury): the factors of every matching rule multiply the rank score;
- then the items are ordered by the adjusted score, ties by item id;
- REORDER (sink, then diversity): moves within the order;
- PLACE (pin, then slot): fixed positions, filled in last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from merchandising.compiled import NoParams
from ranking.engine.ordering import order_by_score
from ranking.engine.records import Removal, RuleEffect, RulesApplied

if TYPE_CHECKING:
    from merchandising.compiled import CompiledRule, ItemFacts


# --- compiled parameters, one type per action (hide and sink: compiled.NoParams) -------------
@dataclass(frozen=True)
class Factor:
    """boost, bury: the rank score is multiplied by `multiplier`."""

    multiplier: float


@dataclass(frozen=True)
class Pins:
    """pin: (item id, 1-based position), by position."""

    pins: tuple[tuple[str, int], ...]
    item_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_ids", frozenset(item_id for item_id, _ in self.pins))


@dataclass(frozen=True)
class Slots:
    """slot: the positions the selector's best items fill."""

    positions: tuple[int, ...]


@dataclass(frozen=True)
class Cap:
    """diversity: at most `max_items` per brand (or top-level category) in the top `top_k`."""

    field: str
    max_items: int
    top_k: int


# --- the working state of one request's rule stage --------------------------------------------
@dataclass
class Ranking:
    """What the stages read and change: the masks of the rules' selectors, the adjusted scores,
    the hidden items, the order, the fixed positions and, when explaining, each item's effects."""

    facts: ItemFacts
    scores: np.ndarray
    masks: np.ndarray  # a row per rule that selects (RulePlan.selecting): its selector's mask
    rows: dict[int, int]  # rule id -> its row of `masks`
    explain: bool
    hidden: np.ndarray | None = None  # None: nothing hidden
    hidden_by: dict[int, CompiledRule] = field(default_factory=dict)
    removed: tuple[Removal, ...] = ()
    placed: dict[int, int] = field(default_factory=dict)  # position (1-based) -> item index
    placed_items: set[int] = field(default_factory=set)
    effects: dict[int, list[RuleEffect]] = field(default_factory=lambda: defaultdict(list))
    # Score changes are explained last, after the moves and placements (docs/rules.md).
    rescored: list[tuple[CompiledRule, np.ndarray, str]] = field(default_factory=list)
    _order: np.ndarray | None = None

    def mask(self, rule: CompiledRule) -> np.ndarray:
        return self.masks[self.rows[rule.id]]

    def masks_of(self, rules: Sequence[CompiledRule]) -> np.ndarray:
        """The masks of one stage's `rules`, a row each: consecutive rows (RulePlan), a view."""
        start = self.rows[rules[0].id]
        return self.masks[start : start + len(rules)]

    @property
    def order(self) -> np.ndarray:
        """The visible items by adjusted score, ties by item id (fixed once first asked for:
        after the FILTER and SCORE stages)."""
        if self._order is None:
            visible = None if self.hidden is None else (~self.hidden).nonzero()[0]
            self._order = order_by_score(self.scores, self.facts.item_ids, visible)
        return self._order

    @order.setter
    def order(self, order: np.ndarray) -> None:
        self._order = order

    def note(self, index: int, rule: CompiledRule, effect: str) -> None:
        """Record an effect when explaining (callers check `explain` first where the words
        take work to make)."""
        if self.explain:
            self.effects[index].append(RuleEffect(rule.id, rule.name, rule.action, effect))

    def result(self) -> RulesApplied:
        order = self.order
        if self.placed:
            order = _with_placed(order, self.placed, self.placed_items, len(self.facts.item_ids))
        if self.explain:
            for rule, mask, change in self.rescored:
                for index in np.flatnonzero(mask).tolist():
                    self.note(index, rule, change)
            for index, rule in self.hidden_by.items():
                hidden = RuleEffect(rule.id, rule.name, rule.action, "hidden")
                self.effects[index].insert(0, hidden)
        return RulesApplied(
            order=order,
            scores=self.scores,
            removed=self.removed,
            effects={index: tuple(found) for index, found in self.effects.items()},
            placed=frozenset(self.placed_items),
        )


def _with_placed(order: np.ndarray, placed: dict[int, int], items: set[int], k: int) -> np.ndarray:
    """The placed items at their positions, the others filling the rest in order: a slice copy
    per gap between placed positions (a few), not an array operation per candidate."""
    unplaced = np.ones(k, dtype=bool)
    unplaced[list(items)] = False
    rest = order[unplaced[order]]
    final = np.empty(len(order), dtype=np.int64)
    filled = taken = 0  # positions of `final` filled, items of `rest` taken
    for position in sorted(placed):
        gap = position - 1 - filled
        final[filled : filled + gap] = rest[taken : taken + gap]
        final[position - 1] = placed[position]
        filled, taken = position, taken + gap
    final[filled:] = rest[taken:]
    return final


# --- the stages ---------------------------------------------------------------------------------
Stage = Callable[[Sequence["CompiledRule"], Ranking], None]


def hide(rules: Sequence[CompiledRule], ranking: Ranking) -> None:
    stacked = ranking.masks_of(rules)
    hidden = stacked[0] if len(rules) == 1 else np.asarray(stacked.any(axis=0))
    hidden_items = hidden.nonzero()[0]
    if not len(hidden_items):
        return
    ranking.hidden = hidden
    if len(rules) == 1:
        ranking.hidden_by = dict.fromkeys(hidden_items.tolist(), rules[0])
    else:
        first = stacked[:, hidden_items].argmax(axis=0)
        pairs = zip(hidden_items.tolist(), first.tolist(), strict=True)
        ranking.hidden_by = {index: rules[row] for index, row in pairs}
    ranking.removed = tuple(
        Removal(i, rule.id, f"hidden by rule {rule.name!r}")
        for i, rule in ranking.hidden_by.items()
    )


def rescore(rules: Sequence[CompiledRule], ranking: Ranking) -> None:
    multipliers = np.array([_params(rule, Factor).multiplier for rule in rules])
    stacked = ranking.masks_of(rules)
    ranking.scores = ranking.scores * np.where(stacked, multipliers[:, None], 1.0).prod(axis=0)
    if ranking.explain:
        shown = None if ranking.hidden is None else ~ranking.hidden
        for rule, mask, multiplier in zip(rules, stacked, multipliers.tolist(), strict=True):
            ranking.rescored.append(
                (rule, mask if shown is None else mask & shown, f"score x{multiplier:g}")
            )


def sink(rules: Sequence[CompiledRule], ranking: Ranking) -> None:
    """Matching items move to the end of the order, keeping their order among themselves."""
    order = ranking.order
    sunk = np.zeros(len(ranking.facts.item_ids), dtype=bool)
    for rule in rules:
        newly = ranking.mask(rule) & ~sunk
        sunk |= newly
        if ranking.explain:
            for index in np.flatnonzero(newly[order]).tolist():
                ranking.note(int(order[index]), rule, f"moved to the end from {index + 1}")
    at_end = sunk[order]
    if at_end.any():
        ranking.order = np.concatenate([order[~at_end], order[at_end]])


def diversify(rules: Sequence[CompiledRule], ranking: Ranking) -> None:
    for rule in rules:
        cap = _params(rule, Cap)
        before = ranking.order
        ranking.order, moved = _capped(cap, before, ranking.facts)
        if ranking.explain and moved:
            where = {index: position for position, index in enumerate(before.tolist(), 1)}
            limit = f"at most {cap.max_items} per {cap.field} in the top {cap.top_k}"
            for index in moved:
                ranking.note(index, rule, f"moved down from {where[index]}: {limit}")


def _capped(cap: Cap, order: np.ndarray, facts: ItemFacts) -> tuple[np.ndarray, list[int]]:
    """Fill the top K in order, skipping items over the cap; the skipped follow just after it.
    Items without a brand (or category) are never capped. Returns the new order and the
    skipped items."""
    counts: dict[int, int] = {}
    top: list[int] = []
    skipped: list[int] = []
    seen = 0  # items of the order looked at: len(top) + len(skipped)
    top_k, max_items = cap.top_k, cap.max_items
    chunk = max(2 * top_k, 64)  # look at the head of the order only, a chunk at a time
    while len(top) < top_k and seen < len(order):
        window = order[seen : seen + chunk]
        if cap.field == "brand":
            keys = facts.brand_codes[window]
        else:
            keys = facts.vocabulary.top_level_codes[facts.category_codes[window, 0]]
        for index, key in zip(window.tolist(), keys.tolist(), strict=False):  # equal lengths
            if key >= 0:
                count = counts.get(key, 0)
                if count >= max_items:
                    skipped.append(index)
                    continue
                counts[key] = count + 1
            top.append(index)
            if len(top) == top_k:
                break
        seen = len(top) + len(skipped)
    if not skipped:
        return order, []
    rest = order[seen:]
    return np.concatenate([np.array(top + skipped, dtype=np.int64), rest]), skipped


def pin(rules: Sequence[CompiledRule], ranking: Ranking) -> None:
    n = len(ranking.order)
    for rule in rules:
        pins = _params(rule, Pins)
        index_of = ranking.facts.positions(pins.item_ids)
        for item_id, position in pins.pins:
            if item_id not in index_of:
                continue
            index = index_of[item_id]
            if index in ranking.hidden_by:
                if ranking.explain:
                    winner = ranking.hidden_by[index].name
                    ranking.note(index, rule, f"pin ignored: hidden by {winner!r}")
                continue
            if position > n or position in ranking.placed or index in ranking.placed_items:
                if ranking.explain:
                    ranking.note(index, rule, f"pin to {position} lost to another")
                continue
            ranking.placed[position] = index
            ranking.placed_items.add(index)
            if ranking.explain:
                ranking.note(index, rule, f"pinned at position {position}")


def slot(rules: Sequence[CompiledRule], ranking: Ranking) -> None:
    order = ranking.order
    n = len(order)
    for rule in rules:
        free = [p for p in _params(rule, Slots).positions if p <= n and p not in ranking.placed]
        if not free:
            continue
        # The best matching items not placed yet: among the first len(free) + len(placed) of
        # the matching ones, at most len(placed) are placed.
        taken = ranking.placed_items
        best = order[ranking.mask(rule)[order]][: len(free) + len(taken)].tolist()
        fillers = [index for index in best if index not in taken][: len(free)]
        for position, index in zip(free, fillers, strict=False):
            ranking.placed[position] = index
            ranking.placed_items.add(index)
            if ranking.explain:
                ranking.note(index, rule, f"slotted at position {position}")


P = TypeVar("P")


def _params(rule: CompiledRule, kind: type[P]) -> P:
    assert isinstance(rule.params, kind), f"rule {rule.id} ({rule.action}) has {rule.params!r}"
    return rule.params


# --- the table ------------------------------------------------------------------------------------
class Phase(IntEnum):
    FILTER = 1
    SCORE = 2
    REORDER = 3
    PLACE = 4


@dataclass(frozen=True)
class ActionKind:
    phase: Phase
    stage: Stage
    # The compiled parameters from the action's contract (the pydantic model of its type).
    compile: Callable[[Any], object]
    # Whether the rule's selector says which items the action touches (pins name their own).
    selects: bool = True
    # How a preview badge names the effect on an item.
    badge: str = ""


def _no_params(action: Any) -> NoParams:
    return NoParams()


def _factor(action: Any) -> Factor:
    return Factor(action.multiplier)


def _pins(action: Any) -> Pins:
    by_position = sorted(action.pins, key=lambda pin: pin.position)
    return Pins(tuple((pin.item_id, pin.position) for pin in by_position))


def _slots(action: Any) -> Slots:
    return Slots(tuple(sorted(action.positions)))


def _cap(action: Any) -> Cap:
    return Cap(action.field, action.max_items, action.top_k)


ACTIONS: dict[str, ActionKind] = {
    "hide": ActionKind(Phase.FILTER, hide, _no_params, badge="hidden"),
    "boost": ActionKind(Phase.SCORE, rescore, _factor, badge="boosted"),
    "bury": ActionKind(Phase.SCORE, rescore, _factor, badge="buried"),
    "sink": ActionKind(Phase.REORDER, sink, _no_params, badge="moved to the end"),
    "diversity": ActionKind(Phase.REORDER, diversify, _cap, selects=False, badge="moved down"),
    "pin": ActionKind(Phase.PLACE, pin, _pins, selects=False, badge="pinned"),
    "slot": ActionKind(Phase.PLACE, slot, _slots, badge="slotted"),
}

# Actions whose rules have a selector mask computed per request.
SELECTOR_ACTIONS = tuple(name for name, kind in ACTIONS.items() if kind.selects)
# Each stage once, in the order of application (within a phase, the table's order).
STAGES: tuple[Stage, ...] = tuple(
    dict.fromkeys(kind.stage for kind in sorted(ACTIONS.values(), key=lambda kind: kind.phase))
)


class RulePlan:
    """A request's matching rules grouped by stage, in the order of application (priority order
    kept within a stage); made once per combination of matching rules and reused."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        by_stage: dict[Stage, list[CompiledRule]] = defaultdict(list)
        for rule in rules:
            by_stage[ACTIONS[rule.action].stage].append(rule)
        self.stages = tuple(
            (stage, tuple(by_stage[stage])) for stage in STAGES if by_stage.get(stage)
        )
        # The rules whose selectors need a mask, stage by stage: a stage's rules are consecutive
        # rows of the masks, which a stage reads as one slice.
        self.selecting = tuple(
            rule for _, group in self.stages for rule in group if ACTIONS[rule.action].selects
        )
        self.rows = {rule.id: row for row, rule in enumerate(self.selecting)}


def apply_stages(
    plan: RulePlan,
    facts: ItemFacts,
    rank_scores: np.ndarray,
    masks: np.ndarray,
    explain: bool,
) -> RulesApplied:
    """Run each stage on the matching rules of its action types. `masks`: a row per rule of
    `plan.selecting`, in that order."""
    ranking = Ranking(facts=facts, scores=rank_scores, masks=masks, rows=plan.rows, explain=explain)
    for stage, rules in plan.stages:
        stage(rules, ranking)
    return ranking.result()
