"""Bad input to /v1: every refusal is a 4xx problem+json naming the field, and stores nothing.

Each case starts from a valid body (see `test_the_bodies_the_cases_start_from_are_valid`) and
breaks one thing, so the error list must name exactly that field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.test import Client

from catalog.models import Item
from core.problems import PROBLEM_TYPES
from customers.models import Scope
from events.models import Event
from tests.conftest import ApiCaller

pytestmark = pytest.mark.django_db

PROBLEM_JSON = "application/problem+json"
PAST = "2026-11-20T10:00:00Z"
FAR_FUTURE = "2099-01-01T00:00:00Z"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].removeprefix("/problems/") in PROBLEM_TYPES
    assert problem["title"]
    assert problem["detail"]
    return problem


def error_fields(response: Any) -> list[str]:
    problem = assert_problem(response, 400)
    assert problem["type"] == "/problems/invalid-request"
    return [error["field"] for error in problem["errors"]]


# --- valid bodies, and ways to break them ------------------------------------------------------


def rank_body(**fields: Any) -> dict[str, Any]:
    return {
        "surface": "browse",
        "items": [{"id": "sku-0", "relevance": 2.5}, {"id": "sku-1", "relevance": 1.0}],
        **fields,
    }


def rank_items(*items: dict[str, Any]) -> dict[str, Any]:
    return rank_body(items=[{"id": "sku-0", "relevance": 2.5}, *items])


def event(n: int, type_: str = "click", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"e-{n}",
        "type": type_,
        "timestamp": PAST,
        "user_id": "u-1",
    }
    if type_ == "impression":
        base.update(request_id="r-1", surface="search", query="shoes", items=["sku-0", "sku-1"])
    else:
        base["item_id"] = "sku-0"
    if type_ == "purchase":
        base["price"] = 20.0
    return {**base, **fields}


def events_body(bad_event: dict[str, Any]) -> dict[str, Any]:
    """Two valid events, then the one under test at index 2."""
    return {"events": [event(0, "impression"), event(1), bad_event]}


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def catalog_item(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"sku-{n}",
        "title": f"Item {n}",
        "brand": "Acme",
        "categories": ["shoes", "shoes/running"],
        "price": 59.9,
        "in_stock": True,
        "attributes": {"color": "red"},
        **fields,
    }


def catalog_body(bad_item: dict[str, Any]) -> dict[str, Any]:
    """One valid item, then the one under test at index 1."""
    return {"items": [catalog_item(0), bad_item]}


def with_number(body: dict[str, Any], literal: str) -> bytes:
    """`body` as JSON with each `"NUMBER"` written as `literal`, e.g. NaN, which JSON lacks."""
    return orjson.dumps(body).replace(b'"NUMBER"', literal.encode())


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]

RANK = ("post", "/v1/rank")
EVENTS = ("post", "/v1/events")
CATALOG = ("put", "/v1/catalog/items")

VALID_BODIES = {
    "rank": (RANK, rank_body()),
    "events": (EVENTS, events_body(event(2, "purchase"))),
    "catalog": (CATALOG, catalog_body(catalog_item(1))),
}


def send(api: ApiCaller, method_and_path: tuple[str, str], body: Any, **extra: Any) -> Any:
    method, path = method_and_path
    return getattr(api, method)(path, body, **extra)


@pytest.mark.parametrize("endpoint", list(VALID_BODIES))
def test_the_bodies_the_cases_start_from_are_valid(api: ApiCaller, endpoint: str) -> None:
    method_and_path, body = VALID_BODIES[endpoint]

    assert send(api, method_and_path, body).status_code in (200, 202)


# --- field errors -----------------------------------------------------------------------------

RANK_CASES = [
    pytest.param(rank_body(surface="homepage"), ["surface"], id="unknown-surface"),
    pytest.param(without(rank_body(), "surface"), ["surface"], id="missing-surface"),
    pytest.param(rank_body(surface=1), ["surface"], id="number-for-surface"),
    pytest.param(without(rank_body(), "items"), ["items"], id="missing-items"),
    pytest.param(rank_body(surface="search"), ["query"], id="search-without-query"),
    pytest.param(rank_body(surface="autocomplete", query="  "), ["query"], id="blank-query"),
    pytest.param(rank_body(query=42), ["query"], id="number-for-query"),
    pytest.param(
        rank_items({"id": "sku-1", "relevance": "12.3"}),
        ["items[1].relevance"],
        id="string-for-relevance",
    ),
    pytest.param(
        rank_items({"id": "sku-1", "relevance": True}),
        ["items[1].relevance"],
        id="boolean-for-relevance",
    ),
    pytest.param(rank_items({"id": 17}), ["items[1].id"], id="number-for-id"),
    pytest.param(rank_items({"relevance": 1.0}), ["items[1].id"], id="candidate-without-id"),
    pytest.param(rank_items({"id": ""}), ["items[1].id"], id="empty-id"),
    pytest.param(rank_items({"id": "x" * 257}), ["items[1].id"], id="id-too-long"),
    pytest.param(rank_items("sku-1"), ["items[1]"], id="string-for-candidate"),
    pytest.param(rank_body(items={"id": "sku-0"}), ["items"], id="object-for-items"),
    pytest.param(rank_body(items=[]), ["items"], id="no-candidates"),
    pytest.param(
        rank_body(items=[{"id": f"sku-{n}"} for n in range(1001)]),
        ["items"],
        id="more-candidates-than-the-customer-allows",
    ),
    pytest.param(
        rank_items({"id": "sku-1"}, {"id": "sku-0"}),
        ["items[0].id", "items[2].id"],
        id="duplicate-candidate-ids",
    ),
    pytest.param(
        rank_items({"id": " sku-0 "}),
        ["items[0].id", "items[1].id"],
        id="candidate-ids-equal-once-trimmed",
    ),
    pytest.param(rank_body(limit="10"), ["limit"], id="string-for-limit"),
    pytest.param(rank_body(limit=2.5), ["limit"], id="fraction-for-limit"),
    pytest.param(rank_body(limit=0), ["limit"], id="zero-limit"),
    pytest.param(rank_body(explain="yes"), ["explain"], id="string-for-explain"),
    pytest.param(rank_body(context={"device": 1}), ["context.device"], id="number-in-context"),
    pytest.param(rank_body(context=["mobile"]), ["context"], id="list-for-context"),
    pytest.param(rank_body(colour="red"), ["colour"], id="unknown-field"),
    pytest.param(
        rank_items({"id": "sku-1", "score": 1}), ["items[1].score"], id="unknown-candidate-field"
    ),
    *(
        pytest.param(
            with_number(rank_items({"id": "sku-1", "relevance": "NUMBER"}), literal),
            ["items[1].relevance"],
            id=f"{literal}-relevance",
        )
        for literal in NON_FINITE
    ),
]


@pytest.mark.parametrize(("body", "fields"), RANK_CASES)
def test_rank_names_the_bad_field(api: ApiCaller, body: Any, fields: list[str]) -> None:
    assert error_fields(api.post("/v1/rank", body)) == fields


def test_rank_refuses_bad_candidates_with_the_published_codes_and_details(api: ApiCaller) -> None:
    """A candidate that is no object, a bad id, a missing id, an unknown field: each code and
    message as published (the candidates were pydantic models before issue 14)."""
    bad = ["sku-1", [], {"id": 17}, {"relevance": 1.0}, {"id": " "}, {"id": "sku-2", "score": 1}]

    problem = assert_problem(api.post("/v1/rank", rank_items(*bad)), 400)

    assert problem["detail"] == (
        "Invalid fields: items[1], items[2], items[3].id, items[4].id, items[5].id, items[6].score"
    )
    assert [(e["field"], e["pointer"], e["code"], e["detail"]) for e in problem["errors"]] == [
        ("items[1]", "/items/1", "model_type", "Input should be an object"),
        ("items[2]", "/items/2", "model_type", "Input should be an object"),
        ("items[3].id", "/items/3/id", "string_type", "Input should be a valid string"),
        ("items[4].id", "/items/4/id", "missing", "Field required"),
        (
            "items[5].id",
            "/items/5/id",
            "string_too_short",
            "String should have at least 1 character",
        ),
        ("items[6].score", "/items/6/score", "extra_forbidden", "Extra inputs are not permitted"),
    ]


EVENT_CASES = [
    pytest.param(events_body(event(2, "view")), ["events[2].type"], id="unknown-event-type"),
    pytest.param(
        events_body(without(event(2), "type")), ["events[2].type"], id="missing-event-type"
    ),
    pytest.param(events_body(event(2, type_=3)), ["events[2].type"], id="number-for-type"),
    pytest.param(
        events_body(without(event(2), "event_id")), ["events[2].event_id"], id="missing-event-id"
    ),
    pytest.param(
        events_body(event(2, event_id=7)), ["events[2].event_id"], id="number-for-event-id"
    ),
    pytest.param(
        events_body(without(event(2), "timestamp")), ["events[2].timestamp"], id="missing-timestamp"
    ),
    pytest.param(
        events_body(event(2, timestamp="2026-11-20T10:00:00")),
        ["events[2].timestamp"],
        id="timestamp-without-timezone",
    ),
    pytest.param(
        events_body(event(2, timestamp=FAR_FUTURE)),
        ["events[2].timestamp"],
        id="timestamp-far-in-the-future",
    ),
    pytest.param(
        events_body(event(2, timestamp="yesterday")),
        ["events[2].timestamp"],
        id="timestamp-not-a-date",
    ),
    pytest.param(
        events_body(event(2, timestamp=1764150000)),
        ["events[2].timestamp"],
        id="number-for-timestamp",
    ),
    pytest.param(
        events_body(without(event(2), "item_id")), ["events[2].item_id"], id="click-without-item"
    ),
    pytest.param(
        events_body(event(2, position=1.5)), ["events[2].position"], id="fraction-for-position"
    ),
    pytest.param(
        events_body(event(2, position="1")), ["events[2].position"], id="string-for-position"
    ),
    pytest.param(
        events_body(without(event(2, "purchase"), "price")),
        ["events[2].price"],
        id="purchase-without-price",
    ),
    pytest.param(
        events_body(event(2, "purchase", price="20")), ["events[2].price"], id="string-for-price"
    ),
    pytest.param(
        events_body(event(2, "purchase", price=-1)), ["events[2].price"], id="negative-price"
    ),
    pytest.param(
        events_body(event(2, "add_to_cart", quantity="2")),
        ["events[2].quantity"],
        id="string-for-quantity",
    ),
    pytest.param(
        events_body(event(2, "add_to_cart", quantity=0)), ["events[2].quantity"], id="zero-quantity"
    ),
    pytest.param(events_body(event(2, user_id=42)), ["events[2].user_id"], id="number-for-user-id"),
    pytest.param(
        events_body(event(2, surface="homepage")), ["events[2].surface"], id="unknown-surface"
    ),
    pytest.param(
        events_body(event(2, colour="red")), ["events[2].colour"], id="unknown-event-field"
    ),
    pytest.param(
        events_body(event(2, "impression", item_id="sku-0")),
        ["events[2].item_id"],
        id="field-of-another-event-type",
    ),
    pytest.param(
        events_body(event(2, "impression", items=[])),
        ["events[2].items"],
        id="impression-of-no-items",
    ),
    pytest.param(
        events_body(event(2, "impression", items=[f"s{n}" for n in range(1001)])),
        ["events[2].items"],
        id="impression-of-too-many-items",
    ),
    pytest.param(
        events_body(event(2, "impression", items=["sku-0", "sku-1", "sku-0"])),
        ["events[2].items"],
        id="duplicate-items-in-one-impression",
    ),
    pytest.param(
        events_body(event(2, "impression", items="sku-0")),
        ["events[2].items"],
        id="string-for-impression-items",
    ),
    pytest.param(events_body("click"), ["events[2]"], id="string-for-event"),
    pytest.param({"events": []}, ["events"], id="no-events"),
    pytest.param({"events": [event(n) for n in range(1001)]}, ["events"], id="too-many-events"),
    pytest.param({}, ["events"], id="missing-events"),
    pytest.param({"events": [event(0)], "source": "web"}, ["source"], id="unknown-field"),
    *(
        pytest.param(
            with_number(events_body(event(2, "purchase", price="NUMBER")), literal),
            ["events[2].price"],
            id=f"{literal}-price",
        )
        for literal in NON_FINITE
    ),
]


@pytest.mark.parametrize(("body", "fields"), EVENT_CASES)
def test_events_names_the_bad_field(api: ApiCaller, body: Any, fields: list[str]) -> None:
    assert error_fields(api.post("/v1/events", body)) == fields


def test_events_lists_every_bad_event_by_index(api: ApiCaller) -> None:
    body = {"events": [event(0, timestamp="noon"), event(1), event(2, "teleport")]}

    assert error_fields(api.post("/v1/events", body)) == ["events[0].timestamp", "events[2].type"]


CATALOG_CASES = [
    pytest.param(catalog_body(without(catalog_item(1), "id")), ["items[1].id"], id="missing-id"),
    pytest.param(catalog_body(catalog_item(1, id=1)), ["items[1].id"], id="number-for-id"),
    pytest.param(catalog_body(catalog_item(1, id="  ")), ["items[1].id"], id="blank-id"),
    pytest.param(
        catalog_body(without(catalog_item(1), "title")), ["items[1].title"], id="missing-title"
    ),
    pytest.param(
        catalog_body(catalog_item(1, title=12)), ["items[1].title"], id="number-for-title"
    ),
    pytest.param(
        catalog_body(catalog_item(1, price="59.90")), ["items[1].price"], id="string-for-price"
    ),
    pytest.param(catalog_body(catalog_item(1, price=-1)), ["items[1].price"], id="negative-price"),
    pytest.param(
        catalog_body(catalog_item(1, in_stock="true")),
        ["items[1].in_stock"],
        id="string-for-in-stock",
    ),
    pytest.param(
        catalog_body(catalog_item(1, brand=["Acme"])), ["items[1].brand"], id="list-for-brand"
    ),
    pytest.param(
        catalog_body(catalog_item(1, categories="shoes")),
        ["items[1].categories"],
        id="string-for-categories",
    ),
    pytest.param(
        catalog_body(catalog_item(1, categories=["shoes", "shoes//running"])),
        ["items[1].categories[1]"],
        id="category-path-with-empty-segment",
    ),
    pytest.param(
        catalog_body(catalog_item(1, attributes={"size": {"eu": 42}})),
        ["items[1].attributes.size"],
        id="object-for-attribute-value",
    ),
    pytest.param(
        catalog_body(catalog_item(1, attributes=["red"])),
        ["items[1].attributes"],
        id="list-for-attributes",
    ),
    pytest.param(
        catalog_body(catalog_item(1, colour="red")), ["items[1].colour"], id="unknown-item-field"
    ),
    pytest.param(
        catalog_body(catalog_item(0)), ["items[0].id", "items[1].id"], id="duplicate-item-ids"
    ),
    pytest.param(
        catalog_body(catalog_item(1, id=" sku-0")),
        ["items[0].id", "items[1].id"],
        id="item-ids-equal-once-trimmed",
    ),
    pytest.param({"items": []}, ["items"], id="no-items"),
    pytest.param(
        {"items": [{"id": f"s{n}", "title": "t"} for n in range(5001)]},
        ["items"],
        id="too-many-items",
    ),
    pytest.param({}, ["items"], id="missing-items"),
    pytest.param({"items": [catalog_item(0)], "mode": "replace"}, ["mode"], id="unknown-field"),
    *(
        pytest.param(
            with_number(catalog_body(catalog_item(1, price="NUMBER")), literal),
            ["items[1].price"],
            id=f"{literal}-price",
        )
        for literal in NON_FINITE
    ),
    pytest.param(
        with_number(catalog_body(catalog_item(1, attributes={"weight": "NUMBER"})), "NaN"),
        ["items[1].attributes.weight"],
        id="NaN-attribute-value",
    ),
]


@pytest.mark.parametrize(("body", "fields"), CATALOG_CASES)
def test_catalog_upsert_names_the_bad_field(api: ApiCaller, body: Any, fields: list[str]) -> None:
    assert error_fields(api.put("/v1/catalog/items", body)) == fields


# --- bodies that are not JSON objects ---------------------------------------------------------

ENDPOINTS = list(VALID_BODIES)

NOT_JSON = [
    pytest.param(b'{"items": [', id="truncated-json"),
    pytest.param(b"{'items': []}", id="single-quoted-json"),
    pytest.param(b'{"items": []} trailing', id="trailing-garbage"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b" \n ", id="blank-body"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", NOT_JSON)
def test_a_body_that_is_not_json_is_malformed(api: ApiCaller, endpoint: str, body: bytes) -> None:
    # Set by hand: Django's test client drops the content type of an empty body.
    response = send(api, VALID_BODIES[endpoint][0], body, CONTENT_TYPE="application/json")

    assert assert_problem(response, 400)["type"] == "/problems/malformed-json"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b'"rank"', id="string"),
        pytest.param(b"null", id="null"),
    ],
)
def test_a_json_body_that_is_not_an_object_is_refused(
    api: ApiCaller, endpoint: str, body: bytes
) -> None:
    assert error_fields(send(api, VALID_BODIES[endpoint][0], body)) == ["body"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param("application/xml", id="xml"),
    ],
)
def test_a_body_that_is_not_sent_as_json_is_unsupported(
    api: ApiCaller, endpoint: str, content_type: str
) -> None:
    method_and_path, body = VALID_BODIES[endpoint]

    response = send(api, method_and_path, body, content_type=content_type)

    assert assert_problem(response, 415)["type"] == "/problems/unsupported-media-type"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_without_a_content_type_is_unsupported_and_told_why(
    api: ApiCaller, endpoint: str
) -> None:
    method_and_path, body = VALID_BODIES[endpoint]

    response = send(api, method_and_path, orjson.dumps(body), content_type="")

    problem = assert_problem(response, 415)
    also = " (or application/x-protobuf)" if endpoint in ("rank", "events") else ""
    assert (
        problem["detail"]
        == f"Send the body as application/json{also}, and name it in Content-Type."
    )


@pytest.mark.parametrize(
    "path", ["/v1/rules", "/v1/models", "/v1/experiments", "/v1/experiments/1/results"]
)
def test_an_accept_header_the_api_cannot_answer_is_a_problem_406(api: ApiCaller, path: str) -> None:
    response = api.client.get(path, HTTP_AUTHORIZATION=f"Bearer {api.key}", HTTP_ACCEPT="text/html")

    assert assert_problem(response, 406)["type"] == "/problems/not-acceptable"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_over_the_size_limit_is_refused_with_413(
    api: ApiCaller, endpoint: str, settings: Any
) -> None:
    settings.API_MAX_BODY_BYTES = 64
    method_and_path, body = VALID_BODIES[endpoint]

    response = send(api, method_and_path, body)

    assert assert_problem(response, 413)["type"] == "/problems/body-too-large"
    assert Event.objects.count() == 0
    assert Item.objects.count() == 0


def test_a_body_exactly_at_the_size_limit_is_read(api: ApiCaller, settings: Any) -> None:
    body = b'{"surface": "browse", "items": [{"id": "sku-0"}]}'
    settings.API_MAX_BODY_BYTES = len(body)

    assert api.post("/v1/rank", body).status_code == 200


# --- nothing half-stored ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_event",
    [
        pytest.param(event(9, "view"), id="unknown-type"),
        pytest.param(event(9, timestamp="2026-11-20T10:00:00"), id="timestamp-without-timezone"),
        pytest.param(event(9, timestamp=FAR_FUTURE), id="timestamp-in-the-future"),
        pytest.param(event(9, "impression", items=["sku-0", "sku-0"]), id="duplicate-items"),
        pytest.param(without(event(9, "purchase"), "price"), id="purchase-without-price"),
    ],
)
def test_a_batch_with_one_bad_event_stores_none_of_it(
    api: ApiCaller, bad_event: dict[str, Any]
) -> None:
    earlier = api.post("/v1/events", {"events": [event(100, "impression", request_id="r-0")]})
    assert earlier.status_code == 202
    stored_before = Event.objects.count()
    good = [event(1, "impression"), event(2), event(3, "add_to_cart"), event(4, "purchase")]

    refused = api.post("/v1/events", {"events": [*good, bad_event]})

    assert_problem(refused, 400)
    assert Event.objects.count() == stored_before
    # The good events were not recorded: sending them again is not reported as duplicates.
    assert api.post("/v1/events", {"events": good}).json() == {"accepted": 4, "duplicates": 0}


@pytest.mark.parametrize(
    "bad_item",
    [
        pytest.param(catalog_item(9, price="cheap"), id="string-for-price"),
        pytest.param(catalog_item(0, title="Same id as the first"), id="duplicate-id"),
        pytest.param(catalog_item(9, attributes={"size": None}), id="null-attribute-value"),
    ],
)
def test_an_upsert_with_one_bad_item_stores_none_of_it(
    api: ApiCaller, bad_item: dict[str, Any]
) -> None:
    assert api.put("/v1/catalog/items", {"items": [catalog_item(5)]}).status_code == 200
    stored_before = Item.objects.count()

    refused = api.put("/v1/catalog/items", {"items": [catalog_item(0), catalog_item(1), bad_item]})

    assert_problem(refused, 400)
    assert Item.objects.count() == stored_before
    assert_problem(api.get("/v1/catalog/items/sku-0"), 404)


# --- authentication, scopes, paths and methods ------------------------------------------------

# (method, path, the scope it needs, a valid body)
ALL_OPERATIONS = [
    pytest.param("post", "/v1/rank", "rank", VALID_BODIES["rank"][1], id="rank"),
    pytest.param("post", "/v1/events", "events", VALID_BODIES["events"][1], id="events"),
    pytest.param(
        "put", "/v1/catalog/items", "catalog", VALID_BODIES["catalog"][1], id="catalog-upsert"
    ),
    pytest.param("get", "/v1/catalog/items/sku-0", "catalog", None, id="catalog-read"),
    pytest.param("delete", "/v1/catalog/items/sku-0", "catalog", None, id="catalog-delete"),
    pytest.param("get", "/v1/experiments/1/results", "rank", None, id="experiment-results"),
    pytest.param("get", "/v1/experiments", "rank", None, id="experiments-list"),
]


def call(client: Client, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """One call; PUT and POST send `body` (an empty object by default) as JSON."""
    if method in ("post", "put"):
        data = orjson.dumps(body if body is not None else {})
        return getattr(client, method)(path, data, content_type="application/json", **headers)
    return getattr(client, method)(path, **headers)


@pytest.mark.parametrize(("method", "path", "scope", "body"), ALL_OPERATIONS)
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-authorization-header"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-instead-of-bearer"),
        pytest.param("Bearer", id="bearer-without-a-key"),
        pytest.param("Bearer    ", id="bearer-with-a-blank-key"),
        pytest.param("rw_live_123", id="key-without-scheme"),
        pytest.param("Bearer rw_not_a_real_key", id="unknown-key"),
    ],
)
def test_a_call_without_a_valid_key_is_unauthenticated(
    db: None, method: str, path: str, scope: str, body: Any, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = call(Client(), method, path, body, **headers)

    assert assert_problem(response, 401)["type"] == "/problems/unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "scope", "body"), ALL_OPERATIONS)
def test_a_key_without_the_scope_is_forbidden(
    make_caller: Callable[..., ApiCaller], method: str, path: str, scope: str, body: Any
) -> None:
    caller = make_caller(scopes=[s for s in Scope.values if s != scope])

    response = call(caller.client, method, path, body, HTTP_AUTHORIZATION=f"Bearer {caller.key}")

    problem = assert_problem(response, 403)
    assert problem["type"] == "/problems/forbidden"
    assert f"`{scope}`" in problem["detail"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/nothing-here", id="unknown-resource"),
        pytest.param("/v1/rank/", id="trailing-slash"),
        pytest.param("/v1/ranking", id="near-miss"),
        pytest.param("/v1/catalog", id="collection-parent"),
        pytest.param("/v1/", id="api-root"),
    ],
)
def test_an_unknown_api_path_is_a_problem_404(api: ApiCaller, path: str) -> None:
    response = api.get(path)

    assert assert_problem(response, 404)["type"] == "/problems/not-found"
    assert path in response.json()["detail"]


def test_an_unknown_catalog_item_is_a_problem_404(api: ApiCaller) -> None:
    response = api.get("/v1/catalog/items/no-such-sku")

    assert assert_problem(response, 404)["type"] == "/problems/not-found"
    assert "no-such-sku" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("get", "/v1/rank", "POST", id="get-rank"),
        pytest.param("put", "/v1/rank", "POST", id="put-rank"),
        pytest.param("get", "/v1/events", "POST", id="get-events"),
        pytest.param("delete", "/v1/events", "POST", id="delete-events"),
        pytest.param("post", "/v1/catalog/items", "PUT", id="post-catalog-items"),
        pytest.param("get", "/v1/catalog/items", "PUT", id="get-catalog-items"),
        pytest.param("put", "/v1/catalog/items/sku-0", "GET", id="put-one-catalog-item"),
        pytest.param("post", "/v1/catalog/items/sku-0", "DELETE", id="post-one-catalog-item"),
    ],
)
def test_a_wrong_method_is_a_problem_405_naming_the_allowed_ones(
    api: ApiCaller, method: str, path: str, allowed: str
) -> None:
    response = call(api.client, method, path, HTTP_AUTHORIZATION=f"Bearer {api.key}")

    assert assert_problem(response, 405)["type"] == "/problems/method-not-allowed"
    assert allowed in response["Allow"]


@pytest.mark.parametrize("slug", sorted(PROBLEM_TYPES))
def test_every_problem_type_resolves_to_a_page(client: Client, slug: str) -> None:
    response = client.get(f"/problems/{slug}")

    assert response.status_code == 200
    assert PROBLEM_TYPES[slug][0] in response.content.decode()
