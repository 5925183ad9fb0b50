"""POST /v1/events under real faults: a frozen Redis, a killed Redis, a stopped PostgreSQL.

PostgreSQL is the record. While Redis is frozen or down every batch is accepted quickly, the
shopper-profile updates wait in PostgreSQL, and once Redis answers the replay makes each profile
exactly what the same events give with Redis healthy. While PostgreSQL is down every batch is
refused with 503 and Retry-After, none is half stored, and no batch that got 202 is ever lost.
The servers are the tests' own (redis-server, a PostgreSQL cluster in a temporary directory),
on loopback; nothing shared is stopped.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from events.models import Event, PendingProfileUpdate
from events.queries import shopper_key
from events.tasks import replay_pending_profile_updates
from ranking.signals.backend import reset_signal_store, signal_store
from ranking.signals.shopper import ShopperAction
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller
from tests.processes import ROOT, PostgresProcess, RedisProcess, api_process
from tests.ranking.helpers import put_items

logger = logging.getLogger(__name__)

# One thread per shopper, as many as one API worker has (GUNICORN_THREADS).
SHOPPERS = 4
ROUNDS = 3
BRANDS = ["Acme", "Borea", "Corvo"]


def catalog() -> list[dict[str, Any]]:
    return [
        {
            "id": f"sku-{n}",
            "title": f"item {n}",
            "brand": BRANDS[n % 3],
            "categories": [f"cat-{n % 4}", f"cat-{n % 4}/sub-{n % 2}"],
            "price": 5.0 + 3 * n,
        }
        for n in range(24)
    ]


def shopper_batch(base: datetime, shopper: int, round_: int) -> list[dict[str, Any]]:
    """One shopper's batch of a round: an impression, clicks, a cart and a purchase a minute
    apart. Rounds are an hour apart (each starts a new session), and the last round carries a
    late click of the first round's session: profiles depend on the order batches are folded."""
    at = base + timedelta(hours=round_)
    user = f"shopper-{shopper}"
    prefix = f"s{shopper}-r{round_}"
    items = [f"sku-{(shopper * 5 + round_ * 7 + k) % 24}" for k in range(4)]
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{prefix}-imp",
            "type": "impression",
            "timestamp": at.isoformat(),
            "user_id": user,
            "request_id": f"{prefix}-req",
            "surface": "search",
            "query": "boots",
            "items": items,
        },
    ]
    for k, item in enumerate(items[:3]):
        events.append(
            {
                "event_id": f"{prefix}-click-{k}",
                "type": "click",
                "user_id": user,
                "timestamp": (at + timedelta(minutes=k + 1)).isoformat(),
                "request_id": f"{prefix}-req",
                "item_id": item,
                "position": k + 1,
            }
        )
    events.append(
        {
            "event_id": f"{prefix}-cart",
            "type": "add_to_cart",
            "user_id": user,
            "quantity": 2,
            "timestamp": (at + timedelta(minutes=5)).isoformat(),
            "item_id": items[0],
        }
    )
    events.append(
        {
            "event_id": f"{prefix}-buy",
            "type": "purchase",
            "user_id": user,
            "quantity": 1,
            "timestamp": (at + timedelta(minutes=6)).isoformat(),
            "item_id": items[1],
            "price": 12.5 + shopper,
        }
    )
    if round_ == ROUNDS - 1:
        events.append(
            {
                "event_id": f"{prefix}-late",
                "type": "click",
                "user_id": user,
                "timestamp": (base + timedelta(minutes=10)).isoformat(),
                "item_id": items[2],
            }
        )
    return events


@dataclass
class Posts:
    """What each POST answered, and how long it took."""

    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, caller: ApiCaller, events: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        response = caller.post("/v1/events", {"events": events})
        took = time.perf_counter() - started
        with self.lock:
            self.seconds.append(took)
            if response.status_code != 202:
                self.failures.append(f"{response.status_code}: {response.content[:300]!r}")


def post_rounds(
    caller: ApiCaller, base: datetime, rounds: range, posts: Posts, *, concurrent: bool
) -> None:
    """Each shopper's batches of `rounds` in order; with `concurrent`, the shoppers at once
    (a thread each, as API worker threads serve them)."""

    def one_shopper(shopper: int) -> None:
        own = ApiCaller(Client(), caller.customer, caller.key)
        try:
            for round_ in rounds:
                posts.post(own, shopper_batch(base, shopper, round_))
        finally:
            if concurrent:
                connection.close()

    if not concurrent:
        for shopper in range(SHOPPERS):
            one_shopper(shopper)
        return
    threads = [threading.Thread(target=one_shopper, args=(s,)) for s in range(SHOPPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "an events POST never answered"


def replay_until_caught_up(deadline_seconds: float = 20.0) -> float:
    """Run the beat's replay task until no profile update is pending (the breaker may refuse
    the first runs after the fault ends); returns how long that took."""
    started = time.monotonic()
    while PendingProfileUpdate.objects.exists():
        assert time.monotonic() - started < deadline_seconds, (
            f"{PendingProfileUpdate.objects.count()} profile updates still pending after "
            f"{deadline_seconds} s of replays"
        )
        replay_pending_profile_updates()
        if PendingProfileUpdate.objects.exists():
            time.sleep(0.1)
    return time.monotonic() - started


def assert_same_profiles(faulted: ApiCaller, healthy: ApiCaller) -> None:
    store = signal_store()
    for shopper in range(SHOPPERS):
        key = shopper_key(f"shopper-{shopper}", None)
        expected = store.shopper_profile(healthy.customer.pk, key)
        assert not expected.is_empty, "the reference profile is empty: the test proves nothing"
        got = store.shopper_profile(faulted.customer.pk, key)
        assert got == expected, (
            f"shopper {shopper}: the profile after the fault differs from the healthy one: "
            + "; ".join(
                f"{name}: {getattr(got, name)} != {getattr(expected, name)}"
                for name in vars(expected)
                if getattr(got, name) != getattr(expected, name)
            )
        )


@pytest.fixture
def two_shops(make_caller: Callable[..., ApiCaller]) -> tuple[ApiCaller, ApiCaller]:
    """Two customers with the same catalog: one gets the events under the fault, the other the
    same events with Redis healthy."""
    faulted, healthy = make_caller(), make_caller()
    for caller in (faulted, healthy):
        put_items(caller, catalog())
    return faulted, healthy


@pytest.mark.django_db(transaction=True)
def test_redis_frozen_events_answer_quickly_and_profiles_catch_up_exactly(
    two_shops: tuple[ApiCaller, ApiCaller], private_redis: RedisProcess
) -> None:
    faulted, healthy = two_shops
    base = timezone.now().replace(microsecond=0) - timedelta(hours=ROUNDS + 1)
    before = Posts()
    post_rounds(faulted, base, range(1), before, concurrent=True)
    assert before.failures == []

    private_redis.freeze()
    frozen = Posts()
    try:
        post_rounds(faulted, base, range(1, ROUNDS), frozen, concurrent=True)
        # Answered while Redis is still frozen, each batch's profile update kept for the replay.
        kept_while_frozen = PendingProfileUpdate.objects.count()
    finally:
        private_redis.thaw()
    caught_up_in = replay_until_caught_up()
    post_rounds(healthy, base, range(ROUNDS), Posts(), concurrent=False)
    replay_until_caught_up()  # none, unless a busy machine made Redis run a write too late

    assert frozen.failures == []
    slowest = max(frozen.seconds)
    logger.info(
        "Redis frozen: slowest of %d ingests %.3f s (healthy, at once: %.3f s); caught up "
        "%.3f s after the thaw",
        len(frozen.seconds),
        slowest,
        max(before.seconds),
        caught_up_in,
    )
    # Latency is measured by the log line above (and make bench), not asserted here.
    assert kept_while_frozen == len(frozen.seconds)
    assert_same_profiles(faulted, healthy)


@pytest.mark.django_db
def test_redis_killed_then_restarted_empty_profiles_catch_up_exactly(
    two_shops: tuple[ApiCaller, ApiCaller], private_redis: RedisProcess
) -> None:
    faulted, healthy = two_shops
    base = timezone.now().replace(microsecond=0) - timedelta(hours=ROUNDS + 1)

    private_redis.kill()
    down = Posts()
    post_rounds(faulted, base, range(ROUNDS), down, concurrent=False)
    pending = PendingProfileUpdate.objects.count()
    replay_pending_profile_updates()  # Redis still down: nothing applied, nothing lost
    assert PendingProfileUpdate.objects.count() == pending == SHOPPERS * ROUNDS
    private_redis.start()
    caught_up_in = replay_until_caught_up()
    post_rounds(healthy, base, range(ROUNDS), Posts(), concurrent=False)
    replay_until_caught_up()

    assert down.failures == []
    slowest = max(down.seconds)
    logger.info(
        "Redis down: slowest of %d ingests %.3f s; caught up %.3f s after the restart",
        len(down.seconds),
        slowest,
        caught_up_in,
    )
    assert_same_profiles(faulted, healthy)


@pytest.mark.django_db
def test_a_replay_that_died_after_applying_does_not_count_twice(
    two_shops: tuple[ApiCaller, ApiCaller], private_redis: RedisProcess
) -> None:
    """The replay applies an update, then dies before deleting it: the next run finds it
    applied (the store remembers its id) and only deletes it."""
    faulted, healthy = two_shops
    base = timezone.now().replace(microsecond=0) - timedelta(hours=ROUNDS + 1)
    private_redis.kill()
    post_rounds(faulted, base, range(ROUNDS), Posts(), concurrent=False)
    private_redis.start()
    store = signal_store()
    for pending in PendingProfileUpdate.objects.order_by("id")[:5]:
        actions = [
            ShopperAction(s, i, a, t, b, tuple(c), p) for s, i, a, t, b, c, p in pending.actions
        ]
        store.record_shopper_actions(faulted.customer.pk, actions, once=str(pending.token))

    replay_until_caught_up()
    post_rounds(healthy, base, range(ROUNDS), Posts(), concurrent=False)
    replay_until_caught_up()

    assert_same_profiles(faulted, healthy)


def test_a_frozen_redis_opens_the_breaker_and_then_costs_profile_writes_nothing(
    private_redis: RedisProcess, settings: Any
) -> None:
    # A 10 s window: the count below must not depend on how fast a busy machine makes the calls.
    settings.SIGNAL_STORE = {
        **settings.SIGNAL_STORE,
        "BREAKER_MIN_CALLS": 3,
        "BREAKER_SECONDS": 30.0,
        "BREAKER_WINDOW_SECONDS": 10.0,
    }
    reset_signal_store()
    store = signal_store()
    action = ShopperAction("u:1", "sku-1", "click", time.time(), "Acme", ("cat-1",), 9.0)
    store.record_shopper_actions(1, [action])
    private_redis.freeze()
    reasons = []
    for _ in range(5):
        with pytest.raises(SignalStoreUnavailable) as refused:
            store.record_shopper_actions(1, [action])
        reasons.append(refused.value.reason)

    # 3 calls in the window (the first succeeded), 2 of them failed: over the 50% failure rate.
    assert reasons == ["signal_store"] * 2 + ["signal_store_breaker"] * 3


# --- PostgreSQL stopped -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_answers_503_problem_with_retry_after(
    make_caller: Callable[..., ApiCaller],
) -> None:
    """In process, the database made unreachable (a dead port): a key this process verified
    before, and one it never saw, both get 503 (not 500, not 401), and nothing is stored."""
    warm, cold = make_caller(), make_caller()
    batch = {"events": shopper_batch(timezone.now() - timedelta(hours=2), 0, 0)}
    assert warm.post("/v1/events", {"events": batch["events"][:1]}).status_code == 202
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=1)
    try:
        answers = [warm.post("/v1/events", batch), cold.post("/v1/events", batch)]
    finally:
        connection.close()
        connection.settings_dict.update(saved)

    for answer in answers:
        assert answer.status_code == 503
        assert answer["Content-Type"] == "application/problem+json"
        assert int(answer["Retry-After"]) > 0
        body = answer.json()
        assert body["type"] == "/problems/service-unavailable"
        assert "not stored" in body["detail"]
    stored = Event.objects.filter(ordinal=0, event_id__in=[e["event_id"] for e in batch["events"]])
    assert stored.count() == 1  # the one event sent before the outage


@pytest.mark.django_db
def test_the_schema_documents_503_with_retry_after_for_events() -> None:
    document = orjson.loads(Client().get("/v1/schema").content)
    unavailable = document["paths"]["/v1/events"]["post"]["responses"]["503"]

    assert "application/problem+json" in unavailable["content"]
    assert unavailable["headers"]["Retry-After"]["schema"]["type"] == "integer"


CREATE_KEYS = """
from customers.models import Scope
from customers.services import api_key_create, customer_create
shop = customer_create(name="Fault shop", slug="fault-shop", max_candidates=1000)
for name in ("warm", "cold"):
    print("KEY", api_key_create(customer=shop, name=name, scopes=[Scope.EVENTS, Scope.RANK])[1])
"""


@pytest.fixture
def private_postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL cluster of this test's own, migrated; removed at the end."""
    server = PostgresProcess()
    try:
        server.init()
        server.start()
        server.create_database("rankwell")
        yield server
    finally:
        server.remove()


def manage(database_url: str, *args: str) -> str:
    environment = {"DATABASE_URL": database_url, "REDIS_URL": "", "RANKWELL_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@dataclass
class Answer:
    event_ids: list[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


def post_batch(base_url: str, key: str, event_ids: list[str], at: str) -> Answer:
    events = [
        {
            "event_id": event_id,
            "type": "click",
            "timestamp": at,
            "user_id": "shopper-1",
            "item_id": "sku-1",
        }
        for event_id in event_ids
    ]
    request = urllib.request.Request(  # noqa: S310 (a local http URL)
        f"{base_url}/v1/events",
        data=orjson.dumps({"events": events}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return Answer(
                event_ids, response.status, dict(response.headers), orjson.loads(response.read())
            )
    except urllib.error.HTTPError as refused:
        body = refused.read()
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {"raw": body[:300].decode(errors="replace")}
        return Answer(event_ids, refused.code, dict(refused.headers), parsed)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.02)


def stored_event_ids(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as db:
        rows = db.execute("SELECT event_id FROM events_event WHERE ordinal = 0").fetchall()
    return {event_id for (event_id,) in rows}


def test_postgres_stopped_events_get_503_and_every_accepted_event_survives(
    private_postgres: PostgresProcess,
) -> None:
    url = private_postgres.url("rankwell")
    manage(url, "migrate", "--verbosity", "0")
    output = manage(url, "shell", "--command", CREATE_KEYS).splitlines()
    warm_key, cold_key = [line.split()[1] for line in output if line.startswith("KEY ")]
    at = (timezone.now() - timedelta(minutes=5)).isoformat()
    answers: list[Answer] = []
    stop = threading.Event()

    with api_process(DATABASE_URL=url, REDIS_URL="", RUNTIME_REFRESH_SECONDS="1") as base_url:
        wait_for(lambda: _listening(f"{base_url}/healthz"), 30, "the API process to listen")

        def keep_posting() -> None:
            sequence = 0
            while not stop.is_set():
                ids = [f"e-{sequence}-{n}" for n in range(5)]
                answers.append(post_batch(base_url, warm_key, ids, at))
                sequence += 1
                time.sleep(0.02)  # a client's pace: enough answers, few to check

        poster = threading.Thread(target=keep_posting)
        poster.start()
        try:
            wait_for(lambda: _count(answers, 202) >= 5, 30, "accepted batches")
            private_postgres.kill()
            wait_for(lambda: _count(answers, 503) >= 5, 30, "refused batches")
            cold = post_batch(base_url, cold_key, ["cold-1"], at)
            private_postgres.start()
            accepted_before = _count(answers, 202)
            wait_for(lambda: _count(answers, 202) >= accepted_before + 5, 30, "accepting again")
        finally:
            stop.set()
            poster.join(timeout=60)
        refused = [answer for answer in answers if answer.status == 503]
        retried = [post_batch(base_url, warm_key, a.event_ids, at) for a in refused]

    assert {answer.status for answer in answers} == {202, 503}, [
        (a.status, a.body) for a in answers if a.status not in (202, 503)
    ]
    for answer in [*refused, cold]:
        assert answer.status == 503
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert int(answer.headers["Retry-After"]) > 0
        assert answer.body["type"] == "/problems/service-unavailable"
        assert answer.body["status"] == 503
        assert "not stored" in answer.body["detail"]
    stored = stored_event_ids(url)
    accepted = {event_id for a in answers if a.status == 202 for event_id in a.event_ids}
    assert accepted <= stored, f"accepted events lost: {sorted(accepted - stored)[:10]}"
    for answer in refused:  # all of a refused batch, or none of it (its commit may have won)
        assert len(set(answer.event_ids) & stored) in (0, len(answer.event_ids))
    for answer in retried:
        assert answer.status == 202
        assert answer.body["accepted"] + answer.body["duplicates"] == len(answer.event_ids)


def _count(answers: list[Answer], status: int) -> int:
    return sum(1 for answer in list(answers) if answer.status == status)


def _listening(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310
            return True
    except OSError:
        return False
