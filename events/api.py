"""`POST /v1/events`: up to 1000 events, validated whole, stored once per event_id."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from config.schema import PROBLEM_RESPONSES
from customers.api import CustomerApi, json_response
from customers.models import Scope
from events import services
from events.contracts import EventsIngestIn, EventsIngestOut
from events.models import EventType

EVENT_TYPES = frozenset(EventType.values)


class EventsIngestApi(CustomerApi):
    required_scope = Scope.EVENTS

    @extend_schema(
        operation_id="events_ingest",
        summary="Record shopper events (impression, click, add_to_cart, purchase)",
        request=EventsIngestIn,
        responses={202: EventsIngestOut, **PROBLEM_RESPONSES},
        tags=["events"],
    )
    def post(self, request: Request) -> HttpResponse:
        body = self.read_json(request, EventsIngestIn, union_tags=EVENT_TYPES)
        result = services.events_ingest(customer_id=self.customer_id, events=body.events)
        return json_response(
            {"accepted": result.accepted, "duplicates": result.duplicates}, status=202
        )
