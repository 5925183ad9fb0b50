""" "Promote B": from the experiment's page, a confirmation that says what will serve and what the
model's guards say, then B's model serves everyone through the registry's guarded activation and
the experiment ends. A refusal is shown in words and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from customers.models import Customer, Role
from ranking import services
from ranking.engine.experiments import shopper_bucket
from ranking.models import Experiment, ExperimentEnd, ModelStatus, RankingModel
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import put_items, rank
from tests.ranking.test_experiment_results import start_experiment

pytestmark = pytest.mark.django_db

SEARCH = {"surface": "search", "query": "shoes", "items": [{"id": f"sku-{i}"} for i in range(5)]}


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def staff(customer: Customer, role: str = Role.ADMIN) -> Client:
    user = UserFactory(is_staff=True, username=f"staff-{role}")
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__model__in=["experiment", "rankingmodel"])
    )
    MembershipFactory(user=user, customer=customer, role=role)
    client = Client()
    client.force_login(user)
    return client


def promote_url(experiment: Experiment) -> str:
    return reverse("admin:ranking_experiment_promote", args=[experiment.pk])


def test_promoting_b_asks_first_refuses_without_a_reason_then_serves_b_to_everyone(
    api: ApiCaller, django_capture_on_commit_callbacks: Any
) -> None:
    put_items(api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 + i} for i in range(5)])
    services.signals_refresh(customer_id=api.customer.pk)
    running = start_experiment(api.customer, percent=50)
    label = running.treatment_model.label
    RankingModel.objects.filter(pk=running.treatment_model.pk).update(metrics={})  # no holdout
    in_a = next(f"a{n}" for n in range(1000) if shopper_bucket(running.salt, f"u:a{n}") >= 5000)
    assert rank(api, {**SEARCH, "user_id": in_a})["ranker"] == {
        "config": "default",
        "model": None,
        "variant": "A",
    }
    client = staff(api.customer)

    change_page = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))
    confirm = client.get(promote_url(running))
    refused = client.post(promote_url(running), {"post": "yes"})
    still = Experiment.objects.get(pk=running.pk)
    with django_capture_on_commit_callbacks(execute=True):  # API processes reload after commit
        done = client.post(
            promote_url(running), {"post": "yes", "override_reason": "won the A/B test"}
        )

    assert f'href="{promote_url(running)}"' in change_page.content.decode()
    page = confirm.content.decode()
    assert f"{label}</a> (B) serves every shopper instead of the config&#x27;s blend" in page
    assert "The experiment ends" in page
    assert "has no holdout metrics" in page  # the guard's objection, before anything changes
    assert "Why promote it anyway?" in page
    assert refused.status_code == 200
    assert "B was not promoted:" in refused.content.decode()
    assert "needs an override with a reason" in refused.content.decode()
    assert still.enabled
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:ranking_experiment_change", args=[running.pk])
    running.refresh_from_db()
    running.treatment_model.refresh_from_db()
    assert not running.enabled
    assert running.end_reason == ExperimentEnd.PROMOTED
    assert running.ended_by == "staff-admin"
    assert running.end_summary == f"B promoted by staff-admin: {label} serves everyone on search"
    assert running.treatment_model.status == ModelStatus.ACTIVE
    assert running.treatment_model.override_reason.startswith("won the A/B test (overriding: ")
    # The shopper who had A now gets B's model, outside any experiment.
    assert rank(api, {**SEARCH, "user_id": in_a})["ranker"] == {
        "config": "default",
        "model": label,
        "variant": None,
    }
    result = api.get(f"/v1/experiments/{running.pk}/results").json()["experiment"]
    assert result["status"] == "promoted"
    # It ended for good: its page still saves a new name, and nothing else.
    renamed = client.post(
        reverse("admin:ranking_experiment_change", args=[running.pk]),
        {"name": "lambdamart won", "enabled": "on", "treatment_percent": "90"},
    )
    assert renamed.status_code == 302
    running.refresh_from_db()
    assert (running.name, running.enabled, running.treatment_percent) == (
        "lambdamart won",
        False,
        50,
    )


def test_b_stopped_by_the_guardrail_cannot_be_promoted(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    services.experiment_stop(
        experiment=running,
        reason=ExperimentEnd.GUARDRAIL,
        by="guardrail",
        summary="stopped by the guardrail: B earned 9.0% less revenue per search",
    )
    client = staff(api.customer)

    page = client.get(promote_url(running)).content.decode()
    posted = client.post(promote_url(running), {"post": "yes", "override_reason": "anyway"})
    change_page = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))

    assert "It cannot be promoted: this experiment ended for good (stopped by the guardrail" in page
    assert "Yes, promote B" not in page
    assert "B was not promoted: This experiment ended for good" in posted.content.decode()
    running.treatment_model.refresh_from_db()
    assert running.treatment_model.status == ModelStatus.CANDIDATE
    assert "Promote B…" not in change_page.content.decode()


def test_a_viewer_cannot_promote(api: ApiCaller) -> None:
    running = start_experiment(api.customer)
    viewer = staff(api.customer, role=Role.VIEWER)

    assert viewer.get(promote_url(running)).status_code == 403
    assert (
        viewer.post(promote_url(running), {"post": "yes", "override_reason": "x"}).status_code
        == 403
    )
    running.treatment_model.refresh_from_db()
    assert running.treatment_model.status == ModelStatus.CANDIDATE
    assert Experiment.objects.get(pk=running.pk).enabled
