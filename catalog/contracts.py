"""The public JSON contract of the catalog API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from core.schema import NON_BLANK

MAX_ITEMS_PER_UPSERT = 5000

ItemId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256), NON_BLANK
]


def category_path_clean(path: str) -> str:
    """`" Shoes / Running/ "` -> `"Shoes/Running"`: no empty segments, no stray slashes."""
    segments = [segment.strip() for segment in path.strip().strip("/").split("/")]
    if not all(segments):
        raise ValueError("category paths are segments joined by '/', none of them empty")
    return "/".join(segments)


CategoryPath = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    NON_BLANK,
    AfterValidator(category_path_clean),
]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def attribute_value_check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One error at the attribute's key, instead of one per union member named after it."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise PydanticCustomError(
            "attribute_value",
            "An attribute value is a string (at most 500 characters), a boolean, a finite "
            "number or a list of strings.",
        ) from exc


# Integers beyond 2**53 lose precision in JavaScript and beyond 2**63 cannot be read back.
SAFE_INTEGER = 2**53 - 1

AttributeValue = Annotated[
    Annotated[str, StringConstraints(max_length=500)]
    | bool
    | Annotated[int, Field(ge=-SAFE_INTEGER, le=SAFE_INTEGER)]
    | Annotated[float, Field(ge=-SAFE_INTEGER, le=SAFE_INTEGER)]
    | list[Annotated[str, StringConstraints(max_length=500)]],
    WrapValidator(attribute_value_check),
]

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
# Responses declare every field they carry, so the OpenAPI schema describes them exactly.
RESPONSE = ConfigDict(extra="forbid")


class CatalogItemIn(BaseModel):
    model_config = STRICT

    id: ItemId
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NON_BLANK
    ]
    brand: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    categories: list[CategoryPath] = Field(default_factory=list, max_length=20)
    price: float | None = Field(default=None, ge=0, le=1e9)
    in_stock: bool = True
    attributes: dict[AttributeKey, AttributeValue] = Field(default_factory=dict, max_length=50)


class CatalogUpsertIn(BaseModel):
    model_config = STRICT

    items: list[CatalogItemIn] = Field(
        min_length=1,
        max_length=MAX_ITEMS_PER_UPSERT,
        json_schema_extra={"uniqueItems": True},
        description="Each id at most once per request",
    )


class CatalogUpsertOut(BaseModel):
    model_config = RESPONSE

    created: int
    updated: int


class CatalogItemOut(BaseModel):
    model_config = RESPONSE

    id: str
    title: str
    brand: str | None
    categories: list[str]
    price: float | None
    in_stock: bool
    attributes: dict[str, str | bool | int | float | list[str]]
    created_at: datetime
    updated_at: datetime
