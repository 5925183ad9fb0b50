"""Writes for customers, staff memberships and API keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers import runtime_sync
from customers.auth import forget_unknown_keys, hash_key
from customers.models import ApiKey, Customer, Membership, Role, Scope

KEY_PREFIX = "rwk_"


def scopes_clean(scopes: Iterable[str]) -> list[str]:
    """Validate scope names; the result is sorted and free of repeats."""
    scopes = list(scopes)
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError(
            {"scopes": f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(Scope.values)}"}
        )
    if not scopes:
        raise ValidationError({"scopes": "A key needs at least one scope."})
    return sorted(set(scopes))


@transaction.atomic
def customer_create(*, name: str, slug: str, max_candidates: int = 1000, **fields: Any) -> Customer:
    """A new customer; `fields` sets its other settings (limits, auto-activation), validated."""
    customer = Customer(name=name, slug=slug, max_candidates=max_candidates, **fields)
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean()
    customer.save()
    runtime_sync.bump_generation(customer.pk)
    return customer


@transaction.atomic
def customer_delete(*, customer: Customer) -> None:
    """Delete a customer with everything it owns; this process forgets its cached keys and
    rules now (the others when their sync thread no longer finds it)."""
    customer_id = customer.pk
    customer.delete()
    runtime_sync.forget_customer(customer_id)


@transaction.atomic
def membership_add(*, customer: Customer, user: Any, role: str = Role.VIEWER) -> Membership:
    """Make the user a member of the customer with `role` (also when already a member)."""
    membership, _ = Membership.objects.update_or_create(
        customer=customer, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def membership_save(*, membership: Membership) -> Membership:
    """Store a membership as edited by hand (who, for which customer, with which role)."""
    membership.full_clean()
    membership.save()
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership) -> None:
    membership.delete()


@transaction.atomic
def api_key_create(
    *, customer: Customer, name: str, scopes: Iterable[str], created_by: Any = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and shown only now."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        customer=customer,
        name=name,
        scopes=scopes_clean(scopes),
        prefix=plaintext[:12],
        key_hash=hash_key(plaintext),
        created_by=created_by,
    )
    api_key.full_clean()
    api_key.save()
    transaction.on_commit(forget_unknown_keys)
    forget_unknown_keys()
    return api_key, plaintext


@transaction.atomic
def api_key_update(*, api_key: ApiKey, name: str, scopes: Iterable[str]) -> ApiKey:
    api_key.name = name
    api_key.scopes = scopes_clean(scopes)
    api_key.full_clean()
    api_key.save(update_fields=["name", "scopes"])
    runtime_sync.bump_generation(api_key.customer_id)
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; every process refuses it within RUNTIME_REFRESH_SECONDS."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        runtime_sync.bump_generation(api_key.customer_id)
    return api_key
