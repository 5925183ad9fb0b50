"""`PUT /v1/catalog/items`, `GET` and `DELETE /v1/catalog/items/{id}`."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request

from catalog import services
from catalog.contracts import CatalogItemOut, CatalogUpsertIn, CatalogUpsertOut
from catalog.models import Item
from catalog.selectors import item_of
from core.errors import NotFound
from core.schema import PROBLEM_RESPONSES
from customers.api import CustomerApi, json_response
from customers.models import Scope


def item_as_dict(item: Item) -> dict[str, object]:
    return {
        "id": item.external_id,
        "title": item.title,
        "brand": item.brand or None,
        "categories": item.categories,
        "price": None if item.price is None else float(item.price),
        "in_stock": item.in_stock,
        "attributes": item.attributes,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


class CatalogUpsertApi(CustomerApi):
    required_scope = Scope.CATALOG

    @extend_schema(
        operation_id="catalog_items_upsert",
        summary="Create or update up to 5000 items by id",
        request=CatalogUpsertIn,
        responses={200: CatalogUpsertOut, **PROBLEM_RESPONSES},
        tags=["catalog"],
    )
    def put(self, request: Request) -> HttpResponse:
        body = self.read_json(request, CatalogUpsertIn)
        created, updated = services.items_upsert(customer_id=self.customer_id, items=body.items)
        return json_response({"created": created, "updated": updated})


class CatalogItemApi(CustomerApi):
    required_scope = Scope.CATALOG

    def get_item(self, item_id: str) -> Item:
        item = item_of(customer_id=self.customer_id, item_id=item_id)
        if item is None:
            raise NotFound(f"No item with id {item_id!r}.")
        return item

    @extend_schema(
        operation_id="catalog_item_read",
        summary="Read one item",
        responses={200: CatalogItemOut, **PROBLEM_RESPONSES},
        tags=["catalog"],
    )
    def get(self, request: Request, item_id: str) -> HttpResponse:
        return json_response(item_as_dict(self.get_item(item_id)))

    @extend_schema(
        operation_id="catalog_item_delete",
        summary="Delete one item",
        responses={204: OpenApiResponse(description="Deleted"), **PROBLEM_RESPONSES},
        tags=["catalog"],
    )
    def delete(self, request: Request, item_id: str) -> HttpResponse:
        services.item_delete(item=self.get_item(item_id))
        return HttpResponse(status=204)
