"""Reads of the explain UI, each scoped to one customer the caller has already been allowed to
see (explain.views resolves it through Customer.objects.visible_to)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum

from catalog.models import Item
from customers.models import Customer
from events.models import Event, EventType
from merchandising.models import Rule
from ranking.models import RankingModel, RankLog
from ranking.signals.schema import SCHEMA_HASH

# Longer ids cannot be primary keys (and would overflow the database's integer).
MAX_ID_DIGITS = 18


def is_id(text: str) -> bool:
    """Whether `text` can be a primary key, so a lookup by it cannot fail in the database."""
    return text.isdigit() and len(text) <= MAX_ID_DIGITS


def customers_visible(*, user: Any) -> QuerySet[Customer]:
    """The customers a user may explain: all for superusers, their memberships otherwise."""
    return Customer.objects.visible_to(user).order_by("name")


def customer_visible(*, user: Any, customer_id: int) -> Customer | None:
    """The customer if the user may see it, else None (the view answers 404)."""
    return customers_visible(user=user).filter(pk=customer_id).first()


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


def items_by_id(*, customer_id: int, item_ids: list[str]) -> dict[str, Item]:
    """The customer's catalog items among `item_ids`, by their external id."""
    items = (
        Item.objects.for_customer(customer_id)
        .filter(external_id__in=item_ids)
        .only("external_id", "title", "brand", "price", "categories")
    )
    return {item.external_id: item for item in items}


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
        Event.objects.filter(
            customer_id=customer_id,
            occurred_at__gte=since,
            occurred_at__lt=until,
            surface=surface,
        )
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
        RankLog.objects.filter(
            customer_id=customer_id, surface=surface, created_at__gte=since, query__in=queries
        )
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
        RankLog.objects.filter(
            customer_id=customer_id,
            surface=surface,
            query=query,
            created_at__gte=since,
        )
        .order_by("-created_at", "-id")
        .values_list("request_id", "created_at", "item_ids")
    )
    if not query:
        rows = rows.filter(category=category)
    return [LoggedPage(request_id, at, list(ids)) for request_id, at, ids in rows[:limit]]


def item_of(*, customer_id: int, item_id: str) -> Item | None:
    """The customer's catalog item with this external id, if any."""
    return Item.objects.for_customer(customer_id).filter(external_id=item_id).first()


def rule_name(*, customer_id: int, rule_id: int) -> str:
    """The name of the customer's rule (the engine names rules by id)."""
    names = Rule.objects.for_customer(customer_id).filter(pk=rule_id).values_list("name", flat=True)
    return next(iter(names), f"rule {rule_id}")
