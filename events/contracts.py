"""The public JSON contract of `POST /v1/events`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from catalog.contracts import ItemId
from core.schema import NON_BLANK, WHOLE_NUMBER

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


def _in_utc(value: datetime) -> datetime:
    """Stored in UTC: PostgreSQL holds offsets only up to 16 hours, and a time the offset moves
    before year 1 cannot be stored at all."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is before year 1 in UTC") from None


EventTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class EventBase(BaseModel):
    model_config = STRICT

    event_id: EventId
    timestamp: EventTime
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
    position: Annotated[int, Field(ge=1, le=100_000), WHOLE_NUMBER] | None = None


class AddToCartIn(EventBase):
    type: Literal["add_to_cart"]
    item_id: ItemId
    quantity: Annotated[int, Field(ge=1, le=10_000), WHOLE_NUMBER] = 1


class PurchaseIn(EventBase):
    type: Literal["purchase"]
    item_id: ItemId
    quantity: Annotated[int, Field(ge=1, le=10_000), WHOLE_NUMBER] = 1
    price: float = Field(ge=0, le=1e9, description="Unit price paid")


EventIn = Annotated[ImpressionIn | ClickIn | AddToCartIn | PurchaseIn, Field(discriminator="type")]


class EventsIngestIn(BaseModel):
    model_config = STRICT

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsIngestOut(BaseModel):
    model_config = RESPONSE

    accepted: int
    duplicates: int
