"""A retailer imports months of history as events on day one, with no rank log: training builds
its requests from the impressions, rebuilds their features as of each moment, and the model it
trains beats the popularity order on the later requests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from catalog.contracts import CatalogItemIn
from catalog.services import items_upsert
from demo.simulation import build_world, simulate
from demo.traffic import events_send
from ranking.learning.dataset import Source
from ranking.learning.metrics import NDCG, REVENUE
from ranking.learning.training import TrainingParams, model_train
from ranking.models import RankLog
from tests.conftest import ApiCaller

pytestmark = pytest.mark.django_db


def test_a_model_trained_on_imported_history_alone_beats_popularity(
    api: ApiCaller, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    world = build_world(n_items=300, n_shoppers=300, seed=4)
    catalog = [CatalogItemIn.model_validate(row, strict=False) for row in world.catalog()]
    items_upsert(customer_id=api.customer.pk, items=catalog)
    end = timezone.now() - timedelta(hours=1)
    history: list[dict[str, Any]] = []
    for events in simulate(world, sessions=6000, start=end - timedelta(days=20), end=end, seed=4):
        history.extend(events)
    events_send(api.customer.pk, sorted(history, key=lambda event: event["timestamp"]))
    assert not RankLog.objects.exists()

    model = model_train(
        customer_id=api.customer.pk,
        surface="search",
        params=TrainingParams(algorithm="linear", target="graded"),
    )

    provenance = model.report["provenance"]["requests"]
    assert (
        provenance[Source.HISTORY.value]
        == model.row_counts["train"]["requests"] + (model.row_counts["holdout"]["requests"])
    )
    metrics = model.metrics
    print("history import", metrics["model"], metrics["baseline"])  # noqa: T201
    assert metrics["model"][NDCG] > metrics["baseline"][NDCG]
    assert metrics["model"][REVENUE] > metrics["baseline"][REVENUE]
    assert np.isfinite(model.propensity["eta"])
    assert not model.report["constant_features"]
