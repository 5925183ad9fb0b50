"""The process's signal store: the backend settings.SIGNAL_STORE names, built once.

Apart from store.py, so that the interface does not import the two backends that implement it.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

from ranking.signals.memory_store import MemorySignalStore
from ranking.signals.redis_store import WRITER_TIMEOUT_SECONDS, RedisSignalStore
from ranking.signals.store import SignalStore

_store: SignalStore | None = None
_store_lock = threading.Lock()


def signal_store() -> SignalStore:
    """The process's signal store, chosen by settings.SIGNAL_STORE."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = build_store(settings.SIGNAL_STORE)
    return _store


def build_store(config: dict[str, Any]) -> SignalStore:
    if config["BACKEND"] == "redis":
        return RedisSignalStore(
            url=config["URL"],
            namespace=config["NAMESPACE"],
            timeout=config["TIMEOUT_SECONDS"],
            breaker_seconds=config["BREAKER_SECONDS"],
            breaker_min_calls=config.get("BREAKER_MIN_CALLS", 10),
            breaker_window_seconds=config.get("BREAKER_WINDOW_SECONDS", 1.0),
            breaker_failure_rate=config.get("BREAKER_FAILURE_RATE", 0.5),
            grace_seconds=config["VERSION_GRACE_SECONDS"],
            cluster=config.get("CLUSTER", False),
            profile_timeout=config.get("PROFILE_WRITE_TIMEOUT_SECONDS", 0.25),
            snapshot_dir=config.get("SNAPSHOT_DIR"),
        )
    return MemorySignalStore()


def reset_signal_store() -> None:
    """Forget the process's store (tests switch settings between backends), once the builds of
    its host copies under way have ended: one left running reads keys a test has since dropped,
    and its failure would be logged into the next test (a fresh-clone `make test` saw it)."""
    global _store
    snapshots = getattr(_store, "snapshots", None)
    if snapshots is not None:
        snapshots.wait(WRITER_TIMEOUT_SECONDS)
    _store = None
