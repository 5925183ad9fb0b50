"""The workbench's changes (pin, hide, boost or bury an item, its brand or its category, cap
the items per brand or category near the top), each written as a draft rule for the page through
merchandising.services, with history; and publishing or discarding the page's drafts, all or
none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from catalog.models import Item
from catalog.selectors import item_of
from customers.models import Customer
from explain.services.explained import ExplainError
from explain.services.workbench import (
    WorkbenchParams,
    most_specific_category,
    page_conditions,
    page_drafts,
    same_page,
)
from merchandising import services as rule_services
from merchandising.contracts import RuleIn
from merchandising.models import Rule
from merchandising.selectors import drafts_among

TITLE_IN_NAME = 60

CHANGES = (
    "pin",
    "hide",
    "boost",
    "bury",
    "boost-brand",
    "bury-brand",
    "boost-category",
    "bury-category",
    "diversity",
)


@dataclass(frozen=True)
class Change:
    """One change asked on the workbench, validated by the form (explain.workbench)."""

    kind: str  # one of CHANGES
    item_id: str  # "" for a diversity cap, which is the page's, not an item's
    position: int | None = None  # pin
    strength: str = "medium"  # boost, bury
    # diversity: at most `max_items` items per `field` (brand or category) in the top `top_k`
    field: str = "brand"
    max_items: int = 2
    top_k: int = 10


def _short(title: str) -> str:
    return title if len(title) <= TITLE_IN_NAME else title[: TITLE_IN_NAME - 1] + "…"


def _document(
    change: Change, params: WorkbenchParams, item: Item | None, pins: list[dict[str, Any]]
) -> dict[str, Any]:
    where = f"for {params.where}"
    title = _short(item.title if item is not None else change.item_id)
    brand = item.brand if item is not None else ""
    if change.kind == "diversity":
        per = "brand" if change.field == "brand" else "top-level category"
        return {
            "name": f"At most {change.max_items} per {per} in the top {change.top_k} {where}",
            **page_conditions(params),
            "action": {
                "type": "diversity",
                "field": change.field,
                "max_items": change.max_items,
                "top_k": change.top_k,
            },
        }
    if change.kind == "pin":
        if len(pins) == 1:
            name = f"Pin “{title}” to #{pins[0]['position']} {where}"
        else:
            name = f"Pin {len(pins)} items {where}"
        return {"name": name, **page_conditions(params), "action": {"type": "pin", "pins": pins}}
    if change.kind == "hide":
        return {
            "name": f"Hide “{title}” {where}",
            **page_conditions(params),
            "selector": {"item_ids": [change.item_id]},
            "action": {"type": "hide"},
        }
    verb, target = change.kind.split("-") if "-" in change.kind else (change.kind, "item")
    if target == "brand":
        selector: dict[str, Any] = {"brands": [brand]}
        what = f"brand {brand}"
    elif target == "category":
        category = most_specific_category(item)
        selector = {"categories": [category]}
        what = f"category {category}"
    else:
        selector = {"item_ids": [change.item_id]}
        what = f"“{title}”"
    return {
        "name": f"{verb.capitalize()} {what} ({change.strength}) {where}",
        **page_conditions(params),
        "selector": selector,
        "action": {"type": verb, "strength": change.strength},
    }


def _existing(drafts: list[Rule], change: Change, document: dict[str, Any]) -> Rule | None:
    """The page's draft this change replaces: its pin draft (pins are one rule per page), or the
    draft acting on the same items the same way (a new strength replaces the old)."""
    action = document["action"]["type"]
    if change.kind == "pin":
        return next((rule for rule in drafts if rule.action_type == "pin"), None)
    if change.kind == "diversity":  # one cap per field: a new one replaces it
        return next(
            (
                rule
                for rule in drafts
                if rule.action_type == "diversity" and rule.action["field"] == change.field
            ),
            None,
        )
    verbs = ("boost", "bury") if action in ("boost", "bury") else (action,)
    return next(
        (
            rule
            for rule in drafts
            if rule.action_type in verbs and rule.selector == document.get("selector", {})
        ),
        None,
    )


@transaction.atomic
def draft_change(
    *, customer: Customer, params: WorkbenchParams, change: Change, user: Any
) -> tuple[Rule, list[str]]:
    """Write the change as a draft rule (a new one, or the page's draft it replaces), through the
    rule services with history. Raises ExplainError naming the field at fault, and
    RuleRejected when it contradicts a serving rule; nothing is stored then."""
    item = item_of(customer_id=customer.pk, item_id=change.item_id) if change.item_id else None
    if change.kind.endswith("-brand") and (item is None or not item.brand):
        raise ExplainError("item", "This item has no brand in the catalog.")
    if change.kind.endswith("-category") and not most_specific_category(item):
        raise ExplainError("item", "This item has no category in the catalog.")
    drafts = [rule for rule in page_drafts(params) if same_page(rule, params)]
    pins: list[dict[str, Any]] = []
    if change.kind == "pin":
        assert change.position is not None
        current = next((rule for rule in drafts if rule.action_type == "pin"), None)
        kept = [
            pin
            for pin in (current.action["pins"] if current is not None else [])
            if pin["item_id"] != change.item_id and pin["position"] != change.position
        ]
        pins = sorted(
            [*kept, {"item_id": change.item_id, "position": change.position}],
            key=lambda pin: pin["position"],
        )
    document = RuleIn.model_validate(_document(change, params, item, pins))
    existing = _existing(drafts, change, document.model_dump(mode="json"))
    if existing is not None:
        rule, warnings = rule_services.rule_update(rule=existing, document=document, user=user)
    else:
        rule, warnings = rule_services.rule_create(
            customer=customer,
            document=document,
            user=user,
            draft=True,
            note="draft from the workbench",
        )
    return rule, [warning.detail for warning in warnings]


def drafts_chosen(*, customer_id: int, rule_ids: list[int]) -> list[Rule]:
    """The customer's drafts among `rule_ids`; ExplainError when one is gone or published."""
    rules = drafts_among(customer_id=customer_id, rule_ids=rule_ids)
    if len(rules) != len(set(rule_ids)):
        raise ExplainError(
            "drafts", "A change was published or discarded meanwhile: look at the page again."
        )
    return rules


@transaction.atomic
def drafts_publish(*, rules: list[Rule], user: Any, start: datetime | None) -> list[str]:
    """Publish every draft or none (a refused one rolls all back); the warnings of each."""
    warnings = []
    for rule in rules:
        _, found = rule_services.rule_publish(rule=rule, user=user, start=start)
        warnings += [warning.detail for warning in found]
    return warnings


@transaction.atomic
def drafts_discard(*, rules: list[Rule], user: Any) -> None:
    for rule in rules:
        rule_services.rule_discard(rule=rule, user=user)


@transaction.atomic
def published_turn_off(*, customer_id: int, rule_ids: list[int], user: Any) -> list[Rule]:
    """Switch off the customer's serving rules named (all or none), through the rule services:
    each keeps a revision saying so, and its revert switches it on again."""
    rules = list(
        Rule.objects.for_customer(customer_id)
        .serving()
        .filter(pk__in=rule_ids)
        .select_for_update()
        .order_by("id")
    )
    if not rule_ids or len(rules) != len(set(rule_ids)):
        raise ExplainError("rules", "A change was turned off or changed meanwhile: look again.")
    for rule in rules:
        document = RuleIn.stored({**rule.document(), "enabled": False})
        rule_services.rule_update(
            rule=rule, document=document, user=user, note="turned off on the workbench"
        )
    return rules
