"""`POST /v1/events`: up to 1000 events, validated whole, stored once per event_id."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from config import metrics
from config.problems import InvalidRequest
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
        try:
            body = self.read_json(request, EventsIngestIn, union_tags=EVENT_TYPES)
            result = services.events_ingest(customer_id=self.customer_id, events=body.events)
        except InvalidRequest:
            rejected = metrics.events_in_body(request._request.body)
            metrics.observe_events(
                customer_id=self.customer_id, accepted=0, duplicates=0, rejected=rejected
            )
            raise
        metrics.observe_events(
            customer_id=self.customer_id,
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=0,
        )
        return json_response(
            {"accepted": result.accepted, "duplicates": result.duplicates}, status=202
        )
