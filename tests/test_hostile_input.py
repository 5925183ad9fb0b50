"""Hostile input found by fuzzing /v1: each once answered 500 or lost data. Every case now gets a
4xx problem naming the field, stores nothing, and leaves every later read working."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.test import Client

from catalog.models import Item
from events.models import Event
from merchandising.models import Rule
from ranking.learning import rank_log
from ranking.models import RankLog
from ranking.signals.schema import FEATURES
from tests.conftest import ApiCaller
from tests.test_api_errors import assert_problem, error_fields

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
PAST = "2026-11-20T10:00:00Z"


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "r", "enabled": False, "action": {"type": "hide"}, **fields}


def click(n: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e-{n}", "type": "click", "timestamp": PAST, "item_id": "sku-1", **fields}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/catalog/items", {"items": [{"id": "nul-1", "title": NUL}]}, "items[0].title"),
        ("/v1/catalog/items", {"items": [{"id": NUL, "title": "t"}]}, "items[0].id"),
        (
            "/v1/catalog/items",
            {"items": [{"id": "x", "title": "t", "attributes": {NUL: "v"}}]},
            f"items[0].attributes.{NUL}",
        ),
        ("/v1/rules", rule(name=NUL), "name"),
        ("/v1/rules", rule(selector={"brands": [NUL]}), "selector.brands[0]"),
        ("/v1/rules", rule(context={"device": [NUL]}), "context.device[0]"),
        ("/v1/rank", {"surface": "search", "query": NUL, "items": [{"id": "a"}]}, "query"),
    ],
)
def test_a_nul_character_is_refused_naming_the_field(
    api: ApiCaller, path: str, body: dict[str, Any], field: str
) -> None:
    send = api.put if path == "/v1/catalog/items" else api.post

    response = send(path, body)

    assert error_fields(response) == [field]
    assert response.json()["errors"][0]["code"] == "nul_character"
    assert not Item.objects.exists()
    assert not Rule.objects.exists()


def test_one_nul_event_in_a_batch_of_1000_is_a_400_naming_it_and_stores_nothing(
    api: ApiCaller,
) -> None:
    events = [click(n, user_id=f"u-{n}") for n in range(1000)]
    events[417]["user_id"] = NUL
    events[900]["event_id"] = NUL

    response = api.post("/v1/events", {"events": events})

    assert error_fields(response) == ["events[417].user_id", "events[900].event_id"]
    assert not Event.objects.exists()


def test_a_nul_in_a_path_or_query_parameter_is_a_400_naming_it(api: ApiCaller) -> None:
    assert error_fields(api.get("/v1/catalog/items/a%00b")) == ["item_id"]
    assert error_fields(api.delete("/v1/catalog/items/a%00b")) == ["item_id"]


def test_a_lone_surrogate_is_malformed_json(api: ApiCaller) -> None:
    body = b'{"items": [{"id": "x", "title": "\\ud800"}]}'
    response = api.put("/v1/catalog/items", body)

    assert assert_problem(response, 400)["type"] == "/problems/malformed-json"


def test_numbers_beyond_what_is_stored_are_refused_and_reads_keep_working(
    api: ApiCaller,
) -> None:
    # Raw JSON: the numbers do not fit the 64 bits the test client's encoder writes.
    big = b'{"name": "bigint", "enabled": false, "action": {"type": "hide"},'
    big += b' "selector": {"price_max": 100000000000000000000}}'
    assert error_fields(api.post("/v1/rules", big)) == ["selector.price_max"]
    huge = b'{"items": [{"id": "x", "title": "t", "attributes": {"size": 100000000000000000000}}]}'
    assert error_fields(api.put("/v1/catalog/items", huge)) == ["items[0].attributes.size"]

    exact = {"items": [{"id": "x", "title": "t", "attributes": {"size": 2**53 - 1}}]}
    assert api.put("/v1/catalog/items", exact).status_code == 200
    assert api.get("/v1/catalog/items/x").json()["attributes"]["size"] == 2**53 - 1
    assert api.post("/v1/rules", rule(selector={"price_max": 1e9})).status_code == 201
    assert api.get("/v1/rules").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_an_unknown_api_path_is_a_problem_404_for_every_method(api: ApiCaller, method: str) -> None:
    """Without a CSRF page: Django's CSRF check once answered unknown paths with HTML 403."""
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(
        "/v1/rules/null,null", HTTP_AUTHORIZATION=f"Bearer {api.key}"
    )

    assert assert_problem(response, 404)["type"] == "/problems/not-found"


def test_rules_that_contradict_themselves_are_409_and_rules_that_never_act_warn(
    api: ApiCaller,
) -> None:
    pins = {
        "type": "pin",
        "pins": [{"item_id": "a", "position": 1}, {"item_id": "b", "position": 1}],
    }
    contradiction = api.post("/v1/rules", rule(action=pins))
    assert assert_problem(contradiction, 409)["type"] == "/problems/rule-conflict"

    cap = {"type": "diversity", "field": "brand", "max_items": 5, "top_k": 3}
    saved = api.post("/v1/rules", rule(enabled=True, action=cap))
    assert saved.status_code == 201
    assert "cap_never_applies" in [w["code"] for w in saved.json()["warnings"]]

    inverted = rule(enabled=True, selector={"price_min": 50, "price_max": 10})
    saved = api.post("/v1/rules", inverted)
    assert saved.status_code == 201
    assert "empty_price_range" in [w["code"] for w in saved.json()["warnings"]]


def test_a_bad_rank_log_entry_is_dropped_and_counted_without_losing_its_batch(
    api: ApiCaller,
) -> None:
    """An entry the database cannot hold (here a NUL that reached the log by another door)
    costs only itself: the other entries of its batch are written."""
    for n in range(20):
        rank_log.record(
            customer_id=api.customer.pk,
            request_id=f"r-{n}",
            surface="search",
            query=NUL if n == 7 else "shoes",
            shopper_key="",
            model="config:default",
            item_ids=("a",),
            features=np.zeros((1, len(FEATURES))),
        )
    dropped_before = rank_log.RANK_LOG_BAD_ENTRIES.labels("cleaned")._value.get()

    rank_log.flush()

    assert RankLog.objects.filter(customer=api.customer).count() == 20
    assert RankLog.objects.get(request_id="r-7").query == "ab"
    assert rank_log.RANK_LOG_BAD_ENTRIES.labels("cleaned")._value.get() == dropped_before + 1


def test_an_event_time_with_an_offset_postgresql_cannot_hold_is_stored_in_utc(
    api: ApiCaller,
) -> None:
    """Found by fuzzing: "+20:53" is a valid ISO 8601 offset that PostgreSQL refuses (500)."""
    event = click(1, timestamp="0885-05-27T07:17:43+20:53")
    assert api.post("/v1/events", {"events": [event]}).status_code == 202
    before_year_one = click(2, timestamp="0001-01-01T00:00:00+20:00")
    assert error_fields(api.post("/v1/events", {"events": [before_year_one]})) == [
        "events[0].timestamp"
    ]
