"""Reads of the explain UI's own (the search traffic, the logged requests, the models that can
score), each scoped to one customer the caller has already been allowed to see (explain.views
resolves it through customers.selectors.customer_visible). Items, rules and customers are read
through their apps' selectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q, QuerySet, Sum

from events.models import Event, EventType
from ranking.models import RankingModel, RankLog
from ranking.signals.schema import SCHEMA_HASH

# Longer ids cannot be primary keys (and would overflow the database's integer).
MAX_ID_DIGITS = 18


def is_id(text: str) -> bool:
    """Whether `text` can be a primary key, so a lookup by it cannot fail in the database."""
    return text.isdigit() and len(text) <= MAX_ID_DIGITS


def models_of(*, customer_id: int, surface: str | None = None) -> QuerySet[RankingModel]:
    """The customer's registry models scoring on the live feature schema (others cannot score)."""
    models = RankingModel.objects.for_customer(customer_id).filter(schema_hash=SCHEMA_HASH)
    if surface is not None:
        models = models.filter(surface=surface)
    return models.order_by("surface", "-version")


def model_of(*, customer_id: int, model_id: int) -> RankingModel | None:
    return models_of(customer_id=customer_id).filter(pk=model_id).first()


def rank_log_of(*, customer_id: int, request_id: str) -> RankLog | None:
    return RankLog.objects.for_customer(customer_id).filter(request_id=request_id).first()


# --- queries that need attention, why an item is not here ----------------------------------------


@dataclass(frozen=True)
class QueryTraffic:
    """One query's search traffic over a period, counted from the event log."""

    query: str
    searches: int  # impression events (one per page of results shown)
    clicks: int
    clicked_searches: int  # searches with at least one click
    carted_searches: int  # searches with at least one add-to-cart
    bought_searches: int  # searches with at least one purchase
    revenue: float


def query_traffic(
    *, customer_id: int, surface: str, since: datetime, until: datetime
) -> list[QueryTraffic]:
    """Every query of the surface searched in [since, until), most searched first: one GROUP BY
    over the event log. A search is one impression event (its first row, ordinal 0); clicks,
    carts and purchases count by the search (request) they were attributed to at ingest."""
    has_request = ~Q(request_id="")
    rows = (
        Event.objects.for_customer(customer_id)
        .filter(occurred_at__gte=since, occurred_at__lt=until, surface=surface)
        .exclude(query="")
        .filter(~Q(type=EventType.IMPRESSION) | Q(ordinal=0))
        .values("query")
        .annotate(
            searches=Count("pk", filter=Q(type=EventType.IMPRESSION)),
            clicks=Count("pk", filter=Q(type=EventType.CLICK)),
            clicked=Count(
                "request_id", distinct=True, filter=Q(type=EventType.CLICK) & has_request
            ),
            carted=Count(
                "request_id", distinct=True, filter=Q(type=EventType.ADD_TO_CART) & has_request
            ),
            bought=Count(
                "request_id", distinct=True, filter=Q(type=EventType.PURCHASE) & has_request
            ),
            revenue=Sum("revenue", filter=Q(type=EventType.PURCHASE), default=0.0),
        )
        .order_by("-searches", "query")
    )
    return [
        QueryTraffic(
            query=row["query"],
            searches=row["searches"],
            clicks=row["clicks"],
            clicked_searches=row["clicked"],
            carted_searches=row["carted"],
            bought_searches=row["bought"],
            revenue=float(row["revenue"]),
        )
        for row in rows
    ]


def latest_logged_requests(
    *, customer_id: int, surface: str, queries: list[str], since: datetime
) -> dict[str, str]:
    """The request id of each query's latest logged request since `since` (queries without one
    are left out): one GROUP BY and one look-up, whatever the number of queries."""
    latest = (
        RankLog.objects.for_customer(customer_id)
        .filter(surface=surface, created_at__gte=since, query__in=queries)
        .values("query")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    return dict(
        RankLog.objects.for_customer(customer_id)
        .filter(id__in=list(latest))
        .values_list("query", "request_id")
    )


@dataclass(frozen=True)
class LoggedPage:
    """One logged request: when, and the items it returned in order (position p is p - 1)."""

    request_id: str
    created_at: datetime
    item_ids: list[str]


def logged_pages(
    *, customer_id: int, surface: str, query: str, category: str, since: datetime, limit: int
) -> list[LoggedPage]:
    """The latest `limit` logged requests for the query (or, with no query, the category) since
    `since`, newest first."""
    rows = (
        RankLog.objects.for_customer(customer_id)
        .filter(surface=surface, query=query, created_at__gte=since)
        .order_by("-created_at", "-id")
        .values_list("request_id", "created_at", "item_ids")
    )
    if not query:
        rows = rows.filter(category=category)
    return [LoggedPage(request_id, at, list(ids)) for request_id, at, ids in rows[:limit]]
