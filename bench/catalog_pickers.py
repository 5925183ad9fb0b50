"""What the rule form's catalog lookups cost on a 100k-item catalog (docs/rules.md, "Pickers").

Fills a customer with 100,000 items (and a neighbour with 20,000, so the customer-leading
indexes have to pick one shop out), then times each lookup the form's pickers and checks make,
as the admin's endpoints call them: items by id prefix, by common and rare title words and by
words no title has (the worst case: every item of the customer is read), the attribute names,
one attribute's values, and the form's check of 50 item ids with a "did you mean". Prints
medians and the slowest of the rounds as JSON, and the plans of the two item queries. Both
customers are deleted afterwards.

    DATABASE_URL=postgres://... .venv/bin/python bench/catalog_pickers.py [--items 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from catalog.models import Item  # noqa: E402
from catalog.selectors import (  # noqa: E402
    catalog_attribute_names,
    catalog_attribute_values,
    catalog_items_find,
)
from customers.models import Customer  # noqa: E402
from merchandising.forms import unknown_item_ids  # noqa: E402

WORDS = [
    "trail",
    "road",
    "runner",
    "hiker",
    "pro",
    "lite",
    "max",
    "wool",
    "merino",
    "shell",
    "jacket",
    "sock",
    "boot",
    "sandal",
    "cap",
    "glove",
    "pack",
    "tent",
    "lamp",
    "bottle",
]
BRANDS = ["Solace", "Acme", "Zeta", "Northwind", "Kestrel", "Tamarack"]
COLORS = ["black", "red", "turquoise", "olive", "grey", "navy", "sand", "white"]


def fill(customer: Customer, count: int, rng: random.Random) -> None:
    batch = []
    for number in range(count):
        title = " ".join(rng.choice(WORDS).capitalize() for _ in range(3)) + f" {number}"
        batch.append(
            Item(
                customer=customer,
                external_id=f"sku-{number:06d}",
                title=title,
                brand=rng.choice(BRANDS),
                categories=["outdoor"],
                price=rng.randint(5, 500),
                attributes={"color": rng.choice(COLORS), "size": [str(rng.randint(36, 46))]},
            )
        )
        if len(batch) == 5000:
            Item.objects.bulk_create(batch)
            batch = []
    Item.objects.bulk_create(batch)


def timed(call: Callable[[], object], rounds: int) -> dict[str, float]:
    call()  # warm: the first read of a page from disk is not what a person waits for twice
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(7)
    Customer.objects.filter(slug__in=["bench-pickers", "bench-pickers-neighbour"]).delete()
    shop = Customer.objects.create(name="Bench pickers", slug="bench-pickers")
    neighbour = Customer.objects.create(name="Bench neighbour", slug="bench-pickers-neighbour")
    try:
        fill(shop, args.items, rng)
        fill(neighbour, args.items // 5, rng)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_item")
        ids = [f"sku-{rng.randrange(args.items):06d}" for _ in range(45)]
        typos = [f"sku-{rng.randrange(args.items):06d}x" for _ in range(5)]

        def find(text: str) -> Callable[[], object]:
            return lambda: catalog_items_find(customer_id=shop.pk, text=text)

        results = {
            "items": args.items,
            "id prefix 'sku-0421'": timed(find("sku-0421"), args.rounds),
            "common title words 'trail run'": timed(find("trail run"), args.rounds),
            "rare title words 'merino tent 4242'": timed(find("merino tent 4242"), args.rounds),
            "no title has it 'kayak'": timed(find("kayak"), args.rounds),
            "attribute names": timed(
                lambda: catalog_attribute_names(customer_id=shop.pk), args.rounds
            ),
            "values of 'color'": timed(
                lambda: catalog_attribute_values(customer_id=shop.pk, name="color"), args.rounds
            ),
            "form check of 50 ids, 5 unknown": timed(
                lambda: unknown_item_ids(shop.pk, [*ids, *typos]), args.rounds
            ),
        }
        items = Item.objects.for_customer(shop.pk)
        by_id = items.filter(external_id__startswith="sku-0421").order_by("external_id")[:20]
        by_title = (
            items.exclude(external_id__startswith="kayak")
            .filter(title__icontains="kayak")
            .order_by("external_id")[:20]
        )
        print(json.dumps(results, indent=2))
        print("plan of the id prefix:\n" + by_id.explain())
        print("plan of the title words:\n" + by_title.explain())
    finally:
        Customer.objects.filter(pk__in=[shop.pk, neighbour.pk]).delete()


if __name__ == "__main__":
    main()
