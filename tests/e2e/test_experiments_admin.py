"""A merchandiser reads an experiment the guardrail stopped, then promotes the B of another one
through its confirmation (the model's guard asks for a reason), in a real browser."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import Page, expect

from customers.models import Customer, Role
from events.models import Event, EventType
from ranking import services
from ranking.models import Experiment, ExperimentEnd, ModelStatus, RankingModel, RankLog
from tests.factories import CustomerFactory, MembershipFactory, UserFactory
from tests.ranking.learning_shop import GOOD, register
from tests.ranking.test_experiment_results import served_row

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
BELOW_POPULARITY = {**GOOD, "model": {"ndcg@10": 0.25, "revenue_ndcg@10": 0.2}}


@pytest.fixture
def shop(settings: Any, tmp_path: Path) -> Customer:
    """A shop with a running experiment on search, one the guardrail stopped on browse, and its
    admin (promoting B activates a model: an admin's role)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    customer = CustomerFactory(name="E2E Experiments")
    services.experiment_save(
        experiment=Experiment(
            customer=customer,
            surface="search",
            name="new lambdamart",
            treatment_model=register(customer, metrics=BELOW_POPULARITY),
            treatment_percent=20,
        )
    )
    stopped = services.experiment_save(
        experiment=Experiment(
            customer=customer,
            surface="browse",
            name="browse by trend",
            treatment_model=register(customer, surface="browse"),
            treatment_percent=50,
        )
    )
    two_weeks_of_traffic(stopped)
    services.experiment_stop(
        experiment=stopped,
        reason=ExperimentEnd.GUARDRAIL,
        by="guardrail",
        summary="stopped by the guardrail: B earned 8.1% less revenue per search "
        "(always-valid 95% interval \u221212.0% to \u22124.0%)",
    )
    user = UserFactory(username="merch", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="ranking"))
    MembershipFactory(customer=customer, user=user, role=Role.ADMIN)
    return customer


def two_weeks_of_traffic(experiment: Experiment) -> None:
    """Shoppers over the last two weeks, B's buying a little less: the chart has days to draw."""
    rng = random.Random(8)
    start = timezone.now() - timedelta(days=15)
    rows, events = [], []
    for n in range(1400):
        variant = "AB"[n % 2]
        at = start + timedelta(days=n // 100, minutes=rng.randint(0, 1200))
        rows.append(served_row(experiment, f"r-{n}", f"u:{n}", variant, at))
        if rng.random() < 0.3:
            price = rng.uniform(10, 60) * (0.9 if variant == "B" else 1.0)
            events.append(
                Event(
                    customer=experiment.customer,
                    event_id=f"p-{n}",
                    type=EventType.PURCHASE,
                    item_id="sku-1",
                    occurred_at=at + timedelta(minutes=5),
                    user_id=str(n),
                    request_id=f"r-{n}",
                    price=price,
                    revenue=price,
                )
            )
    RankLog.objects.bulk_create(rows)
    Event.objects.bulk_create(events)


def test_a_merchandiser_reads_a_guardrail_stop_and_promotes_b_with_a_reason(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/ranking/experiment/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#result_list")).to_contain_text("stopped by the guardrail")

    page.click("a:has-text('browse by trend')")
    expect(page.locator(".experiment-status")).to_contain_text(
        "Stopped by the guardrail: B earned 8.1% less revenue per search"
    )
    expect(page.locator(".experiment-status")).to_contain_text("everyone gets A, the live ranker")
    expect(page.locator("a:has-text('Promote B…')")).to_have_count(0)
    expect(page.locator("svg.lift-chart")).to_be_visible()  # the lift over time, drawn
    expect(page.locator(".lift-over-time figcaption")).to_contain_text("read the band once")
    # the always-valid interval, dashed, which may be read any day
    expect(page.locator("svg.lift-chart polyline.always-valid")).to_have_count(2)
    expect(page.locator(".lift-over-time figcaption")).to_contain_text(
        "The dashed lines may be read any day"
    )
    page.screenshot(path=artifacts / "experiments-admin-1-guardrail-stop.png", full_page=True)

    page.go_back()
    page.click("a:has-text('new lambdamart')")
    page.click("a:has-text('Promote B…')")
    # Nothing changes before the confirmation, which says what serves and what the guard says.
    expect(page.locator("#promote-plan")).to_contain_text(
        "serves every shopper instead of the config's blend"
    )
    expect(page.locator("#promote-warnings")).to_contain_text("not above the popularity order")
    page.screenshot(path=artifacts / "experiments-admin-2-confirm-promote.png", full_page=True)
    assert Experiment.objects.get(customer=shop, surface="search").enabled
    page.fill("#id_override_reason", "won the A/B test on revenue per search")
    page.click("input[value='Yes, promote B']")

    expect(
        page.locator(".messagelist .success", has_text="now serves everyone on search")
    ).to_be_visible()
    expect(page.locator(".experiment-status")).to_contain_text("B promoted by merch")
    page.screenshot(path=artifacts / "experiments-admin-3-promoted.png", full_page=True)
    promoted = Experiment.objects.get(customer=shop, surface="search")
    assert not promoted.enabled
    model = RankingModel.objects.get(pk=promoted.treatment_model_id)
    assert model.status == ModelStatus.ACTIVE
    assert model.override_reason.startswith("won the A/B test on revenue per search")


def test_an_experiments_end_is_picked_in_the_shops_time_zone_and_stored_in_utc(
    page: Page, live_server: Any, shop: Customer, artifacts: Path
) -> None:
    shop.time_zone = "Europe/Berlin"
    shop.save()
    running = Experiment.objects.get(customer=shop, surface="search")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/ranking/experiment/{running.pk}/change/")
    page.fill("#id_username", "merch")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("#id_ends_at_helptext")).to_contain_text("shop's time, Europe/Berlin")
    page.fill("#id_ends_at", "2099-12-24T18:30")
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist .success")).to_be_visible()
    running.refresh_from_db()
    berlin = ZoneInfo("Europe/Berlin")
    assert running.ends_at == datetime(2099, 12, 24, 18, 30, tzinfo=berlin).astimezone(UTC)
    assert running.ends_at == datetime(2099, 12, 24, 17, 30, tzinfo=UTC)
    expect(page.locator("#id_ends_at")).to_have_value("2099-12-24T18:30")  # shown in Berlin time
    page.screenshot(path=artifacts / "experiments-admin-4-end-in-shop-time.png", full_page=True)
