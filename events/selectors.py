"""Reads of the event log and of the shopper-profile updates waiting for the replay, each scoped
to the customer it names; the replay's reads over every customer are named `unscoped_*`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q

from events.models import Event, EventType, PendingProfileUpdate


def event_ids_stored(*, customer_id: int, event_ids: Iterable[str]) -> set[str]:
    """Which of these event ids the customer's log holds already."""
    return set(
        Event.objects.for_customer(customer_id)
        .filter(event_id__in=set(event_ids), ordinal=0)
        .values_list("event_id", flat=True)
    )


def impressions_of_requests(
    *, customer_id: int, request_ids: Iterable[str]
) -> list[tuple[str, str, str, datetime]]:
    """(request id, query, surface, when) of the impressions logged for these requests."""
    return list(
        Event.objects.for_customer(customer_id)
        .filter(type=EventType.IMPRESSION, ordinal=0, request_id__in=set(request_ids))
        .values_list("request_id", "query", "surface", "occurred_at")
    )


def clicks_with_request(
    *,
    customer_id: int,
    item_ids: Iterable[str],
    user_ids: Iterable[str],
    session_ids: Iterable[str | None],
    since: datetime,
) -> list[tuple[Any, ...]]:
    """(user, session, item, request id, query, surface, when) of the customer's clicks since
    `since` that carried a request, on these items, by these users (or anonymous sessions).
    Filtered by the sets of shoppers and items: a flat, indexable query whatever their number."""
    return list(
        Event.objects.for_customer(customer_id)
        .filter(type=EventType.CLICK, item_id__in=set(item_ids), occurred_at__gte=since)
        .filter(Q(user_id__in=set(user_ids)) | Q(user_id="", session_id__in=set(session_ids)))
        .exclude(request_id="")
        .values_list(
            "user_id", "session_id", "item_id", "request_id", "query", "surface", "occurred_at"
        )
    )


def profile_updates_pending(*, customer_id: int) -> bool:
    """Whether updates of the customer's shopper profiles wait for the replay."""
    return PendingProfileUpdate.objects.for_customer(customer_id).exists()


def profile_updates_oldest(*, customer_id: int, limit: int) -> list[PendingProfileUpdate]:
    return list(PendingProfileUpdate.objects.for_customer(customer_id).order_by("id")[:limit])


def unscoped_customers_with_profile_updates() -> list[int]:
    """The customers with updates waiting, by id: the replay goes through each."""
    return sorted(
        set(
            PendingProfileUpdate.objects.unscoped_all_customers()
            .values_list("customer_id", flat=True)
            .distinct()
        )
    )


def unscoped_profile_updates_count() -> int:
    """How many updates wait, of every customer (the replay's log line)."""
    return PendingProfileUpdate.objects.unscoped_all_customers().count()
