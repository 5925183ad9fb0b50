"""The protobuf encoding of /v1/rank and /v1/events (wire/rankwell/v1/*.proto), beside JSON.

A request sent as `application/x-protobuf` is decoded and turned into the JSON contract's
document, field by field under the same names, so it passes exactly the JSON path's validation
and its errors name the same fields. An answer is encoded as protobuf when the client's Accept
prefers it (DRF's content negotiation, with `ProtobufRenderer` among the view's renderers);
errors stay problem+json.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from rest_framework.renderers import BaseRenderer

from core.errors import FieldError, MalformedProtobuf, invalid_request
from wire.rankwell.v1 import events_pb2, rank_pb2

PROTOBUF = "application/x-protobuf"


def schema_extension(proto: str, request: str, response: str) -> dict[str, Any]:
    """What the OpenAPI operation says of its protobuf encoding (an `x-protobuf` extension and
    a paragraph of its description). The bodies stay described as JSON: the messages are the
    .proto file's, published at /v1/proto/."""
    return {
        "description": (
            f"Also in protobuf: send `Content-Type: {PROTOBUF}` with a `rankwell.v1.{request}` "
            f"and/or `Accept: {PROTOBUF}` for a `rankwell.v1.{response}` "
            f"([/v1/proto/{proto}](/v1/proto/{proto})). The fields and their validation are the "
            "JSON body's, under the same names; errors are problem+json in either encoding."
        ),
        "extensions": {
            "x-protobuf": {
                "media_type": PROTOBUF,
                "proto": f"/v1/proto/{proto}",
                "request": f"rankwell.v1.{request}",
                "response": f"rankwell.v1.{response}",
            }
        },
    }


class ProtobufRenderer(BaseRenderer):
    """Lets content negotiation accept `application/x-protobuf`; the views encode the answer."""

    media_type = PROTOBUF
    format = "protobuf"
    charset = None

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        raise NotImplementedError("the views encode protobuf answers themselves")


def is_protobuf(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF


def _decode(message: Any, body: bytes) -> Any:
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise MalformedProtobuf(
            f"The body is not a valid {message.DESCRIPTOR.name}: {exc}"
        ) from exc
    return message


def _set(message: Any, document: dict[str, Any], *names: str) -> None:
    """Copy the fields the message carries (proto3 `optional` ones only when set)."""
    for name in names:
        if message.HasField(name):
            document[name] = getattr(message, name)


def rank_request_json(body: bytes) -> bytes:
    message = _decode(rank_pb2.RankRequest(), body)
    document: dict[str, Any] = {"surface": message.surface}
    _set(message, document, "query", "category", "user_id", "session_id", "limit")
    items = []
    errors: list[FieldError] = []
    for n, candidate in enumerate(message.items):
        item: dict[str, Any] = {"id": candidate.id}
        if candidate.HasField("relevance"):
            item["relevance"] = candidate.relevance
            if not math.isfinite(candidate.relevance):
                errors.append(_not_finite(("items", n, "relevance")))
        items.append(item)
    if errors:
        raise invalid_request(errors)
    document["items"] = items
    if message.context:
        document["context"] = dict(message.context)
    if message.explain:
        document["explain"] = True
    return _json(document)


EVENT_FIELDS = (
    "user_id",
    "session_id",
    "request_id",
    "surface",
    "query",
    "item_id",
    "position",
    "quantity",
    "price",
)


def events_request_json(body: bytes) -> bytes:
    message = _decode(events_pb2.EventsRequest(), body)
    events = []
    errors: list[FieldError] = []
    for n, event in enumerate(message.events):
        document: dict[str, Any] = {
            "type": event.type,
            "event_id": event.event_id,
            "timestamp": event.timestamp,
        }
        _set(event, document, *EVENT_FIELDS)
        if event.items:
            document["items"] = list(event.items)
        if event.HasField("price") and not math.isfinite(event.price):
            errors.append(_not_finite(("events", n, "price")))
        events.append(document)
    if errors:
        raise invalid_request(errors)
    return _json({"events": events})


def _not_finite(location: tuple[str | int, ...]) -> FieldError:
    # JSON cannot carry NaN or infinity; a protobuf double can, and the contract refuses them.
    return FieldError(location, "finite_number", "Input should be a finite number")


def _json(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def rank_response_bytes(answer: dict[str, Any]) -> bytes:
    """The JSON answer's document (ranking.api.render) as a RankResponse."""
    ranker = answer["ranker"]
    message = rank_pb2.RankResponse(
        request_id=answer["request_id"],
        surface=answer["surface"],
        degraded=answer["degraded"],
        ranker=rank_pb2.Ranker(**{k: v for k, v in ranker.items() if v is not None}),
    )
    if "degraded_reason" in answer:
        message.degraded_reason = answer["degraded_reason"]
    items = message.items
    for item in answer["items"]:
        explanation = item.get("explanation")
        if explanation is None:
            items.add(id=item["id"], position=item["position"], score=item["score"])
        else:
            items.add(
                id=item["id"],
                position=item["position"],
                score=item["score"],
                explanation=rank_pb2.Explanation(
                    method=explanation["method"],
                    base_value=explanation["base_value"],
                    contributions=[
                        rank_pb2.Contribution(**c) for c in explanation["contributions"]
                    ],
                    model_score=explanation["model_score"],
                    transform=explanation["transform"],
                    rules=[rank_pb2.RuleEffect(**r) for r in explanation["rules"]],
                    position_before_rules=explanation["position_before_rules"],
                ),
            )
    for removed in answer.get("removed") or ():
        message.removed.add(**removed)
    return message.SerializeToString()


def events_response_bytes(answer: dict[str, Any]) -> bytes:
    return events_pb2.EventsResponse(**answer).SerializeToString()
