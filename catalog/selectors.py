"""Reads of the catalog, each scoped to the customer (or customers) it names: the pickers', the
rule checks' and the pages' look-ups of items."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from catalog.models import Item

# Pickers list at most this many values (a datalist longer than this helps nobody).
MAX_PICKED = 2000


def catalog_brands(*, customer_ids: Iterable[int]) -> list[str]:
    """The brands the customers' items have, sorted (case-insensitively), at most MAX_PICKED."""
    brands = (
        Item.objects.for_customers(list(customer_ids))
        .exclude(brand="")
        .values_list("brand", flat=True)
        .distinct()
        .order_by()
    )
    return sorted(set(brands), key=str.casefold)[:MAX_PICKED]


def catalog_brands_known(*, customer_id: int) -> set[str]:
    """Every brand the customer's items have (the rule form checks typed brands against it)."""
    return set(
        Item.objects.for_customer(customer_id)
        .exclude(brand="")
        .values_list("brand", flat=True)
        .distinct()
    )


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


# The item picker answers at most this many items per lookup.
MAX_ITEMS_FOUND = 20
# Attribute pickers read at most this many distinct values of one attribute from the database.
MAX_ATTRIBUTE_VALUES_READ = 5000


@dataclass(frozen=True)
class FoundItem:
    """One item a picker offers: its id and what a merchandiser recognises it by."""

    id: str
    title: str
    brand: str

    @property
    def label(self) -> str:
        brand = f" ({self.brand})" if self.brand else ""
        return f"{self.id} · {self.title}{brand}"


def catalog_items_find(
    *, customer_id: int, text: str, limit: int = MAX_ITEMS_FOUND
) -> list[FoundItem]:
    """The customer's items whose id starts with `text` (first), then those whose title contains
    every word of it (case-insensitively), by id, at most `limit`. The id prefix is answered by
    the index item_customer_id_prefix; the title words by a scan of the customer's items that
    stops at `limit` matches (docs/rules.md gives its cost on 100k items)."""
    text = " ".join(text.split())
    if not text or limit <= 0:
        return []
    fields = ("external_id", "title", "brand")
    items = Item.objects.for_customer(customer_id)
    by_id = list(items.filter(external_id__startswith=text).order_by("external_id")[:limit])
    found = {item.external_id: item for item in by_id}
    if len(found) < limit:
        by_title = items.exclude(external_id__startswith=text)
        for word in text.split()[:8]:
            by_title = by_title.filter(title__icontains=word)
        for item in by_title.only(*fields).order_by("external_id")[: limit - len(found)]:
            found[item.external_id] = item
    return [FoundItem(item.external_id, item.title, item.brand) for item in found.values()]


def catalog_items_known(*, customer_id: int, item_ids: Sequence[str]) -> set[str]:
    """Which of these ids the customer's catalog has."""
    return set(
        Item.objects.for_customer(customer_id)
        .filter(external_id__in=list(item_ids))
        .values_list("external_id", flat=True)
    )


def catalog_item_ids_near(*, customer_id: int, item_id: str, limit: int = 200) -> list[str]:
    """Ids of the customer's items that share the longest prefix with `item_id` (at least half
    of it): where a mistyped id's neighbours are, read through the id index."""
    items = Item.objects.for_customer(customer_id)
    for length in range(len(item_id) - 1, max(len(item_id) // 2, 1) - 1, -1):
        near = list(
            items.filter(external_id__startswith=item_id[:length])
            .order_by("external_id")
            .values_list("external_id", flat=True)[:limit]
        )
        if near:
            return near
    return []


def attribute_value_text(value: object) -> list[str]:
    """An item's attribute value as the texts a rule's attribute clause matches it by (as the
    rule engine compares: lists by each element, booleans as "true"/"false", whole floats also
    as integers)."""
    if isinstance(value, list):
        return [text for element in value for text in attribute_value_text(element)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, float) and value.is_integer():
        return [str(int(value)), str(value)]
    if value is None or isinstance(value, dict):
        return []
    return [str(value)]


def catalog_attribute_names(*, customer_id: int) -> list[str]:
    """The attribute names the customer's items have, sorted, at most MAX_PICKED: one DISTINCT
    over the keys in the database (jsonb_object_keys on PostgreSQL, json_each on SQLite)."""
    table = Item._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT DISTINCT jsonb_object_keys(attributes) FROM {table} "  # noqa: S608
            "WHERE customer_id = %s AND jsonb_typeof(attributes) = 'object'"
        )
    else:
        sql = (
            f"SELECT DISTINCT attribute.key FROM {table}, json_each({table}.attributes) "  # noqa: S608
            "AS attribute WHERE customer_id = %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [customer_id])
        names = [row[0] for row in cursor.fetchall()]
    return sorted(names, key=str.casefold)[:MAX_PICKED]


def _attribute_values(customer_id: int, name: str) -> tuple[list[str], bool]:
    """The values seen for attribute `name` (as in catalog_attribute_values), and whether they
    are all of them (no bound was reached)."""
    stored = list(
        Item.objects.for_customer(customer_id)
        .filter(attributes__has_key=name)
        .annotate(attribute_value=KeyTransform(name, "attributes"))
        .values_list("attribute_value", flat=True)
        .distinct()
        .order_by()[: MAX_ATTRIBUTE_VALUES_READ + 1]
    )
    values = sorted(
        {text for value in stored for text in attribute_value_text(value)}, key=str.casefold
    )
    complete = len(stored) <= MAX_ATTRIBUTE_VALUES_READ and len(values) <= MAX_PICKED
    return values[:MAX_PICKED], complete


def catalog_attribute_values(*, customer_id: int, name: str) -> list[str]:
    """The values the customer's items have for attribute `name`, as rules match them, sorted,
    at most MAX_PICKED (read from at most MAX_ATTRIBUTE_VALUES_READ distinct stored values)."""
    return _attribute_values(customer_id, name)[0]


def catalog_attribute_known(*, customer_id: int, name: str) -> bool:
    """Whether any item of the customer has attribute `name`."""
    return Item.objects.for_customer(customer_id).filter(attributes__has_key=name).exists()


def catalog_attribute_value_known(*, customer_id: int, name: str, value: str) -> bool:
    """Whether an item of the customer has `value` for attribute `name` (as rules match it).
    Beyond the picker's bound (an attribute with thousands of values) the items are read."""
    seen, complete = _attribute_values(customer_id, name)
    if value in seen or complete:
        return value in seen
    items = Item.objects.for_customer(customer_id).filter(attributes__has_key=name)
    return any(
        value in attribute_value_text(attributes.get(name))
        for attributes in items.values_list("attributes", flat=True).iterator(chunk_size=2000)
    )


def item_of(*, customer_id: int, item_id: str) -> Item | None:
    """The customer's item with this id, if any."""
    return Item.objects.for_customer(customer_id).filter(external_id=item_id).first()


def items_by_id(*, customer_id: int, item_ids: Iterable[str]) -> dict[str, Item]:
    """The customer's items among `item_ids`, by id, with what pages show of them."""
    items = (
        Item.objects.for_customer(customer_id)
        .filter(external_id__in=list(item_ids))
        .only("external_id", "title", "brand", "price", "categories")
    )
    return {item.external_id: item for item in items}


def items_for_cards(*, customer_id: int, item_ids: Iterable[str]) -> dict[str, Item]:
    """The customer's items among `item_ids`, by id, with all a product card and a rule's
    selector read of them (stock and attributes too)."""
    items = (
        Item.objects.for_customer(customer_id)
        .filter(external_id__in=list(item_ids))
        .only("external_id", "title", "brand", "categories", "price", "in_stock", "attributes")
    )
    return {item.external_id: item for item in items}


ItemFactsRow = tuple[str, str, list[str], Any, bool, Any]


def item_fact_rows(
    *, customer_id: int, item_ids: Iterable[str] | None = None
) -> list[ItemFactsRow]:
    """(id, brand, categories, price, in stock, attributes) of the customer's items (of those
    among `item_ids` when given): what rule selectors match on."""
    items = Item.objects.for_customer(customer_id)
    if item_ids is not None:
        items = items.filter(external_id__in=list(item_ids))
    return list(
        items.values_list("external_id", "brand", "categories", "price", "in_stock", "attributes")
    )


def item_shopper_facts(
    *, customer_id: int, item_ids: Iterable[str]
) -> dict[str, tuple[str, tuple[str, ...], float | None]]:
    """Brand, categories and price of the customer's items among `item_ids`, by id: what a
    shopper's profile learns from acting on one."""
    return {
        external_id: (brand, tuple(categories), None if price is None else float(price))
        for external_id, brand, categories, price in Item.objects.for_customer(customer_id)
        .filter(external_id__in=set(item_ids))
        .values_list("external_id", "brand", "categories", "price")
    }


def items_with_attribute_keys(
    *, customer_id: int, keys: Iterable[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, attributes) of the customer's items that have every attribute in `keys`, streamed in
    chunks (a rule's attribute set is computed over the whole catalog)."""
    items = Item.objects.for_customer(customer_id)
    for key in keys:
        items = items.filter(attributes__has_key=key)
    return items.values_list("external_id", "attributes").iterator(chunk_size=10_000)


def items_matching_words(
    *, customer_id: int, words: Iterable[str], category: str
) -> QuerySet[Item]:
    """The customer's items whose title has every word, narrowed to those whose categories'
    text contains `category` when it is ASCII (SQLite stores JSON \\u-escaped: the caller decides
    the category exactly)."""
    items = Item.objects.for_customer(customer_id)
    for word in words:
        items = items.filter(title__icontains=word)
    if category and category.isascii():
        items = items.filter(categories__icontains=category)
    return items
