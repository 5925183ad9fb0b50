"""API-key authentication: `Authorization: Bearer <key>` -> the customer and its scopes.

Keys are looked up by their SHA-256 and cached per process. Revoking a key bumps the customer's
runtime generation, so every process stops accepting it within `RUNTIME_REFRESH_SECONDS`.
Last-used times are kept in memory and written in one batch per sync interval, never per request.

A key is cached with its customer's rate limits, so a limit changed in the admin (a generation
bump) applies within the same seconds. A key not yet verified by this process is looked up only
when its client address is under its invalid-key limit (customers/ratelimit.py); unknown keys
are remembered a moment, so a flood of one bad key does not reach the database either.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.logs import bind_customer
from customers import ratelimit, runtime_sync
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
    limits: ratelimit.RateLimits = ratelimit.DEFAULT_LIMITS

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
    digest = hash_key(key)
    return cached_principal(digest) or verified_principal(digest)


def cached_principal(digest: str) -> ApiPrincipal | None:
    """The principal of a key this process verified (and no change of its customer evicted)."""
    runtime_sync.ensure_started()
    entry = _keys.get(digest)
    return None if entry is None else entry.value


def verified_principal(digest: str) -> ApiPrincipal | None:
    """Look the key up (unless it was unknown a moment ago) and cache what is found."""
    now = time.monotonic()
    if _unknown.get(digest, 0.0) > now:
        return None
    try:
        row = (
            ApiKey.objects.unscoped_all_customers()  # the hash names the key, and so its shop
            .usable()
            .filter(key_hash=digest)
            .values(*_KEY_VALUES)
            .first()
        )
    except DatabaseError as exc:
        raise KeyStoreUnavailable from exc
    if row is None:
        _remember_unknown(digest, now)
        return None
    entry = _key_entry(row)
    _keys.put(digest, entry)
    return entry.value


# What caching a key reads of it and its customer, by verified_principal and keys_load alike.
_KEY_VALUES = (
    "id",
    "customer_id",
    "scopes",
    "customer__runtime_generation",
    *(f"customer__{column}" for column in ratelimit.LIMIT_COLUMNS),
)


def _key_entry(row: dict[str, Any]) -> runtime_sync.CacheEntry[ApiPrincipal]:
    principal = ApiPrincipal(
        row["id"], row["customer_id"], frozenset(row["scopes"]), ratelimit.limits_from_row(row)
    )
    return runtime_sync.CacheEntry(
        principal.customer_id, row["customer__runtime_generation"], principal
    )


def keys_load(
    customer_ids: Collection[int],
) -> list[tuple[str, runtime_sync.CacheEntry[ApiPrincipal]]]:
    """Every usable key of these customers, for the sync thread to cache in one query: a
    process holds each key before a request needs it, and after a change of its customer, so a
    PostgreSQL outage never finds it missing (a revoked key is not among them)."""
    rows = ApiKey.objects.for_customers(customer_ids).usable()
    return [(row["key_hash"], _key_entry(row)) for row in rows.values("key_hash", *_KEY_VALUES)]


runtime_sync.keep_warm(_keys, keys_load, every_customer=True)


def _remember_unknown(digest: str, now: float) -> None:
    """Bounded: when full, expired entries go first, and everything if none had expired."""
    if len(_unknown) >= NEGATIVE_CACHE_MAX:
        for stale in [known for known, until in list(_unknown.items()) if until <= now]:
            _unknown.pop(stale, None)
        if len(_unknown) >= NEGATIVE_CACHE_MAX:
            _unknown.clear()
    _unknown[digest] = now + NEGATIVE_TTL_SECONDS


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


def bearer_token(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_address(request: Request) -> str:
    """The caller's address as the outermost trusted proxy saw it (settings.TRUSTED_PROXY_HOPS:
    the ALB's X-Forwarded-For entry in production), as the admin's login throttle reads it."""
    return str(settings.AXES_CLIENT_IP_CALLABLE(request))


def address_throttled(wait: float) -> exceptions.Throttled:
    return exceptions.Throttled(
        wait=ratelimit.retry_after_header(wait),
        detail="Too many invalid API keys from this address; retry after the indicated delay.",
    )


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, str] | None:
        token = bearer_token(request)
        if token is None:
            return None
        digest = hash_key(token)
        principal = cached_principal(digest) or self.verify(request, digest)
        note_used(principal)
        bind_customer(principal.customer_id)
        return principal, token

    def verify(self, request: Request, digest: str) -> ApiPrincipal:
        """A key this process has not verified: refused with 429, without a look-up, when its
        address sent too many invalid keys; else looked up, and an invalid one counted."""
        address = client_address(request)
        limiting = ratelimit.enabled()
        if limiting:
            wait = ratelimit.limiter().address_refused_for(address)
            if wait:
                ratelimit.refusal_log.refused(address, limited=True)
                raise address_throttled(wait)
        try:
            principal = verified_principal(digest)
        except KeyStoreUnavailable as exc:
            raise exceptions.AuthenticationFailed(
                "The API key could not be checked right now; retry shortly."
            ) from exc
        if principal is not None:
            return principal
        decision = ratelimit.limiter().invalid_key_from(address) if limiting else ratelimit.ALLOWED
        ratelimit.refusal_log.refused(address, limited=not decision.allowed)
        if not decision.allowed:
            raise address_throttled(decision.retry_after)
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.")

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class ApiKeyRateThrottle(BaseThrottle):
    """Each API key's requests per second per endpoint group (/v1/rank, /v1/events, the rest),
    at its customer's limits: 429 with Retry-After beyond them."""

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal) or not ratelimit.enabled():
            return True
        match = request._request.resolver_match
        group = ratelimit.group_of(match.url_name if match is not None else None)
        limit = principal.limits.of(group)
        decision = ratelimit.limiter().key_request(principal.key_id, group, limit)
        if decision.allowed:
            return True
        raise key_throttled(limit, decision)


def key_throttled(limit: ratelimit.Limit, decision: ratelimit.Decision) -> exceptions.Throttled:
    """The refusal of a request over its key's limit (also ranking/direct.py's)."""
    return exceptions.Throttled(
        wait=ratelimit.retry_after_header(decision.retry_after),
        detail=(
            f"This API key may send {limit.rate:g} requests a second to this endpoint "
            f"(bursts of {limit.burst}); retry after the indicated delay."
        ),
    )


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
