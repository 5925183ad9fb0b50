"""The registry in the admin: activation with the override form, and rollback in one action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from ranking.models import ModelStatus, RankingModel
from tests.factories import CustomerFactory, MembershipFactory, UserFactory
from tests.ranking.learning_shop import GOOD, register

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client() -> Client:
    user = UserFactory(is_staff=True, is_superuser=True, username="chief")
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def customer() -> Customer:
    return CustomerFactory()


def test_activating_a_worse_model_in_the_admin_asks_for_a_reason_and_records_it(
    admin_client: Client, customer: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    model = register(customer, metrics={**GOOD, "model": {"ndcg@10": 0.1}})
    url = reverse("admin:ranking_rankingmodel_change", args=[model.pk])
    assert "activation_reason" in admin_client.get(url).content.decode()

    refused = admin_client.post(url, {"activate": "on", "activation_reason": ""})

    assert refused.status_code == 200
    assert "not above the popularity order" in str(refused.context["adminform"].form.errors)
    assert RankingModel.objects.get(pk=model.pk).status == ModelStatus.CANDIDATE

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        done = admin_client.post(url, {"activate": "on", "activation_reason": "holiday catalog"})

    assert done.status_code == 302
    model.refresh_from_db()
    assert model.status == ModelStatus.ACTIVE
    assert model.activated_by == "chief"
    assert model.override_reason.startswith("holiday catalog")
    assert callbacks  # the generation bump, so every API process reloads


def test_the_rollback_action_serves_the_previous_model(
    admin_client: Client, customer: Customer
) -> None:
    first = register(customer)
    changelist = reverse("admin:ranking_rankingmodel_changelist")
    admin_client.post(changelist, {"action": "activate_selected", "_selected_action": [first.pk]})
    second = register(
        customer, metrics={**GOOD, "active": {"ndcg@10": 0.3}, "active_model_id": first.pk}
    )
    admin_client.post(changelist, {"action": "activate_selected", "_selected_action": [second.pk]})
    assert RankingModel.objects.get(pk=second.pk).status == ModelStatus.ACTIVE

    asked = admin_client.post(
        changelist, {"action": "rollback_selected", "_selected_action": [second.pk]}
    )
    # First a confirmation that names what serves instead; nothing changes yet.
    assert f"{second.label} stops serving; {first.label} serves instead" in asked.content.decode()
    assert RankingModel.objects.get(pk=second.pk).status == ModelStatus.ACTIVE

    admin_client.post(
        changelist,
        {"action": "rollback_selected", "_selected_action": [second.pk], "post": "yes"},
    )

    assert RankingModel.objects.get(pk=first.pk).status == ModelStatus.ACTIVE
    assert RankingModel.objects.get(pk=second.pk).status == ModelStatus.RETIRED


def test_the_model_page_says_what_training_found_in_plain_words(
    admin_client: Client, customer: Customer
) -> None:
    model = register(customer)
    model.report = {
        "comparison": ["Against the popularity order: ranking quality (NDCG@10) +4.1%."],
        "decision": {
            "action": "kept as a candidate: this customer activates models by hand",
            "by": "beat",
            "at": "2026-12-06T02:30:00+00:00",
        },
        "provenance": {
            "requests": {"logged": 900, "rebuilt: impressions without a rank log": 40},
            "skipped degraded answers": 3,
            "skew": {"rows": 100, "features": {}},
        },
        "features": [
            {
                "feature": "user_brand_affinity",
                "coverage": 0.31,
                "importance": 0.42,
                "varied": True,
            },
            {"feature": "freshness", "coverage": 1.0, "importance": 0.0, "varied": False},
        ],
    }
    model.propensity = {"eta": 0.98, "method": "regression EM"}
    model.save()

    page = admin_client.get(reverse("admin:ranking_rankingmodel_change", args=[model.pk]))

    html = page.content.decode()
    assert "What training found" in html
    assert "Against the popularity order: ranking quality (NDCG@10) +4.1%." in html
    assert "kept as a candidate: this customer activates models by hand (beat" in html
    assert "900 requests: logged" in html
    assert "40 requests: rebuilt: impressions without a rank log" in html
    assert "3 degraded answers left out" in html
    assert "<td>user brand affinity</td><td>42.0%</td><td>31%</td><td>yes</td>" in html
    assert "no: the model cannot use it" in html
    assert "k^-0.98" in html


def test_the_model_page_rolls_back_after_a_confirmation_and_only_for_its_customers_staff(
    admin_client: Client, customer: Customer
) -> None:
    model = register(customer)
    changelist = reverse("admin:ranking_rankingmodel_changelist")
    admin_client.post(changelist, {"action": "activate_selected", "_selected_action": [model.pk]})
    rollback = reverse("admin:ranking_rankingmodel_rollback", args=[model.pk])
    page = admin_client.get(reverse("admin:ranking_rankingmodel_change", args=[model.pk]))
    assert rollback in page.content.decode()

    stranger = UserFactory(username="stranger")
    stranger.save()
    MembershipFactory(customer=CustomerFactory(), user=stranger, role="admin")
    outsider = Client()
    outsider.force_login(stranger)
    assert outsider.post(rollback, {"post": "yes"}).status_code == 403
    assert RankingModel.objects.get(pk=model.pk).status == ModelStatus.ACTIVE

    asked = admin_client.get(rollback)
    assert "the config&#x27;s blend serves instead" in asked.content.decode()
    assert RankingModel.objects.get(pk=model.pk).status == ModelStatus.ACTIVE
    done = admin_client.post(rollback, {"post": "yes"})
    assert done.status_code == 302
    assert RankingModel.objects.get(pk=model.pk).status == ModelStatus.RETIRED


def test_the_model_page_draws_the_model_beside_the_live_ranker_and_popularity(
    admin_client: Client, customer: Customer
) -> None:
    model = register(customer)
    model.metrics = {
        "model": {"ndcg@10": 0.40, "revenue_per_search": 22.0},
        "active": {"ndcg@10": 0.38, "revenue_per_search": 20.0},
        "baseline": {"ndcg@10": 0.20, "revenue_per_search": 11.0},
    }
    model.save()

    html = admin_client.get(
        reverse("admin:ranking_rankingmodel_change", args=[model.pk])
    ).content.decode()

    assert 'aria-label="ranking quality (NDCG@10)"' in html
    assert 'aria-label="revenue per search"' in html
    # Each metric on its own scale: the best of the three spans the full bar.
    assert '<rect x="120" y="2" width="90.0" height="12" fill="#417690"><title>0.400' in html
    assert 'width="45.0" height="12" fill="#9aa9b5"><title>0.200' in html
    assert "<title>20.00</title>" in html
    assert ">popularity order</text>" in html
