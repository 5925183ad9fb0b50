"""Interleaving experiments: team draft's properties, an interleaved search served, logged with
its teams and credited to them, rules and explanations in interleaved answers, the preference's
statistics on the shopper simulator, and the readout for its own customer only."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.models import Customer
from demo import interleaving as sim
from demo.simulation import build_world
from explain.services.explained import SOURCE_LOG, ExplainParams, explain_ranking
from ranking import services
from ranking.engine.experiments import shopper_bucket
from ranking.engine.interleaving import interleaving_seed, position_scores, team_draft
from ranking.engine.ordering import order_by_score
from ranking.learning import rank_log
from ranking.models import Experiment, ExperimentMethod, RankLog
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import put_items, rank, send_events
from tests.ranking.test_experiment_results import linear_model
from tests.test_schema import assert_matches_schema

ITEMS = 8


# --- team draft ---------------------------------------------------------------------------------


@st.composite
def two_orders(draw: Callable[..., Any]) -> tuple[np.ndarray, np.ndarray, int]:
    n = draw(st.integers(min_value=1, max_value=60))
    order_a = np.array(draw(st.permutations(range(n))))
    order_b = np.array(draw(st.permutations(range(n))))
    return order_a, order_b, draw(st.integers(min_value=0, max_value=2**64 - 1))


@given(two_orders())
@settings(max_examples=300, deadline=None)
def test_team_draft_shows_every_item_once_with_balanced_teams_and_both_top_items_first(
    orders: tuple[np.ndarray, np.ndarray, int],
) -> None:
    order_a, order_b, seed = orders

    merged, picked_by_b = team_draft(order_a, order_b, seed)

    assert sorted(merged.tolist()) == list(range(len(order_a)))
    b_so_far = np.cumsum(picked_by_b)
    a_so_far = np.arange(1, len(merged) + 1) - b_so_far
    assert np.abs(b_so_far - a_so_far).max() <= 1  # in every prefix
    assert {int(order_a[0]), int(order_b[0])} <= set(merged[:2].tolist())
    # each team's items appear in the order that team ranked them
    for team, order in ((False, order_a), (True, order_b)):
        rank_of = {int(item): n for n, item in enumerate(order)}
        ranks = [rank_of[int(item)] for item in merged[picked_by_b == team]]
        assert ranks == sorted(ranks)
    again = team_draft(order_a, order_b, seed)
    assert merged.tolist() == again[0].tolist()
    assert picked_by_b.tolist() == again[1].tolist()


def test_the_coin_flips_follow_the_request_id_and_the_experiment() -> None:
    order_a, order_b = np.arange(20), np.arange(20)[::-1].copy()

    def merged(salt: str, request_id: str) -> list[int]:
        return team_draft(order_a, order_b, interleaving_seed(salt, request_id))[0].tolist()

    assert merged("salt", "r-1") == merged("salt", "r-1")
    assert len({tuple(merged("salt", f"r-{n}")) for n in range(50)}) > 40
    assert len({tuple(merged(f"salt-{n}", "r-1")) for n in range(50)}) > 40
    first_picks_b = [
        team_draft(order_a, order_b, interleaving_seed("salt", f"r-{n}"))[1][0] for n in range(2000)
    ]
    assert 900 <= sum(first_picks_b) <= 1100  # a fair coin


def test_position_scores_keep_the_drafted_order_even_where_the_scores_tie() -> None:
    scores_a = np.array([0.5, 0.5, 0.5, 0.2, 0.2])
    scores_b = np.array([0.5, 0.5, 0.5, 0.2, 0.2])
    merged, _ = team_draft(np.array([4, 3, 2, 1, 0]), np.array([0, 1, 2, 3, 4]), 1)
    per_item = np.empty(5)
    per_item[merged] = position_scores(scores_a, scores_b)

    assert order_by_score(per_item, ("a", "b", "c", "d", "e")).tolist() == merged.tolist()


# --- the statistics on the shopper simulator (no database) --------------------------------------


@pytest.fixture(scope="module")
def pools() -> dict[str, sim.Traffic]:
    world = build_world(n_items=200, n_shoppers=4000, seed=13)
    popularity = sim.popularity_ranker(world)
    return {
        "better": sim.traffic(
            world, sim.noisy_ranker(world, 0.8), popularity, sessions=6000, seed=3
        ),
        "same": sim.traffic(world, popularity, popularity, sessions=6000, seed=4),
    }


def test_a_truly_better_b_is_preferred_with_an_interval_above_zero(
    pools: dict[str, sim.Traffic],
) -> None:
    """B is popularity, A popularity misjudged (log-normal error, sigma 0.8): B earns 14% more
    revenue and 4% more clicks per session. On the 6,000 sessions of 2,688 shoppers: clicks
    +7.6% (95% interval +4.1% to +11.0%), revenue +11.7% (+5.1% to +18.4%)."""
    pool = pools["better"]
    truth = sim.true_outcomes(pool)
    assert truth["B"]["clicks"] > truth["A"]["clicks"]
    assert truth["B"]["revenue"] > truth["A"]["revenue"]
    rng = np.random.default_rng(5)

    reading = sim.interleaving_test(pool, np.arange(pool.sessions), rng)

    for found in (reading.clicks, reading.revenue):
        assert found.delta is not None
        assert found.delta > 0
        assert found.low is not None
        assert found.low > 0, found
        assert found.significant


def test_an_a_a_interleaving_finds_a_preference_in_about_5_percent_of_runs(
    pools: dict[str, sim.Traffic],
) -> None:
    """B's order equals A's: only the coin flips tell the teams apart. 200 runs of 1,500 sessions
    of random shoppers: 11 (5.5%) were significant on clicks, 5 (2.5%) on revenue."""
    pool = pools["same"]
    rng = np.random.default_rng(17)
    significant = {"clicks": 0, "revenue": 0}
    runs = 200
    for _ in range(runs):
        reading = sim.interleaving_test(pool, sim.shopper_subset(pool, 1500, rng), rng)
        significant["clicks"] += reading.clicks.significant
        significant["revenue"] += reading.revenue.significant

    for count in significant.values():
        assert 0.01 * runs <= count <= 0.10 * runs, significant


def test_the_preference_interval_covers_the_truth_in_about_95_percent_of_runs(
    pools: dict[str, sim.Traffic],
) -> None:
    """The truth: the whole pool's preference on clicks (+6.9%); of 100 runs of 1,000 sessions,
    94 intervals covered it."""
    pool = pools["better"]
    rng = np.random.default_rng(23)
    truth = sim.interleaving_test(pool, np.arange(pool.sessions), rng).clicks.delta
    assert truth is not None
    covered = 0
    for _ in range(100):
        found = sim.interleaving_test(pool, sim.shopper_subset(pool, 1000, rng), rng).clicks
        assert found.low is not None
        assert found.high is not None
        covered += found.low <= truth <= found.high
    assert covered >= 85


# --- served through /v1/rank ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def interleaving_shop(api: ApiCaller, percent: int = 99) -> Experiment:
    """A's live config orders against the retriever's relevance, B's model with it."""
    put_items(
        api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 + i} for i in range(ITEMS)]
    )
    signals_refresh(customer_id=api.customer.pk)
    services.ranking_config_save(
        customer=api.customer,
        surface="search",
        name="against relevance",
        weights={"relevance": -1.0},
        personalization_weight=0.0,
    )
    return services.experiment_save(
        experiment=Experiment(
            customer=api.customer,
            surface="search",
            name="relevance first, interleaved",
            method=ExperimentMethod.INTERLEAVE,
            treatment_model=linear_model(api.customer, {"relevance": 1.0}),
            treatment_percent=percent,
            salt="interleaving-test",
        )
    )


def shopper_in(experiment: Experiment, inside: bool = True) -> str:
    """A user id whose shopper is (or is not) in the experiment's share."""
    for n in range(10_000):
        bucket = shopper_bucket(experiment.salt, f"u:user-{n}")
        if (bucket < experiment.treatment_percent * 100) == inside:
            return f"user-{n}"
    raise AssertionError("no such shopper")


def search(user_id: str, **extra: Any) -> dict[str, Any]:
    # relevance rises with the item number: A (against relevance) ranks sku-0 first, B sku-7
    return {
        "surface": "search",
        "query": "shoes",
        "user_id": user_id,
        "items": [{"id": f"sku-{i}", "relevance": float(i)} for i in range(ITEMS)],
        **extra,
    }


def click(event_id: str, user: str, request_id: str, item_id: str) -> dict[str, Any]:
    at = timezone.now().isoformat()
    return {
        "event_id": event_id,
        "type": "click",
        "timestamp": at,
        "user_id": user,
        "request_id": request_id,
        "item_id": item_id,
    }


@pytest.mark.django_db
def test_an_interleaved_search_is_logged_with_its_teams_and_its_clicks_credit_them(
    api: ApiCaller, client: Client
) -> None:
    running = interleaving_shop(api)
    user, outsider = shopper_in(running), shopper_in(running, inside=False)

    answer = rank(api, search(user))
    other = rank(api, search(outsider))
    rank_log.flush()

    assert answer["ranker"]["variant"] == "interleaved"
    assert answer["ranker"]["model"] == "config:against relevance + linear@1"
    ids = [item["id"] for item in answer["items"]]
    assert sorted(ids) == sorted(f"sku-{i}" for i in range(ITEMS))
    assert set(ids[:2]) == {"sku-0", "sku-7"}  # A's top and B's top
    assert other["ranker"]["variant"] is None  # outside the share: the live ranker alone
    assert next(item["id"] for item in other["items"]) == "sku-0"
    logged = RankLog.objects.get(request_id=answer["request_id"])
    assert logged.experiment_id == running.pk
    assert logged.variant == "interleaved"
    assert logged.teams is not None
    assert len(logged.teams) == ITEMS
    assert set(logged.teams) == {"A", "B"}
    assert logged.item_ids == ids
    assert abs(logged.teams.count("A") - logged.teams.count("B")) <= 1
    assert RankLog.objects.get(request_id=other["request_id"]).teams is None
    # each team's items in its own ranker's order: A's by falling, B's by rising relevance
    numbers = [int(item_id.removeprefix("sku-")) for item_id in ids]
    a_items = [n for n, team in zip(numbers, logged.teams, strict=True) if team == "A"]
    b_items = [n for n, team in zip(numbers, logged.teams, strict=True) if team == "B"]
    assert a_items == sorted(a_items)
    assert b_items == sorted(b_items, reverse=True)

    request_id = answer["request_id"]
    team_of = dict(zip(ids, logged.teams, strict=True))
    b_picks = [item for item in ids if team_of[item] == "B"]
    a_picks = [item for item in ids if team_of[item] == "A"]
    now = timezone.now().isoformat()
    send_events(
        api,
        [
            click("c1", user, request_id, b_picks[0]),
            click("c2", user, request_id, b_picks[1]),
            click("c3", user, request_id, a_picks[0]),
            {
                "event_id": "p1",
                "type": "purchase",
                "timestamp": now,
                "user_id": user,
                "request_id": request_id,
                "item_id": b_picks[0],
                "quantity": 2,
                "price": 25.0,
            },
        ],
    )
    response = api.get(f"/v1/experiments/{running.pk}/results")

    assert response.status_code == 200, response.content
    results = response.json()
    assert results["experiment"]["method"] == "interleave"
    assert results["variants"] == []
    assert results["horizon"] is None
    found = results["interleaving"]
    assert (found["shoppers"], found["searches"]) == (1, 1)
    assert (found["clicks_a"], found["clicks_b"]) == (1, 2)
    assert (found["purchases_a"], found["purchases_b"]) == (0, 1)
    assert (found["revenue_a"], found["revenue_b"]) == (0.0, 50.0)
    preferences = {entry["metric"]: entry for entry in found["preferences"]}
    assert (preferences["clicks"]["wins_a"], preferences["clicks"]["wins_b"]) == (0, 1)
    assert preferences["clicks"]["preference"] == 1.0
    assert preferences["clicks"]["ties"] == 0
    assert preferences["revenue"]["credited_b"] == 50.0
    assert preferences["clicks"]["verdict"].startswith("not enough data yet")
    assert_matches_schema(
        orjson.loads(client.get("/v1/schema").content), "experiment_results", response
    )


@pytest.mark.django_db
def test_rules_hold_in_interleaved_answers_and_placed_items_credit_no_team(
    api: ApiCaller,
) -> None:
    running = interleaving_shop(api)
    user = shopper_in(running)
    for rule in (
        {
            "name": "pin sku-3",
            "enabled": True,
            "action": {"type": "pin", "pins": [{"item_id": "sku-3", "position": 1}]},
        },
        {
            "name": "hide sku-5",
            "enabled": True,
            "selector": {"item_ids": ["sku-5"]},
            "action": {"type": "hide"},
        },
    ):
        assert api.post("/v1/rules", rule).status_code == 201, rule

    answers = [rank(api, search(user, explain=True)) for _ in range(5)]
    rank_log.flush()

    for answer in answers:
        ids = [item["id"] for item in answer["items"]]
        assert ids[0] == "sku-3"
        assert "sku-5" not in ids
        assert [removed["id"] for removed in answer["removed"]] == ["sku-5"]
        teams = RankLog.objects.get(request_id=answer["request_id"]).teams
        assert teams is not None
        assert teams[0] == "-"
        assert "-" not in teams[1:]
        for item, team in zip(answer["items"], teams, strict=True):
            explanation = item["explanation"]
            total = explanation["base_value"] + math.fsum(
                c["contribution"] for c in explanation["contributions"]
            )
            assert total == pytest.approx(explanation["model_score"], abs=1e-6)
            if team == "-":
                assert explanation["transform"].startswith("interleaved: placed by a rule")
            else:
                assert explanation["transform"] == f"interleaved: team {team}"
        # B's model ranks by relevance (its contribution is +value), A's against it
        by_id = {item["id"]: item["explanation"] for item in answer["items"]}
        for item_id, team in zip(ids, teams, strict=True):
            relevance = next(
                c for c in by_id[item_id]["contributions"] if c["feature"] == "relevance"
            )
            if team == "B":
                assert relevance["contribution"] == pytest.approx(relevance["value"])


@pytest.mark.django_db
def test_another_customer_cannot_read_it_and_the_list_says_what_it_is(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    running = interleaving_shop(api, percent=40)

    assert other_api.get(f"/v1/experiments/{running.pk}/results").status_code == 404
    assert other_api.get("/v1/experiments").json()["experiments"] == []
    listed = api.get("/v1/experiments").json()["experiments"]
    assert listed[0]["method"] == "interleave"
    assert listed[0]["variants"] == [
        {"variant": "interleaved", "share": 0.4, "ranker": "live + linear@1"}
    ]


def readout_shop(api: ApiCaller, customer: Customer) -> Experiment:
    """An interleaving experiment with 400 shoppers whose clicks went to B's items 2 in 3."""
    running = interleaving_shop(api)
    now = timezone.now()
    RankLog.objects.bulk_create(
        RankLog(
            customer=customer,
            request_id=f"r-{n}",
            surface="search",
            query="shoes",
            shopper_key=f"u:{n}",
            schema_hash="x",
            item_ids=["sku-1", "sku-2"],
            features=b"",
            created_at=now - timedelta(hours=2),
            experiment_id=running.pk,
            variant="interleaved",
            teams="AB" if n % 2 else "BA",
        )
        for n in range(400)
    )
    events = []
    for n in range(400):
        b_item = "sku-2" if n % 2 else "sku-1"
        a_item = "sku-1" if n % 2 else "sku-2"
        clicked = b_item if n % 3 else a_item
        events.append(click(f"c-{n}", str(n), f"r-{n}", clicked))
    send_events(api, events)
    return running


@pytest.mark.django_db
def test_the_admin_page_shows_the_preference_in_shop_words(api: ApiCaller) -> None:
    running = readout_shop(api, api.customer)
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__model="experiment"))
    MembershipFactory(user=user, customer=api.customer)
    client = Client()
    client.force_login(user)

    response = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    for words in (
        "Who wins a search on clicks",
        "shoppers prefer B",
        "95% interval",
        "Clicks on its items",
        "Revenue of its items",
        "merged in one list",
        "confirm a winner with an A/B test",
    ):
        assert words in html, words
    assert "won 66.5% of the searches that had a winner" in html  # 266 of 400
    assert "Who wins a search on purchase revenue" in html
    assert "no search was won by either ranker" in html  # nobody bought


@pytest.mark.django_db
def test_another_customers_staff_cannot_open_its_admin_page(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    running = readout_shop(api, api.customer)
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__model="experiment"))
    MembershipFactory(user=user, customer=other_api.customer)
    client = Client()
    client.force_login(user)

    response = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))

    assert response.status_code in {302, 404}
    assert "shoppers prefer" not in response.content.decode()


@pytest.mark.django_db
def test_the_hourly_check_reads_an_interleaving_experiment_and_never_stops_it(
    api: ApiCaller,
) -> None:
    running = readout_shop(api, api.customer)

    assert services.experiment_check(experiment=running) is None

    running.refresh_from_db()
    assert running.enabled
    assert running.checked_at is not None
    summary = running.last_check["interleaving"]
    assert summary["shoppers"] == 400
    assert summary["clicks"]["significant"]
    listed = api.get("/v1/experiments").json()["experiments"][0]
    assert listed["headline"] is None  # the headline is A/B's revenue-per-search lift


@pytest.mark.django_db
def test_replaying_an_interleaved_request_says_it_was_interleaved_and_how(api: ApiCaller) -> None:
    running = interleaving_shop(api)
    answer = rank(api, search(shopper_in(running)))
    rank_log.flush()
    teams = RankLog.objects.get(request_id=answer["request_id"]).teams

    replay = explain_ranking(
        ExplainParams(
            customer_id=api.customer.pk,
            surface="search",
            source=SOURCE_LOG,
            request_id=answer["request_id"],
        )
    )

    said = " ".join(replay.notes)
    assert f"served interleaved (experiment {running.pk})" in said
    assert f"per position: {teams}" in said
    assert "its order is not the one served" in said
