"""A merchandiser changes a query's ranking on the workbench in a real browser, counting clicks:
hide an item and publish it (from the queries that need attention), and boost a brand from next
week with the effect shown before publishing. Screenshots saved in test-artifacts/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import Page, expect

from customers.models import Customer, Role
from merchandising.models import Rule
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.e2e.test_insight_ui import PASSWORD, Clicks, admin_index
from tests.explain.insight_shop import IDS, Traffic, log_request
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TITLES = [
    "Trail runner",
    "Summit boot",
    "Road racer",
    "Mud grip",
    "City walker",
    "Hill climber",
    "Beach sandal",
    "Forest hiker",
]


@pytest.fixture
def shop(make_caller: Callable[..., ApiCaller]) -> Customer:
    return outdoor_shop(make_caller)


def outdoor_shop(make_caller: Callable[..., ApiCaller]) -> Customer:
    """Eight shoes of two brands with signals, searches for "boots" and "socks" with their logged
    rank requests, and a merchandiser of this shop."""
    customer = CustomerFactory(name="E2E Outdoor")
    for number, (item_id, title) in enumerate(zip(IDS, TITLES, strict=True)):
        ItemFactory(
            customer=customer,
            external_id=item_id,
            title=title,
            brand="Solace" if number % 2 else "Zeta",
            price=40 + 7 * number,
            in_stock=number != 6,
            categories=["shoes", "shoes/trail"],
        )
    traffic = Traffic(make_caller(customer))
    for query, searches in (("boots", 30), ("socks", 20)):
        for n in range(searches):
            traffic.search(query, clicks=1 if n % 2 else 0)
        log_request(customer, f"{query}-1", query, IDS)
    traffic.send()
    signals_refresh(customer_id=customer.pk)
    user = UserFactory(username="merch", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user, role=Role.MERCHANDISER)
    return customer


def test_hide_an_item_and_publish_it(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    admin_index(page, live_server)
    click = Clicks(page)

    click("#link-queries")
    click("tr[data-query=boots] a.workbench-link")
    expect(page.locator(".bench-card")).to_have_count(len(IDS))
    click(".bench-card[data-item-id=sku-3] .do-hide")

    expect(page.locator("#changes")).to_contain_text("Hide “Mud grip” for “boots”")
    expect(page.locator("#moves")).to_contain_text("“Mud grip” is hidden")
    expect(page.locator(".bench-card[data-item-id=sku-3]")).to_have_count(0)
    page.screenshot(path=artifacts / "workbench-hide-draft.png", full_page=True)
    click("#publish-now")

    expect(page.locator(".messagelist")).to_contain_text("Published 1 change")
    expect(page.locator("#changes")).to_have_count(0)
    expect(page.locator("#hidden-items")).to_contain_text("Hide “Mud grip” for “boots”")
    page.screenshot(path=artifacts / "workbench-hide-published.png", full_page=True)
    assert click.count == 4
    rule = Rule.objects.get(customer=shop)
    assert not rule.draft


def test_boost_a_brand_for_a_query_from_next_week_seeing_the_effect_first(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    admin_index(page, live_server)
    click = Clicks(page)

    click("#link-workbench")
    expect(page.locator("#query-list option[value=boots]")).to_have_count(1)
    page.fill("#id_query", "boots")
    click("#workbench-submit")
    card = page.locator(".bench-card[data-item-id=sku-0]")
    card.locator("select[name=strength]").select_option("strong")
    click.count += 1  # choosing in a list is a click
    card.locator(".do-boost-brand").click()
    click.count += 1

    expect(page.locator("#changes")).to_contain_text("Boost brand Zeta (strong) for “boots”")
    expect(page.locator("#moves li").first).to_contain_text(" up ")
    expect(page.locator(".badge.draft").first).to_contain_text("boosted ×2 (not published)")  # noqa: RUF001
    page.screenshot(path=artifacts / "workbench-boost-brand-preview.png", full_page=True)
    assert Rule.objects.get(customer=shop).draft

    start = (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#id_start", start)
    click("#publish-later")

    expect(page.locator(".messagelist")).to_contain_text("Published 1 change: shoppers see it from")
    expect(page.locator("#grid-title")).to_have_text("The page now")
    page.screenshot(path=artifacts / "workbench-boost-brand-scheduled.png", full_page=True)
    assert click.count == 5
    rule = Rule.objects.get(customer=shop)
    assert not rule.draft
    assert rule.windows[0]["start"].startswith(start[:10])


def test_pin_an_item_to_the_top_by_dragging_it(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    admin_index(page, live_server)
    click = Clicks(page)

    click("#link-queries")
    click("tr[data-query=socks] a.workbench-link")
    last = page.locator(".bench-card").last
    item_id = last.get_attribute("data-item-id")
    # Grabbed by its head (SortableJS starts no drag on the card's fields and buttons).
    last.locator(".card-head").drag_to(page.locator(".bench-card").first)
    click.count += 1  # a drag is one press of the mouse

    expect(page.locator("#changes")).to_contain_text("to #1 for “socks”")
    expect(page.locator(".bench-card").first).to_have_attribute("data-item-id", str(item_id))
    expect(page.locator(".bench-card").first).to_contain_text("pinned at #1 (not published)")
    expect(page.locator("#moves")).to_contain_text("up 7 (from #8 to #1)")
    expect(page.locator("#moves")).to_contain_text("7 other items move down one place.")
    page.screenshot(path=artifacts / "workbench-pin-dragged.png", full_page=True)
    assert click.count == 3
    rule = Rule.objects.get(customer=shop)
    assert rule.draft
    assert rule.action["pins"] == [{"item_id": item_id, "position": 1}]
