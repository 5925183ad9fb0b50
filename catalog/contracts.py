"""The public JSON contract of the catalog API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_ITEMS_PER_UPSERT = 5000

ItemId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


def category_path_clean(path: str) -> str:
    """`" Shoes / Running/ "` -> `"Shoes/Running"`: no empty segments, no stray slashes."""
    segments = [segment.strip() for segment in path.split("/")]
    if not all(segments):
        raise ValueError("category paths are segments joined by '/', none of them empty")
    return "/".join(segments)


CategoryPath = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(category_path_clean),
]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttributeValue = Annotated[str, StringConstraints(max_length=500)] | bool | int | float | list[str]

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class CatalogItemIn(BaseModel):
    model_config = STRICT

    id: ItemId
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    brand: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    categories: list[CategoryPath] = Field(default_factory=list, max_length=20)
    price: float | None = Field(default=None, ge=0, le=1e9)
    in_stock: bool = True
    attributes: dict[AttributeKey, AttributeValue] = Field(default_factory=dict, max_length=50)


class CatalogUpsertIn(BaseModel):
    model_config = STRICT

    items: list[CatalogItemIn] = Field(min_length=1, max_length=MAX_ITEMS_PER_UPSERT)


class CatalogUpsertOut(BaseModel):
    created: int
    updated: int


class CatalogItemOut(BaseModel):
    id: str
    title: str
    brand: str | None
    categories: list[str]
    price: float | None
    in_stock: bool
    attributes: dict[str, str | bool | int | float | list[str]]
    created_at: datetime
    updated_at: datetime
