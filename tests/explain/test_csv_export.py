"""The explain UI's CSV export opens in a spreadsheet as text: an item titled like a formula is
shown, never run (OWASP's CSV injection guidance)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from customers.models import Customer
from merchandising.contracts import RuleIn
from merchandising.services import rule_create
from ranking.services import signals_refresh
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE_TITLES = {
    "sku-link": '=HYPERLINK("http://x","y")',
    "sku-plus": "+1+cmd|' /C calc'!A0",
    "sku-minus": "-2+3",
    "sku-at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "sku-tab": "\t=1+1",
    "sku-cr": "\r=1+1",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def shop() -> Customer:
    customer = CustomerFactory(name="Outdoor")
    for item_id, title in HOSTILE_TITLES.items():
        ItemFactory(customer=customer, external_id=item_id, title=title, brand="=Brand()")
    ItemFactory(customer=customer, external_id="sku-plain", title="Trail shoe", brand="Acme")
    signals_refresh(customer_id=customer.pk)
    rule = RuleIn.model_validate(
        {
            "name": "=cmd|' /C calc'!A0",
            "selector": {"brands": ["=Brand()"]},
            "action": {"type": "boost", "strength": "strong"},
        },
        strict=False,
    )
    rule_create(customer=customer, document=rule)
    return customer


@pytest.fixture
def merch(shop: Customer) -> Client:
    user = UserFactory(username="merch")
    user.save()  # the factory leaves the password unsaved, and a login session checks it
    MembershipFactory(customer=shop, user=user)
    client = Client()
    client.force_login(user)
    return client


def export(client: Client, shop: Customer) -> list[dict[str, str]]:
    ids = "\n".join([*HOSTILE_TITLES, "sku-plain"])
    query = {
        "customer": shop.pk,
        "surface": "search",
        "query": "shoes",
        "source": "ids",
        "ids": ids,
    }
    response = client.get(f"/explain/export.csv?{urlencode(query)}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


def test_a_title_like_a_formula_is_exported_as_text(merch: Client, shop: Customer) -> None:
    rows = {row["id"]: row for row in export(merch, shop)}

    assert rows["sku-link"]["title"] == '\'=HYPERLINK("http://x","y")'
    for item_id, title in HOSTILE_TITLES.items():
        assert rows[item_id]["title"] == "'" + title
        assert rows[item_id]["brand"] == "'=Brand()"
        assert rows[item_id]["rules"].startswith("'=cmd|")
    assert rows["sku-plain"]["title"] == "Trail shoe"
    assert rows["sku-plain"]["brand"] == "Acme"


def test_no_cell_of_the_export_starts_a_formula_and_numbers_stay_numbers(
    merch: Client, shop: Customer
) -> None:
    rows = export(merch, shop)

    contributions = [name for name in rows[0] if name.startswith("contribution:")]
    assert contributions
    for row in rows:
        for column, cell in row.items():
            if column in ("score", "model_score", "base_value", *contributions):
                float(cell)  # a negative contribution is still a number, not text
            else:
                assert not cell.startswith(FORMULA_STARTS), (column, cell)
