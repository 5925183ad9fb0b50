"""Training on a small simulated shop end to end: the management commands (train with progress,
activate, roll back), the nightly schedule, and serving the trained model through /v1/rank."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.models import Customer
from demo.simulation import build_world
from events.models import Event
from ranking.learning import registry
from ranking.learning.dataset import training_set_load
from ranking.models import ModelStatus, RankingModel, RankLog
from ranking.tasks import schedule_model_training
from tests.conftest import ApiCaller
from tests.ranking.helpers import rank
from tests.ranking.learning_shop import build_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulated_shop(api: ApiCaller, memory_store: Any, settings: Any, tmp_path: Path) -> Customer:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    world = build_world(n_items=120, n_shoppers=80, seed=9)
    build_shop(api.customer, world, history_sessions=300, ranked_sessions=500)
    return api.customer


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_train_activate_and_roll_back_from_the_command_line(
    simulated_shop: Customer, api: ApiCaller, django_capture_on_commit_callbacks: Any
) -> None:
    slug = simulated_shop.slug

    output = run("train_model", slug, "search", "--algorithm", "lambdamart", "--rounds", "20")

    assert "Loading requests and outcomes" in output
    assert "Fitting lambdamart" in output
    assert "Against the popularity order: ranking quality (NDCG@10)" in output
    assert "Registered lambdamart@1 as a candidate" in output
    model = RankingModel.objects.get(customer=simulated_shop, surface="search")
    assert model.status == ModelStatus.CANDIDATE
    assert model.row_counts["train"]["requests"] > model.row_counts["holdout"]["requests"] > 0
    assert model.train_from < model.holdout_from < model.train_until
    assert set(model.metrics) >= {"model", "baseline", "served", "active"}

    with django_capture_on_commit_callbacks(execute=True):
        if registry.activation_warnings(model):
            with pytest.raises(CommandError, match="override"):
                run("activate_model", slug, "search", "1")
            run("activate_model", slug, "search", "1", "--override-reason", "small test shop")
        else:
            run("activate_model", slug, "search", "1")
    body = {
        "surface": "search",
        "query": "tent",
        "items": [{"id": "sku-00001"}, {"id": "sku-00002"}],
    }
    assert rank(api, body)["ranker"]["model"] == "lambdamart@1"

    assert "Registered linear@2" in run("train_model", slug, "search", "--algorithm", "linear")
    linear = RankingModel.objects.get(customer=simulated_shop, surface="search", version=2)
    assert linear.metrics["active_model_id"] == model.pk  # compared with the serving model
    assert linear.metrics["active_label"] == "lambdamart@1"
    assert linear.metrics["active"]["ndcg@10"] > 0

    with django_capture_on_commit_callbacks(execute=True):
        assert "search now serves the config's blend" in run("rollback_model", slug, "search")
    assert rank(api, body)["ranker"]["model"] is None
    with pytest.raises(CommandError, match="no active model"):
        run("rollback_model", slug, "search")


def test_the_nightly_schedule_trains_surfaces_with_enough_logged_requests(
    simulated_shop: Customer, settings: Any
) -> None:
    settings.TRAINING_MIN_REQUESTS = 200  # search has ~350 logged requests, browse ~150

    assert schedule_model_training.delay().get() == 1

    trained = RankingModel.objects.get(customer=simulated_shop)
    assert (trained.surface, trained.status, trained.created_by) == ("search", "candidate", "beat")


def test_training_with_too_little_data_says_so(api: ApiCaller) -> None:
    with pytest.raises(CommandError, match="Not enough data"):
        run("train_model", api.customer.slug, "search")


def test_training_reads_only_the_customers_own_log_and_events(
    simulated_shop: Customer, other_api: ApiCaller
) -> None:
    """Another customer with the very same request ids, features and many purchases changes
    nothing in the first customer's training set."""
    window = {"start": timezone.now() - timedelta(days=60), "end": timezone.now()}
    own = training_set_load(customer_id=simulated_shop.pk, surface="search", **window)
    other = other_api.customer
    copies = []
    for row in RankLog.objects.filter(customer=simulated_shop):
        row.pk, row.customer = None, other
        copies.append(row)
    RankLog.objects.bulk_create(copies)
    Event.objects.bulk_create(
        Event(
            customer=other,
            event_id=f"p-{n}-{item_id}",
            type="purchase",
            item_id=item_id,
            occurred_at=row.created_at,
            request_id=row.request_id,
            revenue=100.0,
        )
        for n, row in enumerate(copies)
        for item_id in row.item_ids
    )

    again = training_set_load(customer_id=simulated_shop.pk, surface="search", **window)

    assert again.row_counts() == own.row_counts()
    assert again.labels.tolist() == own.labels.tolist()
    theirs = training_set_load(customer_id=other.pk, surface="search", **window)
    assert theirs.row_counts()["purchases"] == theirs.row_counts()["rows"]
