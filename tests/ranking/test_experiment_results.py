"""An experiment's readout: the variant is logged with each request, shoppers' events attribute to
the variant of the request they came from (or the shopper's last request within the window),
`GET /v1/experiments/{id}/results` serves it to its own customer only, and the admin shows it in
shop words."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from customers.models import Customer
from ranking import services
from ranking.experiments import ATTRIBUTION_WINDOW, experiment_result
from ranking.learning import rank_log
from ranking.models import Experiment, RankLog
from ranking.services import signals_refresh
from ranking.signals.schema import SCHEMA_HASH
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, send_events
from tests.ranking.learning_shop import register

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
    customer_id = experiment.customer_id if experiment is not None else customer.pk  # type: ignore[union-attr]
    RankLog.objects.create(
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
        "A": {"shoppers": 1, "searches": 1, "clicks": 1, "add_to_carts": 0, "purchases": 1,
              "revenue": 60.0},
        "B": {"shoppers": 2, "searches": 3, "clicks": 3, "add_to_carts": 1, "purchases": 1,
              "revenue": 10.0},
    }  # fmt: skip


def test_each_served_request_is_logged_with_its_experiment_and_variant(api: ApiCaller) -> None:
    put_items(api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 + i} for i in range(5)])
    signals_refresh(customer_id=api.customer.pk)
    running = start_experiment(api.customer, percent=50)
    body = {"surface": "search", "query": "shoes", "items": [{"id": f"sku-{i}"} for i in range(5)]}

    answers = {}
    for n in range(40):
        response = api.post("/v1/rank", {**body, "user_id": f"u{n}"})
        assert response.status_code == 200
        answers[response.json()["request_id"]] = response.json()["ranker"]["variant"]
    browse = api.post("/v1/rank", {"surface": "browse", "user_id": "u1", "items": body["items"]})
    rank_log.flush()

    logged = {
        row.request_id: (row.experiment_id, row.variant)
        for row in RankLog.objects.filter(customer=api.customer)
    }
    assert {answers[r] for r in answers} == {"A", "B"}
    assert all(logged[r] == (running.pk, variant) for r, variant in answers.items())
    assert logged[browse.json()["request_id"]] == (None, "")  # no experiment on browse


def test_the_readout_without_traffic_says_so_and_invents_nothing(api: ApiCaller) -> None:
    running = start_experiment(api.customer)

    result = experiment_result(experiment=running)

    assert result.first_request_at is None
    assert {v.shoppers for v in result.variants.values()} == {0}
    assert all(lift is None for lift in result.lifts.values())
    assert result.sample_ratio is None
    assert result.horizon is None
