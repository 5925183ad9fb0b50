"""A rule's preview: the customer's live ranking of catalog candidates without and with the rule.

The candidates stand in for what the search engine would send: catalog items whose title holds
every query word, or that sit in the browsed category (or below it). Both sides rank them with the
customer's live config and its other enabled rules; the "with" side adds the rule as stored (even
when disabled), evaluated at the chosen time like every other rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import numpy as np

from catalog.selectors import items_by_id, items_matching_words
from events.queries import normalise_query
from merchandising.actions import ACTIONS, Pins
from merchandising.compiled import CompiledRule
from merchandising.contracts import RuleIn
from merchandising.engine import RuleSet
from merchandising.loading import load_rule_set, rule_compile, rule_set
from merchandising.models import Rule
from ranking.engine.pipeline import rank
from ranking.engine.records import RankerConfig, RankInput, RankOutcome, RuleEffect
from ranking.runtime import customer_runtime
from ranking.signals.backend import signal_store

MAX_CANDIDATES = 500
BADGE_LABELS = {name: kind.badge for name, kind in ACTIONS.items()}


@dataclass(frozen=True)
class Badge:
    action: str  # a key of merchandising.actions.ACTIONS
    detail: str
    rule_name: str
    this_rule: bool

    @property
    def label(self) -> str:
        if self.action == "pin":
            return "pinned" if self.detail.startswith("pinned") else "pin not applied"
        return BADGE_LABELS.get(self.action, self.action)


@dataclass(frozen=True)
class PreviewRow:
    position: int
    item_id: str
    title: str
    brand: str
    price: Decimal | None
    move: str  # ▲n, ▼n, "=", "new", "hidden", "" (nothing to compare with)
    entered_top: bool = False
    badges: tuple[Badge, ...] = ()


@dataclass(frozen=True)
class RulePreview:
    candidates: int
    top: int
    without_rule: tuple[PreviewRow, ...]
    with_rule: tuple[PreviewRow, ...]
    hidden: tuple[PreviewRow, ...]  # candidates this rule removes
    applies: bool
    reasons: tuple[str, ...]  # why the rule does not apply to this request, when it does not
    notes: tuple[str, ...]
    degraded: bool


def preview_candidates(
    *, customer_id: int, query: str, category: str, count: int, first: tuple[str, ...] = ()
) -> list[str]:
    """Up to `count` catalog item ids matching the query words and the category; the items in
    `first` (the rule's pins) lead when they match, the others follow by id."""
    # Narrowed in SQL (the category on ASCII text only); the loop decides the category.
    items = items_matching_words(customer_id=customer_id, words=query.split(), category=category)
    wanted = category.casefold()

    def in_category(categories: list[str]) -> bool:
        return not wanted or any(
            c.casefold() == wanted or c.casefold().startswith(wanted + "/") for c in categories
        )

    pinned = {
        item_id
        for item_id, categories in items.filter(external_id__in=first).values_list(
            "external_id", "categories"
        )
        if in_category(categories)
    }
    chosen = [item_id for item_id in first if item_id in pinned][:count]
    rows = items.exclude(external_id__in=chosen).order_by("external_id")
    for item_id, categories in rows.values_list("external_id", "categories").iterator(500):
        if len(chosen) >= count:
            break
        if in_category(categories):
            chosen.append(item_id)
    return chosen


def _reasons(rule: CompiledRule, request: RankInput, at: datetime) -> list[str]:
    """Why the rule's conditions do not hold for this request (empty: it applies)."""
    reasons = []
    if rule.surfaces and request.surface not in rule.surfaces:
        reasons.append(f"it is not for the {request.surface} surface")
    if not rule.is_on(at):
        reasons.append(f"none of its windows is open at {at.isoformat()}")
    if not rule.query_matches(request.query):
        reasons.append("its query condition does not match this query")
    if rule.page_categories and not any(
        request.category.casefold() == c or request.category.casefold().startswith(c + "/")
        for c in rule.page_categories
    ):
        reasons.append("its page categories do not include this category")
    if any(request.context.get(key) not in values for key, values in rule.context):
        reasons.append("its context condition does not match this context")
    return reasons


def _badges(effects: tuple[RuleEffect, ...], rule_id: int) -> tuple[Badge, ...]:
    return tuple(
        Badge(effect.action, effect.effect, effect.name, effect.rule_id == rule_id)
        for effect in effects
    )


def _positions(outcome: RankOutcome, item_ids: tuple[str, ...]) -> dict[str, int]:
    return {item_ids[index]: position for position, index in enumerate(outcome.order.tolist(), 1)}


def rule_preview(
    *,
    rule: Rule,
    surface: str,
    query: str,
    category: str,
    context: dict[str, str],
    at: datetime,
    candidates: int,
    top: int,
) -> RulePreview:
    """Rank the candidates without and with `rule`, as the customer's live ranking would at `at`."""
    customer_id = rule.customer_id
    document = RuleIn.stored(rule.document())
    compiled = rule_compile(rule_id=rule.pk, document=document)
    pinned = compiled.params.pins if isinstance(compiled.params, Pins) else ()
    pins = tuple(item_id for item_id, _ in pinned)
    item_ids = tuple(
        preview_candidates(
            customer_id=customer_id,
            query=query,
            category=category,
            count=min(candidates, MAX_CANDIDATES),
            first=pins,
        )
    )
    request = RankInput(
        surface=surface,
        query=normalise_query(query),
        category=category,
        shopper_key="",
        item_ids=item_ids,
        relevance=np.full(len(item_ids), np.nan),
        context=context,
        explain=True,
        at=at,
    )
    notes = []
    missing_pins = [item_id for item_id in pins if item_id not in item_ids]
    if missing_pins:
        notes.append(
            f"Not among these candidates, so not pinned here: {', '.join(missing_pins)} "
            "(a pin applies only when the search engine sends the item)."
        )
    if not item_ids:
        notes.append("No catalog item matches this query and category.")
        reasons = _reasons(compiled, request, at)
        return RulePreview(0, top, (), (), (), not reasons, tuple(reasons), tuple(notes), False)

    config = customer_runtime(customer_id).config_for(surface)
    others = RuleSet(tuple(r for r in load_rule_set(customer_id).rules if r.id != rule.pk))
    with_set = rule_set([*others.rules, compiled]).for_surface(surface)
    without = _rank(request, replace(config, rules=others.for_surface(surface)), customer_id)
    with_rule = _rank(request, replace(config, rules=with_set), customer_id)
    if with_rule.missing.signals_version is None and not with_rule.degraded:
        notes.append(
            "This shop has no signals yet: every item ranks on defaults, and selector clauses on "
            "brand, category, price or stock match nothing until the next signal refresh."
        )
    if with_rule.degraded:
        notes.append(
            "The signal store did not answer: both sides show the fallback order, without rules."
        )

    items = items_by_id(customer_id=customer_id, item_ids=item_ids)
    before = _positions(without, item_ids)
    after = _positions(with_rule, item_ids)
    effects_without = _effects(without)
    effects_with = _effects(with_rule)

    def row(
        item_id: str, position: int, move: str, entered: bool, badges: tuple[Badge, ...]
    ) -> PreviewRow:
        item = items[item_id]
        return PreviewRow(
            position, item_id, item.title, item.brand, item.price, move, entered, badges
        )

    without_rows = []
    for position, index in enumerate(without.order.tolist()[:top], 1):
        item_id = item_ids[index]
        now = after.get(item_id)
        move = "hidden" if now is None else _move(position, now)
        badges = _badges(effects_without.get(index, ()), rule.pk)
        without_rows.append(row(item_id, position, move, False, badges))
    with_rows = []
    for position, index in enumerate(with_rule.order.tolist()[:top], 1):
        item_id = item_ids[index]
        was = before.get(item_id)
        move = "new" if was is None else _move(was, position)
        entered = was is None or was > top
        badges = _badges(effects_with.get(index, ()), rule.pk)
        with_rows.append(row(item_id, position, move, entered, badges))
    hidden_rows = tuple(
        row(
            item_ids[removal.index],
            0,
            "hidden",
            False,
            (Badge("hide", removal.reason, document.name, True),),
        )
        for removal in with_rule.removed
        if removal.rule_id == rule.pk
    )
    reasons = _reasons(compiled, request, at)
    return RulePreview(
        candidates=len(item_ids),
        top=top,
        without_rule=tuple(without_rows),
        with_rule=tuple(with_rows),
        hidden=hidden_rows,
        applies=not reasons,
        reasons=tuple(reasons),
        notes=tuple(notes),
        degraded=with_rule.degraded,
    )


def _rank(request: RankInput, config: RankerConfig, customer_id: int) -> RankOutcome:
    return rank(request, config, signal_store(), customer_id)


def _effects(outcome: RankOutcome) -> dict[int, tuple[RuleEffect, ...]]:
    if outcome.explanations is None:
        return {}
    return {
        int(index): explanation.rules
        for index, explanation in zip(outcome.order.tolist(), outcome.explanations, strict=True)
    }


def _move(before: int, after: int) -> str:
    if before == after:
        return "="
    return f"▲{before - after}" if after < before else f"▼{after - before}"
