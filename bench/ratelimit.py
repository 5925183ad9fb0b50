"""What the rate limiter costs a request. Its decision alone, the metric included: one Lua call
to Redis (a lease of one token, as /v1/rank's default limit asks once per 10 requests and the
other endpoints on every request) and the decision at /v1/rank's default limit (1000 a second:
leases of 10 tokens). Then POST /v1/rank with 100 candidates through Django's test client with
the limiter on and off, alternated request by request so both see the same machine. Prints
medians (and means, which carry the one call in ten) in microseconds as one JSON line.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/ratelimit.py [--rounds 3000]

Uses a PostgreSQL database of its own (`rankwell_bench_ratelimit`, created and dropped; the
server from BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432) and the Redis namespace
`rwbenchrl` (removed at the end), with production settings.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "rankwell_bench_ratelimit"
NAMESPACE = "rwbenchrl"
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def configure() -> None:
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL must name the Redis to benchmark against")
    os.environ.update(
        {
            "RANKWELL_ENV": "production",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": f"{POSTGRES}/{DATABASE}",
            "SIGNAL_STORE_NAMESPACE": NAMESPACE,
            "RUNTIME_REFRESH_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    os.environ.pop("CELERY_BROKER_URL", None)


def recreate_database(create: bool = True) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        if create:
            connection.execute(f"CREATE DATABASE {DATABASE}")


def drop_namespace() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(match=f"{NAMESPACE}:*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


def microseconds(call: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    rounds = parser.parse_args().rounds
    configure()
    recreate_database()
    import django

    django.setup()
    try:
        print(json.dumps(measure(rounds)))
    finally:
        from django.db import connections

        from ranking.learning import rank_log

        rank_log.reset()  # the bench's requests, not training data
        connections.close_all()
        drop_namespace()
        recreate_database(create=False)


def measure(rounds: int) -> dict[str, object]:
    import orjson
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from customers import ratelimit
    from customers.models import Scope
    from customers.services import api_key_create, customer_create

    call_command("migrate", verbosity=0)
    customer = customer_create(name="Bench limits", slug="bench-limits")
    _, key = api_key_create(customer=customer, name="bench", scopes=[Scope.RANK])
    # Bursts no loop exhausts: the measurement is the decision, not a 429.
    every_call = ratelimit.Limit(50, 10**9)  # leases of one token: a Redis call each time
    rank_default = ratelimit.Limit(ratelimit.DEFAULT_LIMITS.rank.rate, 10**9)
    limiter = ratelimit.limiter()
    memory = ratelimit.RateLimiter(
        store=ratelimit.MemoryBuckets(), namespace=NAMESPACE, invalid_keys=every_call
    )

    def redis_call() -> object:
        return limiter.key_request(1, "other", every_call)

    def redis_decision() -> object:
        return limiter.key_request(2, "rank", rank_default)

    def memory_decision() -> object:
        return memory.key_request(1, "rank", rank_default)

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = orjson.dumps(
        {
            "surface": "search",
            "query": "running shoes",
            "user_id": "u-1",
            "items": [{"id": f"sku-{n}", "relevance": float(n % 17)} for n in range(100)],
        }
    )

    def rank() -> None:
        response = client.post("/v1/rank", body, content_type="application/json")
        assert response.status_code == 200, response.content

    for _ in range(200):
        redis_decision()
        rank()
    gc.collect()
    gc.freeze()  # as each gunicorn worker does after loading (platform/gunicorn.conf.py)

    call_redis = microseconds(redis_call, rounds)
    decision_redis = microseconds(redis_decision, rounds)
    decision_memory = microseconds(memory_decision, rounds)
    limited: list[float] = []
    unlimited: list[float] = []
    for n in range(rounds):
        settings.RATE_LIMIT["ENABLED"] = n % 2 == 0
        (limited if n % 2 == 0 else unlimited).extend(microseconds(rank, 1))
    settings.RATE_LIMIT["ENABLED"] = True
    return {
        "rounds": rounds,
        "redis_call_median_us": median(call_redis),
        "redis_call_p99_us": round(sorted(call_redis)[int(rounds * 0.99)], 1),
        "decision_rank_default_median_us": median(decision_redis),
        "decision_rank_default_mean_us": round(statistics.mean(decision_redis), 1),
        "decision_memory_median_us": median(decision_memory),
        "rank_100_limited_median_us": median(limited),
        "rank_100_unlimited_median_us": median(unlimited),
        "rank_100_limiter_cost_median_us": round(median(limited) - median(unlimited), 1),
        "rank_100_limiter_cost_mean_us": round(
            statistics.mean(limited) - statistics.mean(unlimited), 1
        ),
    }


if __name__ == "__main__":
    main()
