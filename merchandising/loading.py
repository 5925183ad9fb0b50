"""Compile stored rules into the engine's immutable objects, and evaluate selectors on the
catalog (for previews and conflict checks). The rows come from merchandising.selectors and
catalog.selectors."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from catalog.selectors import item_fact_rows
from merchandising.actions import ACTIONS
from merchandising.compiled import Attributes, CompiledRule, CompiledSelector, ItemFacts
from merchandising.contracts import RuleIn
from merchandising.contracts import Selector as SelectorDoc
from merchandising.engine import RuleSet
from merchandising.selectors import drafts_enabled, item_ids_narrowed, rules_serving
from ranking.signals.idsets import IdSet


def attributes_compile(attributes: dict[str, list[str]]) -> Attributes:
    return tuple((key, tuple(values)) for key, values in sorted(attributes.items()))


def selector_compile(selector: SelectorDoc) -> CompiledSelector:
    return CompiledSelector(
        brands=tuple(selector.brands),
        categories=tuple(selector.categories),
        price_min=selector.price_min,
        price_max=selector.price_max,
        in_stock=selector.in_stock,
        item_ids=IdSet(frozenset(selector.item_ids)) if selector.item_ids else None,
        attributes=attributes_compile(selector.attributes),
    )


def rule_compile(*, rule_id: int, document: RuleIn, holdout_salt: str = "") -> CompiledRule:
    action = document.action
    return CompiledRule(
        id=rule_id,
        name=document.name,
        priority=document.priority,
        action=action.type,
        surfaces=frozenset(document.surfaces),
        windows=tuple((w.start, w.end) for w in document.windows),
        query_match=document.query.match,
        patterns=tuple(document.query.patterns),
        page_categories=tuple(c.casefold() for c in document.page_categories),
        context=tuple((key, frozenset(values)) for key, values in document.context.items()),
        selector=selector_compile(document.selector),
        params=ACTIONS[action.type].compile(action),
        holdout_percent=document.holdout_percent,
        holdout_salt=holdout_salt,
    )


def rule_set(rules: Iterable[CompiledRule]) -> RuleSet:
    """Highest priority first, equal priorities by id: the documented order of application."""
    return RuleSet(tuple(sorted(rules, key=lambda rule: (-rule.priority, rule.id))))


def load_rule_set(customer_id: int, experiment_ids: Collection[int] = ()) -> RuleSet:
    """The customer's rules serving everyone (enabled, never a draft, tagged to no experiment),
    compiled (one query); with `experiment_ids`, also those serving only in their B."""
    rules = rules_serving(customer_id=customer_id, experiment_ids=experiment_ids)
    return rule_set(
        rule_compile(
            rule_id=rule.pk, document=RuleIn.stored(rule.document()), holdout_salt=rule.holdout_salt
        )
        for rule in rules
    )


def load_drafts(customer_id: int) -> list[CompiledRule]:
    """The customer's enabled drafts, compiled: what would serve beside the live rules were they
    published (the workbench's "after" side; never loaded to serve)."""
    return [
        rule_compile(rule_id=rule.pk, document=RuleIn.stored(rule.document()))
        for rule in drafts_enabled(customer_id=customer_id)
    ]


def catalog_facts(customer_id: int, item_ids: Iterable[str] | None = None) -> ItemFacts:
    """Item facts from the catalog itself (the preview's and conflict checks' view)."""
    if item_ids is not None:
        item_ids = list(item_ids)
    catalog, attributes = {}, {}
    for external_id, brand, categories, price, stock, item_attributes in item_fact_rows(
        customer_id=customer_id, item_ids=item_ids
    ):
        catalog[external_id] = (
            brand,
            tuple(categories),
            None if price is None else float(price),
            stock,
        )
        attributes[external_id] = item_attributes
    ids = tuple(catalog) if item_ids is None else tuple(item_ids)
    return ItemFacts.from_catalog(ids, catalog, attributes)


def catalog_matches(customer_id: int, selector: SelectorDoc) -> list[str]:
    """Ids of the customer's catalog items the selector matches (SQL narrows, the engine's own
    mask decides, so authoring checks and ranking agree)."""
    ids = item_ids_narrowed(customer_id=customer_id, selector=selector)
    facts = catalog_facts(customer_id, ids)
    mask = selector_compile(selector).mask(facts)
    return [item_id for item_id, hit in zip(ids, mask.tolist(), strict=True) if hit]
