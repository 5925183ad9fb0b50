"""A/B experiments: a share of shoppers is ranked by a candidate model (variant B), the rest by
the live ranker (A); the assignment is stable per shopper and shows in `ranker.variant`."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.metrics import ACTIVE_MODEL_VERSION, customer_label
from customers.models import Customer
from ranking import services
from ranking.engine.experiments import BUCKETS, shopper_bucket
from ranking.models import Experiment, ModelStatus
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import put_items, rank
from tests.ranking.learning_shop import register

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    put_items(api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 + i} for i in range(5)])
    signals_refresh(customer_id=api.customer.pk)
    return api


def experiment(customer: Customer, percent: int = 30, **fields: Any) -> Experiment:
    model = fields.pop("treatment_model", None) or register(customer)
    return services.experiment_save(
        experiment=Experiment(
            customer=customer,
            surface=fields.pop("surface", "search"),
            name=fields.pop("name", "new model"),
            treatment_model=model,
            treatment_percent=percent,
            **fields,
        )
    )


def search(api: ApiCaller, user_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "surface": "search",
        "query": "shoes",
        "items": [{"id": f"sku-{i}"} for i in range(5)],
    }
    if user_id:
        body["user_id"] = user_id
    return rank(api, body)["ranker"]


def test_a_share_of_shoppers_gets_the_treatment_model_and_keeps_it(shop: ApiCaller) -> None:
    running = experiment(shop.customer, percent=30)
    label = running.treatment_model.label

    rankers = {f"u{n}": search(shop, f"u{n}") for n in range(200)}
    again = {user: search(shop, user) for user in list(rankers)[:20]}

    variants = Counter(ranker["variant"] for ranker in rankers.values())
    assert set(variants) == {"A", "B"}
    assert 30 <= variants["B"] <= 90  # 30 % of 200, give or take chance
    assert all(r["model"] == label for r in rankers.values() if r["variant"] == "B")
    assert all(r["model"] is None for r in rankers.values() if r["variant"] == "A")
    assert all(again[user] == rankers[user] for user in again)
    # B's candidate serves, but the active-model gauge keeps showing what serves A (the blend).
    search(shop, next(user for user, r in rankers.items() if r["variant"] == "B"))
    gauge = ACTIVE_MODEL_VERSION.labels(customer_label(shop.customer.pk), "search")
    assert gauge._value.get() == 0


def test_a_request_without_a_shopper_gets_a(shop: ApiCaller) -> None:
    experiment(shop.customer, percent=99)

    assert search(shop, None)["variant"] == "A"


def test_no_experiment_no_variant_and_stopping_one_takes_effect(shop: ApiCaller) -> None:
    assert search(shop, "u1")["variant"] is None
    running = experiment(shop.customer, percent=50)
    assert search(shop, "u1")["variant"] in ("A", "B")

    running.enabled = False
    services.experiment_save(experiment=running)

    assert search(shop, "u1")["variant"] is None


def test_an_experiment_splits_shoppers_only_within_its_start_and_end(
    shop: ApiCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = timezone.now() + timedelta(days=2)
    scheduled = experiment(
        shop.customer, percent=99, starts_at=start, ends_at=start + timedelta(days=7)
    )
    # A shopper hashed into B (with a random salt, any one user would be in A one time in 100).
    in_b = next(f"u{n}" for n in range(1000) if shopper_bucket(scheduled.salt, f"u:u{n}") < 9900)
    before = search(shop, in_b)
    listed = shop.get("/v1/experiments").json()["experiments"][0]

    # Two days on, within the window; then past its end (each process reads the clock per request).
    clock = time.time()
    monkeypatch.setattr("ranking.runtime.time.time", lambda: clock + 3 * 24 * 3600)
    during = search(shop, in_b)
    monkeypatch.setattr("ranking.runtime.time.time", lambda: clock + 10 * 24 * 3600)
    after = search(shop, in_b)
    ended = services.experiment_end_if_due(experiment=scheduled, now=start + timedelta(days=8))

    assert before["variant"] is None
    assert listed["status"] == "scheduled"
    assert listed["starts_at"].startswith(f"{start:%Y-%m-%dT%H:%M}")
    assert during["variant"] == "B"
    assert after["variant"] is None
    assert ended
    scheduled.refresh_from_db()
    assert not scheduled.enabled
    assert scheduled.end_summary.startswith("ended as scheduled")
    assert shop.get("/v1/experiments?status=ended").json()["experiments"][0]["id"] == scheduled.pk


def test_an_experiment_must_end_after_it_starts_and_not_in_the_past(shop: ApiCaller) -> None:
    now = timezone.now()

    with pytest.raises(ValidationError) as backwards:
        experiment(
            shop.customer, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=1)
        )
    with pytest.raises(ValidationError) as past:
        experiment(shop.customer, ends_at=now - timedelta(hours=1))

    assert backwards.value.message_dict == {"ends_at": ["End it after it starts."]}
    assert "has passed" in past.value.message_dict["ends_at"][0]
    assert not Experiment.objects.exists()


def test_buckets_are_uniform_and_independent_across_experiments() -> None:
    shoppers = [f"u:{n}" for n in range(20_000)]
    first = [shopper_bucket("salt-1", s) for s in shoppers]
    second = [shopper_bucket("salt-2", s) for s in shoppers]

    share = sum(bucket < BUCKETS * 0.3 for bucket in first) / len(shoppers)
    both = sum(a < BUCKETS // 2 and b < BUCKETS // 2 for a, b in zip(first, second, strict=True))
    assert share == pytest.approx(0.3, abs=0.02)
    assert both / len(shoppers) == pytest.approx(0.25, abs=0.02)


def test_an_experiment_must_test_a_servable_model_of_its_own_surface_and_customer(
    shop: ApiCaller, other_api: ApiCaller
) -> None:
    customer = shop.customer
    cases = [
        ({"treatment_model": register(other_api.customer)}, "treatment_model"),
        ({"treatment_model": register(customer, surface="browse")}, "treatment_model"),
        ({"treatment_model": register(customer, schema_hash="old")}, "treatment_model"),
    ]
    active = register(customer)
    active.status = ModelStatus.ACTIVE
    active.save()
    cases.append(({"treatment_model": active}, "treatment_model"))
    for fields, field in cases:
        with pytest.raises(ValidationError) as raised:
            experiment(customer, **fields)
        assert field in raised.value.message_dict
    experiment(customer)
    with pytest.raises(ValidationError) as raised:
        experiment(customer, name="a second one")
    # The first holds the whole of the surface's main layer (docs/experiments.md "Layers").
    assert "traffic_percent" in raised.value.message_dict
    assert Experiment.objects.count() == 1


def test_staff_see_and_create_experiments_of_their_customers_only(
    shop: ApiCaller, other_api: ApiCaller
) -> None:
    mine = experiment(shop.customer, name="mine")
    theirs = experiment(other_api.customer, name="theirs")
    user = UserFactory()
    user.save()
    MembershipFactory(user=user, customer=shop.customer)
    user.user_permissions.add(*_permissions("experiment"), *_permissions("rankingmodel"))
    client = Client()
    client.force_login(user)

    listing = client.get(reverse("admin:ranking_experiment_changelist")).content.decode()
    foreign = client.get(reverse("admin:ranking_experiment_change", args=[theirs.pk]))
    form = client.get(reverse("admin:ranking_experiment_add")).content.decode()
    models = re.search(r'<select name="treatment_model".*?</select>', form, re.S)

    assert "mine" in listing
    assert "theirs" not in listing
    assert foreign.status_code == 302  # the admin redirects an object it cannot see
    # Within the model dropdown: a customer's id in the customer dropdown may equal a model's.
    assert models is not None
    assert f'value="{mine.treatment_model.pk}"' in models.group(0)
    assert f'value="{theirs.treatment_model.pk}"' not in models.group(0)


def _permissions(model: str) -> list[Any]:
    from django.contrib.auth.models import Permission

    return list(Permission.objects.filter(content_type__model=model))
