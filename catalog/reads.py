"""Reads of the catalog, each scoped to the customers it names."""

from __future__ import annotations

from collections.abc import Iterable

from catalog.models import Item

# Pickers list at most this many values (a datalist longer than this helps nobody).
MAX_PICKED = 2000


def catalog_brands(*, customer_ids: Iterable[int]) -> list[str]:
    """The brands the customers' items have, sorted (case-insensitively), at most MAX_PICKED."""
    brands = (
        Item.objects.filter(customer_id__in=list(customer_ids))
        .exclude(brand="")
        .values_list("brand", flat=True)
        .distinct()
        .order_by()
    )
    return sorted(set(brands), key=str.casefold)[:MAX_PICKED]


def catalog_categories(*, customer_id: int) -> list[str]:
    """Every category path of the customer's catalog, sorted (so a parent comes before its
    children): one DISTINCT over the items' category lists."""
    lists = (
        Item.objects.for_customer(customer_id)
        .values_list("categories", flat=True)
        .distinct()
        .order_by()
    )
    return sorted({category for categories in lists for category in categories or []})
