"""What B can be besides a model: a ranking config that is not live (B's shoppers get its blend),
or the rules tagged to the experiment (B's shoppers get the live ranker plus those rules).
Promoting B makes the config live, or untags the rules; each customer sees and chooses only its
own configs, rules and experiments."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers import runtime_sync
from customers.models import Customer, Role
from demo.simulation import build_world, shopper_events, simulated_sessions
from merchandising import services as rule_services
from merchandising.contracts import RuleIn
from merchandising.models import Rule, RuleRevision
from ranking import services
from ranking.engine.experiments import shopper_bucket
from ranking.experiments import experiment_result
from ranking.learning import rank_log
from ranking.models import (
    Experiment,
    ExperimentEnd,
    ExperimentKind,
    ExperimentMethod,
    ModelStatus,
    RankingConfig,
    RankingModel,
    RankLog,
)
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import put_items, rank, ranked_ids, send_events
from tests.ranking.learning_shop import register

pytestmark = pytest.mark.django_db

ITEMS = [f"sku-{i}" for i in range(5)]
SEARCH: dict[str, Any] = {
    "surface": "search",
    "query": "shoes",
    "items": [{"id": i} for i in ITEMS],
}
# Only the price counts: the live config puts the cheapest first, B's the dearest first.
CHEAP_FIRST = {"price": -5.0}
DEAR_FIRST = {"price": 5.0}


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def shop_with_prices(api: ApiCaller) -> ApiCaller:
    put_items(
        api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 * (i + 1)} for i in range(5)]
    )
    services.signals_refresh(customer_id=api.customer.pk)
    return api


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    return shop_with_prices(api)


def config(
    customer: Customer, weights: dict[str, float], *, live: bool, name: str, surface: str = "search"
) -> RankingConfig:
    return services.ranking_config_save(
        customer=customer,
        surface=surface,
        name=name,
        weights=weights,
        personalization_weight=1.0,
        live=live,
    )


def config_experiment(customer: Customer, b: RankingConfig, percent: int = 50) -> Experiment:
    return services.experiment_save(
        experiment=Experiment(
            customer=customer,
            surface="search",
            name="dearer first",
            kind=ExperimentKind.CONFIG,
            treatment_config=b,
            treatment_percent=percent,
        )
    )


def rules_experiment(customer: Customer, percent: int = 50) -> Experiment:
    return services.experiment_save(
        experiment=Experiment(
            customer=customer,
            surface="search",
            name="hide sku-2",
            kind=ExperimentKind.RULES,
            treatment_percent=percent,
        )
    )


def hide_rule(customer: Customer, item_id: str = "sku-2") -> Rule:
    document = RuleIn.model_validate(
        {"name": f"hide {item_id}", "selector": {"item_ids": [item_id]}, "action": {"type": "hide"}}
    )
    return rule_services.rule_create(customer=customer, document=document)[0]


def shopper_in(experiment: Experiment, variant: str) -> str:
    """A user id whose shopper is in this variant (50 % experiments)."""
    for n in range(1000):
        in_b = shopper_bucket(experiment.salt, f"u:user{n}") < experiment.treatment_percent * 100
        if in_b == (variant == "B"):
            return f"user{n}"
    raise AssertionError("no such shopper")


def search_as(api: ApiCaller, user_id: str) -> dict[str, Any]:
    return rank(api, {**SEARCH, "user_id": user_id})


# --- B = a ranking config ---------------------------------------------------------------------


def test_a_config_experiment_serves_bs_blend_to_b_and_the_live_one_to_a_then_promotes_it(
    shop: ApiCaller, django_capture_on_commit_callbacks: Any
) -> None:
    live = config(shop.customer, CHEAP_FIRST, live=True, name="cheap first")
    b = config(shop.customer, DEAR_FIRST, live=False, name="dear first")
    running = config_experiment(shop.customer, b)
    in_a, in_b = shopper_in(running, "A"), shopper_in(running, "B")

    answer_a, answer_b = search_as(shop, in_a), search_as(shop, in_b)

    assert answer_a["ranker"] == {"config": "cheap first", "model": None, "variant": "A"}
    assert answer_b["ranker"] == {"config": "dear first", "model": None, "variant": "B"}
    assert ranked_ids(answer_a) == ITEMS  # cheapest first, as the live weights say
    assert ranked_ids(answer_b) == ITEMS[::-1]  # dearest first, as B's weights say
    assert [item["score"] for item in answer_a["items"]] != [
        item["score"] for item in answer_b["items"]
    ]

    with django_capture_on_commit_callbacks(execute=True):
        served = services.experiment_promote(experiment=running, user="ann")

    assert served == "the config dear first"
    promoted = Experiment.objects.get(pk=running.pk)
    assert promoted.end_reason == ExperimentEnd.PROMOTED
    assert not promoted.enabled
    assert "the config dear first serves everyone on search" in promoted.end_summary
    assert RankingConfig.objects.get(pk=b.pk).live
    assert not RankingConfig.objects.get(pk=live.pk).live  # kept, to try or make live again
    for user in (in_a, in_b):
        after = search_as(shop, user)
        assert after["ranker"] == {"config": "dear first", "model": None, "variant": None}
        assert ranked_ids(after) == ITEMS[::-1]


def test_a_config_experiment_is_refused_where_a_model_serves_and_stops_serving_b_if_one_starts(
    shop: ApiCaller,
) -> None:
    b = config(shop.customer, DEAR_FIRST, live=False, name="dear first")
    running = config_experiment(shop.customer, b, percent=99)
    in_b = shopper_in(running, "B")
    assert search_as(shop, in_b)["ranker"]["variant"] == "B"

    model = register(shop.customer)
    RankingModel.objects.filter(pk=model.pk).update(status=ModelStatus.ACTIVE)
    runtime_sync.bump_generation(shop.customer.pk)
    during = search_as(shop, in_b)["ranker"]
    running.enabled = False
    services.experiment_save(experiment=running)
    with pytest.raises(ValidationError) as refused:
        config_experiment(shop.customer, b)
    with pytest.raises(services.PromotionRefused):
        services.experiment_promote(experiment=running, user="ann")

    # A config's blend serves only where no model does: B would not be what promoting it serves.
    assert during == {"config": "default", "model": model.label, "variant": None}
    assert "A model serves this surface" in refused.value.message_dict["treatment_config"][0]
    assert not RankingConfig.objects.get(pk=b.pk).live


def test_what_b_is_must_match_the_kind_and_the_errors_name_the_field(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    live = config(api.customer, CHEAP_FIRST, live=True, name="live")
    mine = config(api.customer, DEAR_FIRST, live=False, name="mine")
    browse = config(api.customer, DEAR_FIRST, live=False, name="browse", surface="browse")
    theirs = config(other_api.customer, DEAR_FIRST, live=False, name="theirs")
    model = register(api.customer)

    def errors(**fields: Any) -> dict[str, list[str]]:
        base: dict[str, Any] = {
            "customer": api.customer,
            "surface": "search",
            "name": "x",
            "treatment_percent": 50,
        }
        with pytest.raises(ValidationError) as refused:
            services.experiment_save(experiment=Experiment(**{**base, **fields}))
        return refused.value.message_dict

    assert set(errors(kind=ExperimentKind.MODEL)) == {"treatment_model"}
    assert set(errors(kind=ExperimentKind.CONFIG)) == {"treatment_config"}
    both = errors(kind=ExperimentKind.CONFIG, treatment_config=mine, treatment_model=model)
    assert set(both) == {"treatment_model"}
    assert set(errors(kind=ExperimentKind.MODEL, treatment_model=model, treatment_config=mine)) == {
        "treatment_config"
    }
    assert set(errors(kind=ExperimentKind.RULES, treatment_model=model)) == {"treatment_model"}
    for other in (theirs, browse, live):
        assert set(errors(kind=ExperimentKind.CONFIG, treatment_config=other)) == {
            "treatment_config"
        }
    assert "another" not in str(errors(kind=ExperimentKind.CONFIG, treatment_config=theirs))
    assert (
        "B would equal A"
        in errors(kind=ExperimentKind.CONFIG, treatment_config=live)["treatment_config"][0]
    )
    # Interleaving mixes two scorers' orders: fine for a config, meaningless for rules.
    assert set(errors(kind=ExperimentKind.RULES, method=ExperimentMethod.INTERLEAVE)) == {"method"}
    interleaved = services.experiment_save(
        experiment=Experiment(
            customer=api.customer,
            surface="search",
            name="mix",
            kind="config",
            treatment_config=mine,
            treatment_percent=50,
            method=ExperimentMethod.INTERLEAVE,
        )
    )
    assert interleaved.pk is not None
    assert not Experiment.objects.filter(customer=other_api.customer).exists()


def test_an_interleaved_config_experiment_merges_the_live_blend_with_bs(shop: ApiCaller) -> None:
    config(shop.customer, CHEAP_FIRST, live=True, name="cheap first")
    b = config(shop.customer, DEAR_FIRST, live=False, name="dear first")
    running = services.experiment_save(
        experiment=Experiment(
            customer=shop.customer,
            surface="search",
            name="mix",
            kind=ExperimentKind.CONFIG,
            treatment_config=b,
            treatment_percent=99,
            method=ExperimentMethod.INTERLEAVE,
        )
    )

    answer = search_as(shop, shopper_in(running, "B"))

    # Team draft: the first two picks are the cheapest (A's top) and the dearest (B's top).
    assert answer["ranker"]["variant"] == "interleaved"
    assert set(ranked_ids(answer)[:2]) == {"sku-0", "sku-4"}


# --- B = the rules tagged to the experiment ---------------------------------------------------


def test_a_rule_tagged_to_b_serves_only_bs_shoppers_never_after_the_stop_and_promoting_untags_it(
    shop: ApiCaller, django_capture_on_commit_callbacks: Any
) -> None:
    running = rules_experiment(shop.customer)
    rule = hide_rule(shop.customer)
    rule_services.rule_tag(rule=rule, experiment=running)
    in_a, in_b = shopper_in(running, "A"), shopper_in(running, "B")

    answer_a, answer_b = search_as(shop, in_a), search_as(shop, in_b)
    anonymous = rank(shop, SEARCH)
    running.enabled = False
    services.experiment_save(experiment=running)
    stopped = [search_as(shop, user) for user in (in_a, in_b)]

    assert answer_a["ranker"]["variant"] == "A"
    assert "sku-2" in ranked_ids(answer_a)
    assert answer_b["ranker"]["variant"] == "B"
    assert "sku-2" not in ranked_ids(answer_b)
    assert "sku-2" in ranked_ids(anonymous)
    assert all("sku-2" in ranked_ids(answer) for answer in stopped)
    assert Rule.objects.get(pk=rule.pk).experiment_id == running.pk  # tagged, serving nobody

    with django_capture_on_commit_callbacks(execute=True):
        served = services.experiment_promote(experiment=running, user="ann")

    assert served == "its rule"
    assert Rule.objects.get(pk=rule.pk).experiment_id is None
    assert all("sku-2" not in ranked_ids(search_as(shop, user)) for user in (in_a, in_b))
    notes = list(RuleRevision.objects.filter(rule=rule).values_list("note", flat=True))
    assert notes[0] == f"serves everyone: B of experiment {running.pk} promoted by ann"
    assert f"serves only to B of experiment {running.pk}" in notes


def test_a_rule_of_a_deleted_experiment_is_switched_off_not_served_to_everyone(
    shop: ApiCaller,
) -> None:
    running = rules_experiment(shop.customer)
    rule = hide_rule(shop.customer)
    rule_services.rule_tag(rule=rule, experiment=running)

    services.experiment_delete(experiment=running)

    stored = Rule.objects.get(pk=rule.pk)
    assert stored.experiment_id is None
    assert not stored.enabled
    assert "sku-2" in ranked_ids(search_as(shop, "someone"))


def test_a_rule_is_tagged_only_to_a_running_rules_experiment_of_its_customer(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    rule = hide_rule(api.customer)
    theirs = rules_experiment(other_api.customer)
    of_a_model = services.experiment_save(
        experiment=Experiment(
            customer=api.customer,
            surface="browse",
            name="model",
            treatment_model=register(api.customer, surface="browse"),
            treatment_percent=50,
        )
    )
    stopped = rules_experiment(api.customer)
    stopped.enabled = False
    services.experiment_save(experiment=stopped)

    for experiment, words in [
        (theirs, "this rule's customer"),
        (of_a_model, "the rules tagged to it"),
        (stopped, "does not run"),
    ]:
        with pytest.raises(ValidationError) as refused:
            rule_services.rule_tag(rule=rule, experiment=experiment)
        assert words in refused.value.message_dict["experiment"][0]
    assert Rule.objects.get(pk=rule.pk).experiment_id is None


# --- the admin: what each customer is offered and may choose ----------------------------------


def staff(customer: Customer, role: str = Role.ADMIN) -> Client:
    user = UserFactory(is_staff=True, username=f"staff-{customer.pk}")
    user.save()
    models = ["experiment", "rankingmodel", "rankingconfig", "rule"]
    user.user_permissions.set(Permission.objects.filter(content_type__model__in=models))
    MembershipFactory(user=user, customer=customer, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_the_forms_offer_and_accept_only_the_customers_own_configs_and_experiments(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    mine = config(api.customer, DEAR_FIRST, live=False, name="mine-draft")
    config(api.customer, CHEAP_FIRST, live=True, name="mine-live")
    theirs = config(other_api.customer, DEAR_FIRST, live=False, name="theirs-draft")
    my_experiment = rules_experiment(api.customer)
    their_experiment = rules_experiment(other_api.customer)
    client = staff(api.customer)

    experiment_form = client.get(reverse("admin:ranking_experiment_add")).content.decode()
    rule_form = client.get(reverse("admin:merchandising_rule_add")).content.decode()
    posted = client.post(
        reverse("admin:ranking_experiment_add"),
        {
            "customer": api.customer.pk,
            "surface": "browse",
            "name": "theirs",
            "method": "ab",
            "kind": "config",
            "treatment_config": theirs.pk,
            "treatment_percent": 50,
            "enabled": "on",
        },
    )

    assert f'value="{mine.pk}"' in experiment_form
    assert "mine-draft" in experiment_form
    assert "theirs-draft" not in experiment_form
    assert "mine-live" not in experiment_form
    assert f'<option value="{my_experiment.pk}"' in rule_form
    assert f'<option value="{their_experiment.pk}"' not in rule_form
    assert posted.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in posted.content.decode()
    assert not Experiment.objects.filter(name="theirs").exists()


def test_the_admin_tags_a_rule_and_shows_each_kind_of_experiment(
    shop: ApiCaller, other_api: ApiCaller
) -> None:
    running = rules_experiment(shop.customer)
    rule = hide_rule(shop.customer)
    client = staff(shop.customer)
    change = reverse("admin:merchandising_rule_change", args=[rule.pk])
    form = {
        "name": rule.name,
        "description": "",
        "enabled": "on",
        "priority": "0",
        "query_match": "any",
        "action_kind": "hide",
        "selector_item_ids": "sku-2",
        "diversity_field": "brand",
    }
    their_experiment = rules_experiment(other_api.customer)

    refused = client.post(change, {**form, "experiment": their_experiment.pk})
    saved = client.post(change, {**form, "experiment": running.pk})
    page = client.get(reverse("admin:ranking_experiment_change", args=[running.pk]))
    promote = client.get(reverse("admin:ranking_experiment_promote", args=[running.pk]))
    tagged = client.get(
        reverse("admin:merchandising_rule_changelist") + f"?experiment__id__exact={running.pk}"
    )

    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    assert saved.status_code == 302, saved.content.decode()[:3000]
    assert Rule.objects.get(pk=rule.pk).experiment_id == running.pk
    assert "the live ranker plus the rules tagged to B" in page.content.decode()
    assert "The rules tagged to B</a> serve every shopper they match" in promote.content.decode()
    assert tagged.status_code == 200
    assert f"only in B of experiment {running.pk}" in tagged.content.decode()


# --- the readout ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ExperimentKind.CONFIG, ExperimentKind.RULES])
def test_the_readout_counts_each_variants_shoppers_for_a_config_or_rules_experiment(
    shop: ApiCaller, kind: str
) -> None:
    if kind == ExperimentKind.CONFIG:
        b = config(shop.customer, DEAR_FIRST, live=False, name="dear first")
        running = config_experiment(shop.customer, b)
        label = "config:dear first"
    else:
        running = rules_experiment(shop.customer)
        rule_services.rule_tag(rule=hide_rule(shop.customer), experiment=running)
        label = "rules tagged to B"
    in_a, in_b = shopper_in(running, "A"), shopper_in(running, "B")
    for user in (in_a, in_b, in_b):
        search_as(shop, user)
    rank_log.flush()

    result = experiment_result(experiment=running)
    api_result = shop.get(f"/v1/experiments/{running.pk}/results")
    listed = shop.get("/v1/experiments").json()["experiments"][0]

    assert result.variants["A"].shoppers == 1
    assert result.variants["B"].shoppers == 1
    assert result.variants["B"].totals["searches"] == 2
    assert api_result.status_code == 200
    assert listed["treatment_model"] == label
    assert listed["kind"] == kind
    logged = set(RankLog.objects.filter(customer=shop.customer).values_list("variant", "model"))
    b_ranker = "config:dear first" if kind == ExperimentKind.CONFIG else "config:default"
    assert ("B", b_ranker) in logged


def test_a_config_added_for_an_experiment_in_the_admin_serves_nobody_until_promoted(
    shop: ApiCaller,
) -> None:
    config(shop.customer, CHEAP_FIRST, live=True, name="cheap first")
    client = staff(shop.customer)
    form = {
        "customer": shop.customer.pk,
        "surface": "search",
        "name": "dear first",
        "for_experiment": "on",
        "personalization_weight": "1.0",
        "exploration_percent": "0",
        "weight__price": "5",
    }

    added = client.post(reverse("admin:ranking_rankingconfig_add"), form)
    answer = search_as(shop, "someone")

    assert added.status_code == 302, added.content.decode()[:3000]
    stored = {c.name: c.live for c in RankingConfig.objects.filter(customer=shop.customer)}
    assert stored == {"cheap first": True, "dear first": False}
    assert answer["ranker"]["config"] == "cheap first"
    assert ranked_ids(answer) == ITEMS


def test_a_truly_better_config_wins_on_the_simulator_and_its_page_names_it(
    api: ApiCaller,
) -> None:
    """Simulated shoppers (demo/simulation.py) click what they like, and the retriever's relevance
    knows the category they asked for. A's live config ranks against relevance, B's config with
    it: B is truly better, and the readout must say so (the same shoppers and split as the model
    experiment of tests/ranking/test_experiment_results.py, whose note on the lift holds here)."""
    world = build_world(n_items=120, n_shoppers=3000, seed=5)
    put_items(api, world.catalog())
    services.signals_refresh(customer_id=api.customer.pk)
    services.ranking_config_save(
        customer=api.customer,
        surface="search",
        name="against relevance",
        weights={"relevance": -1.0},
        personalization_weight=0.0,
    )
    b = services.ranking_config_save(
        customer=api.customer,
        surface="search",
        name="relevance first",
        weights={"relevance": 1.0},
        personalization_weight=0.0,
        live=False,
    )
    running = services.experiment_save(
        experiment=Experiment(
            customer=api.customer,
            surface="search",
            name="relevance first",
            kind=ExperimentKind.CONFIG,
            treatment_config=b,
            treatment_percent=50,
            salt="end-to-end",
        )
    )
    now = timezone.now()
    sessions = simulated_sessions(
        world,
        sessions=1200,
        start=now - timedelta(minutes=50),
        end=now - timedelta(minutes=25),
        seed=21,
    )
    events: list[dict[str, Any]] = []
    searches: Counter[str] = Counter()
    for _, session, rng in sessions:
        if session.surface != "search":
            continue
        answer = rank(api, session.rank_request(world))
        searches[answer["ranker"]["variant"]] += 1
        index = {item_id: n for n, item_id in enumerate(world.item_ids)}
        shown = np.array([index[item["id"]] for item in answer["items"]])
        events.extend(shopper_events(world, session, shown, rng, answer["request_id"]))
    for start in range(0, len(events), 1000):
        send_events(api, events[start : start + 1000])
    rank_log.flush()

    results = api.get(f"/v1/experiments/{running.pk}/results").json()
    page = staff(api.customer).get(reverse("admin:ranking_experiment_change", args=[running.pk]))

    variants = {variant["variant"]: variant for variant in results["variants"]}
    assert {name: variants[name]["searches"] for name in "AB"} == dict(searches)
    lifts = {lift["metric"]: lift for lift in results["lifts"]}
    assert lifts["ctr"]["significant"], lifts["ctr"]
    assert lifts["ctr"]["low"] > 0
    html = page.content.decode()
    config_url = reverse("admin:ranking_rankingconfig_change", args=[b.pk])
    assert f'B: <a href="{config_url}">config:relevance first</a>' in html
    assert "B&#x27;s shoppers get its ranking config&#x27;s blend" in html
