"""The reads of "Queries that need attention" on a shop with a million events: how long the one
GROUP BY over the event log takes for each period, and the rank-log look-up of each shown query's
latest request (docs/explain.md quotes the result).

The events are written straight into the bench database with SQL (generate_series): 50,000
searches over 90 days in 700 queries, each an impression of 20 items (1,000,000 rows), a click on
every third search and a purchase on every seventeenth; and one logged rank request per search.
Its own database (`rankwell_bench_queries`, dropped at the end unless --keep).

    .venv/bin/python bench/queries_page.py [--searches N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "rankwell_bench_queries"

EVENTS = """
INSERT INTO events_event (customer_id, event_id, ordinal, type, item_id, position, occurred_at,
    received_at, user_id, session_id, request_id, request_attributed, surface, query, quantity,
    price, revenue)
SELECT %(customer)s, 'imp-' || s, o, 'impression', 'sku-' || ((s * 7 + o) %% 3000), o + 1,
    now() - (s %% 90) * interval '1 day' - (s %% 1440) * interval '1 minute', now(),
    'u' || (s %% 4000), 's' || s, 'r-' || s, false, 'search', 'query ' || (s %% 700), 1, null, 0
FROM generate_series(1, %(searches)s) s, generate_series(0, 19) o;
INSERT INTO events_event (customer_id, event_id, ordinal, type, item_id, position, occurred_at,
    received_at, user_id, session_id, request_id, request_attributed, surface, query, quantity,
    price, revenue)
SELECT %(customer)s, 'clk-' || s, 0, 'click', 'sku-' || (s %% 3000), 1,
    now() - (s %% 90) * interval '1 day', now(), 'u' || (s %% 4000), 's' || s, 'r-' || s, false,
    'search', 'query ' || (s %% 700), 1, null, 0
FROM generate_series(1, %(searches)s, 3) s;
INSERT INTO events_event (customer_id, event_id, ordinal, type, item_id, position, occurred_at,
    received_at, user_id, session_id, request_id, request_attributed, surface, query, quantity,
    price, revenue)
SELECT %(customer)s, 'buy-' || s, 0, 'purchase', 'sku-' || (s %% 3000), null,
    now() - (s %% 90) * interval '1 day', now(), 'u' || (s %% 4000), 's' || s, 'r-' || s, true,
    'search', 'query ' || (s %% 700), 1, 20.5, 20.5
FROM generate_series(1, %(searches)s, 17) s;
INSERT INTO ranking_ranklog (customer_id, request_id, surface, query, category, shopper_key,
    model, schema_hash, item_ids, features, created_at, degraded)
SELECT %(customer)s, 'r-' || s, 'search', 'query ' || (s %% 700), '', '', 'config:default', 'x',
    (SELECT jsonb_agg('sku-' || ((s * 7 + o) %% 3000)) FROM generate_series(0, 19) o),
    decode(repeat('00', 20 * 4 * 40), 'hex'),
    now() - (s %% 90) * interval '1 day' - (s %% 1440) * interval '1 minute', false
FROM generate_series(1, %(searches)s) s;
ANALYZE events_event;
ANALYZE ranking_ranklog;
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=50_000, help="20 event rows each")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    host = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    os.environ.update(
        DATABASE_URL=f"{host}/{DATABASE}",
        RANKWELL_ENV="development",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)

    import psycopg

    with psycopg.connect(f"{host}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(f"{host}/postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from customers.models import Customer
    from explain import selectors
    from explain.services.attention import PERIODS, queries_report

    call_command("migrate", verbosity=0)
    customer = Customer.objects.create(name="Bench", slug="bench")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(EVENTS, {"customer": customer.pk, "searches": args.searches})
        cursor.execute("SELECT count(*) FROM events_event")
        (events,) = cursor.fetchone()
    print(
        f"{events:,} events, {args.searches:,} logged requests "
        f"(written in {time.perf_counter() - started:.0f} s)"
    )
    now = timezone.now()
    for days in PERIODS:
        traffic, report = [], []
        for _ in range(args.rounds):
            begun = time.perf_counter()
            selectors.query_traffic(
                customer_id=customer.pk,
                surface="search",
                since=now - timedelta(days=days),
                until=now,
            )
            traffic.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            queries_report(customer_id=customer.pk, days=days, now=now)
            report.append(time.perf_counter() - begun)
        print(
            f"last {days:>2} days: GROUP BY {1000 * statistics.median(traffic):.0f} ms, "
            f"whole report (with the rank-log look-up) {1000 * statistics.median(report):.0f} ms "
            f"(median of {args.rounds})"
        )


if __name__ == "__main__":
    main()
