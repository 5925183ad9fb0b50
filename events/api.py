"""`POST /v1/events`: up to 1000 events, validated whole, stored once per event_id.

PostgreSQL is the record: when it is down the batch is refused whole with 503 and Retry-After
(nothing of it stored), and the client sends the same batch again; event ids stored already
count as duplicates, so a retry never counts an event twice. A signal-store (Redis) outage
refuses nothing: events.services keeps the shopper-profile updates for later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from core import metrics
from core.errors import InvalidRequest, ServiceUnavailable
from core.problems import PROBLEM_CONTENT_TYPE
from core.schema import PROBLEM_RESPONSES, Problem
from customers import wire
from customers.api import CustomerApi
from customers.auth import KeyStoreUnavailable
from customers.models import Scope
from customers.wire import ProtobufRenderer
from events import services
from events.contracts import EventsIngestIn, EventsIngestOut
from events.models import EventType

logger = logging.getLogger(__name__)

EVENT_TYPES = frozenset(EventType.values)
# What a 503 asks the client to wait: long enough not to hammer a database coming back, short
# enough that a failover (tens of seconds) costs few retries.
RETRY_AFTER_SECONDS = 5
NOT_STORED = (
    "The events were not stored: the event log's database is unavailable. Send the same batch "
    f"again after {RETRY_AFTER_SECONDS} seconds; event ids stored already count as duplicates, "
    "so a retry never counts an event twice."
)
UNAVAILABLE_RESPONSE = {
    (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        response=Problem,
        description=(
            "The event log's database is down: nothing of the batch was stored. Send the same "
            "batch again after the `Retry-After` header's seconds."
        ),
    ),
}


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(NOT_STORED, retry_after=RETRY_AFTER_SECONDS)


class EventsIngestApi(CustomerApi):
    required_scope = Scope.EVENTS
    renderer_classes = [JSONRenderer, ProtobufRenderer]
    protobuf_request = staticmethod(wire.events_request_json)
    protobuf_response = staticmethod(wire.events_response_bytes)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            super().initial(request, *args, **kwargs)
        except exceptions.AuthenticationFailed as exc:
            if not isinstance(exc.__cause__, KeyStoreUnavailable):
                raise
            # The database is down and this process has not verified the key yet: the events
            # could not be stored anyway. Retrying is right; a new key is not.
            logger.warning("events refused: the database is unavailable to check the API key")
            raise unavailable() from exc

    @extend_schema(
        operation_id="events_ingest",
        **wire.schema_extension("events.proto", "EventsRequest", "EventsResponse"),
        summary="Record shopper events (impression, click, add_to_cart, purchase)",
        request=EventsIngestIn,
        responses={202: EventsIngestOut, **PROBLEM_RESPONSES, **UNAVAILABLE_RESPONSE},
        parameters=[
            OpenApiParameter(
                "Retry-After",
                type=int,
                location=OpenApiParameter.HEADER,
                response=[503],
                description="Seconds to wait before sending the same batch again.",
            )
        ],
        tags=["events"],
    )
    def post(self, request: Request) -> HttpResponse:
        try:
            body = self.read_json(request, EventsIngestIn, union_tags=EVENT_TYPES)
            result = services.events_ingest(customer_id=self.customer_id, events=body.events)
        except InvalidRequest:
            rejected = metrics.events_in_body(self.json_body)
            metrics.observe_events(
                customer_id=self.customer_id, accepted=0, duplicates=0, rejected=rejected
            )
            raise
        except (OperationalError, InterfaceError) as exc:
            # The connection failed or was cut: the batch's transaction did not commit. (Should
            # the commit itself have been cut after PostgreSQL made it durable, the retry finds
            # the ids stored and counts them as duplicates.)
            logger.warning("events refused: the database is unavailable (%s)", type(exc).__name__)
            raise unavailable() from exc
        metrics.observe_events(
            customer_id=self.customer_id,
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=0,
        )
        return self.answer(
            request, {"accepted": result.accepted, "duplicates": result.duplicates}, status=202
        )
