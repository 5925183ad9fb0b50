"""A merchandiser activates a model that scored below the baseline (with a reason), then rolls
it back, in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect

from customers.models import Customer, Role
from ranking.models import ModelStatus, RankingModel
from tests.factories import CustomerFactory, MembershipFactory, UserFactory
from tests.ranking.learning_shop import GOOD, register

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(settings: Any, tmp_path: Path) -> Customer:
    """A shop with one trained candidate, and its admin (activating models is an admin's role)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    customer = CustomerFactory(name="E2E Models")
    register(customer, metrics={**GOOD, "model": {"ndcg@10": 0.25, "revenue_ndcg@10": 0.2}})
    user = UserFactory(username="merch", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="ranking"))
    MembershipFactory(customer=customer, user=user, role=Role.ADMIN)
    return customer


def test_a_merchandiser_activates_with_a_reason_and_rolls_back(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/ranking/rankingmodel/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("a:has-text('E2E Models')")

    page.check("#id_activate")
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("not above the popularity order")
    page.screenshot(path=artifacts / "models-admin-1-needs-reason.png", full_page=True)
    page.check("#id_activate")
    page.fill("#id_activation_reason", "new season catalog")
    page.click("input[name=_save]")

    expect(page.locator(".messagelist .success", has_text="@1 now serves search")).to_be_visible()
    model = RankingModel.objects.get(customer=shop)
    assert model.status == ModelStatus.ACTIVE
    assert model.activated_by == "merch"
    assert model.override_reason.startswith("new season catalog")
    page.screenshot(path=artifacts / "models-admin-2-active.png", full_page=True)

    # Roll back from the model's page: 3 clicks (the model, "Roll back…", "Yes, roll back").
    page.click("a:has-text('E2E Models')")
    page.click("a:has-text('Roll back…')")

    # Nothing changes before the confirmation, which says what serves instead.
    expect(page.locator("#rollback-plan")).to_contain_text("the config's blend serves instead")
    assert RankingModel.objects.get(customer=shop).status == ModelStatus.ACTIVE
    page.screenshot(path=artifacts / "models-admin-3-confirm-rollback.png", full_page=True)
    page.click("input[value='Yes, roll back']")

    expect(
        page.locator(".messagelist .success", has_text="the config's blend serves")
    ).to_be_visible()
    assert RankingModel.objects.get(customer=shop).status == ModelStatus.RETIRED
    page.screenshot(path=artifacts / "models-admin-4-rolled-back.png", full_page=True)
