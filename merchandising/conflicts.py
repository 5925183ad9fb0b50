"""Checks run while a rule is written: what it conflicts with, and whether it can ever act.

Warnings are advice; a blocking warning is a contradiction the rule cannot be saved with (two
pins of equal priority on one position under conditions that can hold together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from merchandising.contracts import (
    DiversityAction,
    HideAction,
    PinAction,
    RuleIn,
    SlotAction,
    Window,
)
from merchandising.loading import catalog_facts, catalog_matches, selector_compile
from merchandising.selectors import rules_serving


@dataclass(frozen=True)
class RuleWarning:
    code: str
    field: str
    detail: str
    blocking: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "field": self.field,
            "detail": self.detail,
            "blocking": self.blocking,
        }


@dataclass(frozen=True)
class _Other:
    id: int
    document: RuleIn

    @property
    def label(self) -> str:
        return f"rule {self.id} {self.document.name!r} (priority {self.document.priority})"


def _within(inner: str, outer: str) -> bool:
    inner, outer = inner.casefold(), outer.casefold()
    return inner == outer or inner.startswith(outer + "/")


def _window_within(inner: Window, outer: Window) -> bool:
    starts = outer.start is None or (inner.start is not None and inner.start >= outer.start)
    ends = outer.end is None or (inner.end is not None and inner.end <= outer.end)
    return starts and ends


def _windows_overlap(a: Sequence[Window], b: Sequence[Window]) -> bool:
    if not a or not b:
        return True
    return any(
        (x.start is None or y.end is None or x.start < y.end)
        and (y.start is None or x.end is None or y.start < x.end)
        for x in a
        for y in b
    )


def may_overlap(a: RuleIn, b: RuleIn) -> bool:
    """Can both rules apply to one request? (Conservative: True unless provably not.)"""
    if a.surfaces and b.surfaces and not set(a.surfaces) & set(b.surfaces):
        return False
    if not _windows_overlap(a.windows, b.windows):
        return False
    if a.query.match == b.query.match == "exact" and not set(a.query.patterns) & set(
        b.query.patterns
    ):
        return False
    if (
        a.page_categories
        and b.page_categories
        and not any(
            _within(x, y) or _within(y, x) for x in a.page_categories for y in b.page_categories
        )
    ):
        return False
    return all(set(a.context[key]) & set(b.context[key]) for key in set(a.context) & set(b.context))


def covers(outer: RuleIn, inner: RuleIn) -> bool:
    """Does `outer` apply to every request `inner` applies to?"""
    if outer.surfaces and (not inner.surfaces or not set(inner.surfaces) <= set(outer.surfaces)):
        return False
    if outer.windows and (
        not inner.windows
        or not all(any(_window_within(i, o) for o in outer.windows) for i in inner.windows)
    ):
        return False
    if outer.query.match != "any" and not (
        outer.query.match == inner.query.match
        and set(inner.query.patterns) <= set(outer.query.patterns)
    ):
        return False
    if outer.page_categories and (
        not inner.page_categories
        or not all(any(_within(i, o) for o in outer.page_categories) for i in inner.page_categories)
    ):
        return False
    return all(
        key in inner.context and set(inner.context[key]) <= set(values)
        for key, values in outer.context.items()
    )


def _outranks(other: _Other, rule_id: int | None, priority: int) -> bool:
    if other.document.priority != priority:
        return other.document.priority > priority
    return rule_id is None or other.id < rule_id


def rule_warnings(
    *, customer_id: int, document: RuleIn, rule_id: int | None, at: datetime
) -> list[RuleWarning]:
    """Everything worth telling the author of `document` (rule `rule_id`, None when new)."""
    warnings = _self_contradictions(document)
    if document.windows and all(w.end is not None and w.end <= at for w in document.windows):
        warnings.append(
            RuleWarning("window_ended", "windows", "Every window of this rule has already ended.")
        )
    if not document.enabled:
        return warnings

    action = document.action
    if isinstance(action, PinAction):
        facts = catalog_facts(customer_id, [p.item_id for p in action.pins])
        known = {
            item_id for item_id, found in zip(facts.item_ids, facts.known, strict=True) if found
        }
        for number, pin in enumerate(action.pins):
            if pin.item_id not in known:
                warnings.append(
                    RuleWarning(
                        "no_matching_item",
                        f"action.pins[{number}].item_id",
                        f"No item {pin.item_id!r} in the catalog.",
                    )
                )
        targets = known
    elif isinstance(action, HideAction | SlotAction) or not document.selector.is_empty:
        targets = set(catalog_matches(customer_id, document.selector))
        if not targets and not document.selector.is_empty:
            warnings.append(
                RuleWarning(
                    "no_matching_item", "selector", "The selector matches no item in the catalog."
                )
            )
    else:
        targets = set()

    # Drafts serve nothing to clash with.
    stored = rules_serving(customer_id=customer_id, excluding=rule_id)
    others = [_Other(rule.pk, RuleIn.stored(rule.document())) for rule in stored]
    others = [other for other in others if may_overlap(document, other.document)]
    warnings += _pin_conflicts(document, rule_id, others)
    warnings += _hidden_targets(document, customer_id, others, targets)
    return warnings


def _self_contradictions(document: RuleIn) -> list[RuleWarning]:
    """What the rule says against itself. JSON Schema cannot state these (they compare fields),
    so they are found here: a contradiction blocks the save (409), a rule that can never act
    is saved with a warning."""
    warnings: list[RuleWarning] = []
    action, selector = document.action, document.selector
    if isinstance(action, PinAction):
        positions = [pin.position for pin in action.pins]
        if len(set(positions)) != len(positions):
            warnings.append(
                RuleWarning(
                    "pins_share_position",
                    "action.pins",
                    "Two pins of this rule ask for the same position.",
                    blocking=True,
                )
            )
        items = [pin.item_id for pin in action.pins]
        if len(set(items)) != len(items):
            warnings.append(
                RuleWarning(
                    "item_pinned_twice",
                    "action.pins",
                    "This rule pins one item at two positions.",
                    blocking=True,
                )
            )
    if isinstance(action, DiversityAction) and action.max_items >= action.top_k:
        warnings.append(
            RuleWarning(
                "cap_never_applies",
                "action.max_items",
                f"At most {action.max_items} per {action.field} in the top "
                f"{action.top_k} never removes anything: lower max_items below top_k.",
            )
        )
    if (
        selector.price_min is not None
        and selector.price_max is not None
        and selector.price_max < selector.price_min
    ):
        warnings.append(
            RuleWarning(
                "empty_price_range",
                "selector.price_max",
                "price_max is below price_min: the selector matches no item.",
            )
        )
    return warnings


def _pin_conflicts(
    document: RuleIn, rule_id: int | None, others: list[_Other]
) -> list[RuleWarning]:
    action = document.action
    if not isinstance(action, PinAction | SlotAction):
        return []
    ours = (
        {pin.position for pin in action.pins}
        if isinstance(action, PinAction)
        else set(action.positions)
    )
    warnings = []
    taken_by_covering: set[int] = set()
    for other in others:
        theirs = other.document.action
        if not isinstance(theirs, PinAction):
            continue
        shared = ours & {pin.position for pin in theirs.pins}
        if not shared:
            continue
        places = ", ".join(str(p) for p in sorted(shared))
        if isinstance(action, PinAction) and other.document.priority == document.priority:
            warnings.append(
                RuleWarning(
                    "pin_conflict",
                    "action.pins",
                    f"{other.label} pins position {places} at the same priority: give one of "
                    "them a higher priority.",
                    blocking=True,
                )
            )
        elif _outranks(other, rule_id, document.priority):
            warnings.append(
                RuleWarning(
                    "pin_conflict",
                    "action.pins" if isinstance(action, PinAction) else "action.positions",
                    f"{other.label} pins position {places} and wins it.",
                )
            )
            if covers(other.document, document):
                taken_by_covering |= shared
        else:
            warnings.append(
                RuleWarning(
                    "pin_conflict",
                    "action.pins" if isinstance(action, PinAction) else "action.positions",
                    f"This rule takes position {places} from {other.label}.",
                )
            )
    if ours and ours <= taken_by_covering:
        warnings.append(
            RuleWarning(
                "shadowed",
                "priority",
                "Higher-priority pins take every position of this rule whenever it applies: "
                "it never takes effect.",
            )
        )
    return warnings


def _hidden_targets(
    document: RuleIn,
    customer_id: int,
    others: list[_Other],
    targets: set[str],
) -> list[RuleWarning]:
    warnings = []
    action = document.action
    if isinstance(action, HideAction):
        for other in others:
            if isinstance(other.document.action, PinAction):
                pinned = {pin.item_id for pin in other.document.action.pins} & targets
                if pinned:
                    warnings.append(
                        RuleWarning(
                            "pin_on_hidden_item",
                            "selector",
                            f"This rule hides {', '.join(sorted(pinned))}, pinned by "
                            f"{other.label}: hidden items are never returned.",
                        )
                    )
        return warnings
    hidden_always: set[str] = set()
    for other in others:
        if not isinstance(other.document.action, HideAction):
            continue
        facts = catalog_facts(customer_id, sorted(targets))
        mask = selector_compile(other.document.selector).mask(facts)
        hidden = {
            item_id for item_id, hit in zip(facts.item_ids, mask.tolist(), strict=True) if hit
        }
        if isinstance(action, PinAction) and hidden:
            warnings.append(
                RuleWarning(
                    "pin_on_hidden_item",
                    "action.pins",
                    f"{other.label} hides {', '.join(sorted(hidden))}: a hidden item is never "
                    "returned, even when pinned.",
                )
            )
        if covers(other.document, document):
            hidden_always |= hidden
    if targets and targets <= hidden_always:
        warnings.append(
            RuleWarning(
                "shadowed",
                "selector",
                "Every item this rule targets is hidden by a rule that applies whenever this one "
                "does: it never takes effect.",
            )
        )
    return warnings
