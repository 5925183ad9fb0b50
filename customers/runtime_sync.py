"""Keeps each process's cached copies of keys, configs, rules and models current.

Every change to what the ranking path caches bumps `Customer.runtime_generation`. A daemon thread
in each serving process reads all generations every `RUNTIME_REFRESH_SECONDS` (one small query)
and evicts cache entries loaded at an older generation. Rank requests themselves never query the
database in steady state, and when the database is down they keep serving from the cache.

Caches registered with `keep_warm` are reloaded by that thread rather than by the next request:
when a customer's generation moves, and at the thread's first poll. Left to the next request, a
change (a rule saved, a key revoked, a model activated) emptied the customer's entries in every
process until each happened to serve the customer again, and in each process that had not served
a customer yet there was nothing: a PostgreSQL outage in that time answered those requests
degraded although the service had served the same key a moment before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F

from core import metrics
from customers import selectors
from customers.models import Customer

logger = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheEntry(Generic[V]):
    customer_id: int
    generation: int
    value: V


class GenerationCache(Generic[K, V]):
    """A cache whose entries remember the customer generation they were loaded at."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[K, CacheEntry[V]] = {}
        self._held: set[int] = set()
        self._hits = metrics.CACHE_LOOKUPS.labels(name, "hit")
        self._misses = metrics.CACHE_LOOKUPS.labels(name, "miss")
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, key: K) -> CacheEntry[V] | None:
        entry = self._entries.get(key)
        metrics.inc(self._misses if entry is None else self._hits)  # on every request's path
        return entry

    def put(self, key: K, entry: CacheEntry[V]) -> None:
        with self._lock:
            self._entries[key] = entry
            self._held.add(entry.customer_id)

    def customers_held(self) -> set[int]:
        """The customers this cache has held entries of, evicted ones included: those to
        reload after a change (this process may have evicted them already, see
        bump_generation)."""
        with self._lock:
            return set(self._held)

    def evict_older(self, customer_id: int, generation: int) -> None:
        """Drop the customer's entries loaded before `generation` (all of them for -1)."""
        with self._lock:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.customer_id == customer_id
                and (generation < 0 or entry.generation < generation)
            ]
            for key in stale:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held.clear()


_caches: list[GenerationCache[Any, Any]] = []
_periodic_jobs: list[Callable[[], None]] = []


@dataclass(frozen=True)
class _Warmer(Generic[K, V]):
    cache: GenerationCache[K, V]
    load: Callable[[set[int]], Iterable[tuple[K, CacheEntry[V]]]]
    every_customer: bool
    start_with: Callable[[], Collection[int]] | None

    def customers_to_load(self, changed: Collection[int], first: bool) -> set[int]:
        if self.every_customer:
            return set(changed)
        wanted = self.cache.customers_held()
        if first and self.start_with is not None:
            wanted |= set(self.start_with())
        return wanted & set(changed)


_warmers: list[_Warmer[Any, Any]] = []


def keep_warm(
    cache: GenerationCache[K, V],
    load: Callable[[set[int]], Iterable[tuple[K, CacheEntry[V]]]],
    *,
    every_customer: bool = False,
    start_with: Callable[[], Collection[int]] | None = None,
) -> None:
    """Have the sync thread load `cache`'s entries itself: `load(customer_ids)` returns the
    current entries of those customers (each at the generation it read). After a customer's
    change it reloads the customers the cache held (every customer with `every_customer`), and
    at its first poll also those `start_with()` names."""
    _warmers.append(_Warmer(cache, load, every_customer, start_with))


def run_periodically(job: Callable[[], None]) -> None:
    """Run `job` on the sync thread after each poll (e.g. flushing API-key last-used times)."""
    _periodic_jobs.append(job)


def clear_caches() -> None:
    """Forget every cached entry of this process (the next requests load them again)."""
    for cache in _caches:
        cache.clear()


def reset() -> None:
    """As a process that just started: no cached entry, and a poller that knows no customer and
    warms at its next poll (tests use it; the periodic jobs stay registered)."""
    clear_caches()
    poller.known = {}
    poller.warmed = False


def forget_customer(customer_id: int) -> None:
    """Evict every cached entry of a customer in this process."""
    for cache in _caches:
        cache.evict_older(customer_id, -1)


def bump_generation(customer_id: int) -> None:
    """Record that the customer's cached state changed, and drop this process's copy now."""
    Customer.objects.filter(pk=customer_id).update(runtime_generation=F("runtime_generation") + 1)
    forget_customer(customer_id)


def current_generation(customer_id: int) -> int:
    """Read before loading cached data, so a change racing with the load is caught next poll."""
    return selectors.customer_generation(customer_id=customer_id)


class _Poller:
    def __init__(self) -> None:
        self.known: dict[int, int] = {}
        # The first poll's loads are done: from then on only changed customers are reloaded.
        self.warmed = False
        self.pid: int | None = None
        self.lock = threading.Lock()

    def poll_once(self) -> None:
        latest = selectors.unscoped_customer_generations()
        changed = {
            customer_id: generation
            for customer_id, generation in latest.items()
            if self.known.get(customer_id) != generation
        }
        # Entries are loaded before the older ones go, so a request finds either; a load that
        # fails leaves the customer to be tried again at the next poll.
        retry = self._warm(changed, first=not self.warmed)
        for customer_id, generation in changed.items():
            for cache in _caches:
                cache.evict_older(customer_id, generation)
        for customer_id in self.known.keys() - latest.keys():
            forget_customer(customer_id)
        self.known = {
            customer_id: generation
            for customer_id, generation in latest.items()
            if customer_id not in retry
        }
        self.warmed = self.warmed or not retry

    def _warm(self, changed: dict[int, int], *, first: bool) -> set[int]:
        """Load the entries of the kept-warm caches; returns the customers that failed."""
        failed: set[int] = set()
        for warmer in _warmers:
            wanted = warmer.customers_to_load(changed, first)
            if not wanted:
                continue
            try:
                loaded = list(warmer.load(wanted))
            except Exception:
                logger.warning("runtime sync could not load %s", warmer.cache.name, exc_info=True)
                failed |= wanted
                continue
            for key, entry in loaded:
                warmer.cache.put(key, entry)
        return failed

    def loop(self, interval: float) -> None:
        while True:
            try:
                self.poll_once()
            except Exception:
                # The database is away: keep serving from the cache and try again later.
                logger.warning("runtime sync poll failed", exc_info=True)
            finally:
                close_old_connections()
            for job in _periodic_jobs:
                try:
                    job()
                except Exception:
                    logger.warning("runtime sync job %s failed", job, exc_info=True)
            time.sleep(interval)

    def ensure_started(self) -> None:
        interval = settings.RUNTIME_REFRESH_SECONDS
        if interval <= 0 or self.pid == os.getpid():
            return
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.known = {}
            self.warmed = False
            thread = threading.Thread(
                target=self.loop, args=(interval,), name="runtime-sync", daemon=True
            )
            thread.start()


poller = _Poller()
ensure_started = poller.ensure_started
