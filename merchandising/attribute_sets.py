"""Attribute sets: which catalog items match each rule's attribute clauses, kept in the signal
store so that API processes hold nothing per catalog item (docs/rules.md, docs/performance.md).

One set per distinct clause set (`attribute_set_name`), for every rule of the customer, enabled
or not (previews run disabled rules too). They are written:
- when a rule is saved or reverted: its set, computed from the catalog, before the transaction
  that makes the rule visible commits (a set nobody uses yet is harmless if it rolls back);
- at the end of a catalog write: the written items added to or removed from every set;
- with every signal refresh: all of them recomputed, and sets no rule uses any more deleted
  (this also repairs what a signal-store outage made a write miss).
A signal-store outage never fails the write that triggered an update: it is logged, and the
next refresh catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from catalog.selectors import items_with_attribute_keys
from merchandising.compiled import Attributes, attribute_matches, attribute_set_name
from merchandising.contracts import Selector as SelectorDoc
from merchandising.loading import attributes_compile
from merchandising.selectors import rule_selector_documents
from ranking.signals.backend import signal_store
from ranking.signals.store import SignalStoreUnavailable

logger = logging.getLogger(__name__)


def _matches(item_attributes: Mapping[str, object] | None, attributes: Attributes) -> bool:
    return item_attributes is not None and all(
        key in item_attributes and attribute_matches(item_attributes[key], values)
        for key, values in attributes
    )


def attribute_item_ids(customer_id: int, attributes: Attributes) -> list[str]:
    """Ids of the customer's items whose attributes match every clause (values OR-ed)."""
    return [
        external_id
        for external_id, item_attributes in items_with_attribute_keys(
            customer_id=customer_id, keys=[key for key, _ in attributes]
        )
        if _matches(item_attributes, attributes)
    ]


def rule_attribute_sets(customer_id: int) -> dict[str, Attributes]:
    """Set name -> clauses, over all the customer's rules."""
    found: dict[str, Attributes] = {}
    for selector in rule_selector_documents(customer_id=customer_id):
        if selector.get("attributes"):
            attributes = attributes_compile(selector["attributes"])
            found[attribute_set_name(attributes)] = attributes
    return found


def attribute_set_publish(customer_id: int, selector: SelectorDoc) -> None:
    """Compute and write the set of one rule's selector (nothing when it has no attributes)."""
    if not selector.attributes:
        return
    attributes = attributes_compile(selector.attributes)
    name = attribute_set_name(attributes)
    try:
        signal_store().attribute_set_replace(
            customer_id, name, attribute_item_ids(customer_id, attributes)
        )
    except SignalStoreUnavailable:
        logger.warning(
            "signal store unavailable: attribute set %s of customer %s not written; the next "
            "signal refresh writes it",
            name,
            customer_id,
            exc_info=True,
        )


def attribute_sets_sync(customer_id: int) -> int:
    """Recompute every set of the customer's rules and delete the unused; returns how many."""
    sets = rule_attribute_sets(customer_id)
    store = signal_store()
    for name, attributes in sets.items():
        store.attribute_set_replace(customer_id, name, attribute_item_ids(customer_id, attributes))
    store.attribute_sets_retain(customer_id, list(sets))
    return len(sets)


def attribute_sets_items_changed(
    customer_id: int,
    items: Iterable[tuple[str, Mapping[str, object] | None]],
) -> None:
    """After a catalog write: each (item id, attributes) joins or leaves every set; None as
    attributes means the item was deleted."""
    sets = rule_attribute_sets(customer_id)
    if not sets:
        return
    added: dict[str, list[str]] = {name: [] for name in sets}
    removed: dict[str, list[str]] = {name: [] for name in sets}
    for item_id, item_attributes in items:
        for name, attributes in sets.items():
            (added if _matches(item_attributes, attributes) else removed)[name].append(item_id)
    changes: dict[str, tuple[Sequence[str], Sequence[str]]] = {
        name: (added[name], removed[name]) for name in sets
    }
    try:
        signal_store().attribute_sets_update(customer_id, changes)
    except SignalStoreUnavailable:
        logger.warning(
            "signal store unavailable: attribute sets of customer %s not updated after a "
            "catalog write; the next signal refresh recomputes them",
            customer_id,
            exc_info=True,
        )
