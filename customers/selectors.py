"""Reads of customers and their API keys. Each names the customer (or the staff user whose
customers) it reads; the reads over every customer by design are named `unscoped_*`.

Who may do what for a customer (`customers_granting`, `role_grants`) stays beside the roles in
customers.models."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from customers.models import ApiKey, Customer


def customers_visible(*, user: Any) -> QuerySet[Customer]:
    """The customers a staff user sees, by name: all for superusers, their memberships'
    otherwise."""
    return Customer.objects.visible_to(user).order_by("name")


def customer_visible(*, user: Any, customer_id: int) -> Customer | None:
    """The customer if the user sees it, else None (the page answers 404)."""
    return customers_visible(user=user).filter(pk=customer_id).first()


def customer_is_visible(*, user: Any, customer_id: int) -> bool:
    return Customer.objects.visible_to(user).filter(pk=customer_id).exists()


def customer_of(*, customer_id: int) -> Customer:
    """The customer an API key named (it exists: the key's customer is active)."""
    return Customer.objects.get(pk=customer_id)


def customer_by_slug(*, slug: str) -> Customer | None:
    return Customer.objects.filter(slug=slug).first()


def customer_generation(*, customer_id: int) -> int:
    """The customer's runtime generation (customers.runtime_sync)."""
    return Customer.objects.values_list("runtime_generation", flat=True).get(pk=customer_id)


def unscoped_customer_generations() -> dict[int, int]:
    """Every customer's runtime generation, by id: what the sync thread polls."""
    return dict(Customer.objects.values_list("id", "runtime_generation"))


def unscoped_api_keys_by_prefix(*, prefix: str) -> list[ApiKey]:
    """The keys, of any customer, whose shown prefix is `prefix` (an operator names a key by
    it; the prefix names no customer)."""
    return list(ApiKey.objects.unscoped_all_customers().filter(prefix=prefix))


def customer_is_active(*, customer_id: int) -> bool:
    return Customer.objects.active().filter(pk=customer_id).exists()


def unscoped_active_customer_ids() -> list[int]:
    """Every active customer (the beat's entry points run once per customer)."""
    return list(Customer.objects.active().values_list("id", flat=True))
