"""The admin's look, the workbench's libraries and dates in the shop's time zone, in a real
browser: every asset (htmx, SortableJS, the theme) comes from the app itself, the workbench
changes the page in place (htmx) with a visible keyboard focus and a label on every field, and a
rule's window typed in Berlin time is stored as the right UTC instant and shown back in Berlin
time. Screenshots saved in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, Request, expect

from customers.models import Customer
from merchandising.models import Rule
from tests.conftest import ApiCaller
from tests.e2e.test_insight_ui import PASSWORD, admin_index
from tests.e2e.test_workbench_ui import outdoor_shop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def shop(make_caller: Callable[..., ApiCaller]) -> Customer:
    """The workbench tests' shop: eight shoes, searches for "boots", a merchandiser."""
    return outdoor_shop(make_caller)


def requests_of(page: Page) -> list[str]:
    """Every URL the page asks for from now on (documents, scripts, styles, images, XHR)."""
    urls: list[str] = []

    def record(request: Request) -> None:
        urls.append(request.url)

    page.on("request", record)
    return urls


def test_the_workbench_loads_htmx_and_sortablejs_from_the_app_and_changes_in_place(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    urls = requests_of(page)
    admin_index(page, live_server)
    page.goto(f"{live_server.url}/explain/workbench/?customer={shop.pk}&query=boots")
    expect(page.locator(".bench-card")).to_have_count(8)

    assert page.evaluate("() => window.htmx && window.htmx.version") == "2.0.11"
    assert page.evaluate("() => typeof window.Sortable") == "function"
    assert f"{live_server.url}/static/vendor/htmx/htmx.min.js" in urls
    assert f"{live_server.url}/static/vendor/sortablejs/Sortable.min.js" in urls
    assert f"{live_server.url}/static/rankwell/theme.css" in urls
    page.evaluate("() => { window.notReloaded = true; }")

    # A change is sent by htmx and the page is updated in place (the window keeps its state).
    with page.expect_request(lambda request: "/explain/workbench/change/" in request.url) as sent:
        page.click(".bench-card[data-item-id=sku-3] .do-hide")
    expect(page.locator("#changes")).to_contain_text("Hide “Mud grip” for “boots”")
    expect(page.locator("#bench-messages")).to_contain_text("Saved as a draft")
    assert sent.value.headers.get("hx-request") == "true"
    assert page.evaluate("() => window.notReloaded") is True
    # The focus is not lost with the button that was replaced: it is on the message.
    expect(page.locator("#bench-messages")).to_be_focused()  # moved once htmx settled

    # The shopper picker shows the personalised page in place, and the address names it.
    page.fill("#id_user", "u:42")
    page.press("#id_user", "Tab")
    expect(page).to_have_url(re.compile(r"[?&]user=u%3A42"))
    assert page.evaluate("() => window.notReloaded") is True
    page.screenshot(path=artifacts / "look-workbench.png", full_page=True)
    page.emulate_media(color_scheme="dark")  # the admin's dark variables, themed too
    page.screenshot(path=artifacts / "look-workbench-dark.png", full_page=True)

    outside = [url for url in urls if not url.startswith(live_server.url)]
    assert not outside, f"requests outside the app: {outside}"


def test_every_workbench_field_has_a_label_and_the_keyboard_focus_is_visible(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    admin_index(page, live_server)
    page.goto(f"{live_server.url}/explain/workbench/?customer={shop.pk}&query=boots")
    page.click(".bench-card[data-item-id=sku-3] .do-hide")
    expect(page.locator("#changes")).to_be_visible()

    unnamed = page.evaluate(
        """() => Array.from(document.querySelectorAll(
              '#content input:not([type=hidden]), #content select, #content textarea, '
              + '#content button'))
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.getAttribute('aria-labelledby')
                            && !(el.tagName === 'BUTTON' && el.textContent.trim())
                            && !(el.type === 'submit' && el.value))
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []

    page.focus(".bench-card[data-item-id=sku-0] .do-pin")
    page.keyboard.press("Tab")  # from the keyboard, the focus ring shows
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.className, s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] == "do-hide"
    assert outline[1] == "solid", outline
    assert outline[2] == "3px", outline
    page.screenshot(path=artifacts / "look-workbench-focus.png")

    # Pinning from the keyboard: the place typed, then Pin (the drag's alternative).
    page.fill(".bench-card[data-item-id=sku-5] input[name=position]", "1")
    page.focus(".bench-card[data-item-id=sku-5] .do-pin")
    page.keyboard.press("Enter")
    expect(page.locator(".bench-card").first).to_have_attribute("data-item-id", "sku-5")
    expect(page.locator("#changes")).to_contain_text("to #1 for “boots”")


def test_a_rules_window_typed_in_berlin_time_is_stored_in_utc_and_shown_in_berlin_time(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    shop.time_zone = "Europe/Berlin"
    shop.save()
    urls = requests_of(page)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/add/")
    page.screenshot(path=artifacts / "look-login.png")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("#id_windows_helptext")).to_contain_text("shop's time, Europe/Berlin")
    page.select_option("#id_customer", label="E2E Outdoor")
    page.fill("#id_name", "Solace for the winter sale")
    page.select_option("#id_query_match", "exact")
    page.fill("#id_query_patterns", "boots")
    page.fill("#id_selector_brands", "Solace")
    page.select_option("#id_action_kind", "boost")
    page.select_option("#id_action_strength", "strong")
    # The window picked with the date pickers beside the field, in the shop's time.
    page.fill("#id_windows_from", "2026-12-01T09:00")
    page.fill("#id_windows_until", "2026-12-24T18:30")
    page.click(".window-picker .rule-picker-add")
    expect(page.locator("#id_windows")).to_have_value("2026-12-01 09:00 / 2026-12-24 18:30")
    page.screenshot(path=artifacts / "look-rule-form.png", full_page=True)
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist .success")).to_contain_text("Solace for the winter sale")
    rule = Rule.objects.get(customer=shop)
    assert rule.windows == [{"start": "2026-12-01T08:00:00Z", "end": "2026-12-24T17:30:00Z"}]
    start = datetime.fromisoformat(rule.windows[0]["start"])
    assert start == datetime(2026, 12, 1, 9, tzinfo=BERLIN).astimezone(UTC)
    # Shown back as it was typed, in Berlin time, naming the zone.
    expect(page.locator("#id_windows")).to_have_value("2026-12-01 09:00 / 2026-12-24 18:30")
    expect(page.locator("#id_windows_helptext")).to_contain_text("Europe/Berlin")
    page.screenshot(path=artifacts / "look-rule-saved.png", full_page=True)

    page.click(".breadcrumbs a:has-text('Rules')")
    expect(page.locator("#result_list")).to_contain_text("2026-12-01 09:00 → 2026-12-24 18:30")
    page.screenshot(path=artifacts / "look-rule-list.png", full_page=True)
    page.goto(f"{live_server.url}/admin/")
    page.screenshot(path=artifacts / "look-admin-index.png", full_page=True)

    outside = [url for url in urls if not url.startswith(live_server.url)]
    assert not outside, f"requests outside the app: {outside}"


def test_the_rule_form_is_checked_as_it_is_typed(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/merchandising/rule/add/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.select_option("#id_customer", label="E2E Outdoor")
    page.fill("#id_name", "Solace up")
    page.select_option("#id_action_strength", "strong")
    expect(page.locator("#rule-check")).to_contain_text("this rule can be saved")
    page.fill("#id_selector_brands", "Solase")
    page.press("#id_selector_brands", "Tab")  # leaving the field is enough: no save

    expect(page.locator("#rule-check")).to_contain_text(
        "No item of brand 'Solase' in the catalog. Did you mean 'Solace'?"
    )
    page.screenshot(path=artifacts / "look-rule-checked-as-typed.png", full_page=True)
    page.fill("#id_selector_brands", "Solace")
    page.press("#id_selector_brands", "Tab")
    expect(page.locator("#rule-check")).to_contain_text("this rule can be saved")
    assert not Rule.objects.exists()
