"""/v1/rules end to end: authoring, validation, conflicts, history, and the effect on /v1/rank."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from customers import runtime_sync
from customers.models import Scope
from merchandising.engine import RuleSet
from merchandising.models import Rule, RuleRevision
from ranking.runtime import customer_runtime
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, rank, ranked_ids

pytestmark = pytest.mark.django_db

IDS = [f"sku-{i}" for i in range(6)]


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    """Six items, sku-0 best by relevance and dearest down to sku-5 (out of stock): the default
    blend counts relevance, price and stock for an item, so it ranks them in this order; brands
    Nike (even) and Puma (odd)."""
    put_items(
        api,
        [
            {
                "id": item_id,
                "title": f"Shoe {i}",
                "brand": "Nike" if i % 2 == 0 else "Puma",
                "categories": ["shoes", "shoes/running" if i < 3 else "shoes/trail"],
                "price": 10.0 * (len(IDS) - i),
                "in_stock": i != 5,
                "attributes": {"color": "red" if i in (1, 4) else "blue"},
            }
            for i, item_id in enumerate(IDS)
        ],
    )
    signals_refresh(customer_id=api.customer.pk)
    return api


def search(api: ApiCaller, query: str = "running shoes", **extra: Any) -> dict[str, Any]:
    body = {
        "surface": "search",
        "query": query,
        "items": [{"id": item_id, "relevance": 10.0 - i} for i, item_id in enumerate(IDS)],
        **extra,
    }
    return rank(api, body)


def create(api: ApiCaller, rule: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = api.post("/v1/rules", rule)
    assert response.status_code == status, response.content
    return dict(response.json())


def pin(item_id: str, position: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"pin {item_id}",
        "action": {"type": "pin", "pins": [{"item_id": item_id, "position": position}]},
        **extra,
    }


def test_without_rules_the_order_follows_relevance(shop: ApiCaller) -> None:
    assert ranked_ids(search(shop)) == IDS


def test_a_pin_puts_the_item_at_its_position(shop: ApiCaller) -> None:
    create(shop, pin("sku-4", 1))

    assert ranked_ids(search(shop))[:2] == ["sku-4", "sku-0"]


def test_a_hidden_item_is_never_returned_and_explain_says_why(shop: ApiCaller) -> None:
    rule = create(
        shop, {"name": "no puma", "selector": {"brands": ["puma"]}, "action": {"type": "hide"}}
    )
    create(shop, pin("sku-1", 1, priority=5))

    response = search(shop, explain=True)

    assert ranked_ids(response) == ["sku-0", "sku-2", "sku-4"]
    removed = {entry["id"]: entry for entry in response["removed"]}
    assert set(removed) == {"sku-1", "sku-3", "sku-5"}
    assert removed["sku-1"]["rule_id"] == rule["id"]
    assert "no puma" in removed["sku-1"]["reason"]


def test_boost_by_category_with_descendants_and_named_strength(shop: ApiCaller) -> None:
    create(
        shop,
        {
            "name": "trail up",
            "selector": {"categories": ["Shoes/Trail"]},
            "action": {"type": "boost", "strength": "max"},
        },
    )

    response = search(shop, explain=True)

    ranked = ranked_ids(response)
    assert ranked[0] == "sku-3"
    assert all(ranked.index(item) < IDS.index(item) for item in ("sku-3", "sku-4"))
    effects = response["items"][0]["explanation"]["rules"]
    assert effects == [
        {
            "rule_id": effects[0]["rule_id"],
            "name": "trail up",
            "action": "boost",
            "effect": "score x4",
        }
    ]
    assert response["items"][0]["explanation"]["position_before_rules"] == 4


def test_bury_by_attribute_and_price_range(shop: ApiCaller) -> None:
    create(
        shop,
        {
            "name": "red down",
            "selector": {"attributes": {"color": ["red"]}, "price_min": 45.0},
            "action": {"type": "bury", "factor": 0.01},
        },
    )

    ranked = ranked_ids(search(shop))

    # sku-1 (red, 50.00) falls below sku-4 (red, 20.00: outside the range), which it outranks
    # without the rule.
    assert ranked.index("sku-1") > ranked.index("sku-4")
    assert ranked[:3] == ["sku-0", "sku-2", "sku-3"]


def test_query_conditions_match_the_normalised_query(shop: ApiCaller) -> None:
    create(shop, pin("sku-5", 1, query={"match": "contains", "patterns": ["RUNNING"]}))

    assert ranked_ids(search(shop, query="  Rúnning   Shoes "))[0] == "sku-5"
    assert ranked_ids(search(shop, query="runningshoes"))[0] == "sku-0"
    assert ranked_ids(search(shop, query="trail"))[0] == "sku-0"


def test_context_and_surface_conditions(shop: ApiCaller) -> None:
    create(shop, pin("sku-3", 1, surfaces=["search"], context={"device": ["mobile"]}))

    assert ranked_ids(search(shop, context={"device": "mobile"}))[0] == "sku-3"
    assert ranked_ids(search(shop, context={"device": "desktop"}))[0] == "sku-0"
    assert ranked_ids(search(shop))[0] == "sku-0"


def test_page_category_condition_for_browse(shop: ApiCaller) -> None:
    create(shop, pin("sku-2", 1, page_categories=["shoes/running"]))
    items = [{"id": item_id, "relevance": 10.0 - i} for i, item_id in enumerate(IDS)]

    running = rank(shop, {"surface": "browse", "category": "Shoes/Running/Road", "items": items})
    trail = rank(shop, {"surface": "browse", "category": "shoes/trail", "items": items})

    assert ranked_ids(running)[0] == "sku-2"
    assert ranked_ids(trail)[0] == "sku-0"


def test_scheduled_rule_switches_on_and_off_at_its_boundaries(shop: ApiCaller) -> None:
    start = timezone.now() + timedelta(days=1)
    end = start + timedelta(days=2)
    create(shop, pin("sku-5", 1, windows=[{"start": start.isoformat(), "end": end.isoformat()}]))
    runtime_sync.forget_customer(shop.customer.pk)

    assert ranked_ids(search(shop))[0] == "sku-0"  # before the window: off
    rules = customer_runtime(shop.customer.pk).config_for("search").rules
    assert isinstance(rules, RuleSet)
    (rule,) = rules.rules
    second = timedelta(seconds=1)
    assert not rule.is_on(start - second)
    assert rule.is_on(start)
    assert rule.is_on(end - second)
    assert not rule.is_on(end)


def test_disabling_a_rule_takes_it_out_of_ranking(shop: ApiCaller) -> None:
    rule = create(shop, pin("sku-5", 1))
    document = {k: rule[k] for k in ("name", "action")} | {"enabled": False}

    response = shop.put(f"/v1/rules/{rule['id']}", document)

    assert response.status_code == 200
    assert ranked_ids(search(shop))[0] == "sku-0"


def test_bad_rules_name_the_field_and_store_nothing(shop: ApiCaller) -> None:
    cases = [
        ({"name": "x", "action": {"type": "boost"}}, "action"),
        ({"name": "x", "action": {"type": "teleport"}}, "action.type"),
        (
            {"name": "x", "action": {"type": "pin", "pins": [{"item_id": "a", "position": 0}]}},
            "action.pins[0].position",
        ),
        ({"name": "x", "action": {"type": "hide"}, "surfaces": ["checkout"]}, "surfaces[0]"),
        (
            {
                "name": "x",
                "action": {"type": "hide"},
                "windows": [{"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}],
            },
            "windows[0]",
        ),
        (
            {
                "name": "x",
                "action": {"type": "hide"},
                "windows": [{"start": "2026-12-02T00:00:00"}],
            },
            "windows[0].start",
        ),
        ({"name": "x", "action": {"type": "hide"}, "query": {"match": "exact"}}, "query"),
        (
            {"name": "x", "action": {"type": "hide"}, "selector": {"price_min": "cheap"}},
            "selector.price_min",
        ),
        ({"name": "", "action": {"type": "hide"}}, "name"),
        ({"action": {"type": "hide"}}, "name"),
    ]
    for body, field in cases:
        response = shop.post("/v1/rules", body)
        assert response.status_code == 400, (body, response.content)
        assert field in [error["field"] for error in response.json()["errors"]], (
            body,
            response.json(),
        )
    assert not Rule.objects.exists()


def test_two_pins_on_one_position_at_equal_priority_are_refused(shop: ApiCaller) -> None:
    first = create(shop, pin("sku-4", 1))

    response = shop.post("/v1/rules", pin("sku-5", 1))

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/rule-conflict"
    assert problem["errors"][0]["field"] == "action.pins"
    assert str(first["id"]) in problem["errors"][0]["detail"]
    assert Rule.objects.count() == 1


def test_warnings_come_back_with_the_saved_rule(shop: ApiCaller) -> None:
    create(
        shop,
        {"name": "hide sku-4", "selector": {"item_ids": ["sku-4"]}, "action": {"type": "hide"}},
    )
    create(shop, pin("sku-0", 2, priority=10))
    past = timezone.now() - timedelta(days=1)

    pinned = create(shop, pin("sku-4", 2, priority=5))
    ended = create(shop, pin("sku-1", 9, windows=[{"end": past.isoformat()}]))
    nothing = create(
        shop,
        {
            "name": "ghost",
            "selector": {"brands": ["Adidas"]},
            "action": {"type": "boost", "factor": 2.0},
        },
    )

    assert {w["code"] for w in pinned["warnings"]} == {
        "pin_on_hidden_item",
        "pin_conflict",
        "shadowed",
    }
    assert [w["code"] for w in ended["warnings"]] == ["window_ended"]
    assert [w["code"] for w in nothing["warnings"]] == ["no_matching_item"]
    assert not any(w["blocking"] for w in pinned["warnings"] + ended["warnings"])


def test_every_change_is_in_the_history(shop: ApiCaller) -> None:
    rule = create(shop, pin("sku-4", 1))
    shop.put(f"/v1/rules/{rule['id']}", pin("sku-4", 1))  # the same: no revision
    shop.put(f"/v1/rules/{rule['id']}", pin("sku-4", 3))
    shop.delete(f"/v1/rules/{rule['id']}")

    revisions = shop.get(f"/v1/rules/{rule['id']}/revisions").json()["revisions"]

    assert [r["kind"] for r in revisions] == ["deleted", "updated", "created"]
    assert revisions[1]["document"]["action"]["pins"][0]["position"] == 3
    assert revisions[2]["document"]["action"]["pins"][0]["position"] == 1


def test_list_read_delete(shop: ApiCaller) -> None:
    low = create(shop, pin("sku-4", 1, priority=1))
    high = create(shop, pin("sku-5", 2, priority=9))

    listed = shop.get("/v1/rules").json()["rules"]
    read = shop.get(f"/v1/rules/{low['id']}")
    deleted = shop.delete(f"/v1/rules/{low['id']}")

    assert [r["id"] for r in listed] == [high["id"], low["id"]]
    assert read.json()["action"] == low["action"]
    assert deleted.status_code == 204
    assert shop.get(f"/v1/rules/{low['id']}").status_code == 404


def test_a_customer_never_sees_or_changes_another_customers_rules(
    shop: ApiCaller, other_api: ApiCaller
) -> None:
    rule = create(shop, pin("sku-4", 1))
    path = f"/v1/rules/{rule['id']}"

    assert other_api.get("/v1/rules").json() == {"rules": []}
    assert other_api.get(path).status_code == 404
    assert other_api.put(path, pin("sku-4", 2)).status_code == 404
    assert other_api.delete(path).status_code == 404
    assert other_api.get(path + "/revisions").status_code == 404
    assert Rule.objects.get(pk=rule["id"]).action["pins"][0]["position"] == 1
    assert RuleRevision.objects.filter(rule_id_value=rule["id"]).count() == 1


def test_another_customers_rules_never_touch_my_ranking(
    shop: ApiCaller, make_caller: Callable[..., ApiCaller]
) -> None:
    other = make_caller()
    put_items(other, [{"id": item_id, "title": item_id} for item_id in IDS])
    create(other, pin("sku-5", 1))

    assert ranked_ids(search(shop))[0] == "sku-0"


def test_the_rules_scope_is_required(make_caller: Callable[..., ApiCaller]) -> None:
    ranker = make_caller(scopes=[Scope.RANK])

    assert ranker.get("/v1/rules").status_code == 403
    assert ranker.post("/v1/rules", pin("sku-1", 1)).status_code == 403


def test_ranking_with_rules_reads_no_database_once_warm(
    shop: ApiCaller, django_assert_num_queries: Any
) -> None:
    create(shop, pin("sku-4", 1))
    create(
        shop,
        {
            "name": "red",
            "selector": {"attributes": {"color": ["red"]}},
            "action": {"type": "boost", "factor": 2.0},
        },
    )
    search(shop)

    with django_assert_num_queries(0):
        assert ranked_ids(search(shop))[0] == "sku-4"


def test_an_attribute_rule_follows_catalog_changes(shop: ApiCaller) -> None:
    create(
        shop,
        {
            "name": "green first",
            "selector": {"attributes": {"color": ["green"]}},
            "action": {"type": "slot", "positions": [1]},
        },
    )
    assert ranked_ids(search(shop))[0] == "sku-0"

    put_items(shop, [{"id": "sku-3", "title": "Shoe 3", "attributes": {"color": "green"}}])

    assert ranked_ids(search(shop))[0] == "sku-3"
