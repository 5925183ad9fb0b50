"""What a rank-log entry costs to write, in the API worker and in PostgreSQL: docs/performance.md,
"The rank log's item columns by reference". On a bench shop a `bench/compare.py --keep` run left
(its `BENCH_DATABASE` and `BENCH_NAMESPACE`), 2,000 requests of 100 candidates go through the
service's WSGI app in process; their rank-log entries are then written (new request ids each
time, batches of 330: a second's worth for one worker at 660 requests a second) three ways, three
rounds in turn: whole (the features of every column in the row, as rows without a signal version
are, and as every row was before the item columns went by reference); by reference with the
items' columns stored already (a process serving a version it has logged for a while); and by
reference under a signal version new to the process and the database (every item's columns
inserted once: the first seconds after a refresh). PostgreSQL's CPU is read from its backend's
/proc entry (clock ticks: read the means, not one round). The rows written are deleted.

    BENCH_DATABASE=rankwell_bench_shared BENCH_NAMESPACE=rwbenchshared \\
        REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/experiments/rank_log_cost.py
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import instructions  # bench/instructions.py
import rank  # bench/rank.py

REQUESTS = 2000
BATCH = 330
# Signal versions no refresh will reach, for the rounds under a new version (deleted after).
SCRATCH_VERSION = 2_000_000_000


def main() -> None:
    rank.configure_environment(secrets.token_urlsafe(50), quick=False)
    metrics = rank.VAR / "prometheus-instructions"
    metrics.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    os.environ["RANK_LOG_BUFFER_SIZE"] = str(REQUESTS * 2)
    os.environ["RUNTIME_REFRESH_SECONDS"] = "0"  # no sync thread draining the entries meanwhile
    import django

    django.setup()
    from django.db import connection
    from psycopg import sql

    from ranking.learning import rank_log
    from ranking.models import RankLog

    key, floor_env = instructions.shop()
    os.environ.update({**floor_env, "BENCH_KEY": key})
    bodies = rank.rank_bodies(instructions.reused_world(), 100, 200, 100)
    call = instructions.load_app("service")
    started = time.time()
    instructions.warm([call], bodies)
    rank_log.buffer.drain(10**6)
    instructions.run(call, bodies, REQUESTS)
    entries = rank_log.buffer.drain(10**6)
    assert len(entries) == REQUESTS, len(entries)
    table = RankLog._meta.db_table
    assert all(entry.signals_version is not None for entry in entries), "a refreshed shop"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    ways = ["whole", "by reference, items stored already", "by reference, a new signal version"]
    found: dict[str, dict[str, list[float]]] = {way: {"worker": [], "postgres": []} for way in ways}
    rank_log.rank_log_write(entries[:BATCH])  # the served version's items, stored once
    try:
        for round_ in range(3):
            for way in ways:
                fresh = [replace(entry, request_id=uuid.uuid4().hex) for entry in entries]
                if way == "whole":
                    fresh = [replace(entry, signals_version=None) for entry in fresh]
                elif way.endswith("new signal version"):
                    version = SCRATCH_VERSION + round_
                    fresh = [replace(entry, signals_version=version) for entry in fresh]
                remembered = {key: set(ids) for key, ids in rank_log._stored_items.items()}
                worker, postgres = time.process_time(), backend_cpu()
                for start in range(0, len(fresh), BATCH):
                    rank_log.rank_log_write(fresh[start : start + BATCH])
                found[way]["worker"].append((time.process_time() - worker) / len(fresh))
                found[way]["postgres"].append((backend_cpu() - postgres) / len(fresh))
                # The process goes on serving the shop's version: it remembers its items still.
                rank_log._stored_items.clear()
                rank_log._stored_items.update(remembered)
    finally:
        with connection.cursor() as cursor:
            # Every row this run wrote into the rank log itself, and the scratch versions' items.
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE created_at >= to_timestamp(%s)").format(
                    sql.Identifier(table)
                ),
                [started],
            )
            cursor.execute(
                "DELETE FROM ranking_ranklogitemsignals WHERE signals_version >= %s",
                [SCRATCH_VERSION],
            )
    print(f"{len(entries)} entries, {len(entries[0].features)} bytes of features each")
    for way, sides in found.items():
        worker = statistics.mean(sides["worker"]) * 1e6
        postgres = statistics.mean(sides["postgres"]) * 1e6
        print(f"  {way:40s} worker {worker:5.1f} us an entry, PostgreSQL {postgres:5.1f} us")


if __name__ == "__main__":
    main()
