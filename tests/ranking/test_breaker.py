"""Degraded answers are rare and visible: a slow read does not open the breaker, real failures
do; degraded answers are counted by reason and logged, flagged, for training."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

from core.metrics import RANK_DEGRADED
from ranking.learning import rank_log
from ranking.learning.rank_log import feature_matrix
from ranking.models import RankLog
from ranking.signals.backend import build_store, reset_signal_store
from ranking.signals.breaker import Breaker
from ranking.signals.schema import RELEVANCE_COLUMN
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller

CUSTOMER = 4343


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_failure_among_many_successes_leaves_the_breaker_closed() -> None:
    clock = Clock()
    breaker = Breaker(open_seconds=1.0, min_calls=20, failure_rate=0.5, clock=clock)
    for n in range(200):
        clock.now += 0.01
        assert breaker.allow()
        breaker.record(ok=n % 25 != 0)  # one read in 25 times out

    assert not breaker.is_open


def test_the_breaker_opens_on_a_failure_rate_then_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker(open_seconds=1.0, min_calls=20, failure_rate=0.5, clock=clock)
    for _ in range(19):
        breaker.record(ok=False)
    assert not breaker.is_open  # fewer calls than the minimum say nothing yet
    breaker.record(ok=False)
    assert breaker.is_open
    assert not breaker.allow()

    clock.now += 1.5
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # one at a time
    breaker.record(ok=True)
    assert breaker.allow()
    assert not breaker.is_open


def test_a_freeze_after_a_busy_spell_opens_the_breaker_within_a_second() -> None:
    """100 successful reads a second for 5 s, then Redis freezes: every read fails after its
    0.2 s timeout, 20 a second (4 slots). The busy spell's successes must not hold the breaker
    closed for long (with a 10 s window they did for over 8 s)."""
    clock = Clock()
    breaker = Breaker(open_seconds=1.0, min_calls=10, failure_rate=0.5, clock=clock)
    for _ in range(500):
        clock.now += 0.01
        breaker.record(ok=True)
    frozen_at = clock.now
    while not breaker.is_open:
        clock.now += 0.05
        breaker.record(ok=False)
        assert clock.now - frozen_at < 1.0, "still closed a second into the freeze"


@pytest.fixture
def redis_admin(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.execute_command("CLIENT", "UNPAUSE")
    client.close()


def _store(settings: Any, **overrides: Any) -> Any:
    return build_store({**settings.SIGNAL_STORE, "BACKEND": "redis", **overrides})


def test_slow_but_successful_reads_keep_the_breaker_closed(
    settings: Any, redis_admin: redis.Redis
) -> None:
    """Redis stalls for 100 ms at a time (CLIENT PAUSE, as a CPU spike would stall a reply):
    every read still answers within the timeout, and none is refused."""
    store = _store(settings, TIMEOUT_SECONDS=0.5)
    stop = threading.Event()
    stalls: list[int] = []

    def stall() -> None:
        while not stop.is_set():
            redis_admin.execute_command("CLIENT", "PAUSE", "100", "ALL")
            stalls.append(1)

    staller = threading.Thread(target=stall)
    staller.start()
    try:
        for _ in range(30):
            store.fetch(CUSTOMER, ["a", "b"], "", "u:1")
    finally:
        stop.set()
        staller.join()

    assert len(stalls) >= 10  # the reads were slowed, over at least a second
    assert not store.breaker.is_open


def test_a_frozen_redis_opens_the_breaker_and_it_closes_once_redis_answers(
    settings: Any, redis_admin: redis.Redis
) -> None:
    # A 10 s window: the counts below must not depend on how fast a busy machine makes the calls.
    store = _store(
        settings,
        TIMEOUT_SECONDS=0.02,
        BREAKER_SECONDS=0.2,
        BREAKER_MIN_CALLS=5,
        BREAKER_WINDOW_SECONDS=10.0,
    )
    redis_admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
    reasons = []
    for _ in range(8):
        try:
            store.fetch(CUSTOMER, ["a"], "", "")
        except SignalStoreUnavailable as exc:
            reasons.append(exc.reason)
    assert reasons[:5] == ["signal_store"] * 5  # each waited for its timeout
    assert reasons[5:] == ["signal_store_breaker"] * 3  # refused at once
    assert store.breaker.is_open

    redis_admin.execute_command("CLIENT", "UNPAUSE")
    fetched = None
    for _ in range(200):  # the open period ends, one probe goes through and succeeds
        try:
            fetched = store.fetch(CUSTOMER, ["a"], "", "")
            break
        except SignalStoreUnavailable:
            threading.Event().wait(0.01)
    assert fetched is not None
    assert not store.breaker.is_open


@pytest.mark.django_db
def test_a_degraded_answer_is_counted_by_reason_and_logged_flagged(
    api: ApiCaller, settings: Any
) -> None:
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "URL": "redis://127.0.0.1:1/0"}
    reset_signal_store()
    counter = RANK_DEGRADED.labels(str(api.customer.pk), "search", "signal_store")
    before = counter._value.get()
    body = {
        "surface": "search",
        "query": "tent",
        "user_id": "u-1",
        "items": [{"id": "a", "relevance": 1.0}, {"id": "b", "relevance": 3.0}],
    }

    response = api.post("/v1/rank", body).json()
    rank_log.flush()

    assert response["degraded"] is True
    assert counter._value.get() == before + 1
    logged = RankLog.objects.get(request_id=response["request_id"])
    assert logged.degraded is True
    assert logged.signals_version is None
    assert logged.item_ids == ["b", "a"]
    features = feature_matrix(bytes(logged.features))
    assert np.allclose(features[:, RELEVANCE_COLUMN], [1.0, -1.0])
    assert not np.delete(features, RELEVANCE_COLUMN, axis=1).any()
