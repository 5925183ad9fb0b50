"""API-key authentication: `Authorization: Bearer <key>` -> the customer and its scopes.

Keys are looked up by their SHA-256 and cached per process. Revoking a key bumps the customer's
runtime generation, so every process stops accepting it within `RUNTIME_REFRESH_SECONDS`.
Last-used times are kept in memory and written in one batch per sync interval, never per request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from config.logs import bind_customer
from customers import runtime_sync
from customers.models import ApiKey

# Unknown keys are remembered this long, so a flood of bad keys does not reach the database.
NEGATIVE_TTL_SECONDS = 2.0
NEGATIVE_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """Who is calling: one customer's key with its scopes. DRF sees it as `request.user`."""

    key_id: int
    customer_id: int
    scopes: frozenset[str]

    is_authenticated = True


class KeyStoreUnavailable(Exception):
    """The database could not be asked about a key not yet in the cache."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_keys: runtime_sync.GenerationCache[str, ApiPrincipal] = runtime_sync.GenerationCache("api_keys")
_unknown: dict[str, float] = {}
_last_used: dict[int, datetime] = {}
_last_used_lock = threading.Lock()


def principal_for_key(key: str) -> ApiPrincipal | None:
    """The principal of a usable key, or None. Raises KeyStoreUnavailable on a database outage."""
    runtime_sync.ensure_started()
    digest = hash_key(key)
    entry = _keys.get(digest)
    if entry is not None:
        return entry.value
    if _unknown.get(digest, 0.0) > time.monotonic():
        return None
    try:
        row = (
            ApiKey.objects.usable()
            .filter(key_hash=digest)
            .values("id", "customer_id", "scopes", "customer__runtime_generation")
            .first()
        )
    except DatabaseError as exc:
        raise KeyStoreUnavailable from exc
    if row is None:
        if len(_unknown) >= NEGATIVE_CACHE_MAX:
            _unknown.clear()
        _unknown[digest] = time.monotonic() + NEGATIVE_TTL_SECONDS
        return None
    principal = ApiPrincipal(row["id"], row["customer_id"], frozenset(row["scopes"]))
    _keys.put(
        digest,
        runtime_sync.CacheEntry(
            principal.customer_id, row["customer__runtime_generation"], principal
        ),
    )
    return principal


def forget_unknown_keys() -> None:
    """A key created just now must not stay refused by the negative cache."""
    _unknown.clear()


def note_used(principal: ApiPrincipal) -> None:
    _last_used[principal.key_id] = timezone.now()


def flush_last_used() -> None:
    """Write the in-memory last-used times to the database in one statement per key."""
    with _last_used_lock:
        pending = dict(_last_used)
        _last_used.clear()
    for key_id, used_at in pending.items():
        ApiKey.objects.filter(pk=key_id).update(last_used_at=used_at)


runtime_sync.run_periodically(flush_last_used)


def bearer_token(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, str] | None:
        token = bearer_token(request)
        if token is None:
            return None
        try:
            principal = principal_for_key(token)
        except KeyStoreUnavailable as exc:
            raise exceptions.AuthenticationFailed(
                "The API key could not be checked right now; retry shortly."
            ) from exc
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        note_used(principal)
        bind_customer(principal.customer_id)
        return principal, token

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class HasScope(BasePermission):
    """Allows the call when the key carries the view's `required_scope`."""

    message = "This API key lacks the required scope."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        required = getattr(view, "required_scope", None)
        if required is None:
            return True
        self.message = f"This API key lacks the `{required}` scope."
        return required in principal.scopes
