"""An experiment's readout: the variant is logged with each request, shoppers' events attribute to
the variant of the request they came from (or the shopper's last request within the window),
`GET /v1/experiments/{id}/results` serves it to its own customer only, and the admin shows it in
shop words."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.metrics import EXPERIMENT_EXPOSURES, customer_label
from customers.models import Customer, Scope
from demo.simulation import build_world, shopper_events, simulated_sessions
from ranking import services
from ranking.experiment_stats import Horizon
from ranking.experiments import ATTRIBUTION_WINDOW, experiment_result, horizon_verdict
from ranking.learning import rank_log
from ranking.learning.artifacts import artifact_save, linear_artifact
from ranking.models import Experiment, RankingModel, RankLog
from ranking.services import signals_refresh
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SCHEMA_HASH
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, RankingModelFactory, UserFactory
from tests.ranking.helpers import put_items, rank, send_events
from tests.ranking.learning_shop import register
from tests.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def start_experiment(customer: Customer, percent: int = 50) -> Experiment:
    return services.experiment_save(
        experiment=Experiment(
            customer=customer,
            surface="search",
            name="relevance model",
            treatment_model=register(customer),
            treatment_percent=percent,
        )
    )


def served(
    experiment: Experiment | None,
    request_id: str,
    shopper: str,
    variant: str,
    at: datetime,
    customer: Customer | None = None,
) -> None:
    """A rank-log row as the API writes it for a request of this experiment (or of none)."""
    served_row(experiment, request_id, shopper, variant, at, customer).save()


def served_row(
    experiment: Experiment | None,
    request_id: str,
    shopper: str,
    variant: str,
    at: datetime,
    customer: Customer | None = None,
) -> RankLog:
    customer_id = experiment.customer_id if experiment is not None else customer.pk  # type: ignore[union-attr]
    return RankLog(
        customer_id=customer_id,
        request_id=request_id,
        surface="search",
        query="shoes",
        shopper_key=shopper,
        schema_hash=SCHEMA_HASH,
        item_ids=["sku-1"],
        features=b"",
        created_at=at,
        experiment_id=experiment.pk if experiment is not None else None,
        variant=variant if experiment is not None else "",
    )


def event(
    kind: str, event_id: str, user: str, at: datetime, request_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": kind, "timestamp": at.isoformat()}
    body.update(user_id=user, item_id=fields.pop("item_id", "sku-1"), **fields)
    if request_id is not None:
        body["request_id"] = request_id
    return body


def totals(experiment: Experiment) -> dict[str, dict[str, float]]:
    result = experiment_result(experiment=experiment)
    return {variant: {"shoppers": v.shoppers, **v.totals} for variant, v in result.variants.items()}


def test_events_count_for_the_variant_of_their_request_or_the_shoppers_last_one_in_the_window(
    api: ApiCaller,
) -> None:
    running = start_experiment(api.customer)
    now = timezone.now()
    hours = [now - timedelta(hours=h) for h in range(60)]  # hours[h]: h hours ago
    served(running, "r-ann", "u:ann", "A", hours[20])
    served(running, "r-bob-1", "u:bob", "B", hours[30])
    served(running, "r-bob-2", "u:bob", "B", hours[10])
    served(running, "r-cat", "u:cat", "B", hours[40])
    served(running, "r-anon", "", "A", hours[20])  # no shopper: served A, in no variant
    served(None, "r-before", "u:ann", "", hours[50], customer=api.customer)  # no experiment

    send_events(
        api,
        [
            # ann: a click on her request; her purchase names no request but follows that click
            # (filled at ingest); a click on a request outside the experiment counts for none.
            event("click", "e1", "ann", hours[19], "r-ann"),
            event("purchase", "e2", "ann", hours[18], price=30.0, quantity=2),
            event("click", "e3", "ann", hours[19], "r-before", item_id="sku-2"),
            # bob: no request ids; each goes to his last request before it, within 24 hours.
            event("click", "e4", "bob", hours[9], item_id="sku-3"),
            event("add_to_cart", "e5", "bob", hours[25], item_id="sku-4"),
            event("purchase", "e6", "bob", hours[8], price=10.0, item_id="sku-5"),
            # a request id nobody logged is as good as none: bob's last request
            event("click", "e7", "bob", hours[7], "r-unknown", item_id="sku-2"),
            # cat: within the window of her request, then after it (none), then before it (none)
            event("click", "e8", "cat", hours[17], item_id="sku-2"),
            event("click", "e9", "cat", hours[15], item_id="sku-3"),
            event("purchase", "e10", "cat", hours[41], price=99.0, item_id="sku-4"),
            # dan was never ranked in the experiment; the anonymous request's click counts for none
            event("purchase", "e11", "dan", hours[5], price=50.0),
            event("click", "e12", "eve", hours[19], "r-anon"),
        ],
    )

    assert timedelta(hours=24) == ATTRIBUTION_WINDOW  # the window the rule above assumes
    assert totals(running) == {
        "A": {
            "shoppers": 1,
            "searches": 1,
            "clicks": 1,
            "add_to_carts": 0,
            "purchases": 1,
            "revenue": 60.0,
        },
        "B": {
            "shoppers": 2,
            "searches": 3,
            "clicks": 3,
            "add_to_carts": 1,
            "purchases": 1,
            "revenue": 10.0,
        },
    }


def test_each_served_request_is_logged_with_its_experiment_and_variant_and_counted(
    api: ApiCaller,
) -> None:
    put_items(api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 + i} for i in range(5)])
    signals_refresh(customer_id=api.customer.pk)
    running = start_experiment(api.customer, percent=50)
    body = {"surface": "search", "query": "shoes", "items": [{"id": f"sku-{i}"} for i in range(5)]}
    label = customer_label(api.customer.pk)

    def exposures() -> dict[str, float]:
        experiment = str(running.pk)
        return {
            v: EXPERIMENT_EXPOSURES.labels(label, "search", experiment, v)._value.get()
            for v in "AB"
        }

    before = exposures()
    answers = {}
    for n in range(40):
        answer = rank(api, {**body, "user_id": f"u{n}"})
        answers[answer["request_id"]] = answer["ranker"]["variant"]
    anonymous = rank(api, body)
    browse = rank(api, {"surface": "browse", "user_id": "u1", "items": body["items"]})
    rank_log.flush()
    after = exposures()

    logged = {
        row.request_id: (row.experiment_id, row.variant)
        for row in RankLog.objects.filter(customer=api.customer)
    }
    assert set(answers.values()) == {"A", "B"}
    assert all(logged[r] == (running.pk, variant) for r, variant in answers.items())
    assert logged[anonymous["request_id"]] == (running.pk, "A")  # served A, read in no variant
    assert logged[browse["request_id"]] == (None, "")  # no experiment on browse
    served_to = Counter(answers.values())
    assert {v: after[v] - before[v] for v in "AB"} == {v: served_to[v] for v in "AB"}


def test_the_variant_survives_the_celery_message_of_the_rank_log() -> None:
    entry = rank_log.RankLogEntry(
        customer_id=1,
        request_id="r-1",
        surface="search",
        query="shoes",
        shopper_key="u:1",
        model="linear@1",
        item_ids=("sku-1",),
        features=b"",
        created_at=timezone.now(),
        experiment_id=7,
        variant="B",
    )

    assert rank_log.RankLogEntry.from_payload(entry.to_payload()) == entry


@pytest.mark.parametrize(
    ("more", "verdict"), [(0, "may be read"), (12_345, "not yet: 12,345 more shoppers")]
)
def test_the_verdict_says_whether_the_experiment_may_be_read(
    api: ApiCaller, more: int, verdict: str
) -> None:
    result = experiment_result(experiment=start_experiment(api.customer))
    horizon = Horizon(0.05, 0.05, 0.8, 20_000, 20_000, more)

    read = replace(result, first_request_at=timezone.now(), horizon=horizon)

    assert horizon_verdict(read) == verdict
    assert horizon_verdict(replace(read, horizon=None)).startswith("not yet: ")
    assert horizon_verdict(result) == "not yet: no shopper has been ranked in it"


def test_the_readout_without_traffic_says_so_and_invents_nothing(api: ApiCaller) -> None:
    running = start_experiment(api.customer)

    result = experiment_result(experiment=running)

    assert result.first_request_at is None
    assert {v.shoppers for v in result.variants.values()} == {0}
    assert all(lift is None for lift in result.lifts.values())
    assert result.sample_ratio is None
    assert result.horizon is None


# --- end to end through the public API ---------------------------------------------------------


def linear_model(customer: Customer, weights: dict[str, float]) -> RankingModel:
    """A linear candidate with the given weights on the raw features, in the registry."""
    coef = np.zeros(len(FEATURES))
    for feature, weight in weights.items():
        coef[FEATURE_INDEX[feature]] = weight
    content = linear_artifact(
        customer_id=customer.pk,
        coef=coef,
        mean=np.zeros(len(FEATURES)),
        std=np.ones(len(FEATURES)),
        intercept=0.0,
    )
    path, digest = artifact_save(
        customer_id=customer.pk, surface="search", algorithm="linear", version=1, content=content
    )
    return RankingModelFactory(
        customer=customer, algorithm="linear", version=1, artifact_path=path, artifact_sha256=digest
    )


def test_a_truly_better_ranker_wins_with_a_significant_lift_and_the_counts_of_its_events(
    api: ApiCaller,
) -> None:
    """The simulated shoppers (demo/simulation.py) click what they like; the retriever's relevance
    knows the category they asked for. A ranks against it (the live config reverses relevance),
    B with it (a linear model): B is truly better, and the readout must say so."""
    world = build_world(n_items=120, n_shoppers=3000, seed=5)
    put_items(api, world.catalog())
    signals_refresh(customer_id=api.customer.pk)
    services.ranking_config_save(
        customer=api.customer,
        surface="search",
        name="against relevance",
        weights={"relevance": -1.0},
        personalization_weight=0.0,
    )
    running = services.experiment_save(
        experiment=Experiment(
            customer=api.customer,
            surface="search",
            name="relevance first",
            treatment_model=linear_model(api.customer, {"relevance": 1.0}),
            treatment_percent=50,
            salt="end-to-end",  # fixed, so the run is repeatable (see the note on the lift below)
        )
    )
    now = timezone.now()
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    shoppers: dict[str, set[str]] = defaultdict(set)
    events: list[dict[str, Any]] = []
    started = time.monotonic()
    sessions = simulated_sessions(
        # stamped just before the requests are served (the readout reads events from an hour
        # before the first request on: clocks differ)
        world,
        sessions=1200,
        start=now - timedelta(minutes=50),
        end=now - timedelta(minutes=25),
        seed=21,
    )
    for _, session, rng in sessions:
        if session.surface != "search":
            continue
        answer = rank(api, session.rank_request(world))
        variant = answer["ranker"]["variant"]
        index = {item_id: n for n, item_id in enumerate(world.item_ids)}
        shown = np.array([index[item["id"]] for item in answer["items"]])
        done = shopper_events(world, session, shown, rng, answer["request_id"])
        events.extend(done)
        expected[variant]["searches"] += 1
        shoppers[variant].add(world.shopper_ids[session.shopper])
        for kind, name in (
            ("click", "clicks"),
            ("add_to_cart", "add_to_carts"),
            ("purchase", "purchases"),
        ):
            expected[variant][name] += sum(event["type"] == kind for event in done)
        expected[variant]["revenue"] += sum(e.get("price", 0.0) for e in done)  # type: ignore[arg-type]
    for start in range(0, len(events), 1000):
        send_events(api, events[start : start + 1000])
    rank_log.flush()

    response = api.get(f"/v1/experiments/{running.pk}/results")

    assert response.status_code == 200, response.content
    results = response.json()
    variants = {variant["variant"]: variant for variant in results["variants"]}
    for name in ("A", "B"):
        assert variants[name]["shoppers"] == len(shoppers[name])
        for count in ("searches", "clicks", "add_to_carts", "purchases"):
            assert variants[name][count] == expected[name][count], (name, count)
        assert variants[name]["revenue"] == pytest.approx(expected[name]["revenue"])
        assert variants[name]["ctr"] == pytest.approx(
            expected[name]["clicks"] / expected[name]["searches"]
        )
    # B's click-through rate is higher, significantly. With eight other salts (other splits of
    # the same shoppers) it was significant every time, the lowest lower bound +3.6%; revenue per
    # search was higher in seven of the eight, significant in two: too few purchases at this
    # size to assert its sign.
    lifts = {lift["metric"]: lift for lift in results["lifts"]}
    assert lifts["ctr"]["lift"] > 0
    assert lifts["ctr"]["significant"], lifts["ctr"]
    assert lifts["ctr"]["low"] > 0
    assert not results["sample_ratio"]["mismatch"]
    assert results["horizon"]["verdict"].startswith("not yet: ")
    # The always-valid interval, wider, may be read now: it says whether B differs already.
    sequential = results["sequential"]
    assert sequential["metric"] == "revenue_per_search"
    assert sequential["excludes_zero"] == lifts["revenue_per_search"]["always_valid"]["significant"]
    assert lifts["ctr"]["always_valid"]["low"] < lifts["ctr"]["low"]
    assert lifts["ctr"]["always_valid"]["high"] > lifts["ctr"]["high"]
    assert time.monotonic() - started < 60  # a few seconds on a quiet machine


# --- tenancy, scope, bad ids ------------------------------------------------------------------


def test_another_customers_key_cannot_read_an_experiment(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    running = start_experiment(api.customer)
    url = f"/v1/experiments/{running.pk}/results"

    own = api.get(url)
    foreign = other_api.get(url)

    assert own.status_code == 200
    assert own.json()["experiment"]["id"] == running.pk
    assert foreign.status_code == 404
    assert foreign["Content-Type"] == "application/problem+json"
    assert foreign.json()["type"] == "/problems/not-found"
    assert "relevance model" not in foreign.content.decode()


def test_a_results_response_matches_the_schema(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    openapi = orjson.loads(Client().get("/v1/schema").content)
    empty = api.get(f"/v1/experiments/{running.pk}/results")
    now = timezone.now()
    for n in range(6):
        served(running, f"r-{n}", f"u:{n}", "AB"[n % 2], now - timedelta(hours=2))
    send_events(
        api,
        [
            event("purchase", f"p-{n}", str(n), now - timedelta(hours=1), f"r-{n}", price=10.0 + n)
            for n in range(6)
        ],
    )

    response = api.get(f"/v1/experiments/{running.pk}/results")

    assert response.status_code == 200
    lifts = {lift["metric"]: lift for lift in response.json()["lifts"]}
    assert lifts["revenue_per_search"]["lift"] is not None  # numbers, not only nulls
    assert lifts["revenue_per_search"]["always_valid"]["low"] < lifts["revenue_per_search"]["low"]
    assert response.json()["sequential"]["verdict"].startswith("no clear difference yet")
    assert_matches_schema(openapi, "experiment_results", response)
    assert empty.json()["sequential"]["verdict"].startswith("not enough data yet")
    assert empty.json()["sample_ratio"] is None
    assert_matches_schema(openapi, "experiment_results", empty)


@pytest.mark.parametrize("experiment_id", ["999999", str(2**63), str(2**70)])
def test_an_unknown_experiment_is_a_404_naming_it(api: ApiCaller, experiment_id: str) -> None:
    response = api.get(f"/v1/experiments/{experiment_id}/results")

    assert response.status_code == 404
    assert experiment_id in response.json()["detail"]


def test_reading_results_needs_the_rank_scope(
    api: ApiCaller, make_caller: Callable[..., ApiCaller]
) -> None:
    running = start_experiment(api.customer)
    no_rank = make_caller(customer=api.customer, scopes=[s for s in Scope.values if s != "rank"])

    response = no_rank.get(f"/v1/experiments/{running.pk}/results")

    assert response.status_code == 403
    assert "`rank`" in response.json()["detail"]


# --- the admin page ---------------------------------------------------------------------------


def test_the_admin_page_shows_the_readout_in_shop_words(api: ApiCaller) -> None:
    running = start_experiment(api.customer, percent=50)
    now = timezone.now()
    RankLog.objects.bulk_create(
        served_row(
            running, f"r-{n}", f"u:{n}", "B" if n % 100 < 45 else "A", now - timedelta(hours=2)
        )
        for n in range(3000)
    )  # 45% of the shoppers in B where 50% should be
    send_events(
        api,
        [
            event(
                "purchase",
                f"p-{n}",
                str(n),
                now - timedelta(hours=1),
                f"r-{n}",
                price=1234.5 if n % 2 else 20.0,
            )
            for n in range(0, 3000, 7)
        ],
    )
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__model="experiment"))
    MembershipFactory(user=user, customer=api.customer)
    client = Client()
    client.force_login(user)

    response = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    shop_words = (
        "Revenue per search",
        "Add-to-cart rate",
        "Conversion (purchases per search)",
        "Average order value",
        "Revenue per shopper",
        "Shoppers",
        "B against A",
        "95% interval",
        "Can it be read?",
        "At any time, on the always-valid intervals: revenue per search",
        "Always-valid 95% interval (may be read at any time)",
        "At the fixed horizon",
        "not split as set",
        "within the 24 hours",
        "Searches from",
    )
    for words in shop_words:
        assert words in html, words
    assert "1,650" in html  # shoppers of A, with a thousands separator
    assert re.search(r"<td>\d{1,3}(,\d{3})*\.\d{2}</td>", html)  # money: 2 decimals
    assert "revenue_per_search" not in html  # no code words
    model_page = reverse("admin:ranking_rankingmodel_change", args=[running.treatment_model.pk])
    assert f'href="{model_page}"' in html  # the next question: what is B?
