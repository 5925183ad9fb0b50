"""Rate limits: token buckets per API key and endpoint group, and per client address for invalid
API keys.

A bucket holds up to `burst` tokens and refills at `rate` tokens a second; a request takes one
or is refused with the time until one is back (Retry-After). The buckets live in Redis, so every
process shares them: one Lua script call takes tokens (a lease of several for a busy key, see
LEASE_OF_RATE), on the signal store's server under its namespace, on a client of their own
with a short timeout and no retries:

    <ns>:rl:k<key id>:<group>     one API key's bucket for one endpoint group
    <ns>:rl:a:<address>           invalid API keys sent from one client address

A bucket is "<tokens> <time>" and expires once it would be full again. When Redis is slow or
down the limiter fails open: the request is allowed and counted as `failed_open`, and for
`RETRY_SECONDS` the process allows without asking, so a frozen Redis costs one timeout per
process per interval, never one per request. Without Redis (the embedded default) the buckets
are kept in process. customers.auth applies both limits (docs/operations.md).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from django.conf import settings
from django.db import models
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from core import metrics
from customers.models import Customer

logger = logging.getLogger(__name__)

# Endpoint groups, by URL name: /v1/rank and /v1/events have limits of their own, every other
# /v1 endpoint shares the third.
GROUPS = ("rank", "events", "other")
GROUP_OF_URL_NAME = {"rank": "rank", "events": "events"}
# Addresses remembered as over their invalid-key limit, and as logged, per process.
ADDRESSES_MAX = 10_000
MEMORY_BUCKETS_MAX = 100_000
# At most one log line per address this often; the metrics count every refusal.
REFUSAL_LOG_SECONDS = 60.0

# A process takes a key's tokens from Redis a lease at a time: LEASE_OF_RATE of a second's worth
# (at most a tenth of the burst), spent in process within LEASE_SECONDS. At 1000 requests a second
# that is one Redis call per 10 requests; at 50 (and for invalid keys) every request asks. A lease
# is taken from the shared bucket before it is spent, so no process exceeds the limit; what a
# process leaves unspent (fewer than a lease, for at most LEASE_SECONDS) is lost.
LEASE_OF_RATE = 0.01
LEASE_SECONDS = 1.0
LEASES_MAX = 100_000

# KEYS[1]: the bucket. ARGV: rate (tokens a second), burst, and how many tokens to take at most
# (0: only look). Returns {tokens taken (1 when only looking), 0} when there was a token, else
# {0, milliseconds until there is one}. Redis's own clock, so the processes' need not agree.
BUCKET_SCRIPT = """
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens = burst
local held = redis.call('GET', KEYS[1])
if held then
  local space = string.find(held, ' ', 1, true)
  local last = tonumber(string.sub(held, space + 1))
  local refilled = math.max(0, now - last) * rate
  tokens = math.min(burst, tonumber(string.sub(held, 1, space - 1)) + refilled)
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) / rate * 1000)}
end
if want == 0 then
  return {1, 0}
end
local taken = math.min(want, math.floor(tokens))
tokens = tokens - taken
local full_in = math.ceil((burst - tokens) / rate * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f %.6f', tokens, now), 'PX', full_in)
return {taken, 0}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # tokens a second
    burst: int


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A customer's limits per endpoint group, applied to each of its API keys."""

    rank: Limit
    events: Limit
    other: Limit

    def of(self, group: str) -> Limit:
        limit: Limit = getattr(self, group)
        return limit


# The columns of a customer's limits, as ApiKey lookups read them (customer__<column>).
LIMIT_COLUMNS = tuple(
    f"{group}_{part}" for group in GROUPS for part in ("requests_per_second", "burst")
)


def _field_default(name: str) -> int:
    field = Customer._meta.get_field(name)
    assert isinstance(field, models.Field)
    default = field.get_default()
    assert isinstance(default, int)
    return default


DEFAULT_LIMITS = RateLimits(
    *(
        Limit(_field_default(f"{group}_requests_per_second"), _field_default(f"{group}_burst"))
        for group in GROUPS
    )
)


def limits_from_row(row: dict[str, Any], prefix: str = "customer__") -> RateLimits:
    """A customer's limits from a values() row holding LIMIT_COLUMNS under `prefix`."""
    return RateLimits(
        *(
            Limit(row[f"{prefix}{group}_requests_per_second"], row[f"{prefix}{group}_burst"])
            for group in GROUPS
        )
    )


def group_of(url_name: str | None) -> str:
    return GROUP_OF_URL_NAME.get(url_name or "", "other")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until a token is back, when refused


ALLOWED = Decision(True)


class BucketStore(Protocol):
    def take(self, key: str, limit: Limit, *, look_only: bool = False) -> Decision | None:
        """Take a token (or only look whether there is one); None when the store failed."""


class RedisBuckets:
    def __init__(self, *, url: str, timeout: float, cluster: bool, retry_seconds: float) -> None:
        self._url, self._timeout, self._cluster = url, timeout, cluster
        self._script: Any = None
        self._retry_seconds = retry_seconds
        self._paused_until = 0.0
        # bucket key -> [tokens leased to this process, monotonic time they expire]
        self._leases: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, *, look_only: bool = False) -> Decision | None:
        now = time.monotonic()
        lease_size = (
            0 if look_only else max(1, int(min(limit.rate * LEASE_OF_RATE, limit.burst / 10)))
        )
        if lease_size > 1:
            with self._lock:
                lease = self._leases.get(key)
                if lease is not None and lease[0] >= 1 and lease[1] > now:
                    lease[0] -= 1
                    return ALLOWED
        if self._paused_until and now < self._paused_until:
            return None
        try:
            script = self._script or self._connect()
            taken, wait_ms = script(keys=[key], args=[limit.rate, limit.burst, lease_size])
        except (redis.RedisError, RedisClusterException, OSError):
            self._paused_until = time.monotonic() + self._retry_seconds
            return None
        self._paused_until = 0.0
        if not taken:
            return Decision(False, wait_ms / 1000)
        if taken > 1:
            with self._lock:
                if len(self._leases) >= LEASES_MAX:
                    self._leases.clear()
                self._leases[key] = [taken - 1, now + LEASE_SECONDS]
        return ALLOWED

    def _connect(self) -> Any:
        """The client, made at the first decision: a Redis Cluster client asks the cluster for
        its slots as it is made, and that may fail like any call."""
        client: Any = RedisCluster if self._cluster else redis.Redis
        # One attempt: redis-py retries failed calls by default; a failed decision allows.
        self._script = client.from_url(
            self._url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),
        ).register_script(BUCKET_SCRIPT)
        return self._script


class MemoryBuckets:
    """The embedded default's buckets (one process, no Redis): the same arithmetic in a dict."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, *, look_only: bool = False) -> Decision | None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - last) * limit.rate)
            if tokens < 1:
                return Decision(False, (1 - tokens) / limit.rate)
            if not look_only:
                if len(self._buckets) >= MEMORY_BUCKETS_MAX:
                    self._buckets.clear()
                self._buckets[key] = (tokens - 1, now)
        return ALLOWED


# metrics children, bound once: the label lookup is not paid per request
_outcomes = {
    (name, outcome): metrics.RATE_LIMIT_DECISIONS.labels(name, outcome)
    for name in (*GROUPS, "invalid_keys")
    for outcome in ("allowed", "limited", "failed_open")
}


class RateLimiter:
    def __init__(self, *, store: BucketStore, namespace: str, invalid_keys: Limit) -> None:
        self.store = store
        self.prefix = f"{namespace}:rl"
        self.invalid_keys = invalid_keys
        # address -> monotonic time until which it is refused without asking Redis
        self._blocked: dict[str, float] = {}

    def key_request(self, key_id: int, group: str, limit: Limit) -> Decision:
        """Take a token from the API key's bucket for the endpoint group."""
        decision = self.store.take(f"{self.prefix}:k{key_id}:{group}", limit)
        return self._counted(group, decision)

    def address_refused_for(self, address: str) -> float:
        """Seconds until the address may send an unverified key again (0: it may now). Looks at
        its invalid-key bucket without taking a token."""
        until = self._blocked.get(address)
        if until is not None:
            wait = until - time.monotonic()
            if wait > 0:
                _outcomes["invalid_keys", "limited"].inc()
                return wait
            self._blocked.pop(address, None)
        decision = self.store.take(self._address_key(address), self.invalid_keys, look_only=True)
        if decision is None or decision.allowed:
            return 0.0
        self._block(address, decision.retry_after)
        _outcomes["invalid_keys", "limited"].inc()
        return decision.retry_after

    def invalid_key_from(self, address: str) -> Decision:
        """Count an invalid key sent from the address; refused once it sent too many."""
        decision = self.store.take(self._address_key(address), self.invalid_keys)
        if decision is not None and not decision.allowed:
            self._block(address, decision.retry_after)
        return self._counted("invalid_keys", decision)

    def _address_key(self, address: str) -> str:
        return f"{self.prefix}:a:{address}"

    def _block(self, address: str, seconds: float) -> None:
        if len(self._blocked) >= ADDRESSES_MAX:
            self._blocked.clear()
        self._blocked[address] = time.monotonic() + seconds

    def _counted(self, name: str, decision: Decision | None) -> Decision:
        if decision is None:
            metrics.inc(_outcomes[name, "failed_open"])
            return ALLOWED
        # Once a request: core.metrics' write, as the rank path's other samples.
        metrics.inc(_outcomes[name, "allowed" if decision.allowed else "limited"])
        return decision


def build_limiter(signal_store: dict[str, Any], config: dict[str, Any]) -> RateLimiter:
    store: BucketStore
    if signal_store["BACKEND"] == "redis" and signal_store["URL"]:
        store = RedisBuckets(
            url=signal_store["URL"],
            timeout=config["TIMEOUT_SECONDS"],
            cluster=signal_store.get("CLUSTER", False),
            retry_seconds=config["RETRY_SECONDS"],
        )
    else:
        store = MemoryBuckets()
    per_minute = config["INVALID_KEYS_PER_MINUTE"]
    return RateLimiter(
        store=store,
        namespace=signal_store["NAMESPACE"],
        invalid_keys=Limit(per_minute / 60.0, per_minute),
    )


_limiter: tuple[tuple[int, int], RateLimiter] | None = None
_limiter_lock = threading.Lock()


def limiter() -> RateLimiter:
    """The process's limiter, built on first use from settings.SIGNAL_STORE and RATE_LIMIT (and
    again when a test replaces either)."""
    global _limiter
    signal_store, config = settings.SIGNAL_STORE, settings.RATE_LIMIT
    source = (id(signal_store), id(config))
    current = _limiter
    if current is not None and current[0] == source:
        return current[1]
    with _limiter_lock:
        if _limiter is None or _limiter[0] != source:
            _limiter = (source, build_limiter(signal_store, config))
        return _limiter[1]


def enabled() -> bool:
    return bool(settings.RATE_LIMIT["ENABLED"])


def retry_after_header(seconds: float) -> int:
    """Whole seconds, at least one: what Retry-After can say."""
    return max(1, math.ceil(seconds))


class RefusalLog:
    """One warning line per client address per REFUSAL_LOG_SECONDS for its invalid API keys,
    with how many were refused since the previous line; the metrics count each one."""

    def __init__(self) -> None:
        self._lines: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def refused(self, address: str, *, limited: bool) -> None:
        metrics.API_KEY_REFUSALS.labels("address_limited" if limited else "invalid").inc()
        now = time.monotonic()
        with self._lock:
            logged_at, unlogged = self._lines.get(address, (-math.inf, 0))
            if now - logged_at < REFUSAL_LOG_SECONDS:
                self._lines[address] = (logged_at, unlogged + 1)
                return
            if len(self._lines) >= ADDRESSES_MAX:
                self._lines.clear()
            self._lines[address] = (now, 0)
        logger.warning(
            "invalid API keys from %s: %d refused since the previous line (the last %s)",
            address,
            unlogged + 1,
            "over the address's limit (429)" if limited else "unknown or revoked (401)",
        )


refusal_log = RefusalLog()


def reset_for_tests() -> None:
    """Forget the process's limiter, blocked addresses and log lines."""
    global _limiter, refusal_log
    _limiter = None
    refusal_log = RefusalLog()
