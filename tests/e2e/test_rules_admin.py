"""A merchandiser creates a pin rule in the admin and previews it, in a real browser."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect

from customers.models import Customer, Role
from merchandising.contracts import RuleIn
from merchandising.models import Rule
from merchandising.services import rule_create, rule_update
from ranking.services import signals_refresh
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def shop() -> Customer:
    """A small catalog with signals, and a merchandiser who sees only this shop."""
    customer = CustomerFactory(name="E2E Outdoor")
    for number in range(1, 13):
        ItemFactory(
            customer=customer,
            external_id=f"shoe-{number:02d}",
            title=f"Trail shoe {number}",
            brand="Acme" if number % 2 else "Zeta",
            price=Decimal(5 * number),
        )
    ItemFactory(customer=customer, external_id="sock-01", title="Wool sock")
    signals_refresh(customer_id=customer.pk)
    user = UserFactory(username="merch", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user, role=Role.MERCHANDISER)
    return customer


def test_a_merchandiser_pins_an_item_and_sees_it_move_in_the_preview(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/add/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("#rule_form")).to_be_visible()
    page.select_option("#id_customer", label="E2E Outdoor")
    page.fill("#id_name", "Trail shoe 12 second")
    page.check("input[name=surfaces][value=search]")
    page.select_option("#id_query_match", "contains")
    page.fill("#id_query_patterns", "trail")
    page.select_option("#id_action_kind", "pin")
    expect(page.locator(".field-action_strength")).to_be_hidden()  # only the pin's fields show
    page.fill("#id_action_pins", "shoe-12 @ 2")
    page.screenshot(path=artifacts / "rules-admin-1-form.png", full_page=True)
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist .success")).to_contain_text("Trail shoe 12 second")
    rule = Rule.objects.get(customer=shop)
    assert rule.action == {"type": "pin", "pins": [{"item_id": "shoe-12", "position": 2}]}
    page.screenshot(path=artifacts / "rules-admin-2-saved.png", full_page=True)

    page.click("a.previewlink")
    page.fill("#id_query", "trail shoe")
    page.click("#preview-form input[type=submit]")

    pinned = page.locator("#with-rule tr.preview-row[data-item-id=shoe-12]")
    expect(pinned).to_have_attribute("data-position", "2")
    expect(pinned.locator(".badges")).to_contain_text("pinned")
    before = page.locator("#without-rule tr.preview-row[data-item-id=shoe-12]")
    before_position = int(before.get_attribute("data-position") or 0) if before.count() else None
    move = pinned.locator(".move")
    if before_position is None:  # below the shown top before: it entered the top
        expect(pinned).to_have_class("preview-row entered")
    elif before_position > 2:
        expect(move).to_contain_text(f"▲{before_position - 2}")
    expect(page.locator(".rule-applies")).to_be_visible()
    page.screenshot(path=artifacts / "rules-admin-3-preview.png", full_page=True)

    page.click(".breadcrumbs a:has-text('Trail shoe 12 second')")
    page.click("a.historylink")
    expect(page.locator("#revision-1 h2")).to_contain_text("Revision 1: created by merch")
    expect(page.locator("#revision-1 .rule-diff")).to_contain_text('"item_id": "shoe-12"')
    page.screenshot(path=artifacts / "rules-admin-4-history.png", full_page=True)


def test_a_brand_is_picked_from_the_catalog_not_typed(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/add/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    picker = page.locator("#id_selector_brands_picker")
    expect(picker).to_have_attribute("list", "catalog-brands")
    picker.fill("Zeta")
    page.click(".field-selector_brands .rule-picker-add")
    picker.fill("Acme")
    picker.press("Enter")  # adds, does not submit the form
    picker.fill("zeta")
    picker.press("Enter")  # already there: not twice
    page.screenshot(path=artifacts / "rules-admin-5-brand-picker.png", full_page=True)

    expect(page.locator("#id_selector_brands")).to_have_value("Zeta\nAcme")
    assert not Rule.objects.exists()


def test_a_rule_is_reverted_in_two_clicks_from_its_page(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    zeta = {"selector": {"brands": ["Zeta"]}}
    weak = {"name": "Zeta up", "action": {"type": "boost", "strength": "weak"}, **zeta}
    strong = {"name": "Zeta way up", "action": {"type": "boost", "strength": "max"}, **zeta}
    created = rule_create(customer=shop, document=RuleIn.model_validate(weak))[0]
    rule_update(rule=created, document=RuleIn.model_validate(strong))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/{created.pk}/change/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    clicks = 0

    page.click("a.historylink")
    clicks += 1
    expect(page.locator("#revision-2 .rule-changes")).to_contain_text("Zeta way up")
    page.click("#revision-1 input[type=submit]")
    clicks += 1

    expect(page.locator(".messagelist .success")).to_be_visible()
    page.screenshot(path=artifacts / "rules-admin-6-reverted.png", full_page=True)
    assert clicks == 2
    created.refresh_from_db()
    assert created.name == "Zeta up"
    assert created.action["strength"] == "weak"


def section(page: Page, field: str, path: Path) -> None:
    """A screenshot of the form's section holding `field`, with room under it for an open list."""
    box = page.locator(f"fieldset:has(.field-{field})").bounding_box()
    assert box is not None
    scroll_x, scroll_y = page.evaluate("() => [window.scrollX, window.scrollY]")
    page.screenshot(
        path=path,
        full_page=True,
        clip={
            "x": box["x"] + scroll_x,
            "y": box["y"] + scroll_y,
            "width": box["width"],
            "height": box["height"] + 120,
        },
    )


def test_an_item_is_found_by_words_of_its_title_and_an_attribute_picked_from_the_catalog(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    ItemFactory(
        customer=shop,
        external_id="sku-123",
        title="Trail Runner Pro",
        brand="Solace",
        attributes={"color": "turquoise"},
    )
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/add/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.select_option("#id_customer", label="E2E Outdoor")
    page.fill("#id_name", "Trail Runner Pro up")
    page.select_option("#id_action_kind", "boost")
    page.select_option("#id_action_strength", "strong")
    finder = page.locator("#id_selector_item_ids_finder")
    finder.press_sequentially("trail run")
    option = page.locator("#id_selector_item_ids_found li[role=option]")
    expect(option).to_have_count(1)
    expect(option).to_have_text("sku-123 · Trail Runner Pro (Solace)")
    section(page, "selector_item_ids", artifacts / "rules-admin-7-item-finder.png")
    option.click()
    expect(page.locator("#id_selector_item_ids")).to_have_value("sku-123")
    expect(page.locator("#id_selector_item_ids_found")).to_be_hidden()

    page.fill("#id_selector_attributes_name", "color")
    page.locator("#id_selector_attributes_name").press("Enter")  # on to the value
    expect(page.locator("#id_selector_attributes_values option")).to_have_count(1)
    expect(page.locator("#id_selector_attributes_values option")).to_have_attribute(
        "value", "turquoise"
    )
    page.fill("#id_selector_attributes_value", "turquoise")
    page.locator("#id_selector_attributes_value").press("Enter")  # adds, does not submit
    expect(page.locator("#id_selector_attributes")).to_have_value("color=turquoise")
    section(page, "selector_item_ids", artifacts / "rules-admin-8-picked.png")
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist .success")).to_contain_text("Trail Runner Pro up")
    rule = Rule.objects.get(customer=shop)
    assert rule.selector["item_ids"] == ["sku-123"]
    assert rule.selector["attributes"] == {"color": ["turquoise"]}


def test_items_are_pinned_from_the_keyboard_each_at_the_next_position(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/add/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.select_option("#id_customer", label="E2E Outdoor")
    page.fill("#id_name", "Shoe 12 then the sock")
    page.select_option("#id_action_kind", "pin")
    finder = page.locator("#id_action_pins_finder")
    finder.press_sequentially("trail shoe 1")  # shoe 1, 10, 11, 12
    expect(page.locator("#id_action_pins_found li[role=option]")).to_have_count(4)
    for _ in range(4):
        finder.press("ArrowDown")
    expect(page.locator("#id_action_pins_found li[aria-selected=true]")).to_have_attribute(
        "data-item-id", "shoe-12"
    )
    finder.press("Enter")
    finder.press_sequentially("wool")
    expect(page.locator("#id_action_pins_found li[role=option]")).to_have_count(1)
    finder.press("Enter")  # the only one found
    finder.press_sequentially("kayak")
    expect(page.locator("#id_action_pins_found")).to_contain_text("No item has “kayak”")
    expect(page.locator("#id_action_pins")).to_have_value("shoe-12 @ 1\nsock-01 @ 2")
    section(page, "action_pins", artifacts / "rules-admin-9-pins-found.png")
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist .success")).to_contain_text("Shoe 12 then the sock")
    rule = Rule.objects.get(customer=shop)
    assert rule.action["pins"] == [
        {"item_id": "shoe-12", "position": 1},
        {"item_id": "sock-01", "position": 2},
    ]
