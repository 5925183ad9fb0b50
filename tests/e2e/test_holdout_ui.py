"""A merchandiser reads what a rule earns against its holdout, in a real browser: from the
admin index to the rule's page (2 clicks), its Holdout section in shop words."""

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
from ranking.models import RankLog
from ranking.signals.schema import SCHEMA_HASH
from tests.conftest import ApiCaller
from tests.factories import CustomerFactory, MembershipFactory, UserFactory
from tests.merchandising.test_rule_holdouts import event, rule_with_holdout
from tests.ranking.helpers import send_events

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(make_caller: Callable[..., ApiCaller]) -> tuple[Customer, Rule]:
    """A rule holding out 10% of 2,000 shoppers whose searches it matched; the ones who saw it
    bought dearer items."""
    customer = CustomerFactory(name="E2E Holdout", currency="EUR")
    rule = rule_with_holdout(customer, 10, salt="e2e", name="Trail shoes first")
    now = timezone.now()
    RankLog.objects.bulk_create(
        RankLog(
            customer_id=customer.pk,
            request_id=f"r-{n}",
            surface="search",
            query="shoes",
            shopper_key=f"u:{n}",
            schema_hash=SCHEMA_HASH,
            item_ids=["sku-1"],
            features=b"",
            created_at=now - timedelta(hours=2),
            rule_holdouts={str(rule.pk): "held_out" if n % 10 == 0 else "exposed"},
        )
        for n in range(2000)
    )
    send_events(
        make_caller(customer),
        [
            event(
                "purchase",
                f"p-{n}",
                str(n),
                now - timedelta(hours=1),
                f"r-{n}",
                price=20.0 if n % 10 == 0 else 35.0,
            )
            for n in range(0, 2000, 3)
        ],
    )
    user = UserFactory(username="merch", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user, role=Role.MERCHANDISER)
    return customer, rule


def test_a_merchandiser_reads_what_a_rule_earns_against_its_holdout(
    page: Page, live_server: Any, shop: tuple[Customer, Rule], artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.click("a:has-text('Rules')")
    page.click("a:has-text('Trail shoes first')")

    section = page.locator("#holdout-readout")
    expect(section).to_contain_text("Shoppers who saw this rule earned")
    expect(section).to_contain_text("than the 10% held out")
    expect(section).to_contain_text("Held out (did not see it)")
    expect(section).to_contain_text("EUR")
    section.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "rule-holdout.png", full_page=True)
    section.screenshot(path=artifacts / "rule-holdout-section.png")
