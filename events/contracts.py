"""The public JSON contract of `POST /v1/events`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from catalog.contracts import ItemId
from config.schema import NON_BLANK

MAX_EVENTS_PER_BATCH = 1000
MAX_ITEMS_PER_IMPRESSION = 1000

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
# Responses declare every field they carry, so the OpenAPI schema describes them exactly.
RESPONSE = ConfigDict(extra="forbid")

EventId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), NON_BLANK
]
ShopperId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256), NON_BLANK
]
RequestId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NON_BLANK
]
Surface = Literal["search", "browse", "autocomplete"]
Query = Annotated[str, StringConstraints(max_length=256)]


class EventBase(BaseModel):
    model_config = STRICT

    event_id: EventId
    timestamp: AwareDatetime
    user_id: ShopperId | None = None
    session_id: ShopperId | None = None
    request_id: RequestId | None = None
    surface: Surface | None = None
    query: Query | None = None


class ImpressionIn(EventBase):
    type: Literal["impression"]
    items: list[ItemId] = Field(
        min_length=1,
        max_length=MAX_ITEMS_PER_IMPRESSION,
        json_schema_extra={"uniqueItems": True},
        description="The items shown, in order; each at most once",
    )


class ClickIn(EventBase):
    type: Literal["click"]
    item_id: ItemId
    position: int | None = Field(default=None, ge=1, le=100_000)


class AddToCartIn(EventBase):
    type: Literal["add_to_cart"]
    item_id: ItemId
    quantity: int = Field(default=1, ge=1, le=10_000)


class PurchaseIn(EventBase):
    type: Literal["purchase"]
    item_id: ItemId
    quantity: int = Field(default=1, ge=1, le=10_000)
    price: float = Field(ge=0, le=1e9, description="Unit price paid")


EventIn = Annotated[ImpressionIn | ClickIn | AddToCartIn | PurchaseIn, Field(discriminator="type")]


class EventsIngestIn(BaseModel):
    model_config = STRICT

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsIngestOut(BaseModel):
    model_config = RESPONSE

    accepted: int
    duplicates: int
