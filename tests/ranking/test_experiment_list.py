"""`GET /v1/experiments`: the calling customer's experiments with their status, variants, start
and end, and the revenue-per-search lift of the latest hourly check; never another customer's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.test import Client
from django.utils import timezone

from customers.models import Scope
from ranking import services, tasks
from ranking.models import ExperimentEnd, RankLog
from tests.conftest import ApiCaller
from tests.ranking.helpers import send_events
from tests.ranking.test_experiment_results import event, served_row, start_experiment
from tests.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_the_list_shows_status_variants_dates_and_the_checked_lift(api: ApiCaller) -> None:
    stopped = start_experiment(api.customer, percent=50)
    services.experiment_stop(
        experiment=stopped,
        reason=ExperimentEnd.GUARDRAIL,
        by="guardrail",
        summary="stopped by the guardrail: B earned 9.0% less revenue per search",
    )
    running = start_experiment(api.customer, percent=30)
    unchecked = api.get("/v1/experiments").json()["experiments"][0]["headline"]
    at = timezone.now() - timedelta(hours=2)
    RankLog.objects.bulk_create(
        served_row(running, f"r-{n}", f"u:{n}", "B" if n % 10 < 3 else "A", at) for n in range(40)
    )
    send_events(
        api,
        [
            event("purchase", f"p-{n}", str(n), at, f"r-{n}", price=10.0 + n)
            for n in range(0, 40, 2)
        ],
    )
    tasks.check_experiment.delay(running.pk).get()
    openapi = orjson.loads(Client().get("/v1/schema").content)

    response = api.get("/v1/experiments")

    assert response.status_code == 200
    assert_matches_schema(openapi, "experiments_list", response)
    listed = response.json()["experiments"]
    assert [e["id"] for e in listed] == [running.pk, stopped.pk]  # newest first
    now, then = listed
    assert now["status"] == "running"
    assert now["ended_at"] is None
    assert now["variants"] == [
        {"variant": "A", "share": 0.7, "ranker": "live"},
        {"variant": "B", "share": 0.3, "ranker": running.treatment_model.label},
    ]
    assert unchecked is None  # before the first hourly check
    headline = now["headline"]
    assert (headline["shoppers_a"], headline["shoppers_b"]) == (28, 12)
    assert headline["metric"] == "revenue_per_search"
    assert headline["lift"] is not None
    assert headline["low"] < headline["lift"] < headline["high"]
    assert not headline["may_be_read"]
    assert then["status"] == "stopped_by_guardrail"
    assert then["ended_by"] == "guardrail"
    assert then["end_summary"].startswith("stopped by the guardrail: B earned 9.0% less")
    assert then["started_at"] < then["ended_at"]


def test_a_customer_never_sees_another_customers_experiments(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    mine = start_experiment(api.customer)
    start_experiment(other_api.customer)

    listed = api.get("/v1/experiments").json()["experiments"]
    theirs = other_api.get("/v1/experiments").json()["experiments"]

    assert [e["id"] for e in listed] == [mine.pk]
    assert mine.pk not in [e["id"] for e in theirs]


def test_the_list_filters_by_status_and_surface_and_names_a_bad_filter(api: ApiCaller) -> None:
    stopped = start_experiment(api.customer)
    stopped.enabled = False
    services.experiment_save(experiment=stopped)
    running = start_experiment(api.customer)

    def ids(query: str) -> list[int]:
        response = api.get(f"/v1/experiments?{query}")
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["experiments"]]

    bad = api.get("/v1/experiments?status=paused")

    assert ids("status=running") == [running.pk]
    assert ids("status=stopped") == [stopped.pk]
    assert ids("status=promoted") == []
    assert ids("surface=browse") == []
    assert ids("surface=search") == [running.pk, stopped.pk]
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["status"]
    assert "running" in bad.json()["errors"][0]["detail"]


def test_listing_experiments_needs_the_rank_scope(
    api: ApiCaller, make_caller: Callable[..., ApiCaller]
) -> None:
    no_rank = make_caller(customer=api.customer, scopes=[s for s in Scope.values if s != "rank"])

    response = no_rank.get("/v1/experiments")

    assert response.status_code == 403
    assert "`rank`" in response.json()["detail"]
