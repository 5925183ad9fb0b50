"""Layers: experiments of one layer on a surface split its shoppers between them (no shopper is
in two), experiments of different layers overlap, hashed independently, and a shopper in both
gets both changes: the scorer of the one that changes it, the rules of every B. Each
experiment's readout counts its own requests, also those logged under another layer's
experiment; the slices of a layer are allocated when an experiment starts and refused, naming
the field, when they would overlap."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from merchandising import services as rule_services
from ranking import services
from ranking.engine.experiments import BUCKETS, layer_salt, shopper_bucket
from ranking.experiments import experiment_result
from ranking.learning import rank_log
from ranking.models import Experiment, ExperimentKind, RankLog
from ranking.services import layer_slot
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import rank, ranked_ids, send_events
from tests.ranking.test_experiment_kinds import (
    CHEAP_FIRST,
    DEAR_FIRST,
    ITEMS,
    SEARCH,
    config,
    hide_rule,
    shop_with_prices,
)
from tests.ranking.test_experiments import _permissions

pytestmark = pytest.mark.django_db

SHOPPERS = [f"user{n}" for n in range(400)]


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    return shop_with_prices(api)


def experiment(customer: Customer, **fields: Any) -> Experiment:
    base: dict[str, Any] = {
        "customer": customer,
        "surface": "search",
        "name": "rules",
        "kind": ExperimentKind.RULES,
        "treatment_percent": 50,
    }
    return services.experiment_save(experiment=Experiment(**{**base, **fields}))


def variants_served(api: ApiCaller, users: list[str]) -> dict[str, dict[str, Any]]:
    """Per user, what the rank log recorded of their search: the experiment ids and variants."""
    for user in users:
        rank(api, {**SEARCH, "user_id": user})
    rank_log.flush()
    logged = {}
    for row in RankLog.objects.filter(customer=api.customer):
        variants = dict(row.layer_variants or {})
        if row.experiment_id is not None:
            variants[str(row.experiment_id)] = row.variant
        logged[row.shopper_key.removeprefix("u:")] = variants
    return logged


def test_two_experiments_of_one_layer_never_share_a_shopper_and_each_holds_its_share(
    shop: ApiCaller,
) -> None:
    first = experiment(shop.customer, name="first", layer="search-rules", traffic_percent=30)
    second = experiment(shop.customer, name="second", layer="search-rules", traffic_percent=70)
    rule_services.rule_tag(rule=hide_rule(shop.customer, "sku-1"), experiment=first)
    rule_services.rule_tag(rule=hide_rule(shop.customer, "sku-2"), experiment=second)

    logged = variants_served(shop, SHOPPERS)

    assert (first.layer_slot, second.layer_slot) == (0, 30)
    in_first = {user for user, v in logged.items() if str(first.pk) in v}
    in_second = {user for user, v in logged.items() if str(second.pk) in v}
    assert not in_first & in_second
    assert in_first | in_second == set(SHOPPERS)  # the two slices fill the layer
    # 400 shoppers: the first's 30% lies within 0.3 +- 4 standard deviations (about 0.09).
    assert 0.21 < len(in_first) / len(SHOPPERS) < 0.39
    # Each one's own salt splits its shoppers in halves, independently of the layer's hash.
    b_of_second = sum(logged[user][str(second.pk)] == "B" for user in in_second)
    assert 0.35 < b_of_second / len(in_second) < 0.65
    # The slice is the layer's hash: exactly the shoppers whose layer bucket is below 30%.
    salt = layer_salt(shop.customer.pk, "search", "search-rules")
    assert in_first == {u for u in SHOPPERS if shopper_bucket(salt, f"u:{u}") < 0.3 * BUCKETS}


def test_a_shopper_in_experiments_of_two_layers_gets_both_changes_and_both_readouts_count_them(
    shop: ApiCaller,
) -> None:
    config(shop.customer, CHEAP_FIRST, live=True, name="cheap first")
    dear = config(shop.customer, DEAR_FIRST, live=False, name="dear first")
    blends = experiment(
        shop.customer,
        name="dearer first",
        kind=ExperimentKind.CONFIG,
        treatment_config=dear,
        layer="ranker",
    )
    rules = experiment(shop.customer, name="hide sku-2", layer="rules")
    rule_services.rule_tag(rule=hide_rule(shop.customer, "sku-2"), experiment=rules)

    answers = {user: rank(shop, {**SEARCH, "user_id": user}) for user in SHOPPERS[:200]}
    rank_log.flush()
    logged = {
        row.shopper_key.removeprefix("u:"): row
        for row in RankLog.objects.filter(customer=shop.customer)
    }
    cells: Counter[tuple[str, str]] = Counter()
    for user, answer in answers.items():
        row = logged[user]
        # The config experiment chose the scorer: its variant is the answer's and the row's.
        assert row.experiment_id == blends.pk
        assert answer["ranker"]["variant"] == row.variant
        rules_variant = row.layer_variants[str(rules.pk)]
        cells[(row.variant, rules_variant)] += 1
        expected = ITEMS[::-1] if row.variant == "B" else ITEMS
        if rules_variant == "B":
            expected = [item for item in expected if item != "sku-2"]
        assert ranked_ids(answer) == expected, (user, row.variant, rules_variant)
    # Independent hashes: every combination is met, each about a quarter of 200 shoppers.
    assert set(cells) == {("A", "A"), ("A", "B"), ("B", "A"), ("B", "B")}
    assert all(25 <= count <= 75 for count in cells.values()), cells

    # A purchase after each search: both readouts count every shopper and purchase once.
    send_events(
        shop,
        [
            {
                "event_id": f"buy-{user}",
                "type": "purchase",
                "timestamp": timezone.now().isoformat(),
                "user_id": user,
                "request_id": answer["request_id"],
                "item_id": answer["items"][0]["id"],
                "price": 20.0,
            }
            for user, answer in answers.items()
        ],
    )
    for running in (blends, rules):
        result = experiment_result(experiment=Experiment.objects.get(pk=running.pk))
        shoppers = {v: result.variants[v].shoppers for v in "AB"}
        purchases = {v: result.variants[v].totals["purchases"] for v in "AB"}
        assert sum(shoppers.values()) == 200, running.name
        assert purchases == shoppers, running.name
    rules_result = experiment_result(experiment=rules)
    assert rules_result.variants["B"].shoppers == cells[("A", "B")] + cells[("B", "B")]


def test_two_experiments_that_change_the_scorer_must_share_a_layer(shop: ApiCaller) -> None:
    config(shop.customer, CHEAP_FIRST, live=True, name="cheap first")
    dear = config(shop.customer, DEAR_FIRST, live=False, name="dear first")
    other = config(shop.customer, {"price": 1.0}, live=False, name="a little dearer")
    experiment(shop.customer, name="dearer", kind=ExperimentKind.CONFIG, treatment_config=dear)

    with pytest.raises(ValidationError) as refused:
        experiment(
            shop.customer,
            name="a little",
            kind=ExperimentKind.CONFIG,
            treatment_config=other,
            layer="second",
        )
    with pytest.raises(ValidationError) as full:
        experiment(
            shop.customer, name="a little", kind=ExperimentKind.CONFIG, treatment_config=other
        )

    message = refused.value.message_dict["layer"][0]
    assert "'dearer' in layer 'main' also changes how search scores items" in message
    assert "put this experiment in layer 'main'" in message
    assert list(full.value.message_dict) == ["traffic_percent"]
    assert (
        "Layer 'main' of search has 0% of its shoppers free ('dearer' 100%"
        in (full.value.message_dict["traffic_percent"][0])
    )
    assert Experiment.objects.filter(customer=shop.customer).count() == 1  # nothing half-stored


def test_a_layers_slices_are_allocated_without_overlap_and_freed_by_a_stop(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    # Another customer's experiments in a layer of the same name take nothing of this one's.
    experiment(other_api.customer, name="theirs", layer="l", traffic_percent=100)
    sixty = experiment(api.customer, name="sixty", layer="l", traffic_percent=60)
    with pytest.raises(ValidationError) as refused:
        experiment(api.customer, name="fifty", layer="l", traffic_percent=50)
    forty = experiment(api.customer, name="forty", layer="l", traffic_percent=40)
    sixty.enabled = False
    services.experiment_save(experiment=sixty)
    thirty = experiment(api.customer, name="thirty", layer="l", traffic_percent=30)

    assert (
        "has 40% of its shoppers free ('sixty' 60% hold the rest)"
        in (refused.value.message_dict["traffic_percent"][0])
    )
    assert (sixty.layer_slot, forty.layer_slot, thirty.layer_slot) == (0, 60, 0)
    # Enabled again, the stopped one cannot take back its slice: 30% of it is held now.
    sixty.enabled = True
    with pytest.raises(ValidationError):
        services.experiment_save(experiment=sixty)
    # A changed share keeps its slice where it still fits.
    thirty.traffic_percent = 50
    services.experiment_save(experiment=thirty)
    assert Experiment.objects.get(pk=thirty.pk).layer_slot == 0


@pytest.mark.parametrize(
    ("taken", "percent", "keep", "slot"),
    [
        ([], 100, None, 0),
        ([(0, 100)], 1, None, None),
        ([(0, 30)], 70, None, 30),
        ([(0, 30), (60, 40)], 30, None, 30),
        ([(0, 30), (60, 40)], 31, None, None),  # 30% free, in one piece
        ([(0, 10)], 20, 50, 50),  # its own slice, kept
        ([(40, 20)], 20, 50, 0),  # its own slice overlaps another now: the first free one
    ],
)
def test_layer_slot_takes_the_first_free_piece(
    taken: list[tuple[int, int]], percent: int, keep: int | None, slot: int | None
) -> None:
    assert layer_slot(taken, percent, keep) == slot


def test_a_layer_name_is_checked_and_the_api_shows_layer_and_slice(api: ApiCaller) -> None:
    with pytest.raises(ValidationError) as refused:
        experiment(api.customer, name="bad", layer="Search Rules")
    running = experiment(api.customer, name="half", layer="rules", traffic_percent=50)

    listed = api.get("/v1/experiments").json()["experiments"]

    assert "layer" in refused.value.message_dict
    assert [(e["layer"], e["traffic_percent"], e["layer_slice"]) for e in listed] == [
        ("rules", 50, [0, 50])
    ]
    assert running.layer_slot == 0


def test_the_admin_form_takes_a_layer_and_share_and_shows_the_refusal_at_its_field(
    shop: ApiCaller,
) -> None:
    experiment(shop.customer, name="first rules", layer="rules", traffic_percent=70)
    user = UserFactory()
    user.save()
    MembershipFactory(user=user, customer=shop.customer)
    user.user_permissions.add(*_permissions("experiment"))
    client = Client()
    client.force_login(user)
    form = {
        "customer": shop.customer.pk,
        "surface": "search",
        "name": "second rules",
        "method": "ab",
        "kind": "rules",
        "treatment_percent": 50,
        "layer": "rules",
        "enabled": "on",
    }
    add = reverse("admin:ranking_experiment_add")

    refused = client.post(add, {**form, "traffic_percent": 40}).content.decode()
    saved = client.post(add, {**form, "traffic_percent": 30})
    listing = client.get(reverse("admin:ranking_experiment_changelist")).content.decode()

    assert re.search(
        r'id="id_traffic_percent_error".*?has 30% of its shoppers free', refused, re.S
    ), refused
    assert saved.status_code == 302
    second = Experiment.objects.get(customer=shop.customer, name="second rules")
    assert (second.layer, second.traffic_percent, second.layer_slot) == ("rules", 30, 70)
    assert "rules: 30% (70-100%)" in listing
