"""PUT /v1/catalog/items, GET and DELETE /v1/catalog/items/{id}: upsert, read, delete, tenancy."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ApiCaller

pytestmark = pytest.mark.django_db

ITEM_FIELDS = ("id", "title", "brand", "categories", "price", "in_stock", "attributes")


def item(item_id: str = "sku-1", **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "title": "Pegasus 41",
        "brand": "Nike",
        "categories": ["shoes", "shoes/running"],
        "price": 129.0,
        "in_stock": True,
        "attributes": {"color": "red", "sizes": ["42", "43"], "waterproof": False},
        **overrides,
    }


def item_url(item_id: str) -> str:
    return "/v1/catalog/items/" + quote(item_id, safe="")


def upsert(api: ApiCaller, *items: dict[str, Any]) -> dict[str, Any]:
    response = api.put("/v1/catalog/items", {"items": list(items)})
    assert response.status_code == 200, response.content
    return response.json()


def read(api: ApiCaller, item_id: str) -> dict[str, Any]:
    response = api.get(item_url(item_id))
    assert response.status_code == 200, response.content
    return response.json()


def as_sent(body: dict[str, Any]) -> dict[str, Any]:
    return {field: body[field] for field in ITEM_FIELDS}


def test_put_creates_items_then_updates_them_by_id(api: ApiCaller) -> None:
    assert upsert(api, item("sku-1"), item("sku-2")) == {"created": 2, "updated": 0}

    counts = upsert(
        api,
        item("sku-2", title="Pegasus 42", price=99.5, in_stock=False, attributes={}),
        item("sku-3"),
    )

    assert counts == {"created": 1, "updated": 1}
    updated = read(api, "sku-2")
    assert (updated["title"], updated["price"], updated["in_stock"], updated["attributes"]) == (
        "Pegasus 42",
        99.5,
        False,
        {},
    )
    assert read(api, "sku-1")["title"] == "Pegasus 41"
    assert read(api, "sku-3")["title"] == "Pegasus 41"


def test_an_update_keeps_the_creation_time(api: ApiCaller) -> None:
    upsert(api, item("sku-1"))
    created_at = read(api, "sku-1")["created_at"]

    upsert(api, item("sku-1", title="Renamed"))

    assert read(api, "sku-1")["created_at"] == created_at


def test_get_returns_the_item_as_sent(api: ApiCaller) -> None:
    sent = item("sku-1")
    upsert(api, sent)

    assert as_sent(read(api, "sku-1")) == sent


def test_optional_fields_default_when_left_out(api: ApiCaller) -> None:
    upsert(api, {"id": "bare", "title": "Plain tee"})

    assert as_sent(read(api, "bare")) == {
        "id": "bare",
        "title": "Plain tee",
        "brand": None,
        "categories": [],
        "price": None,
        "in_stock": True,
        "attributes": {},
    }


def test_category_paths_are_normalised(api: ApiCaller) -> None:
    upsert(api, item(categories=[" shoes ", " shoes / running/ ", "/shoes/trail"]))

    assert read(api, "sku-1")["categories"] == ["shoes", "shoes/running", "shoes/trail"]


def test_a_category_repeated_after_normalising_is_kept_once(api: ApiCaller) -> None:
    upsert(api, item(categories=["shoes/running", "shoes / running"]))

    assert read(api, "sku-1")["categories"] == ["shoes/running"]


def test_a_category_path_with_an_empty_segment_is_refused_naming_it(api: ApiCaller) -> None:
    response = api.put("/v1/catalog/items", {"items": [item(categories=["shoes", "shoes//run"])]})

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["items[0].categories[1]"]
    assert api.get(item_url("sku-1")).status_code == 404


def test_delete_removes_the_item(api: ApiCaller) -> None:
    upsert(api, item("sku-1"))

    deleted = api.delete(item_url("sku-1"))

    assert deleted.status_code == 204
    response = api.get(item_url("sku-1"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert "sku-1" in response.json()["detail"]


def test_deleting_an_unknown_item_answers_404(api: ApiCaller) -> None:
    response = api.delete(item_url("never-sent"))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("item_id", ["men/shoes/sku-1", "sku 1", "röd sko/42?x=1#a"])
def test_ids_with_slashes_spaces_and_symbols_work_url_encoded(api: ApiCaller, item_id: str) -> None:
    upsert(api, item(item_id), item("plain"))

    assert read(api, item_id)["id"] == item_id
    assert api.delete(item_url(item_id)).status_code == 204
    assert api.get(item_url(item_id)).status_code == 404
    assert read(api, "plain")["id"] == "plain"


def test_the_same_id_in_two_tenants_is_two_separate_items(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    upsert(api, item("sku-1", title="A's shoe", price=10.0))

    assert upsert(other_api, item("sku-1", title="B's shoe", price=20.0)) == {
        "created": 1,
        "updated": 0,
    }

    assert (read(api, "sku-1")["title"], read(api, "sku-1")["price"]) == ("A's shoe", 10.0)
    assert (read(other_api, "sku-1")["title"], read(other_api, "sku-1")["price"]) == (
        "B's shoe",
        20.0,
    )


def test_another_tenant_cannot_read_or_delete_an_item(api: ApiCaller, other_api: ApiCaller) -> None:
    upsert(api, item("a-only"))

    read_response = other_api.get(item_url("a-only"))
    delete_response = other_api.delete(item_url("a-only"))

    assert read_response.status_code == 404
    assert "Nike" not in read_response.content.decode()
    assert delete_response.status_code == 404
    assert as_sent(read(api, "a-only")) == item("a-only")


def test_deleting_in_one_tenant_leaves_the_other_tenants_item(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    upsert(api, item("sku-1"))
    upsert(other_api, item("sku-1"))

    assert other_api.delete(item_url("sku-1")).status_code == 204

    assert as_sent(read(api, "sku-1")) == item("sku-1")
