"""A merchandiser, from the admin index, finds the rule hiding an item ("Why isn't it here?"), the
queries that need attention and why an item is first there, in a real browser, counting clicks;
screenshots saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect

from customers.models import Customer, Role
from merchandising.contracts import RuleIn
from merchandising.services import rule_create
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.explain.insight_shop import IDS, Traffic, log_request
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(make_caller: Callable[..., ApiCaller]) -> Customer:
    """Eight shoes with signals, a rule hiding one, searches for four queries (one never
    clicked, one rarely), logged rank requests, and a merchandiser of this shop only."""
    customer = CustomerFactory(name="E2E Outdoor")
    for number, item_id in enumerate(IDS):
        ItemFactory(
            customer=customer,
            external_id=item_id,
            title=f"Trail shoe {number}",
            brand="Acme" if number % 2 else "Zeta",
            categories=["shoes", "shoes/trail"],
        )
    traffic = Traffic(make_caller(customer))
    for query, searches, clicked in (
        ("boots", 40, 20),
        ("sandals", 30, 15),
        ("socks", 25, 5),
        ("laces", 20, 0),
    ):
        for n in range(searches):
            traffic.search(query, clicks=1 if n < clicked else 0)
        log_request(customer, f"{query}-1", query, IDS)
    traffic.send()
    signals_refresh(customer_id=customer.pk)
    document = {
        "name": "Hide the old model",
        "selector": {"item_ids": ["sku-5"]},
        "action": {"type": "hide"},
    }
    rule_create(customer=customer, document=RuleIn.model_validate(document))
    user = UserFactory(username="merch", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user, role=Role.MERCHANDISER)
    return customer


class Clicks:
    """Clicks on the page, counted."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.count = 0

    def __call__(self, selector: str) -> None:
        self.page.click(selector)
        self.count += 1


def admin_index(page: Page, live_server: Any) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#shop-insight")).to_be_visible()


def test_why_isnt_an_item_here_names_the_rule_hiding_it(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    admin_index(page, live_server)
    click = Clicks(page)

    click("#link-why-not")
    page.fill("#id_query", "boots")
    page.fill("#id_item", "sku-5")
    click("#why-not-submit")

    expect(page.locator("#verdict")).to_have_text("It is hidden by the rule “Hide the old model”.")
    expect(page.locator("#item-rules a")).to_have_text("Hide the old model")
    expect(page.locator("#lifts")).to_contain_text("switch that rule off")
    page.screenshot(path=artifacts / "insight-why-not-hidden.png", full_page=True)
    assert click.count == 2

    page.fill("#id_item", "sku-7")
    page.fill("#id_page_size", "3")
    click("#why-not-submit")
    expect(page.locator("#verdict")).to_contain_text("below the page (the first 3)")
    expect(page.locator("#lifts")).to_contain_text("A pin at position 3 or higher")
    page.screenshot(path=artifacts / "insight-why-not-below.png", full_page=True)


def test_queries_that_need_attention_lead_to_a_flagged_querys_ranking(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    admin_index(page, live_server)
    click = Clicks(page)

    click("#link-queries")

    rows = page.locator("tr.query-row")
    expect(rows).to_have_count(4)
    expect(page.locator("tr.query-row.flagged")).to_have_count(2)
    expect(page.locator("tr[data-query=laces] .flag")).to_have_text("no clicks")
    expect(page.locator("tr[data-query=socks] .flag")).to_have_text("few clicks")
    expect(page.locator("tr[data-query=socks] .ctr")).to_have_text("20.0%")
    expect(page.locator("#flag-rule")).to_contain_text("searched at least 20 times")
    page.screenshot(path=artifacts / "insight-queries.png", full_page=True)

    click("tr[data-query=laces] a.query-link")

    expect(page.locator("tr.ranked-row")).to_have_count(7)  # eight logged, one hidden
    expect(page.locator("#removed")).to_contain_text("Hide the old model")
    assert "query=laces" in page.url
    page.screenshot(path=artifacts / "insight-queries-flagged-ranking.png", full_page=True)
    assert click.count == 2

    # Why is the first item first? One more click.
    first = page.locator("tr.ranked-row").first.get_attribute("data-item-id")
    second = page.locator("tr.ranked-row").nth(1).get_attribute("data-item-id")
    click("tr.ranked-row >> nth=0 >> a.why-link")

    expect(page.locator("#verdict")).to_contain_text(f"{first} above {second}")
    expect(page.locator("tr.gap-row").first).to_be_visible()
    page.screenshot(path=artifacts / "insight-why-first.png", full_page=True)
    assert click.count == 3
