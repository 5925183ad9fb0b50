"""Rule holdouts: a share of shoppers is served as if the rule did not exist, the rank log says
who was held out of which matching rule, and the rule's readout (its admin page and
`GET /v1/rules/{id}/holdout`) compares the shoppers who saw it with those held out, attributing
events as an experiment's readout does (docs/experiments.md, "Rule holdouts")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers import runtime_sync
from customers.models import Customer, Scope
from demo.simulation import build_world, item_revenue_per_look, shopper_events, simulated_sessions
from merchandising import services
from merchandising.compiled import CompiledRule
from merchandising.contracts import RuleIn
from merchandising.engine import EXPOSED, HELD_OUT, RuleSet
from merchandising.holdouts import holdout_words, rule_holdout_readout
from merchandising.models import Rule
from ranking import services as ranking_services
from ranking.engine.experiments import shopper_bucket
from ranking.engine.records import RankInput
from ranking.experiment_stats import Lift
from ranking.experiments import Readout
from ranking.learning import rank_log
from ranking.models import RankLog
from ranking.services import signals_refresh
from ranking.signals.schema import SCHEMA_HASH
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.ranking.helpers import put_items, rank, send_events
from tests.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db

ITEMS = [{"id": f"sku-{n}", "title": f"Item {n}", "price": 10.0 + n} for n in range(5)]
CANDIDATES = [{"id": item["id"], "relevance": 10.0 - n} for n, item in enumerate(ITEMS)]


def rule_with_holdout(
    customer: Customer, percent: int, *, salt: str | None = None, draft: bool = False, **body: Any
) -> Rule:
    """A rule (by default: pin sku-4 first on searches for "shoes") holding out `percent`% of
    shoppers; `salt` fixes who (for repeatable statistics)."""
    document = {
        "name": "sku-4 first for shoes",
        "surfaces": ["search"],
        "query": {"match": "exact", "patterns": ["shoes"]},
        "action": {"type": "pin", "pins": [{"item_id": "sku-4", "position": 1}]},
        "holdout_percent": percent,
        **body,
    }
    rule, _ = services.rule_create(
        customer=customer, document=RuleIn.model_validate(document), draft=draft
    )
    if salt is not None:
        Rule.objects.filter(pk=rule.pk).update(holdout_salt=salt)
        runtime_sync.bump_generation(customer.pk)
        rule.refresh_from_db()
    return rule


def search(api: ApiCaller, user: str | None, query: str = "shoes", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"surface": "search", "query": query, "items": CANDIDATES, **fields}
    if user is not None:
        body["user_id"] = user
    return rank(api, body)


def first_item(answer: dict[str, Any]) -> str:
    return str(answer["items"][0]["id"])


def held_out(rule: Rule, user: str) -> bool:
    return shopper_bucket(rule.holdout_salt, f"u:{user}") < rule.holdout_percent * 100


def logged_holdouts() -> dict[str, Any]:
    rank_log.flush()
    return dict(RankLog.objects.values_list("request_id", "rule_holdouts"))


# --- who sees the rule --------------------------------------------------------------------------


def test_held_out_shoppers_never_see_the_rule_and_stay_held_out(api: ApiCaller) -> None:
    put_items(api, ITEMS)
    rule = rule_with_holdout(api.customer, 30)
    users = [f"u{n}" for n in range(40)]

    firsts = {user: {first_item(search(api, user)) for _ in range(3)} for user in users}
    anonymous = first_item(search(api, None))

    held = [user for user in users if held_out(rule, user)]
    assert 0 < len(held) < len(users)  # both groups are there to compare
    for user in users:
        # Three requests each: the same group every time; held out means the retriever's order.
        assert firsts[user] == ({"sku-0"} if user in held else {"sku-4"}), user
    assert anonymous == "sku-4"  # a request without a shopper always sees the rule


def test_the_share_held_out_is_the_configured_one_over_many_shoppers() -> None:
    rule = CompiledRule(
        id=7, name="pin", priority=0, action="hide", holdout_percent=10, holdout_salt="s1"
    )
    other = CompiledRule(
        id=8, name="pin", priority=0, action="hide", holdout_percent=10, holdout_salt="s2"
    )
    rules = RuleSet((rule, other))
    groups = []
    for n in range(20_000):
        request = RankInput(
            surface="search",
            query="shoes",
            category="",
            shopper_key=f"u:{n}",
            item_ids=("a",),
            relevance=np.array([1.0]),
        )
        seen, holdouts = rules.hold_out(request, [rule, other])
        assert holdouts is not None
        assert (rule in seen) == (holdouts[7] == EXPOSED)
        groups.append((holdouts[7], holdouts[8]))

    share = sum(first == HELD_OUT for first, _ in groups) / len(groups)
    both = sum(pair == (HELD_OUT, HELD_OUT) for pair in groups) / len(groups)
    assert 0.09 < share < 0.11  # 10% set; 3 standard errors are 0.6 points
    assert 0.005 < both < 0.015  # each rule's salt splits independently: about 1% in both


def test_only_requests_where_a_holdout_rule_matched_are_recorded(api: ApiCaller) -> None:
    put_items(api, ITEMS)
    rule = rule_with_holdout(api.customer, 50, salt="recorded")
    plain = services.rule_create(
        customer=api.customer,
        document=RuleIn.model_validate(
            {
                "name": "bury sku-1",
                "selector": {"item_ids": ["sku-1"]},
                "action": {"type": "bury", "strength": "weak"},
            }
        ),
    )[0]
    users = [f"u{n}" for n in range(12)]

    matched = {search(api, user)["request_id"]: user for user in users}
    other_query = search(api, "u1", query="socks")["request_id"]
    browse = rank(api, {"surface": "browse", "user_id": "u1", "items": CANDIDATES})["request_id"]
    anonymous = search(api, None)["request_id"]
    logged = logged_holdouts()

    for request_id, user in matched.items():
        group = HELD_OUT if held_out(rule, user) else EXPOSED
        assert logged[request_id] == {str(rule.pk): group}  # the rule without one is not named
    assert {HELD_OUT, EXPOSED} <= {row[str(rule.pk)] for row in map(logged.get, matched)}
    assert logged[other_query] is None  # the rule's query did not match
    assert logged[browse] is None  # nor its surface
    assert logged[anonymous] is None  # no shopper: nobody to compare
    assert all(set(groups) == {str(rule.pk)} for groups in logged.values() if groups)
    assert plain.pk != rule.pk


def test_a_draft_rules_holdout_does_nothing_until_published(api: ApiCaller) -> None:
    put_items(api, ITEMS)
    draft = rule_with_holdout(api.customer, 50, draft=True, salt="draft")
    user = next(f"u{n}" for n in range(100) if not held_out(draft, f"u{n}"))

    while_draft = search(api, user)
    services.rule_publish(rule=draft)
    published = search(api, user)
    logged = logged_holdouts()

    assert first_item(while_draft) == "sku-0"
    assert logged[while_draft["request_id"]] is None
    assert first_item(published) == "sku-4"
    assert logged[published["request_id"]] == {str(draft.pk): EXPOSED}


def test_the_holdout_survives_the_celery_message_of_the_rank_log() -> None:
    entry = rank_log.RankLogEntry(
        customer_id=1,
        request_id="r-1",
        surface="search",
        query="shoes",
        shopper_key="u:1",
        model="linear@1",
        item_ids=("sku-1",),
        features=b"",
        created_at=timezone.now(),
        rule_holdouts={"12": HELD_OUT, "13": EXPOSED},
    )

    assert rank_log.RankLogEntry.from_payload(entry.to_payload()) == entry


# --- attribution ------------------------------------------------------------------------------


def served(
    customer: Customer, rule: Rule | None, request_id: str, shopper: str, group: str, at: datetime
) -> None:
    """A rank-log row as the API writes it for a request where `rule` matched (or none did)."""
    RankLog.objects.create(
        customer_id=customer.pk,
        request_id=request_id,
        surface="search",
        query="shoes",
        shopper_key=shopper,
        schema_hash=SCHEMA_HASH,
        item_ids=["sku-1"],
        features=b"",
        created_at=at,
        rule_holdouts={str(rule.pk): group} if rule is not None else None,
    )


def event(
    kind: str, event_id: str, user: str, at: datetime, request_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": kind, "timestamp": at.isoformat()}
    body.update(user_id=user, item_id=fields.pop("item_id", "sku-1"), **fields)
    if request_id is not None:
        body["request_id"] = request_id
    return body


def test_events_count_for_their_request_or_the_shoppers_last_matching_request(
    api: ApiCaller,
) -> None:
    rule = rule_with_holdout(api.customer, 20)
    other = rule_with_holdout(
        api.customer, 20, name="another rule", action={"type": "boost", "strength": "weak"}
    )
    now = timezone.now()
    hours = [now - timedelta(hours=h) for h in range(60)]  # hours[h]: h hours ago
    shop = api.customer
    served(shop, rule, "r-ann", "u:ann", HELD_OUT, hours[20])
    served(shop, rule, "r-bob-1", "u:bob", EXPOSED, hours[30])
    served(shop, rule, "r-bob-2", "u:bob", EXPOSED, hours[10])
    served(shop, None, "r-bob-3", "u:bob", "", hours[9])  # the rule did not match: not his last
    served(shop, other, "r-cat-other", "u:cat", HELD_OUT, hours[16])  # only the other matched
    served(shop, rule, "r-cat", "u:cat", EXPOSED, hours[40])

    send_events(
        api,
        [
            # ann: through the request id, and her purchase through her click (filled at ingest)
            event("click", "e1", "ann", hours[19], "r-ann"),
            event("purchase", "e2", "ann", hours[18], price=30.0, quantity=2),
            # bob: no request ids: his last request where the rule matched, within 24 hours
            event("click", "e3", "bob", hours[8], item_id="sku-3"),
            event("purchase", "e4", "bob", hours[7], price=10.0, item_id="sku-5"),
            # a click on a request where the rule did not match counts for none
            event("click", "e5", "bob", hours[8], "r-bob-3", item_id="sku-2"),
            # cat: her matching request is 40 hours old (outside the window): none; her click on
            # a request of another rule only counts for that rule
            event("click", "e6", "cat", hours[15], item_id="sku-2"),
            event("click", "e7", "cat", hours[15], "r-cat-other", item_id="sku-4"),
        ],
    )

    readout = rule_holdout_readout(rule=rule)
    totals = {group: {"shoppers": v.shoppers, **v.totals} for group, v in readout.variants.items()}
    assert totals == {
        HELD_OUT: {
            "shoppers": 1,
            "searches": 1,
            "clicks": 1,
            "add_to_carts": 0,
            "purchases": 1,
            "revenue": 60.0,
        },
        EXPOSED: {
            "shoppers": 2,
            "searches": 3,
            "clicks": 1,
            "add_to_carts": 0,
            "purchases": 1,
            "revenue": 10.0,
        },
    }
    others = rule_holdout_readout(rule=other).variants
    assert (others[HELD_OUT].shoppers, others[HELD_OUT].totals["clicks"]) == (1, 2.0)


# --- the lift on a simulated shop --------------------------------------------------------------


def test_a_rule_that_lifts_revenue_shows_it_and_a_neutral_rule_does_not(api: ApiCaller) -> None:
    """The simulated shoppers (demo/simulation.py) buy what they like; the live ranker orders
    against the retriever's relevance. One rule boosts the 20 items that earn most per look
    (what the shoppers buy), holding out half the shoppers; another, also holding out half (its
    own half), boosts an item no request carries: it changes nothing. Events go through
    /v1/events with the request ids the simulator gives (carts and purchases get theirs at
    ingest from the click)."""
    world = build_world(n_items=120, n_shoppers=3000, seed=5)
    put_items(api, world.catalog())
    signals_refresh(customer_id=api.customer.pk)
    ranking_services.ranking_config_save(
        customer=api.customer,
        surface="search",
        name="against relevance",
        weights={"relevance": -1.0},
        personalization_weight=0.0,
    )
    best = np.argsort(-item_revenue_per_look(world))[:20]
    # Fixed salts, so the run is repeatable (see the note on the lifts below).
    lifting = rule_with_holdout(
        api.customer,
        50,
        salt="lift-1",
        name="best sellers up",
        query={"match": "any"},
        action={"type": "boost", "factor": 50.0},
        selector={"item_ids": [world.item_ids[i] for i in best]},
    )
    neutral = rule_with_holdout(
        api.customer,
        50,
        salt="neutral-1",
        name="nothing up",
        query={"match": "any"},
        action={"type": "boost", "factor": 50.0},
        selector={"item_ids": ["not-in-any-request"]},
    )
    now = timezone.now()
    events: list[dict[str, Any]] = []
    index = {item_id: n for n, item_id in enumerate(world.item_ids)}
    searches = 0
    for _, session, rng in simulated_sessions(
        world,
        sessions=5000,
        start=now - timedelta(minutes=50),
        end=now - timedelta(minutes=25),
        seed=21,
    ):
        if session.surface != "search":
            continue
        answer = rank(api, session.rank_request(world))
        shown = np.array([index[item["id"]] for item in answer["items"]])
        events.extend(shopper_events(world, session, shown, rng, answer["request_id"]))
        searches += 1
    for start in range(0, len(events), 1000):
        send_events(api, events[start : start + 1000])
    rank_log.flush()

    response = api.get(f"/v1/rules/{lifting.pk}/holdout")
    quiet = api.get(f"/v1/rules/{neutral.pk}/holdout").json()

    assert response.status_code == 200, response.content
    lifted = response.json()
    groups = {group["variant"]: group for group in lifted["variants"]}
    assert groups[HELD_OUT]["searches"] + groups[EXPOSED]["searches"] == searches
    assert sum(e["type"] == "purchase" for e in events) == sum(
        groups[g]["purchases"] for g in (HELD_OUT, EXPOSED)
    )
    # Here +77.4% (95% interval +33.9% to +135.0%), the neutral rule -5.4% (-28.7% to +25.5%).
    # With the salts lift-2..6 and neutral-2..6 (other splits of the same shoppers) the lift of
    # revenue per search was significant every time (lowest lower bound +25.9%) and the neutral
    # rule's never (docs/experiments.md, "Rule holdouts").
    revenue = {lift["metric"]: lift for lift in lifted["lifts"]}["revenue_per_search"]
    assert revenue["significant"], revenue
    assert revenue["low"] > 0
    assert lifted["summary"].startswith("Shoppers who saw this rule earned ")
    assert lifted["summary"].endswith("than the 50% held out: the rule earns more.")
    assert not lifted["sample_ratio"]["mismatch"]
    still = {lift["metric"]: lift for lift in quiet["lifts"]}["revenue_per_search"]
    assert not still["significant"], still
    assert quiet["summary"].endswith(": no clear difference yet.")


@pytest.mark.parametrize(
    ("lift", "words"),
    [
        (
            Lift(0.031, -0.01, 0.074, 0.14),
            "Shoppers who saw this rule earned 3.1% more revenue per search (95% interval "
            "\u22121.0% to +7.4%) than the 10% held out: no clear difference yet.",
        ),
        (
            Lift(0.12, 0.05, 0.2, 0.001),
            "Shoppers who saw this rule earned 12.0% more revenue per search (95% interval "
            "+5.0% to +20.0%) than the 10% held out: the rule earns more.",
        ),
        (
            Lift(-0.08, -0.12, -0.04, 0.001),
            "Shoppers who saw this rule earned 8.0% less revenue per search (95% interval "
            "\u221212.0% to \u22124.0%) than the 10% held out: the rule earns less.",
        ),
        (
            Lift(-0.0002, -0.3, 0.5, 0.99),
            "Shoppers who saw this rule earned about the same revenue per search (95% interval "
            "\u221230.0% to +50.0%) as the 10% held out: no clear difference yet.",
        ),
    ],
)
def test_the_holdout_is_said_in_one_sentence_of_shop_words(lift: Lift, words: str) -> None:
    now = timezone.now()
    readout = Readout(now, now, {}, {"revenue_per_search": lift}, None, None)

    assert holdout_words(Rule(holdout_percent=10), readout) == words


# --- the API: tenancy, scope, schema ----------------------------------------------------------


def test_another_customer_cannot_read_a_rules_holdout(api: ApiCaller, other_api: ApiCaller) -> None:
    rule = rule_with_holdout(api.customer, 10)
    url = f"/v1/rules/{rule.pk}/holdout"

    own = api.get(url)
    foreign = other_api.get(url)

    assert own.status_code == 200
    assert own.json()["rule"] == {
        "id": rule.pk,
        "name": rule.name,
        "enabled": True,
        "draft": False,
        "holdout_percent": 10,
    }
    assert foreign.status_code == 404
    assert foreign["Content-Type"] == "application/problem+json"
    assert rule.name not in foreign.content.decode()


def test_reading_a_holdout_needs_the_rules_scope(
    api: ApiCaller, make_caller: Callable[..., ApiCaller]
) -> None:
    rule = rule_with_holdout(api.customer, 10)
    no_rules = make_caller(customer=api.customer, scopes=[s for s in Scope.values if s != "rules"])

    response = no_rules.get(f"/v1/rules/{rule.pk}/holdout")

    assert response.status_code == 403
    assert "`rules`" in response.json()["detail"]


def test_a_holdout_response_matches_the_schema(api: ApiCaller) -> None:
    rule = rule_with_holdout(api.customer, 50)
    openapi = orjson.loads(Client().get("/v1/schema").content)
    empty = api.get(f"/v1/rules/{rule.pk}/holdout")
    now = timezone.now()
    for n in range(6):
        group = (HELD_OUT, EXPOSED)[n % 2]
        served(api.customer, rule, f"r-{n}", f"u:{n}", group, now - timedelta(hours=2))
    send_events(
        api,
        [
            event("purchase", f"p-{n}", str(n), now - timedelta(hours=1), f"r-{n}", price=10.0 + n)
            for n in range(6)
        ],
    )

    response = api.get(f"/v1/rules/{rule.pk}/holdout")

    assert response.status_code == 200
    body = response.json()
    assert {lift["metric"]: lift for lift in body["lifts"]}["revenue_per_search"]["lift"]
    assert body["sample_ratio"]["expected_share_held_out"] == pytest.approx(0.5)
    assert [v["variant"] for v in body["daily"][-1]["variants"]] == [HELD_OUT, EXPOSED]
    assert body["daily"][-1]["revenue_per_search_lift"]["lift"] == pytest.approx(
        {lift["metric"]: lift for lift in body["lifts"]}["revenue_per_search"]["lift"]
    )
    assert_matches_schema(openapi, "rules_holdout", response)
    assert empty.json()["sample_ratio"] is None
    assert empty.json()["daily"] == []
    assert empty.json()["summary"].startswith("No search has matched this rule yet")
    assert_matches_schema(openapi, "rules_holdout", empty)


def test_the_rules_api_sets_the_holdout_and_refuses_one_out_of_range(api: ApiCaller) -> None:
    body = {"name": "hide sku-1", "selector": {"item_ids": ["sku-1"]}, "action": {"type": "hide"}}

    created = api.post("/v1/rules", {**body, "holdout_percent": 10})
    refused = api.post("/v1/rules", {**body, "holdout_percent": 51})
    default = api.post("/v1/rules", body)

    assert created.status_code == 201, created.content
    assert created.json()["holdout_percent"] == 10
    assert api.get(f"/v1/rules/{created.json()['id']}").json()["holdout_percent"] == 10
    assert refused.status_code == 400
    assert [error["field"] for error in refused.json()["errors"]] == ["holdout_percent"]
    assert default.json()["holdout_percent"] == 0


# --- the admin ----------------------------------------------------------------------------------


def staff_client(customer: Customer) -> Client:
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user)
    client = Client()
    client.force_login(user)
    return client


FORM = {
    "name": "Rule",
    "description": "",
    "enabled": "on",
    "priority": "0",
    "windows": "",
    "query_match": "any",
    "query_patterns": "",
    "page_categories": "",
    "context": "",
    "selector_brands": "",
    "selector_categories": "",
    "selector_price_min": "",
    "selector_price_max": "",
    "selector_in_stock": "",
    "selector_attributes": "",
    "selector_item_ids": "sku-1",
    "action_kind": "hide",
    "action_strength": "",
    "action_factor": "",
    "action_pins": "",
    "slot_positions": "",
    "diversity_field": "brand",
    "diversity_max_items": "",
    "diversity_top_k": "",
    "holdout_percent": "",
}


@pytest.mark.parametrize("percent", ["51", "-1", "12.5"])
def test_the_form_refuses_a_holdout_out_of_range_naming_the_field(
    api: ApiCaller, percent: str
) -> None:
    put_items(api, ITEMS)
    client = staff_client(api.customer)

    response = client.post(
        reverse("admin:merchandising_rule_add"),
        {**FORM, "customer": api.customer.pk, "holdout_percent": percent},
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["holdout_percent"], errors
    assert not Rule.objects.exists()


def test_the_form_sets_the_holdout_with_help_in_shop_words(api: ApiCaller) -> None:
    put_items(api, ITEMS)
    client = staff_client(api.customer)

    page = client.get(reverse("admin:merchandising_rule_add")).content.decode()
    response = client.post(
        reverse("admin:merchandising_rule_add"),
        {**FORM, "customer": api.customer.pk, "holdout_percent": "10"},
    )

    assert "this share of shoppers never sees it" in page
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Rule.objects.get().holdout_percent == 10


def test_the_rules_admin_page_shows_its_holdout_in_shop_words(api: ApiCaller) -> None:
    rule = rule_with_holdout(api.customer, 10, salt="admin")
    now = timezone.now()
    RankLog.objects.bulk_create(
        RankLog(
            customer_id=api.customer.pk,
            request_id=f"r-{n}",
            surface="search",
            query="shoes",
            shopper_key=f"u:{n}",
            schema_hash=SCHEMA_HASH,
            item_ids=["sku-1"],
            features=b"",
            created_at=now - timedelta(hours=2),
            rule_holdouts={str(rule.pk): HELD_OUT if n % 10 == 0 else EXPOSED},
        )
        for n in range(2000)
    )
    send_events(
        api,
        [
            event(
                "purchase",
                f"p-{n}",
                str(n),
                now - timedelta(hours=1),
                f"r-{n}",
                price=1234.5 if n % 3 else 20.0,
            )
            for n in range(0, 2000, 7)
        ],
    )
    client = staff_client(api.customer)

    response = client.get(reverse("admin:merchandising_rule_change", args=[rule.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    for words in (
        "Holdout",
        "Shoppers who saw this rule earned",
        "the 10% held out",
        "95% interval",
        "Held out (did not see it)",
        "Saw the rule",
        "Revenue per search",
        "Can it be read?",
        "still see the other rules",
    ):
        assert words in html, words
    assert "1,800" in html  # shoppers who saw it, with a thousands separator
    assert '<svg class="lift-chart"' in html  # the lift over time, drawn
    assert "Saw the rule against held out" in html  # its day-by-day table
    assert "revenue_per_search" not in html  # no code words
    assert "held_out" not in html


def test_another_customers_staff_cannot_open_the_rules_holdout(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    rule = rule_with_holdout(api.customer, 10)
    foreign = staff_client(other_api.customer)

    response = foreign.get(reverse("admin:merchandising_rule_change", args=[rule.pk]))

    assert response.status_code in (302, 404)  # the admin's "no such object" goes to its index
    assert "Shoppers who saw this rule" not in response.content.decode()
    assert "No search has matched this rule yet" not in response.content.decode()
