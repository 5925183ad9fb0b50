"""The readout over time: per day of the shop, each variant's shoppers, searches and revenue per
search up to the end of the day, and B's cumulative revenue-per-search lift with its interval,
each the readout of the data known at the end of that day; served by the results API and drawn
on the experiment's admin page."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.models import Event
from ranking.experiments import Readout, experiment_result
from ranking.models import Experiment, RankLog
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import send_events
from tests.ranking.test_experiment_results import event, served_row, start_experiment
from tests.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db

DAYS = 5
QUIET_DAY = 3  # no request and no event on it


def midnight(days_ago: int) -> datetime:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0)
    return today.replace(microsecond=0) - timedelta(days=days_ago)


def several_days_of_traffic(api: ApiCaller, experiment: Experiment) -> datetime:
    """Shoppers searching over DAYS days ending two days ago (none on QUIET_DAY), clicking and
    buying through their requests, or without a request id, some after midnight; returns the
    first day's midnight (UTC)."""
    rng = random.Random(16)
    start = midnight(DAYS + 1)
    rows, events = [], []
    for n in range(120):
        variant = "AB"[n % 2]
        for visit in range(rng.randint(1, 3)):
            day = rng.choice([d for d in range(DAYS) if d != QUIET_DAY])
            at = start + timedelta(days=day, hours=rng.randint(8, 22), minutes=rng.randint(0, 59))
            request_id = f"r-{n}-{visit}"
            rows.append(served_row(experiment, request_id, f"u:{n}", variant, at))
            if rng.random() < 0.6:
                events.append(
                    event("click", f"c-{n}-{visit}", str(n), at + timedelta(minutes=2), request_id)
                )
            if rng.random() < 0.45:
                price = rng.uniform(5, 40) * (1.3 if variant == "B" else 1.0)
                # some purchases land after midnight, on the day after their request
                later = timedelta(hours=rng.choice([1, 1, 4]))
                if day == QUIET_DAY - 1:
                    later = min(later, timedelta(hours=1))
                events.append(
                    event(
                        "purchase",
                        f"p-{n}-{visit}",
                        str(n),
                        at + later,
                        request_id if rng.random() < 0.7 else None,
                        price=round(price, 2),
                        item_id=f"sku-{visit}",
                    )
                )
    RankLog.objects.bulk_create(rows)
    quiet = (start + timedelta(days=QUIET_DAY), start + timedelta(days=QUIET_DAY + 1))
    events = [
        e for e in events if not quiet[0] <= datetime.fromisoformat(e["timestamp"]) < quiet[1]
    ]
    for at in range(0, len(events), 1000):
        send_events(api, events[at : at + 1000])
    return start


def readout_up_to(experiment: Experiment, end: datetime) -> Readout:
    """The readout computed as if the data stopped at `end`: later requests and events removed
    (rolled back afterwards)."""
    with transaction.atomic():
        RankLog.objects.filter(customer=experiment.customer, created_at__gte=end).delete()
        Event.objects.filter(customer=experiment.customer, occurred_at__gte=end).delete()
        readout = experiment_result(experiment=experiment)
        transaction.set_rollback(True)
    return readout


def assert_day_is_readout(day: Any, readout: Readout) -> None:
    for name, group in day.groups.items():
        variant = readout.variants[name]
        assert group.shoppers == variant.shoppers, (day.day, name)
        assert group.searches == variant.totals["searches"], (day.day, name)
        assert group.revenue == pytest.approx(variant.totals["revenue"]), (day.day, name)
        assert group.revenue_per_search == pytest.approx(variant.value("revenue_per_search"))
    lift = readout.lifts["revenue_per_search"]
    if lift is None:
        assert day.lift is None, day.day
    else:
        assert day.lift is not None, day.day
        got = (day.lift.lift, day.lift.low, day.lift.high, day.lift.p_value)
        assert got == pytest.approx((lift.lift, lift.low, lift.high, lift.p_value)), day.day
    always_valid = readout.always_valid["revenue_per_search"]
    if always_valid is None:
        assert day.always_valid is None, day.day
    else:
        assert day.always_valid is not None, day.day
        got = (day.always_valid.low, day.always_valid.high, day.always_valid.p_value)
        assert got == pytest.approx((always_valid.low, always_valid.high, always_valid.p_value)), (
            day.day
        )
        assert day.always_valid.low < day.lift.low  # type: ignore[union-attr]
    if readout.horizon is None:
        assert day.horizon is None, day.day
    else:
        assert day.horizon is not None, day.day
        assert day.horizon.more_shoppers == readout.horizon.more_shoppers, day.day


def test_each_days_figures_are_the_readout_of_the_data_up_to_its_end(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    start = several_days_of_traffic(api, running)

    result = experiment_result(experiment=running)

    days = [(start + timedelta(days=n)).date() for n in range(len(result.daily))]
    assert [d.day for d in result.daily] == days  # every day, the quiet one too
    assert len(days) in (DAYS, DAYS + 1)  # a purchase after the last midnight counts the day after
    assert result.daily[-1].lift is not None  # numbers, not only nulls
    assert_day_is_readout(result.daily[-1], result)  # the last day is the final readout
    for n, day in enumerate(result.daily):
        assert_day_is_readout(day, readout_up_to(running, start + timedelta(days=n + 1)))
    # the quiet day repeats the day before: nothing changed
    assert result.daily[QUIET_DAY].groups == result.daily[QUIET_DAY - 1].groups
    assert result.daily[QUIET_DAY].lift == result.daily[QUIET_DAY - 1].lift
    shoppers = [sum(g.shoppers for g in d.groups.values()) for d in result.daily]
    assert shoppers == sorted(shoppers)  # cumulative


def test_days_are_the_shops_days_in_its_time_zone(api: ApiCaller) -> None:
    api.customer.time_zone = "America/New_York"
    api.customer.save()
    running = start_experiment(api.customer)
    night = midnight(3) + timedelta(hours=2)  # 02:00 UTC: 21:00 or 22:00 the evening before
    RankLog.objects.bulk_create(
        [
            served_row(running, "r-1", "u:1", "A", night),
            served_row(running, "r-2", "u:2", "B", night + timedelta(hours=12)),
        ]
    )

    daily = experiment_result(experiment=running).daily

    assert [d.day for d in daily] == [night.date() - timedelta(days=1), night.date()]
    assert [(d.groups["A"].shoppers, d.groups["B"].shoppers) for d in daily] == [(1, 0), (1, 1)]


def test_without_traffic_there_are_no_days(api: ApiCaller) -> None:
    result = experiment_result(experiment=start_experiment(api.customer))

    assert result.daily == ()
    assert result.horizon_reached_on is None
    assert result.horizon_expected_on is None


def test_the_horizon_day_is_the_first_day_it_was_reached(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    start = midnight(6)
    rows, events = [], []
    for n in range(400):  # 100 shoppers a day over four days, buying alike: a small horizon
        at = start + timedelta(days=n // 100, hours=10, minutes=n % 60)
        rows.append(served_row(running, f"r-{n}", f"u:{n}", "AB"[n % 2], at))
        events.append(
            event(
                "purchase",
                f"p-{n}",
                str(n),
                at + timedelta(minutes=5),
                f"r-{n}",
                price=10.0 + n % 7,
            )
        )
    RankLog.objects.bulk_create(rows)
    send_events(api, events)

    result = experiment_result(experiment=running)

    reached = [d.day for d in result.daily if d.horizon is not None and d.horizon.reached]
    assert reached, "the horizon should be reached within these four days"
    assert result.horizon_reached_on == reached[0]
    assert result.horizon_expected_on is None


def test_a_horizon_not_reached_is_expected_at_the_current_rate(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    start = midnight(5)
    rows, events = [], []
    for n in range(60):  # 20 shoppers a day over three days, a few buying very different sums
        at = start + timedelta(days=n // 20, hours=10, minutes=n)
        rows.append(served_row(running, f"r-{n}", f"u:{n}", "AB"[n % 2], at))
        if n % 3 == 0:
            events.append(
                event(
                    "purchase",
                    f"p-{n}",
                    str(n),
                    at + timedelta(minutes=5),
                    f"r-{n}",
                    price=5.0 + (n * 37) % 200,
                )
            )
    RankLog.objects.bulk_create(rows)
    send_events(api, events)

    result = experiment_result(experiment=running)

    horizon = result.daily[-1].horizon
    assert horizon is not None
    assert not horizon.reached
    assert result.horizon_reached_on is None
    assert result.horizon_expected_on is not None
    # each variant gains 10 shoppers a day: the wait is the larger shortfall at that rate
    shortfall = max(horizon.control_needed - 30, horizon.treatment_needed - 30)
    assert result.horizon_expected_on == result.daily[-1].day + timedelta(days=-(-shortfall // 10))


def test_the_results_api_answers_the_days_unrounded_in_its_schema(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    several_days_of_traffic(api, running)
    openapi = orjson.loads(Client().get("/v1/schema").content)
    result = experiment_result(experiment=running)

    response = api.get(f"/v1/experiments/{running.pk}/results")

    assert response.status_code == 200
    assert_matches_schema(openapi, "experiment_results", response)
    daily = response.json()["daily"]
    assert [d["day"] for d in daily] == [d.day.isoformat() for d in result.daily]
    last, expected = daily[-1], result.daily[-1]
    assert last["revenue_per_search_lift"]["lift"] == expected.lift.lift  # type: ignore[union-attr]
    assert last["revenue_per_search_lift"]["always_valid"]["low"] == pytest.approx(
        expected.always_valid.low  # type: ignore[union-attr]
    )
    assert {v["variant"]: v["revenue_per_search"] for v in last["variants"]} == {
        name: group.revenue_per_search for name, group in expected.groups.items()
    }
    assert response.json()["horizon"]["reached_on"] is None or isinstance(
        date.fromisoformat(response.json()["horizon"]["reached_on"]), date
    )


def test_the_admin_page_draws_the_lift_over_time(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    start = several_days_of_traffic(api, running)
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__model="experiment"))
    MembershipFactory(user=user, customer=api.customer)
    client = Client()
    client.force_login(user)

    response = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg class="lift-chart"' in html
    first = start.date()
    assert f">{first.day} {first:%b}<" in html  # a day label in shop words: "6 Dec"
    assert "<details" in html
    assert "Day by day" in html
    assert "no difference" in html  # the zero line, named
    chart = html.split('class="lift-chart"')[1].split("</svg>")[0]
    assert chart.count('class="always-valid"') == 2  # its low and high, dashed
    assert "always-valid interval" in html  # and the caption says what they are
    assert "<script" not in html.split('class="lift-chart"')[1].split("</svg>")[0]
