"""Reads of the explain UI, each scoped to one customer the caller has already been allowed to
see (explain.views resolves it through Customer.objects.visible_to)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from catalog.models import Item
from customers.models import Customer
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
    models = RankingModel.objects.filter(customer_id=customer_id, schema_hash=SCHEMA_HASH)
    if surface is not None:
        models = models.filter(surface=surface)
    return models.order_by("surface", "-version")


def model_of(*, customer_id: int, model_id: int) -> RankingModel | None:
    return models_of(customer_id=customer_id).filter(pk=model_id).first()


def rank_log_of(*, customer_id: int, request_id: str) -> RankLog | None:
    return RankLog.objects.filter(customer_id=customer_id, request_id=request_id).first()


def items_by_id(*, customer_id: int, item_ids: list[str]) -> dict[str, Item]:
    """The customer's catalog items among `item_ids`, by their external id."""
    items = Item.objects.filter(customer_id=customer_id, external_id__in=item_ids).only(
        "external_id", "title", "brand", "price", "categories"
    )
    return {item.external_id: item for item in items}
