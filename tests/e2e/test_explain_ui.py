"""A merchandiser explains the demo shop's ranking in a real browser: the ranked list, an item's
breakdown, "why is A above B" and compare mode, with screenshots saved as test artifacts."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import Page, expect

from catalog.models import Item
from customers.models import Customer
from merchandising.contracts import RuleIn
from merchandising.services import rule_create
from ranking.signals.schema import FEATURES

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def demo_shop(settings: Any, tmp_path: Path) -> Customer:
    """`manage.py demo` at a small size (its models and artifacts in a temporary folder), a
    boost rule on one brand, and the merchandiser's password known."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    call_command("demo", items=300, shoppers=200, sessions=1200, stdout=io.StringIO())
    shop = Customer.objects.get(slug="demo-shop")
    brand = (
        Item.objects.filter(customer=shop, categories__icontains="shoes")
        .order_by("external_id")
        .values_list("brand", flat=True)
        .first()
    )
    document = RuleIn.model_validate(
        {
            "name": f"{brand} up",
            "selector": {"brands": [brand]},
            "action": {"type": "boost", "strength": "strong"},
        },
        strict=False,
    )
    rule_create(customer=shop, document=document)
    user = get_user_model().objects.get(username="merchandiser")
    user.set_password(PASSWORD)
    user.save()
    return shop


def test_a_merchandiser_explains_the_demo_shop(
    page: Page, live_server: Any, demo_shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/explain/")
    page.fill("#id_username", "merchandiser")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("#explain-form")).to_be_visible()
    expect(page.locator("#id_customer option")).to_have_text(["Demo Shop"])
    page.select_option("#id_surface", "browse")
    page.fill("#id_category", "shoes")
    page.select_option("#id_source", "category")
    page.fill("#id_from_category", "shoes")
    page.fill("#id_top_n", "30")
    page.fill("#id_show", "20")
    page.click("#explain-submit")

    rows = page.locator("tr.ranked-row")
    expect(rows).to_have_count(20)
    expect(page.locator("#method-label")).to_contain_text("exact")
    expect(rows.first.locator(".exact-label")).to_contain_text("exact")
    expect(rows.first.locator("svg.bar rect").first).to_be_attached()
    expect(page.locator("a.rule-badge").first).to_contain_text("boost")
    assert "from_category=shoes" in page.url  # the whole form is in the URL: the permalink
    page.screenshot(path=artifacts / "explain-1-ranking.png", full_page=True)

    first_id = rows.first.get_attribute("data-item-id")
    second_id = rows.nth(1).get_attribute("data-item-id")
    rows.first.locator("a.item-link").click()
    expect(page.locator("#explain-item")).to_be_visible()
    expect(page.locator("tr.feature-row")).to_have_count(len(FEATURES))
    expect(page.locator("#item-title")).to_contain_text(first_id or "")
    page.screenshot(path=artifacts / "explain-2-item.png", full_page=True)

    page.go_back()
    rows.first.locator("a.why-link").click()
    expect(page.locator("#explain-why")).to_be_visible()
    expect(page.locator("#verdict")).to_contain_text(f"{first_id} above {second_id}")
    expect(page.locator("tr.gap-row")).to_have_count(len(FEATURES))
    expect(page.locator("#gap-line")).to_contain_text("sigmoid")
    page.screenshot(path=artifacts / "explain-3-why.png", full_page=True)

    page.click(".explain-tabs a:has-text('Compare')")
    page.select_option("#id_compare", "blend")
    page.click("#explain-submit")
    compare_rows = page.locator("tr.compare-row")
    expect(compare_rows).to_have_count(30)
    expect(page.locator("#explain-compare")).to_contain_text("blend")
    assert re.search(r"compare=blend", page.url)
    page.screenshot(path=artifacts / "explain-4-compare.png", full_page=True)
