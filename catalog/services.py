"""Writes to the catalog."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from catalog.contracts import CatalogItemIn
from catalog.models import Item
from catalog.selectors import catalog_items_known
from core.errors import FieldError, invalid_request
from merchandising.services import catalog_changed

UPSERT_FIELDS = ["title", "brand", "categories", "price", "in_stock", "attributes", "updated_at"]


def _duplicate_id_errors(items: Sequence[CatalogItemIn]) -> list[FieldError]:
    counts = Counter(item.id for item in items)
    return [
        FieldError(("items", index, "id"), "duplicate", f"Item id {item.id!r} appears twice.")
        for index, item in enumerate(items)
        if counts[item.id] > 1
    ]


@transaction.atomic
def items_upsert(*, customer_id: int, items: Sequence[CatalogItemIn]) -> tuple[int, int]:
    """Create or update items by id in one transaction; returns (created, updated)."""
    errors = _duplicate_id_errors(items)
    if errors:
        raise invalid_request(errors)
    ids = [item.id for item in items]
    existing = catalog_items_known(customer_id=customer_id, item_ids=ids)
    now = timezone.now()
    rows = [
        Item(
            customer_id=customer_id,
            external_id=item.id,
            title=item.title,
            brand=item.brand or "",
            categories=list(dict.fromkeys(item.categories)),
            price=None if item.price is None else Decimal(str(item.price)),
            in_stock=item.in_stock,
            attributes=item.attributes,
            created_at=now,
            updated_at=now,
        )
        for item in items
    ]
    Item.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["customer", "external_id"],
        update_fields=UPSERT_FIELDS,
    )
    catalog_changed(customer_id, [(item.id, item.attributes) for item in items])
    return len(ids) - len(existing), len(existing)


@transaction.atomic
def item_delete(*, item: Item) -> None:
    item.delete()
    catalog_changed(item.customer_id, [(item.external_id, None)])


@transaction.atomic
def item_save(*, item: Item) -> Item:
    """Save one item edited by hand (the admin) as an API upsert would: the rules' attribute sets
    follow it at once, and an item whose id changed leaves the sets under its old id."""
    previous = (
        Item.objects.filter(pk=item.pk).values_list("external_id", flat=True).first()
        if item.pk
        else None
    )
    item.updated_at = timezone.now()
    item.full_clean()
    item.save()
    changes: list[tuple[str, dict[str, object] | None]] = [(item.external_id, item.attributes)]
    if previous is not None and previous != item.external_id:
        changes.append((previous, None))
    catalog_changed(item.customer_id, changes)
    return item


@transaction.atomic
def items_delete(*, items: QuerySet[Item]) -> int:
    """Delete items (of any customers: the admin's bulk action); returns how many."""
    gone: dict[int, list[tuple[str, None]]] = {}
    for customer_id, external_id in items.values_list("customer_id", "external_id"):
        gone.setdefault(customer_id, []).append((external_id, None))
    deleted, _ = items.delete()
    for customer_id, changes in gone.items():
        catalog_changed(customer_id, changes)
    return deleted
