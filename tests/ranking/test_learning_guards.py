"""Honest baselines and guards: popularity counted from events, the live ranker compared, models
that learned nothing of a feature refused, and the loop that decides on its own when asked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from customers.services import customer_update
from ranking import tasks
from ranking.learning import rank_log, registry
from ranking.learning.dataset import Source, TrainingSet, training_set_load
from ranking.learning.metrics import REVENUE
from ranking.learning.rank_log import feature_matrix
from ranking.learning.training import (
    Fitted,
    TrainingParams,
    feature_report,
    fit_linear,
    time_split,
)
from ranking.models import ModelStatus, RankingModel, RankLog, SignalVersion
from ranking.signals.schema import FEATURE_INDEX
from tests.conftest import ApiCaller
from tests.factories import CustomerFactory, RankLogFactory
from tests.ranking.helpers import put_items, rank, send_events
from tests.ranking.learning_shop import GOOD, register, synthetic_set

pytestmark = pytest.mark.django_db
POPULARITY = FEATURE_INDEX["popularity"]


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_the_popularity_baseline_is_counted_from_events_not_the_logged_feature(
    api: ApiCaller,
) -> None:
    """Requests served before the first refresh logged popularity 0 for every item; the
    baseline training compares with counts the purchases that happened before each request."""
    put_items(api, [{"id": f"sku-{n}", "title": f"Item {n}", "price": 20.0} for n in range(6)])
    now = timezone.now()
    bought = [
        {
            "event_id": f"buy-{n}",
            "type": "purchase",
            "user_id": f"u-{n}",
            "item_id": "sku-3",
            "price": 20.0,
            "timestamp": (now - timedelta(hours=2, minutes=n)).isoformat(),
        }
        for n in range(5)
    ]
    send_events(api, bought)
    items = [{"id": f"sku-{n}", "relevance": float(n)} for n in range(6)]
    for n in range(4):
        rank(api, {"surface": "search", "query": "tent", "user_id": f"v-{n}", "items": items})
    rank_log.flush()
    logged = list(RankLog.objects.filter(customer=api.customer))
    assert all(row.signals_version is None for row in logged)  # no refresh had run
    assert all(not feature_matrix(bytes(row.features))[:, POPULARITY].any() for row in logged)

    data = training_set_load(
        customer_id=api.customer.pk,
        surface="search",
        start=now - timedelta(days=1),
        end=timezone.now() + timedelta(seconds=1),
    )

    assert data.provenance["requests"][Source.NO_SIGNALS.value] == 4
    rows = data.item_codes == data.item_codes[list(logged[0].item_ids).index("sku-3")]
    assert (data.popularity_baseline[rows] > 0).all()
    assert not data.popularity_baseline[~rows].any()
    assert (data.features[rows, POPULARITY] > 0).all()  # rebuilt for training as well


def _fit(data: TrainingSet) -> Fitted:
    return fit_linear(data, None, TrainingParams(algorithm="linear"), customer_id=1)


def test_a_model_trained_on_blank_features_is_refused_without_a_reason(api: ApiCaller) -> None:
    data = synthetic_set()
    train, holdout = time_split(data, 0.25)
    train.features[:, POPULARITY] = 0.0  # blank in every training row, varying later
    report = feature_report(train, holdout, _fit(train), TrainingParams(algorithm="linear"))
    assert report["constant_features"] == ["popularity"]
    model = register(api.customer)
    model.report = report
    model.save()

    with pytest.raises(registry.ActivationRefused, match="popularity never varied") as refused:
        registry.model_activate(model=model, user="tester")
    assert refused.value.needs_override

    registry.model_activate(model=model, user="tester", override_reason="known, it is a test")
    assert RankingModel.objects.get(pk=model.pk).status == ModelStatus.ACTIVE


@pytest.mark.parametrize(
    ("metrics", "words"),
    [
        (
            {
                **GOOD,
                "model": {"ndcg@10": 0.4, REVENUE: 2.0},
                "baseline": {"ndcg@10": 0.3, REVENUE: 2.5},
            },
            "revenue per search 2.0000 on its holdout, not above the popularity order's 2.5000",
        ),
        (
            {**GOOD, "active": {"ndcg@10": 0.45}, "active_label": "config:default"},
            "not above the live config:default's 0.4500",
        ),
        (
            {**GOOD, "holdout_requests_with_outcomes": 80},
            "its holdout had 80 requests with outcomes, too few to tell",
        ),
        (
            {**GOOD, "lift": {"baseline": {"ndcg@10": [-0.02, 0.04, 0.1]}}},
            "NDCG@10 lift over the popularity order is within the holdout's noise (+4.0%, 95% "
            "interval -2.0% to +10.0%)",
        ),
    ],
    ids=[
        "revenue below popularity",
        "below the live blend",
        "holdout too small",
        "lift within the noise",
    ],
)
def test_a_model_that_does_not_clearly_beat_both_rankers_needs_a_reason(
    api: ApiCaller, metrics: dict[str, Any], words: str
) -> None:
    model = register(api.customer, metrics=metrics)

    assert any(words in warning for warning in registry.activation_warnings(model))
    with pytest.raises(registry.ActivationRefused) as refused:
        registry.model_activate(model=model, user="tester")
    assert refused.value.needs_override


def test_the_loop_serves_a_model_that_passes_every_guard_when_the_customer_opted_in(
    api: ApiCaller, django_capture_on_commit_callbacks: Any
) -> None:
    customer_update(customer=api.customer, auto_activate_models=True)
    passes, fails = (
        register(api.customer),
        register(api.customer, metrics={**GOOD, "model": {"ndcg@10": 0.2}}),
    )

    with django_capture_on_commit_callbacks(execute=True):
        registry.model_decide(model=fails)
        registry.model_decide(model=passes)

    fails.refresh_from_db()
    passes.refresh_from_db()
    assert fails.status == ModelStatus.CANDIDATE
    assert fails.report["decision"]["action"].startswith("kept as a candidate: ")
    assert "not above the popularity order" in fails.report["decision"]["action"]
    assert passes.status == ModelStatus.ACTIVE
    assert passes.report["decision"]["action"].startswith("activated")
    assert passes.report["decision"]["model"]["ndcg@10"] == GOOD["model"]["ndcg@10"]


def test_without_opting_in_the_loop_only_records_its_decision(api: ApiCaller) -> None:
    model = register(api.customer)

    registry.model_decide(model=model)

    model.refresh_from_db()
    assert model.status == ModelStatus.CANDIDATE
    assert model.report["decision"]["action"] == (
        "kept as a candidate: this customer activates models by hand"
    )


def test_a_new_customer_is_refreshed_as_soon_as_its_first_events_arrive(api: ApiCaller) -> None:
    quiet = CustomerFactory()
    put_items(api, [{"id": "sku-1", "title": "Tent"}])
    send_events(
        api,
        [
            {
                "event_id": "e-1",
                "type": "click",
                "item_id": "sku-1",
                "user_id": "u-1",
                "timestamp": timezone.now().isoformat(),
            }
        ],
    )

    scheduled = tasks.schedule_first_refreshes()

    assert scheduled == 1  # eager here: the refresh ran
    assert SignalVersion.objects.filter(customer=api.customer).count() == 1
    assert not SignalVersion.objects.filter(customer=quiet).exists()
    assert tasks.schedule_first_refreshes() == 0  # only the first time


def test_features_the_model_was_asked_to_go_without_are_not_reported_as_blank() -> None:
    data = synthetic_set()
    train, holdout = time_split(data, 0.25)
    params = TrainingParams(algorithm="linear", without=("relevance",))

    report = feature_report(train, holdout, _fit(train), params)

    assert report["constant_features"] == []
    coverage = {row["feature"]: row["coverage"] for row in report["features"]}
    assert coverage["relevance"] == 0.0
    assert abs(sum(row["importance"] for row in report["features"]) - 1.0) < 1e-3


def test_requests_logged_with_an_older_feature_schema_are_rebuilt_with_their_relevance(
    api: ApiCaller,
) -> None:
    """A new feature does not wait weeks for a new log: the old schema's rows are rebuilt."""
    put_items(api, [{"id": f"sku-{n}", "title": f"Item {n}", "price": 20.0} for n in range(3)])
    now = timezone.now()
    old_columns = np.array([[0.1, 0.2, 1.5], [0.3, 0.4, -1.5]], dtype="<f4")  # relevance last
    RankLogFactory(
        customer=api.customer,
        request_id="old-1",
        query="tent",
        shopper_key="u:u-1",
        schema_hash="0ld5chema0000000",
        item_ids=["sku-2", "sku-0"],
        features=old_columns.tobytes(),
        created_at=now - timedelta(hours=1),
    )

    data = training_set_load(
        customer_id=api.customer.pk, surface="search", start=now - timedelta(days=1), end=now
    )

    assert data.provenance["requests"][Source.OTHER_SCHEMA.value] == 1
    assert data.features.shape == (2, len(FEATURE_INDEX))
    assert data.features[:, FEATURE_INDEX["relevance"]].tolist() == [1.5, -1.5]
    assert data.features[:, FEATURE_INDEX["price"]] == pytest.approx(np.log1p(20.0))
