"""Dates in the shop's time zone (customers/shop_time.py): typed or picked as the shop's wall
clock, stored as UTC, shown back in the shop's zone; the rule form's windows and the experiment
form's start and end use it, as the workbench's "publish from" does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Role
from customers.shop_time import ShopDateTimeField, parse_shop_time, shop_text
from merchandising.models import Rule
from ranking.models import Experiment
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory
from tests.merchandising.test_admin import form_data
from tests.ranking.learning_shop import register

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_wall_clock_time_in_the_shop_is_a_utc_instant_winter_and_summer() -> None:
    assert parse_shop_time("2026-12-01 09:00", BERLIN) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert parse_shop_time("2026-07-01T09:00", BERLIN) == datetime(2026, 7, 1, 7, tzinfo=UTC)
    assert parse_shop_time("2026-12-01", BERLIN) == datetime(2026, 11, 30, 23, tzinfo=UTC)
    # An offset typed with it is that instant, whatever the shop's zone.
    assert parse_shop_time("2026-12-01T09:00+05:00", BERLIN) == datetime(2026, 12, 1, 4, tzinfo=UTC)
    assert parse_shop_time("  ", BERLIN) is None
    assert shop_text(datetime(2026, 7, 1, 7, tzinfo=UTC), BERLIN) == "2026-07-01 09:00"


def test_a_time_the_clocks_skip_or_pass_twice_is_refused_in_words() -> None:
    with pytest.raises(ValidationError, match="does not exist in Europe/Berlin"):
        parse_shop_time("2026-03-29 02:30", BERLIN)
    with pytest.raises(ValidationError, match=r"happens twice .*\+02:00 or \+01:00"):
        parse_shop_time("2026-10-25 02:30", BERLIN)
    assert parse_shop_time("2026-10-25T02:30+01:00", BERLIN) == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="not a date and time"):
        parse_shop_time("2026-12-01 25:00", BERLIN)


def test_the_field_cleans_to_utc_and_shows_the_shops_wall_clock() -> None:
    field = ShopDateTimeField(zone=BERLIN, required=False)

    assert field.clean("2026-12-01T09:00") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert field.prepare_value(datetime(2026, 12, 1, 8, tzinfo=UTC)) == datetime(2026, 12, 1, 9)
    assert 'type="datetime-local"' in field.widget.render("start", datetime(2026, 12, 1, 9))
    assert 'value="2026-12-01T09:00"' in field.widget.render("start", datetime(2026, 12, 1, 9))
    with pytest.raises(ValidationError, match="Pick a date and time"):
        field.clean("soon")


# --- the admin forms ----------------------------------------------------------------------------


@pytest.fixture
def berlin() -> Customer:
    customer = CustomerFactory(name="Berlin Outdoor", time_zone="Europe/Berlin")
    ItemFactory(customer=customer, external_id="shoe-1", title="Trail shoe", brand="Acme")
    return customer


def client_for(customer: Customer, app_label: str, role: str) -> Client:
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label=app_label))
    MembershipFactory(customer=customer, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_rules_window_is_typed_in_the_shops_zone_stored_in_utc_and_shown_back(
    berlin: Customer,
) -> None:
    client = client_for(berlin, "merchandising", Role.MERCHANDISER)
    add = client.get(reverse("admin:merchandising_rule_add")).content.decode()

    response = client.post(
        reverse("admin:merchandising_rule_add"),
        form_data(berlin, name="Winter", windows="2026-12-01 09:00 / 2026-07-01 09:00\n"),
    )
    assert response.status_code == 200  # ends before it starts: refused, nothing stored
    response = client.post(
        reverse("admin:merchandising_rule_add"),
        form_data(berlin, name="Winter", windows="2026-12-01 09:00 / 2027-01-06 00:00"),
    )

    assert "in the shop's time, Europe/Berlin" in add
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = Rule.objects.get(customer=berlin)
    assert rule.windows == [{"start": "2026-12-01T08:00:00Z", "end": "2027-01-05T23:00:00Z"}]
    change = reverse("admin:merchandising_rule_change", args=[rule.pk])
    page = client.get(change).content.decode()
    assert "2026-12-01 09:00 / 2027-01-06 00:00</textarea>" in page
    assert "in the shop's time, Europe/Berlin" in page
    listing = client.get(reverse("admin:merchandising_rule_changelist")).content.decode()
    assert "2026-12-01 09:00 → 2027-01-06 00:00" in listing
    # Saved again unchanged: no new revision (the same instants).
    again = client.post(change, form_data(name="Winter", windows="2026-12-01 09:00 / 2027-01-06"))
    assert again.status_code == 302
    rule.refresh_from_db()
    assert rule.revision == 1


@pytest.mark.django_db
def test_an_experiments_start_and_end_are_picked_in_the_shops_zone_and_stored_in_utc(
    berlin: Customer, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    client = client_for(berlin, "ranking", Role.ADMIN)
    model = register(berlin)
    start = (timezone.now() + timedelta(days=7)).astimezone(BERLIN)
    start = start.replace(hour=9, minute=0, second=0, microsecond=0, tzinfo=None)
    end = start + timedelta(days=14)

    add = client.get(reverse("admin:ranking_experiment_add")).content.decode()
    response = client.post(
        reverse("admin:ranking_experiment_add"),
        {
            "customer": berlin.pk,
            "surface": "search",
            "name": "from next week",
            "method": "ab",
            "kind": "model",
            "treatment_model": model.pk,
            "treatment_percent": 20,
            "layer": "main",
            "traffic_percent": 100,
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": end.strftime("%Y-%m-%d %H:%M"),
            "enabled": "on",
        },
    )

    assert "In the shop's time, Europe/Berlin" in add
    assert 'type="datetime-local" name="starts_at"' in add
    assert response.status_code == 302, response.context["adminform"].form.errors
    experiment = Experiment.objects.get(customer=berlin)
    assert experiment.starts_at == start.replace(tzinfo=BERLIN).astimezone(UTC)
    assert experiment.ends_at == end.replace(tzinfo=BERLIN).astimezone(UTC)
    page = client.get(reverse("admin:ranking_experiment_change", args=[experiment.pk]))
    assert f'value="{start:%Y-%m-%dT%H:%M}"' in page.content.decode()
