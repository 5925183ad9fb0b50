"""The model registry: activation guards, checksum verification, rollback, serving through
/v1/rank within the runtime generation, tenant isolation, and GET /v1/models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from ranking.learning import registry
from ranking.models import ModelStatus, RankingModel
from ranking.runtime import customer_runtime
from ranking.services import signals_refresh
from ranking.signals.schema import SCHEMA_HASH
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, rank
from tests.ranking.learning_shop import GOOD, register
from tests.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def shop(api: ApiCaller) -> None:
    put_items(
        api,
        [
            {"id": f"sku-{i}", "title": f"Item {i}", "categories": ["shoes"], "price": 10.0 + i}
            for i in range(5)
        ],
    )
    signals_refresh(customer_id=api.customer.pk)


def search(api: ApiCaller, explain: bool = False) -> dict[str, Any]:
    items = [{"id": f"sku-{i}", "relevance": float(i)} for i in range(5)]
    return rank(api, {"surface": "search", "query": "shoes", "items": items, "explain": explain})


Activate = Callable[..., RankingModel]


@pytest.fixture
def activate(django_capture_on_commit_callbacks: Any) -> Activate:
    """Activate as the admin does: the generation bump runs when the transaction commits."""

    def run(model: RankingModel, reason: str = "") -> RankingModel:
        with django_capture_on_commit_callbacks(execute=True):
            return registry.model_activate(model=model, user="tester", override_reason=reason)

    return run


@pytest.mark.parametrize(
    ("algorithm", "method"), [("lambdamart", "tree_shap"), ("linear", "linear")]
)
def test_an_active_model_ranks_names_its_version_and_explains_exactly(
    api: ApiCaller, activate: Activate, algorithm: str, method: str
) -> None:
    shop(api)
    assert search(api)["ranker"]["model"] is None
    customer_runtime(api.customer.pk)  # cached before the activation

    activate(register(api.customer, algorithm=algorithm))

    response = search(api, explain=True)
    assert response["ranker"]["model"] == f"{algorithm}@1"
    for item in response["items"]:
        explanation = item["explanation"]
        assert explanation["method"] == method
        total = explanation["base_value"] + sum(
            c["contribution"] for c in explanation["contributions"]
        )
        assert total == pytest.approx(explanation["model_score"], abs=1e-6)


def test_a_tampered_artifact_is_refused_at_activation_and_at_load(
    api: ApiCaller, activate: Activate
) -> None:
    shop(api)
    served = activate(register(api.customer))
    candidate = register(api.customer)
    for model in (served, candidate):
        with default_storage.open(model.artifact_path, "ab") as handle:
            handle.write(b"\n")

    with pytest.raises(registry.ActivationRefused, match="checksum") as refused:
        registry.model_activate(model=candidate, user="tester", override_reason="I insist")
    assert not refused.value.needs_override
    # The active model's artifact changed too: the runtime refuses it and serves the blend.
    assert search(api)["ranker"]["model"] is None


def test_a_model_of_another_feature_schema_cannot_be_activated_even_with_a_reason(
    api: ApiCaller,
) -> None:
    model = register(api.customer, schema_hash="0123456789abcdef")

    with pytest.raises(registry.ActivationRefused, match="feature schema") as refused:
        registry.model_activate(model=model, user="tester", override_reason="I insist")

    assert not refused.value.needs_override
    assert RankingModel.objects.get(pk=model.pk).status == ModelStatus.CANDIDATE


def test_a_model_below_the_baseline_needs_a_reason_and_the_override_is_recorded(
    api: ApiCaller, activate: Activate
) -> None:
    worse = {**GOOD, "model": {"ndcg@10": 0.20, "revenue_ndcg@10": 0.2}}
    model = register(api.customer, metrics=worse)

    with pytest.raises(
        registry.ActivationRefused, match="not above the popularity order"
    ) as refused:
        registry.model_activate(model=model, user="tester")
    assert refused.value.needs_override

    activate(model, reason="seasonal catalog, baseline is stale")
    model.refresh_from_db()
    assert model.status == ModelStatus.ACTIVE
    assert model.activated_by == "tester"
    assert "seasonal catalog, baseline is stale" in model.override_reason
    assert "not above the popularity order" in model.override_reason


def test_a_model_below_the_active_model_needs_a_reason(api: ApiCaller, activate: Activate) -> None:
    current = activate(register(api.customer))
    below = {**GOOD, "active": {"ndcg@10": 0.5}, "active_model_id": current.pk}
    candidate = register(api.customer, metrics=below)
    not_compared = register(api.customer)

    with pytest.raises(registry.ActivationRefused, match="not above the active"):
        registry.model_activate(model=candidate, user="tester")
    with pytest.raises(registry.ActivationRefused, match="not compared with the active model"):
        registry.model_activate(model=not_compared, user="tester")
    better = register(
        api.customer, metrics={**GOOD, "active": {"ndcg@10": 0.35}, "active_model_id": current.pk}
    )
    activate(better)
    assert RankingModel.objects.get(pk=current.pk).status == ModelStatus.RETIRED


def test_rollback_serves_the_previous_model_in_one_action(
    api: ApiCaller, activate: Activate, django_capture_on_commit_callbacks: Any
) -> None:
    shop(api)
    first = activate(register(api.customer))
    second = register(
        api.customer, metrics={**GOOD, "active": {"ndcg@10": 0.3}, "active_model_id": first.pk}
    )
    activate(second)
    assert search(api)["ranker"]["model"] == "lambdamart@2"

    with django_capture_on_commit_callbacks(execute=True):
        serving = registry.model_rollback(
            customer_id=api.customer.pk, surface="search", user="tester"
        )

    assert serving is not None
    assert serving.pk == first.pk
    assert search(api)["ranker"]["model"] == "lambdamart@1"
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            registry.model_rollback(customer_id=api.customer.pk, surface="search", user="t") is None
        )
    assert search(api)["ranker"]["model"] is None


def test_a_model_is_never_served_to_another_customer(
    api: ApiCaller, other_api: ApiCaller, activate: Activate
) -> None:
    shop(api)
    shop(other_api)
    activate(register(api.customer))

    assert search(api)["ranker"]["model"] == "lambdamart@1"
    assert search(other_api)["ranker"]["model"] is None
    assert registry.active_scorers(other_api.customer.pk) == {}
    listed = other_api.get("/v1/models")
    assert listed.status_code == 200
    assert listed.json() == {"models": []}


def test_the_models_api_lists_the_registry_read_only(
    api: ApiCaller, make_caller: Any, activate: Activate
) -> None:
    activate(register(api.customer))
    register(api.customer, surface="browse", algorithm="linear")

    listed = api.get("/v1/models").json()["models"]
    assert [(m["label"], m["surface"], m["status"]) for m in listed] == [
        ("linear@1", "browse", "candidate"),
        ("lambdamart@1", "search", "active"),
    ]
    model = listed[1]
    assert model["feature_schema"] == SCHEMA_HASH
    assert model["metrics"]["model"]["ndcg@10"] == 0.4
    assert len(model["artifact_sha256"]) == 64
    assert model["activated_by"] == "tester"
    assert [m["label"] for m in api.get("/v1/models?surface=browse").json()["models"]] == [
        "linear@1"
    ]
    assert api.get("/v1/models?surface=shelf").status_code == 400
    assert api.post("/v1/models", {}).status_code == 405
    no_rank = make_caller(customer=api.customer, scopes=["events"])
    assert no_rank.get("/v1/models").status_code == 403


def test_a_models_list_response_matches_the_schema(api: ApiCaller, activate: Activate) -> None:
    activate(register(api.customer))
    register(api.customer, algorithm="linear")
    openapi = orjson.loads(Client().get("/v1/schema").content)

    response = api.get("/v1/models")

    assert response.status_code == 200
    assert_matches_schema(openapi, "models_list", response)
