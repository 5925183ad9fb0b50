"""The rule engine: compiled, immutable rules applied to one request as vectorised masks.

Plain Python and numpy, no Django models (merchandising.loading compiles rules from the
database into merchandising/compiled.py's records). The order of application, documented in
docs/rules.md:

1. select the rules whose conditions match the request (surface, window, query, page category,
   context), highest priority first, equal priorities by id;
2. hide: hidden items are removed, whatever else would touch them;
3. boost and bury: each matching rule multiplies the rank score by its factor;
4. order by the adjusted score, ties by item id;
5. sink: items a sink rule matches move to the end of the order, keeping their order;
6. diversity caps: items over a cap in the top K move to just after it, keeping their order;
7. pins, then slots: a pin takes its position first; a slot fills what pins left free with
   the best-ordered matching items; the other items fill the remaining positions in order.
A pin beats a slot beats a boost; between two pins of one position the higher priority wins.
Steps 2-7 are the actions' stages, one table entry per action (merchandising/actions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from merchandising.actions import SELECTOR_ACTIONS, RulePlan, apply_stages
from merchandising.compiled import CompiledRule, ItemFacts, SelectorBank, Vocabulary
from ranking.engine.ordering import order_by_score
from ranking.engine.records import RulesApplied

if TYPE_CHECKING:
    from ranking.engine.records import RankInput
    from ranking.signals.store import SignalFetch


@dataclass(frozen=True)
class Prepared:
    """What applying one combination of matching rules needs besides the request: the rules by
    stage and their selectors stacked, for one vocabulary."""

    plan: RulePlan
    bank: SelectorBank

    @classmethod
    def of(cls, rules: Sequence[CompiledRule], vocabulary: Vocabulary) -> Prepared:
        plan = RulePlan(rules)
        return cls(plan, SelectorBank([rule.selector for rule in plan.selecting], vocabulary))


def apply_rules(
    rules: Sequence[CompiledRule],
    facts: ItemFacts,
    rank_scores: np.ndarray,
    explain: bool = False,
    prepared: Prepared | None = None,
) -> RulesApplied:
    """Apply matching rules (already selected for the request, in priority order): their
    selectors' masks in one stacked computation, then each action's stage
    (merchandising/actions.py). `prepared`: `Prepared.of(rules, facts.vocabulary)`, made here
    if not given."""
    if prepared is None:
        prepared = Prepared.of(rules, facts.vocabulary)
    return apply_stages(prepared.plan, facts, rank_scores, prepared.bank.masks(facts), explain)


# A rule holdout's two groups, as the rank log records them (docs/experiments.md, "Rule holdouts").
HELD_OUT, EXPOSED = "held_out", "exposed"


@dataclass(frozen=True)
class RuleSet:
    """A customer's enabled rules, compiled; the rank engine's rule stage."""

    rules: tuple[CompiledRule, ...] = ()
    # Plans and selector banks per (active rules, vocabulary): requests repeat the same few
    # combinations.
    _prepared: dict[tuple[tuple[int, ...], int], Prepared] = field(
        default_factory=dict, compare=False, repr=False
    )

    def for_surface(self, surface: str) -> RuleSet:
        return RuleSet(tuple(r for r in self.rules if not r.surfaces or surface in r.surfaces))

    def matching(self, request: RankInput) -> list[CompiledRule]:
        at = request.at or datetime.now(UTC)
        return [rule for rule in self.rules if rule.applies(request, at)]

    @cached_property
    def has_holdouts(self) -> bool:
        return any(rule.holdout_percent for rule in self.rules)

    def hold_out(
        self, request: RankInput, active: list[CompiledRule]
    ) -> tuple[list[CompiledRule], dict[int, str] | None]:
        """The matching rules this request's shopper sees (those whose holdout they are in left
        out), and per matching rule with a holdout whether the shopper was held out of it or
        exposed to it; None when no such rule matched or the request has no shopper."""
        if not self.has_holdouts or not request.shopper_key:
            return active, None
        groups: dict[int, str] = {}
        seen = []
        for rule in active:
            if rule.holdout_percent:
                held = rule.holds_out(request.shopper_key)
                groups[rule.id] = HELD_OUT if held else EXPOSED
                if held:
                    continue
            seen.append(rule)
        return seen, groups or None

    @staticmethod
    def attribute_sets(active: Sequence[CompiledRule]) -> tuple[str, ...]:
        """The signal-store sets the matching rules' attribute clauses need, to read with the
        request's signals."""
        names = {rule.selector.attribute_set for rule in active if rule.action in SELECTOR_ACTIONS}
        names.discard("")
        return tuple(sorted(names))

    def apply(
        self,
        request: RankInput,
        fetch: SignalFetch | None,
        rank_scores: np.ndarray,
        active: list[CompiledRule] | None = None,
    ) -> RulesApplied:
        """`active`: `matching(request)` when the caller computed it already (before the fetch,
        to know the attribute sets to read)."""
        if active is None:
            active = self.matching(request)
        if not active:
            return RulesApplied(
                order=order_by_score(rank_scores, request.item_ids), scores=rank_scores
            )
        facts = ItemFacts.from_fetch(request.item_ids, fetch)
        key = (tuple(rule.id for rule in active), id(facts.vocabulary))
        prepared = self._prepared.get(key)
        if prepared is None or prepared.bank.vocabulary is not facts.vocabulary:
            if len(self._prepared) >= 256:
                self._prepared.clear()
            prepared = self._prepared[key] = Prepared.of(active, facts.vocabulary)
        return apply_rules(active, facts, rank_scores, request.explain, prepared)


EMPTY_RULES = RuleSet()
