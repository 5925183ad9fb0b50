"""`explain: true` on /v1/rank: the breakdown DESIGN.md promises, per returned item, for the
config's blend and for both kinds of trained model; rules' effects, positions before rules and
the removed list; nothing of it unless asked."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ranking.learning import registry
from ranking.models import RankingModel
from ranking.services import signals_refresh
from ranking.signals.schema import FEATURES
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, rank
from tests.ranking.learning_shop import register

pytestmark = pytest.mark.django_db

IDS = [f"sku-{i}" for i in range(6)]


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    """Six shoes, Nike (even) and Puma (odd), relevance and price falling from sku-0 to sku-5
    (the default blend counts both for an item, so sku-5 is last before rules)."""
    put_items(
        api,
        [
            {
                "id": item_id,
                "title": f"Shoe {i}",
                "brand": "Nike" if i % 2 == 0 else "Puma",
                "categories": ["shoes"],
                "price": 10.0 * (len(IDS) - i),
            }
            for i, item_id in enumerate(IDS)
        ],
    )
    signals_refresh(customer_id=api.customer.pk)
    return api


def search(api: ApiCaller, **extra: Any) -> dict[str, Any]:
    items = [{"id": item_id, "relevance": 10.0 - i} for i, item_id in enumerate(IDS)]
    body = {"surface": "search", "query": "shoes", "items": items, **extra}
    return rank(api, body)


def create_rule(api: ApiCaller, rule: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/rules", rule)
    assert response.status_code == 201, response.content
    return dict(response.json())


def assert_breakdown(item: dict[str, Any], method: str) -> None:
    explanation = item["explanation"]
    assert explanation["method"] == method
    assert [c["feature"] for c in explanation["contributions"]] == list(FEATURES)
    total = explanation["base_value"] + math.fsum(
        c["contribution"] for c in explanation["contributions"]
    )
    assert total == pytest.approx(explanation["model_score"], abs=1e-6, rel=0)
    assert explanation["transform"] == "sigmoid"
    if not explanation["rules"]:  # the score is the transform of the model score
        assert item["score"] == pytest.approx(1 / (1 + math.exp(-explanation["model_score"])))


def test_without_explain_nothing_is_computed_or_returned(shop: ApiCaller) -> None:
    response = search(shop)

    assert "removed" not in response
    assert all(set(item) == {"id", "position", "score"} for item in response["items"])


def test_the_blend_of_a_config_without_a_model_explains_as_linear_with_base_zero(
    shop: ApiCaller,
) -> None:
    response = search(shop, explain=True)

    assert response["ranker"]["model"] is None
    for position, item in enumerate(response["items"], 1):
        assert_breakdown(item, "linear")
        assert item["explanation"]["base_value"] == 0.0
        assert item["explanation"]["position_before_rules"] == position
        assert item["explanation"]["rules"] == []
    assert response["removed"] == []


def test_only_the_returned_items_are_explained(shop: ApiCaller) -> None:
    response = search(shop, explain=True, limit=2)

    assert len(response["items"]) == 2
    assert all("explanation" in item for item in response["items"])


@pytest.mark.parametrize(
    ("algorithm", "method"), [("lambdamart", "tree_shap"), ("linear", "linear")]
)
def test_a_trained_model_names_its_method_and_explains_exactly(
    shop: ApiCaller, django_capture_on_commit_callbacks: Any, algorithm: str, method: str
) -> None:
    model: RankingModel = register(shop.customer, algorithm=algorithm)
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_activate(model=model, user="tester")

    response = search(shop, explain=True)

    assert response["ranker"]["model"] == f"{algorithm}@1"
    for item in response["items"]:
        assert_breakdown(item, method)


def test_rules_show_their_effects_positions_before_rules_and_the_removed(
    shop: ApiCaller,
) -> None:
    hide = create_rule(
        shop, {"name": "no sku-1", "selector": {"item_ids": ["sku-1"]}, "action": {"type": "hide"}}
    )
    pin = create_rule(
        shop,
        {
            "name": "sku-5 first",
            "action": {"type": "pin", "pins": [{"item_id": "sku-5", "position": 1}]},
        },
    )
    boost = create_rule(
        shop,
        {
            "name": "puma up",
            "selector": {"brands": ["Puma"]},
            "action": {"type": "boost", "factor": 1.5},
        },
    )

    response = search(shop, explain=True)

    items = {item["id"]: item for item in response["items"]}
    assert next(iter(items)) == "sku-5"
    assert "sku-1" not in items
    assert response["removed"] == [
        {"id": "sku-1", "rule_id": hide["id"], "reason": "hidden by rule 'no sku-1'"}
    ]
    pinned = items["sku-5"]["explanation"]
    effects = {effect["rule_id"]: effect for effect in pinned["rules"]}
    assert effects[pin["id"]] == {
        "rule_id": pin["id"],
        "name": "sku-5 first",
        "action": "pin",
        "effect": "pinned at position 1",
    }
    assert effects[boost["id"]]["effect"] == "score x1.5"
    assert pinned["position_before_rules"] > 1
    for item in response["items"]:
        assert_breakdown(item, "linear")
    # A boosted item's score is its transformed model score times the boost.
    sku3 = items["sku-3"]
    expected = 1.5 / (1 + math.exp(-sku3["explanation"]["model_score"]))
    assert sku3["score"] == pytest.approx(expected)


def test_explanations_of_one_customer_never_use_another_customers_rules(
    shop: ApiCaller, make_caller: Callable[..., ApiCaller]
) -> None:
    other = make_caller()
    put_items(other, [{"id": item_id, "title": "x"} for item_id in IDS])
    create_rule(
        other,
        {
            "name": "other pin",
            "action": {"type": "pin", "pins": [{"item_id": "sku-5", "position": 1}]},
        },
    )

    response = search(shop, explain=True)

    assert all(item["explanation"]["rules"] == [] for item in response["items"])
