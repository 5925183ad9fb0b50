"""Under the Content-Security-Policy production sends, the admin, the explain UI and the API docs
work in a real browser with no violation (the page fixture fails a test on any), and an
injected inline script does not run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from customers.models import Customer
from ranking.services import signals_refresh
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def shop() -> Customer:
    """A few items with signals, and a superuser who is a member of the shop."""
    customer = CustomerFactory(name="CSP Outdoor")
    for number in range(1, 7):
        ItemFactory(
            customer=customer,
            external_id=f"shoe-{number}",
            title=f"Trail shoe {number}",
            price=Decimal(10 * number),
        )
    signals_refresh(customer_id=customer.pk)
    user = UserFactory(username="admin", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    MembershipFactory(customer=customer, user=user)
    return customer


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def test_admin_explain_and_docs_work_under_the_csp(
    page: Page, live_server: Any, shop: Customer, artifacts: Path, csp_violations: list[str]
) -> None:
    base = live_server.url
    login = page.goto(f"{base}/admin/login/")
    assert login is not None
    assert "script-src 'self'" in login.headers["content-security-policy"]
    sign_in(page, base)

    page.goto(f"{base}/admin/catalog/item/")
    expect(page.locator("#result_list")).to_contain_text("Trail shoe 6")
    page.goto(f"{base}/admin/merchandising/rule/add/")
    page.select_option("#id_action_kind", "pin")  # the rule form's script (a static file) runs
    expect(page.locator(".field-action_strength")).to_be_hidden()
    expect(page.locator(".field-action_pins")).to_be_visible()

    query = {
        "customer": shop.pk,
        "surface": "search",
        "query": "trail",
        "source": "ids",
        "ids": "\n".join(f"shoe-{n}" for n in range(1, 7)),
    }
    page.goto(f"{base}/explain/?{urlencode(query)}")
    expect(page.locator("tr.ranked-row")).to_have_count(6)
    page.screenshot(path=artifacts / "csp-1-explain.png", full_page=True)

    page.goto(f"{base}/v1/docs")  # Swagger UI: its initialiser runs by the request's nonce
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Rankwell API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    page.screenshot(path=artifacts / "csp-2-docs.png", full_page=True)
    assert csp_violations == []


def test_an_injected_inline_script_is_blocked_and_reported(
    page: Page, live_server: Any, shop: Customer, csp_violations: list[str]
) -> None:
    sign_in(page, live_server.url)

    with pytest.raises(PlaywrightError, match="Content Security Policy"):
        page.add_script_tag(content="window.injected = true;")

    assert page.evaluate("window.injected === undefined")
    # The browser logs the refusal at once; the page's own listener reports it a moment later
    # (on a busy machine after this test's last line): wait for both before forgiving them.
    for _ in range(100):
        if any(v.startswith("CSP violation: script-src") for v in csp_violations):
            break
        page.wait_for_timeout(100)
    assert any(v.startswith("CSP violation: script-src") for v in csp_violations), csp_violations
    assert any("Content Security Policy" in violation for violation in csp_violations)
    csp_violations.clear()  # provoked on purpose: the page fixture would fail the test
