"""An interleaving experiment's preference over time: per day of the shop, the preference for B on
clicks and on revenue counting every search and event up to the end of the day, each the readout
of the data known then (a search whose winner changed after midnight counts for its new winner
from that day on); served by the results API and drawn on the experiment's admin page."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.models import Event
from ranking.interleaving import InterleavingResult, interleaving_result
from ranking.models import Experiment, RankLog
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import send_events
from tests.ranking.test_interleaving import interleaving_shop
from tests.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db

DAYS = 5
QUIET_DAY = 3  # no search and no event on it


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def midnight(days_ago: int) -> datetime:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0)
    return today.replace(microsecond=0) - timedelta(days=days_ago)


def interleaved_event(
    kind: str, event_id: str, request_id: str, item: str, at: datetime, **more: Any
) -> dict[str, Any]:
    """An event of the shopper of `request_id` ("r-<n>-..." is user n's) on its item."""
    user = request_id.split("-")[1]
    return {
        "event_id": event_id,
        "type": kind,
        "timestamp": at.isoformat(),
        "user_id": user,
        "request_id": request_id,
        "item_id": item,
        **more,
    }


def several_days_of_interleaving(api: ApiCaller, running: Experiment) -> datetime:
    """Interleaved searches of 150 shoppers over DAYS days ending two days ago (none on
    QUIET_DAY): clicks go to B's item 2 times in 3, some purchases; and some searches won by B
    in the evening are won by A after midnight (two clicks on A's item the next day). Returns
    the first day's midnight (UTC)."""
    rng = random.Random(16)
    start = midnight(DAYS + 1)
    rows, events = [], []
    for n in range(150):
        for visit in range(rng.randint(1, 3)):
            day = rng.choice([d for d in range(DAYS) if d != QUIET_DAY])
            at = start + timedelta(days=day, hours=rng.randint(8, 21), minutes=rng.randint(0, 59))
            request_id = f"r-{n}-{visit}"
            teams = rng.choice(["AB", "BA"])
            rows.append(
                RankLog(
                    customer=api.customer,
                    request_id=request_id,
                    surface="search",
                    query="shoes",
                    shopper_key=f"u:{n}",
                    schema_hash="x",
                    item_ids=["sku-1", "sku-2"],
                    features=b"",
                    created_at=at,
                    experiment_id=running.pk,
                    variant="interleaved",
                    teams=teams,
                )
            )
            b_item, a_item = ("sku-1", "sku-2") if teams == "BA" else ("sku-2", "sku-1")

            if rng.random() < 0.7:
                item = b_item if rng.random() < 2 / 3 else a_item
                events.append(interleaved_event("click", f"c-{request_id}", request_id, item, at))
            if rng.random() < 0.3:
                item = b_item if rng.random() < 0.6 else a_item
                bought = at + timedelta(minutes=5)
                events.append(
                    interleaved_event(
                        "purchase", f"p-{request_id}", request_id, item, bought, price=5 + n % 30
                    )
                )
            if day not in (QUIET_DAY - 1, DAYS - 1) and rng.random() < 0.15:
                # B first, then A twice after midnight: the winner on clicks changes the next day
                later = start + timedelta(days=day + 1, hours=1)
                for suffix, item, when in (
                    ("b", b_item, at + timedelta(minutes=1)),
                    ("a1", a_item, later),
                    ("a2", a_item, later + timedelta(minutes=1)),
                ):
                    event_id = f"c-{request_id}-{suffix}"
                    events.append(interleaved_event("click", event_id, request_id, item, when))
    RankLog.objects.bulk_create(rows)
    for at in range(0, len(events), 1000):
        send_events(api, events[at : at + 1000])
    return start


def readout_up_to(experiment: Experiment, end: datetime) -> InterleavingResult:
    """The readout computed as if the data stopped at `end`: later searches and events removed
    (rolled back afterwards)."""
    with transaction.atomic():
        RankLog.objects.filter(customer=experiment.customer, created_at__gte=end).delete()
        Event.objects.filter(customer=experiment.customer, occurred_at__gte=end).delete()
        readout = interleaving_result(experiment=experiment)
        transaction.set_rollback(True)
    return readout


def test_each_days_preference_is_the_readout_of_the_data_up_to_its_end(api: ApiCaller) -> None:
    running = interleaving_shop(api)
    start = several_days_of_interleaving(api, running)

    result = interleaving_result(experiment=running)

    assert [d.day for d in result.daily] == [
        (start + timedelta(days=n)).date() for n in range(DAYS)
    ]  # every day, the quiet one too
    last = result.daily[-1]
    assert (last.shoppers, last.searches) == (result.shoppers, result.searches)
    for key, credit in result.preferences.items():
        assert last.preferences[key] == credit.preference  # the last day is the final readout
        assert credit.preference.low is not None  # numbers, not only nulls
    for n, day in enumerate(result.daily):
        then = readout_up_to(running, start + timedelta(days=n + 1))
        assert (day.shoppers, day.searches) == (then.shoppers, then.searches), day.day
        for key, credit in then.preferences.items():
            found, expected = day.preferences[key], credit.preference
            assert (found.wins_a, found.wins_b) == (expected.wins_a, expected.wins_b), day.day
            assert (found.delta, found.low, found.high) == pytest.approx(
                (expected.delta, expected.low, expected.high)
            ), (day.day, key)
    assert result.daily[QUIET_DAY].preferences == result.daily[QUIET_DAY - 1].preferences
    searches = [d.searches for d in result.daily]
    assert searches == sorted(searches)  # cumulative


def test_a_search_counts_for_its_winner_as_it_stood_at_each_days_end(api: ApiCaller) -> None:
    running = interleaving_shop(api)
    evening = midnight(3) + timedelta(hours=20)
    RankLog.objects.create(
        customer=api.customer,
        request_id="r-1",
        surface="search",
        query="shoes",
        shopper_key="u:1",
        schema_hash="x",
        item_ids=["sku-1", "sku-2"],
        features=b"",
        created_at=evening,
        experiment_id=running.pk,
        variant="interleaved",
        teams="BA",
    )
    clicks = [("c-1", "sku-1", evening), ("c-2", "sku-2", evening + timedelta(hours=5))]
    clicks.append(("c-3", "sku-2", evening + timedelta(hours=5, minutes=1)))
    sent = [interleaved_event("click", event_id, "r-1", item, at) for event_id, item, at in clicks]
    send_events(api, sent)

    daily = interleaving_result(experiment=running).daily

    # B's item clicked in the evening, A's twice after midnight: B won it that day, A from the next
    assert [d.day for d in daily] == [evening.date(), evening.date() + timedelta(days=1)]
    clicks_won = [(d.preferences["clicks"].wins_a, d.preferences["clicks"].wins_b) for d in daily]
    assert clicks_won == [(0, 1), (1, 0)]
    assert [d.searches for d in daily] == [1, 1]


def test_the_api_and_the_admin_page_show_the_preference_day_by_day(
    api: ApiCaller, client: Client
) -> None:
    running = interleaving_shop(api)
    several_days_of_interleaving(api, running)
    result = interleaving_result(experiment=running)

    response = api.get(f"/v1/experiments/{running.pk}/results")

    assert response.status_code == 200, response.content
    daily = response.json()["interleaving"]["daily"]
    assert [d["day"] for d in daily] == [d.day.isoformat() for d in result.daily]
    for shown, day in zip(daily, result.daily, strict=True):
        assert (shown["shoppers"], shown["searches"]) == (day.shoppers, day.searches)
        by_metric = {entry["metric"]: entry for entry in shown["preferences"]}
        assert set(by_metric) == {"clicks", "revenue"}
        for key, found in day.preferences.items():
            entry = by_metric[key]
            assert (entry["wins_a"], entry["wins_b"]) == (found.wins_a, found.wins_b)
            assert entry["preference"] == pytest.approx(found.delta)
            assert entry["significant"] == found.significant
    assert response.json()["daily"] == []  # the A/B days stay empty for interleaving
    assert_matches_schema(
        orjson.loads(client.get("/v1/schema").content), "experiment_results", response
    )

    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__model="experiment"))
    MembershipFactory(user=user, customer=api.customer)
    staff = Client()
    staff.force_login(user)
    html = staff.get(reverse("admin:ranking_experiment_change", args=[running.pk])).content
    page = html.decode()
    assert "Preference for B over time, on clicks" in page
    assert "Preference for B over time, on purchase revenue" in page
    assert page.count('class="lift-chart"') == 2
    assert "Day by day" in page
    first = result.daily[0].day
    assert f"{first.day} {first:%b}" in page  # "6 Dec": the days in the shop's words
    assert "Interleaved searches" in page


def test_an_interleaving_experiment_without_searches_has_no_days(api: ApiCaller) -> None:
    running = interleaving_shop(api)

    assert interleaving_result(experiment=running).daily == ()
    assert api.get(f"/v1/experiments/{running.pk}/results").json()["interleaving"]["daily"] == []
