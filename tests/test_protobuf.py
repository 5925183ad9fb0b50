"""/v1/rank and /v1/events in protobuf (wire/rankwell/v1/*.proto) beside JSON: the same answer,
the same validation naming the same fields, problem+json errors, and content negotiation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from events.models import Event
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.ranking.helpers import ago, impression_with_purchases, put_items, send_events
from wire.rankwell.v1 import events_pb2, rank_pb2

pytestmark = pytest.mark.django_db

PROTOBUF = "application/x-protobuf"
ROOT = Path(__file__).resolve().parents[1]
IDS = [f"sku-{i}" for i in range(6)]


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    put_items(
        api,
        [
            {
                "id": item_id,
                "title": f"Item {n}",
                "brand": f"B{n % 3}",
                "price": 10.0 + n,
                "categories": ["shoes"],
            }
            for n, item_id in enumerate(IDS)
        ],
    )
    send_events(api, impression_with_purchases(IDS, {"sku-4": 3, "sku-1": 1}, prefix="p"))
    signals_refresh(customer_id=api.customer.pk)
    return api


def rank_json(**fields: Any) -> dict[str, Any]:
    return {
        "surface": "search",
        "query": "running shoes",
        "user_id": "u-1",
        "items": [{"id": item_id, "relevance": 1.0 + n / 10} for n, item_id in enumerate(IDS)],
        **fields,
    }


def rank_message(**fields: Any) -> rank_pb2.RankRequest:
    document = rank_json(**fields)
    items = [rank_pb2.Candidate(**item) for item in document.pop("items")]
    return rank_pb2.RankRequest(items=items, **document)


def post(api: ApiCaller, path: str, body: bytes, *, accept: str | None = None) -> Any:
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    return api.post(path, body, content_type=PROTOBUF, **extra)


def test_a_protobuf_rank_request_gets_the_json_requests_ranking_in_protobuf(
    shop: ApiCaller,
) -> None:
    as_json = shop.post("/v1/rank", rank_json())
    as_protobuf = post(shop, "/v1/rank", rank_message().SerializeToString(), accept=PROTOBUF)

    assert as_protobuf.status_code == 200
    assert as_protobuf["Content-Type"] == PROTOBUF
    answer = rank_pb2.RankResponse.FromString(as_protobuf.content)
    expected = as_json.json()
    assert [(i.id, i.position, i.score) for i in answer.items] == [
        (i["id"], i["position"], i["score"]) for i in expected["items"]
    ]
    assert answer.surface == "search"
    assert not answer.degraded
    assert not answer.HasField("degraded_reason")
    assert answer.ranker.config == expected["ranker"]["config"]
    assert answer.request_id == as_protobuf["X-Request-ID"]
    # The answer is smaller on the wire.
    assert len(as_protobuf.content) < len(as_json.content)


def test_either_encoding_in_and_either_out(shop: ApiCaller) -> None:
    """Content-Type says what was sent, Accept what comes back (JSON when it does not say)."""
    protobuf_in = post(shop, "/v1/rank", rank_message().SerializeToString())
    assert protobuf_in["Content-Type"] == "application/json"
    json_in = shop.post("/v1/rank", rank_json(), HTTP_ACCEPT=PROTOBUF)
    assert json_in["Content-Type"] == PROTOBUF
    ranked = [i.id for i in rank_pb2.RankResponse.FromString(json_in.content).items]
    assert ranked == [i["id"] for i in protobuf_in.json()["items"]]


def test_explanations_travel_in_protobuf_too(shop: ApiCaller) -> None:
    as_json = shop.post("/v1/rank", rank_json(explain=True)).json()
    body = rank_message(explain=True).SerializeToString()
    answer = rank_pb2.RankResponse.FromString(post(shop, "/v1/rank", body, accept=PROTOBUF).content)

    first, expected = answer.items[0], as_json["items"][0]["explanation"]
    assert first.HasField("explanation")
    assert first.explanation.method == expected["method"]
    assert [c.feature for c in first.explanation.contributions] == [
        c["feature"] for c in expected["contributions"]
    ]
    assert first.explanation.model_score == pytest.approx(expected["model_score"])


def test_a_protobuf_request_is_validated_as_json_is_naming_the_same_field(shop: ApiCaller) -> None:
    body = rank_message(surface="nowhere").SerializeToString()
    answer = post(shop, "/v1/rank", body, accept=PROTOBUF)
    as_json = shop.post("/v1/rank", rank_json(surface="nowhere"))

    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"  # errors stay problem+json
    assert answer.json()["errors"] == as_json.json()["errors"]
    assert answer.json()["errors"][0]["field"] == "surface"

    nul = rank_message(query="a\x00b").SerializeToString()
    assert post(shop, "/v1/rank", nul).json()["errors"][0]["field"] == "query"
    candidate = rank_pb2.Candidate(id="sku-1", relevance=float("nan"))
    nan = rank_pb2.RankRequest(surface="browse", items=[candidate])
    refused = post(shop, "/v1/rank", nan.SerializeToString())
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "items[0].relevance"


def test_bytes_that_are_no_message_are_refused_as_malformed_protobuf(shop: ApiCaller) -> None:
    answer = post(shop, "/v1/rank", b"\xff\xff\xff\xff")

    assert answer.status_code == 400
    assert answer.json()["type"] == "/problems/malformed-protobuf"
    assert "RankRequest" in answer.json()["detail"]


def test_protobuf_is_refused_where_the_api_does_not_take_it(shop: ApiCaller) -> None:
    answer = shop.put("/v1/catalog/items", b"\x0a\x00", content_type=PROTOBUF)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["detail"]


def test_events_in_protobuf_are_stored_as_json_ones_are(shop: ApiCaller) -> None:
    now = ago(minutes=1)
    message = events_pb2.EventsRequest(
        events=[
            events_pb2.Event(
                type="impression",
                event_id="pb-1",
                timestamp=now,
                user_id="u-1",
                request_id="r-1",
                items=["sku-1", "sku-2"],
            ),
            events_pb2.Event(
                type="click",
                event_id="pb-2",
                timestamp=now,
                user_id="u-1",
                request_id="r-1",
                item_id="sku-2",
                position=2,
            ),
            events_pb2.Event(
                type="purchase",
                event_id="pb-3",
                timestamp=now,
                user_id="u-1",
                item_id="sku-2",
                quantity=2,
                price=12.5,
            ),
        ]
    )

    answer = post(shop, "/v1/events", message.SerializeToString(), accept=PROTOBUF)
    again = post(shop, "/v1/events", message.SerializeToString())

    assert answer.status_code == 202
    counts = events_pb2.EventsResponse.FromString(answer.content)
    assert (counts.accepted, counts.duplicates) == (3, 0)
    assert orjson.loads(again.content) == {"accepted": 0, "duplicates": 3}
    stored = Event.objects.filter(customer=shop.customer, event_id__startswith="pb-")
    purchase = stored.get(event_id="pb-3")
    assert (purchase.item_id, purchase.quantity, purchase.price) == ("sku-2", 2, 12.5)
    assert stored.get(event_id="pb-2").position == 2


def test_an_event_with_a_field_of_another_type_is_refused_naming_it(shop: ApiCaller) -> None:
    message = events_pb2.EventsRequest(
        events=[
            events_pb2.Event(
                type="click",
                event_id="pb-9",
                timestamp=ago(minutes=1),
                item_id="sku-1",
                items=["sku-2"],
            )
        ]
    )

    answer = post(shop, "/v1/events", message.SerializeToString())

    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["events[0].items"]
    assert not Event.objects.filter(customer=shop.customer, event_id="pb-9").exists()


def test_the_schema_names_the_messages_and_the_proto_files_are_published(client: Any) -> None:
    schema = client.get("/v1/schema").json()
    operations = [
        ("/v1/rank", "rank.proto", "rankwell.v1.RankRequest"),
        ("/v1/events", "events.proto", "rankwell.v1.EventsRequest"),
    ]
    for path, proto, request in operations:
        operation = schema["paths"][path]["post"]
        assert operation["x-protobuf"]["request"] == request
        assert PROTOBUF in operation["description"]
        published = client.get(operation["x-protobuf"]["proto"])
        assert published.status_code == 200
        assert published.content == (ROOT / "wire" / "rankwell" / "v1" / proto).read_bytes()
        assert f"message {request.rsplit('.', 1)[1]}" in published.content.decode()
    assert client.get("/v1/proto/secrets.proto").status_code == 404
