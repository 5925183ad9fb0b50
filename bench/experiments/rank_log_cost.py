"""What a rank-log entry costs to write, in the API worker and in PostgreSQL: docs/performance.md,
"The rank log's share". On a bench shop a `bench/compare.py --keep` run left (its
`BENCH_DATABASE` and `BENCH_NAMESPACE`), 2,000 requests of 100 candidates go through the
service's WSGI app in process; their rank-log entries are then written (new request ids each
time, batches of 330: a second's worth for one worker at 660 requests a second) into the rank
log's table, into a copy of it without the foreign key to the customer, into a copy whose
features column is stored uncompressed, and into one that keeps a row whole in its heap page
(toast_tuple_target 8160), three rounds in turn. PostgreSQL's CPU is read from its
backend's /proc entry (clock ticks: read the means, not one round). The rows written are deleted.

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
COPIES = {
    "without the foreign key": "scratch_rank_log_no_fk",
    "features uncompressed": "scratch_rank_log_external",
    "rows kept whole (toast_tuple_target 8160)": "scratch_rank_log_inline",
}


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
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
        for copy in COPIES.values():  # LIKE copies the indexes, not the foreign key
            cursor.execute(f"DROP TABLE IF EXISTS {copy}")
            cursor.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
        cursor.execute(
            f"ALTER TABLE {COPIES['features uncompressed']} "
            "ALTER COLUMN features SET STORAGE EXTERNAL"
        )
        cursor.execute(
            f"ALTER TABLE {COPIES['rows kept whole (toast_tuple_target 8160)']} "
            "SET (toast_tuple_target = 8160)"
        )
    tick = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    targets = {"the rank log": table, **COPIES}
    found: dict[str, dict[str, list[float]]] = {
        name: {"worker": [], "postgres": []} for name in targets
    }
    try:
        for _ in range(3):
            for name, target in targets.items():
                RankLog._meta.db_table = target
                fresh = [replace(entry, request_id=uuid.uuid4().hex) for entry in entries]
                worker, postgres = time.process_time(), backend_cpu()
                for start in range(0, len(fresh), BATCH):
                    rank_log.rank_log_write(fresh[start : start + BATCH])
                found[name]["worker"].append((time.process_time() - worker) / len(fresh))
                found[name]["postgres"].append((backend_cpu() - postgres) / len(fresh))
    finally:
        RankLog._meta.db_table = table
        with connection.cursor() as cursor:
            for copy in COPIES.values():
                cursor.execute(f"DROP TABLE IF EXISTS {copy}")
            # Every row this run wrote into the rank log itself.
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE created_at >= to_timestamp(%s)").format(
                    sql.Identifier(table)
                ),
                [started],
            )
    print(f"{len(entries)} entries, {len(entries[0].features)} bytes of features each")
    for name, sides in found.items():
        worker = statistics.mean(sides["worker"]) * 1e6
        postgres = statistics.mean(sides["postgres"]) * 1e6
        print(f"  {name:42s} worker {worker:5.1f} us an entry, PostgreSQL {postgres:5.1f} us")


if __name__ == "__main__":
    main()
