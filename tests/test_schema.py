"""/v1/schema and /v1/docs: the OpenAPI document, its local docs page, and real responses
validated against the response schemas the document declares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import orjson
import pytest
from django.test import Client
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.ranking.helpers import ago, put_items, send_events

pytestmark = pytest.mark.django_db

OPERATIONS = {
    "rank",
    "events_ingest",
    "catalog_items_upsert",
    "catalog_item_read",
    "catalog_item_delete",
    "models_list",
    "experiment_results",
    "experiments_list",
}
DOCUMENT_URI = "urn:rankwell:openapi"

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    """RFC 3339 date-time: ISO 8601 with a time zone (jsonschema checks it only with extras)."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


@pytest.fixture
def openapi(client: Client) -> dict[str, Any]:
    response = client.get("/v1/schema")
    assert response.status_code == 200
    return orjson.loads(response.content)


def operations(openapi: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (path, method, operation object)."""
    return {
        operation["operationId"]: (path, method, operation)
        for path, path_item in openapi["paths"].items()
        for method, operation in path_item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def pointer_part(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def assert_matches_schema(openapi: dict[str, Any], operation_id: str, response: Any) -> None:
    """The response's body validates against the schema the document declares for this
    operation, status and content type; `$ref`s resolve against the whole document."""
    path, method, operation = operations(openapi)[operation_id]
    status, media_type = str(response.status_code), response["Content-Type"]
    declared = operation["responses"].get(status, {}).get("content", {})
    assert media_type in declared, f"{operation_id} declares no {status} {media_type} response"
    pointer = "/" + "/".join(
        pointer_part(part)
        for part in ("paths", path, method, "responses", status, "content", media_type, "schema")
    )
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(openapi))
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=registry, format_checker=FORMATS
    )
    validator.validate(orjson.loads(response.content))


# --- the document ------------------------------------------------------------------------------


def test_schema_is_openapi_3_1_json_with_every_v1_operation(client: Client) -> None:
    response = client.get("/v1/schema")

    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    openapi = orjson.loads(response.content)
    assert openapi["openapi"].startswith("3.1.")
    assert set(operations(openapi)) >= OPERATIONS


def test_every_component_is_a_valid_json_schema(openapi: dict[str, Any]) -> None:
    for schema in openapi["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_objects_with_typed_keys_refuse_other_keys(openapi: dict[str, Any]) -> None:
    """A key the contract would refuse (blank, or holding NUL) must not be schema-valid: the
    fuzzer's positive run found one in a rule's selector attributes."""
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "patternProperties" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for schema in openapi["components"]["schemas"].values():
        walk(schema)

    assert found
    for node in found:
        assert node["additionalProperties"] is False
        assert node["propertyNames"]["pattern"] == "^[^\\u0000]*$"


def test_a_rank_candidate_is_described_as_an_object_of_id_and_relevance(
    openapi: dict[str, Any],
) -> None:
    """The candidate is a TypedDict since issue 14 (a model before): described the same."""
    candidate = openapi["components"]["schemas"]["CandidateIn"]

    assert candidate["type"] == "object"
    assert candidate["required"] == ["id"]
    assert candidate["additionalProperties"] is False
    assert set(candidate["properties"]) == {"id", "relevance"}
    assert candidate["properties"]["relevance"] == {
        "anyOf": [{"type": "number"}, {"type": "null"}],
        "default": None,
        "description": "The retriever's score",
        "title": "Relevance",
    }
    request = openapi["components"]["schemas"]["RankInRequest"]
    assert request["properties"]["items"]["items"] == {"$ref": "#/components/schemas/CandidateIn"}


def test_error_responses_are_declared_as_problem_json(openapi: dict[str, Any]) -> None:
    for operation_id in OPERATIONS:
        responses = operations(openapi)[operation_id][2]["responses"]
        errors = {status: r for status, r in responses.items() if status.startswith("4")}
        assert {"400", "401", "403"} <= set(errors), operation_id
        for status, response in errors.items():
            assert set(response["content"]) == {"application/problem+json"}, (operation_id, status)
            assert response["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


# --- the docs page ------------------------------------------------------------------------------


class AssetLinks(HTMLParser):
    """Collects the URLs of scripts, stylesheets and icons a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if tag in ("script", "link") and url:
            self.urls.append(url)


def test_docs_load_every_asset_from_this_server(client: Client) -> None:
    response = client.get("/v1/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = AssetLinks()
    page.feed(response.content.decode())

    assert len(page.urls) >= 3  # the Swagger UI bundle, its preset and its stylesheet
    for url in page.urls:
        assert urlsplit(url)[:2] == ("", ""), f"{url} is not served by us"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.getvalue(), url


def test_docs_load_the_schema_of_this_api(client: Client) -> None:
    assert '"/v1/schema"' in client.get("/v1/docs").content.decode()


# --- real responses against the declared schemas ----------------------------------------------

CATALOG = [
    {
        "id": "sku-1",
        "title": "Pegasus 41",
        "brand": "Nike",
        "categories": ["shoes", "shoes/running"],
        "price": 129.0,
        "in_stock": True,
        "attributes": {"color": "red", "sizes": ["42", "43"], "weight": 0.3, "drop_mm": 10},
    },
    {"id": "sku-2", "title": "Plain tee", "attributes": {"organic": True}},
    {"id": "sku-3", "title": "Trail sock", "brand": "Acme", "price": 9.5, "in_stock": False},
]


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    """A customer with a catalog, some shopper behaviour and published signals."""
    put_items(api, CATALOG)
    send_events(
        api,
        [
            {
                "event_id": "imp-1",
                "type": "impression",
                "timestamp": ago(hours=2),
                "request_id": "r-1",
                "surface": "search",
                "query": "shoes",
                "items": ["sku-1", "sku-2", "sku-3"],
            },
            {
                "event_id": "buy-1",
                "type": "purchase",
                "timestamp": ago(hours=1),
                "user_id": "u-1",
                "request_id": "r-1",
                "item_id": "sku-1",
                "price": 129.0,
            },
        ],
    )
    signals_refresh(customer_id=api.customer.pk)
    return api


RANK_REQUEST = {
    "surface": "search",
    "query": "shoes",
    "user_id": "u-1",
    # sku-9 is not in the catalog and sku-2 has no relevance: both get documented defaults.
    "items": [{"id": "sku-1", "relevance": 3.2}, {"id": "sku-2"}, {"id": "sku-9", "relevance": 1}],
    "context": {"device": "mobile"},
}


def test_a_rank_response_matches_the_schema(shop: ApiCaller, openapi: dict[str, Any]) -> None:
    response = shop.post("/v1/rank", {**RANK_REQUEST, "limit": 2})

    assert response.status_code == 200
    assert_matches_schema(openapi, "rank", response)


def test_an_explained_rank_response_matches_the_schema(
    shop: ApiCaller, openapi: dict[str, Any]
) -> None:
    response = shop.post("/v1/rank", {**RANK_REQUEST, "explain": True})

    assert response.status_code == 200
    assert all("explanation" in item for item in response.json()["items"])
    assert_matches_schema(openapi, "rank", response)


def test_an_events_response_matches_the_schema(shop: ApiCaller, openapi: dict[str, Any]) -> None:
    response = shop.post(
        "/v1/events",
        {
            "events": [
                {
                    "event_id": "click-1",
                    "type": "click",
                    "timestamp": ago(minutes=5),
                    "user_id": "u-1",
                    "item_id": "sku-2",
                    "position": 2,
                },
                {
                    "event_id": "imp-1",  # sent before: a duplicate
                    "type": "impression",
                    "timestamp": ago(hours=2),
                    "items": ["sku-1"],
                },
            ]
        },
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert_matches_schema(openapi, "events_ingest", response)


def test_a_catalog_upsert_response_matches_the_schema(
    api: ApiCaller, openapi: dict[str, Any]
) -> None:
    response = api.put("/v1/catalog/items", {"items": CATALOG})

    assert response.status_code == 200
    assert_matches_schema(openapi, "catalog_items_upsert", response)


@pytest.mark.parametrize("item", CATALOG, ids=[item["id"] for item in CATALOG])
def test_a_catalog_item_matches_the_schema(
    api: ApiCaller, openapi: dict[str, Any], item: dict[str, Any]
) -> None:
    put_items(api, CATALOG)

    response = api.get(f"/v1/catalog/items/{item['id']}")

    assert response.status_code == 200
    assert_matches_schema(openapi, "catalog_item_read", response)


def bad_rank(api: ApiCaller, settings: Any) -> Any:
    return api.post("/v1/rank", {"surface": "search", "items": [{"id": "a"}, {"id": "a"}]})


def malformed_events(api: ApiCaller, settings: Any) -> Any:
    return api.post("/v1/events", b'{"events": [')


def catalog_as_text(api: ApiCaller, settings: Any) -> Any:
    return api.put("/v1/catalog/items", b"{}", content_type="text/plain")


def catalog_too_large(api: ApiCaller, settings: Any) -> Any:
    settings.API_MAX_BODY_BYTES = 10
    return api.put("/v1/catalog/items", {"items": CATALOG})


def rank_without_key(api: ApiCaller, settings: Any) -> Any:
    return Client().post("/v1/rank", b"{}", content_type="application/json")


def events_with_unknown_key(api: ApiCaller, settings: Any) -> Any:
    api.key = api.key[:-4] + "nope"
    return api.post("/v1/events", {"events": []})


def unknown_item(api: ApiCaller, settings: Any) -> Any:
    return api.get("/v1/catalog/items/missing")


def delete_unknown_item(api: ApiCaller, settings: Any) -> Any:
    return api.delete("/v1/catalog/items/missing")


@pytest.mark.parametrize(
    ("operation_id", "request_"),
    [
        pytest.param("rank", bad_rank, id="400-with-field-errors"),
        pytest.param("events_ingest", malformed_events, id="400-malformed-json"),
        pytest.param("catalog_items_upsert", catalog_as_text, id="415"),
        pytest.param("catalog_items_upsert", catalog_too_large, id="413"),
        pytest.param("rank", rank_without_key, id="401"),
        pytest.param("events_ingest", events_with_unknown_key, id="401-unknown-key"),
        pytest.param("catalog_item_read", unknown_item, id="404-read"),
        pytest.param("catalog_item_delete", delete_unknown_item, id="404-delete"),
    ],
)
def test_a_problem_response_matches_the_schema(
    api: ApiCaller,
    openapi: dict[str, Any],
    settings: Any,
    operation_id: str,
    request_: Callable[[ApiCaller, Any], Any],
) -> None:
    response = request_(api, settings)

    assert response["Content-Type"] == "application/problem+json"
    assert_matches_schema(openapi, operation_id, response)


def test_a_forbidden_response_matches_the_schema(
    make_caller: Callable[..., ApiCaller], openapi: dict[str, Any]
) -> None:
    response = make_caller(scopes=["rank"]).post("/v1/events", {"events": []})

    assert response.status_code == 403
    assert_matches_schema(openapi, "events_ingest", response)


def test_every_v1_operation_requires_the_api_key(openapi: dict[str, Any]) -> None:
    scheme = openapi["components"]["securitySchemes"]["ApiKey"]

    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for operation_id, (path, _, operation) in operations(openapi).items():
        if path.startswith("/v1/") and path != "/v1/schema":
            assert operation.get("security") == [{"ApiKey": []}], operation_id


def test_rule_responses_match_the_schema(api: ApiCaller, openapi: dict[str, Any]) -> None:
    rule = {
        "name": "pin",
        "windows": [{"start": "2026-01-01T00:00:00Z"}],
        "action": {"type": "pin", "pins": [{"item_id": "sku-1", "position": 1}]},
    }
    created = api.post("/v1/rules", rule)
    conflicting = api.post("/v1/rules", rule | {"name": "again"})

    assert_matches_schema(openapi, "rules_create", created)
    assert_matches_schema(openapi, "rules_create", conflicting)
    assert_matches_schema(openapi, "rules_list", api.get("/v1/rules"))
    assert_matches_schema(openapi, "rules_read", api.get(f"/v1/rules/{created.json()['id']}"))
