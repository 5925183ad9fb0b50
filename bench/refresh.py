"""Signal refresh end to end: N events over a catalog of M items, from the event log in PostgreSQL
to a published version in Redis (the budget's size is 10M events over 100k items).

The catalog and the events are written straight into the bench database with SQL
(generate_series), which is far quicker than the API and does not change what the refresh reads:
events spread over 90 days, 70% impressions, 20% clicks, 7% add-to-carts and 3% purchases, with a
Zipf-like skew over items and 500 queries. Its own database (`rankwell_bench_refresh`, dropped
at the end unless --keep) and Redis namespace (`rwbenchrefresh`, removed at the end).

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/refresh.py [--events N] [--items M]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "rankwell_bench_refresh"
NAMESPACE = "rwbenchrefresh"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a database and namespace of its "
        "own, so the suite's quick run never touches a full run's",
    )
    args = parser.parse_args()
    global DATABASE, NAMESPACE
    if args.quick:
        DATABASE, NAMESPACE = f"{DATABASE}_quick", f"{NAMESPACE}quick"
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL must name the Redis to benchmark against")
    host = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    os.environ.update(
        DATABASE_URL=f"{host}/{DATABASE}",
        SIGNAL_STORE_NAMESPACE=NAMESPACE,
        RANKWELL_ENV="development",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.pop("CELERY_BROKER_URL", None)

    import psycopg

    with psycopg.connect(f"{host}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from customers.services import customer_create
    from ranking.services import signals_refresh
    from ranking.signals.backend import signal_store

    try:
        call_command("migrate", verbosity=0)
        customer = customer_create(name="Refresh bench", slug="refresh-bench")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO catalog_item (customer_id, external_id, title, brand, categories,
                    price, in_stock, attributes, created_at, updated_at)
                SELECT %s, 'sku-' || n, 'Item ' || n, 'brand' || (n %% 50),
                    jsonb_build_array('dep' || (n %% 10),
                                      'dep' || (n %% 10) || '/cat' || (n %% 100)),
                    5 + (n %% 500), n %% 10 <> 0, '{}'::jsonb,
                    now() - make_interval(days => n %% 365), now()
                FROM generate_series(1, %s) AS n
                """,
                [customer.pk, args.items],
            )
            # A skewed item (random() ^ 3 favours low numbers) and a spread over 90 days.
            cursor.execute(
                """
                INSERT INTO events_event (customer_id, event_id, ordinal, type, item_id, position,
                    occurred_at, received_at, user_id, session_id, request_id,
                    request_attributed, surface, query, quantity, price, revenue)
                SELECT %s, 'e' || n, 0,
                    CASE WHEN r < 0.7 THEN 'impression' WHEN r < 0.9 THEN 'click'
                         WHEN r < 0.97 THEN 'add_to_cart' ELSE 'purchase' END,
                    'sku-' || (1 + floor(power(random(), 3) * %s)::int), NULL,
                    now() - random() * interval '90 days', now(), 'u' || (n %% 200000), '',
                    'r' || (n / 20), false, 'search', 'query ' || (n %% 500), 1,
                    CASE WHEN r >= 0.97 THEN 20.0 END, CASE WHEN r >= 0.97 THEN 20.0 ELSE 0 END
                FROM (SELECT n, random() AS r FROM generate_series(1, %s) AS n) AS drawn
                """,
                [customer.pk, args.items, args.events],
            )
            cursor.execute("ANALYZE events_event")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        result = signals_refresh(customer_id=customer.pk)
        seconds = time.perf_counter() - started
        signal_store().drop_customer(customer.pk)
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(f"{host}/postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    print(
        json.dumps(
            {
                "events": args.events,
                "items": args.items,
                "load_seconds": round(loaded, 1),
                "refresh_seconds": round(seconds, 2),
                "events_per_second": round(args.events / seconds),
                "query_pairs": result.query_pairs,
                "event_groups": result.event_groups,
            }
        )
    )


if __name__ == "__main__":
    main()
