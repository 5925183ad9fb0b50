"""What one rank-log row costs PostgreSQL's CPU, by how its feature matrix is compressed:
docs/performance.md, "The rank log's cost to PostgreSQL".

Every served /v1/rank request becomes one `ranking_ranklog` row (ranking/learning/rank_log.py)
whose `features` hold 100 positions x 28 float32 (11 KB), which PostgreSQL compresses and stores
out of line. This copies the same rows (generated: ids, a jsonb list of them and a matrix of
small repeated values like the service's features) into a table shaped like the rank log, once
with each compression method, in alternating rounds, and reads the server process's CPU time
from /proc (PostgreSQL on this machine). Needs only a PostgreSQL server; `--logged-by DATABASE`
copies the full pages a service logged there instead (a bench shop's, e.g. rankwell_bench):

    .venv/bin/python bench/rank_log_cost.py [--rows 3000] [--rounds 3] [--logged-by DATABASE]

Prints one JSON line: per method the median CPU milliseconds a row, and the stored size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rank import cpu_seconds  # bench/rank.py, beside this file

DATABASE = "rankwell_bench_ranklog"
POSITIONS, FEATURES = 100, 28
TABLE = """
CREATE TABLE rank_log_cost (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    request_id varchar(64) NOT NULL,
    surface varchar(16) NOT NULL,
    query varchar(256) NOT NULL,
    item_ids jsonb NOT NULL,
    features bytea NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (customer_id, request_id)
);
CREATE INDEX ON rank_log_cost (customer_id, surface, created_at);
CREATE INDEX ON rank_log_cost (customer_id, created_at);
ALTER TABLE rank_log_cost ALTER COLUMN features SET COMPRESSION {method};
"""


def rows(count: int) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    made = []
    for n in range(count):
        # Like the service's features (compressed about as well, to about half): columns of
        # zeros, of counts in small steps and of continuous rates and scores.
        kind = rng.integers(0, 3, FEATURES)
        matrix = rng.random((POSITIONS, FEATURES), dtype=np.float32)
        matrix[:, kind == 0] = 0.0
        matrix[:, kind == 1] = rng.integers(0, 20, (POSITIONS, int((kind == 1).sum())))
        ids = [f"sku-{i:05d}" for i in rng.integers(0, 100_000, POSITIONS)]
        made.append(
            (1, f"request-{n}", "search", "running shoes", Jsonb(ids), matrix.tobytes(), now)
        )
    return made


def logged_rows(url: str, count: int) -> list[tuple[Any, ...]]:
    """The item ids and feature matrices of full pages a service logged (a bench shop's)."""
    now = datetime.now(UTC)
    with psycopg.connect(url) as connection:
        found = connection.execute(
            "SELECT item_ids, features FROM ranking_ranklog WHERE length(features) = %s LIMIT %s",
            (POSITIONS * FEATURES * 4, count),
        ).fetchall()
    return [
        (1, f"request-{n}", "search", "running shoes", Jsonb(ids), bytes(features), now)
        for n, (ids, features) in enumerate(found)
    ]


def one_round(url: str, method: str, made: list[tuple[Any, ...]]) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS rank_log_cost")
        connection.execute(TABLE.format(method=method))  # type: ignore[arg-type]
        pid = connection.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        before = cpu_seconds(pid)
        columns = "customer_id, request_id, surface, query, item_ids, features, created_at"
        for start in range(0, len(made), 500):  # the flush's batches (RANK_LOG_FLUSH_BATCH)
            with (
                connection.transaction(),
                connection.cursor().copy(
                    f"COPY rank_log_cost ({columns}) FROM STDIN (FORMAT BINARY)"  # type: ignore[arg-type]
                ) as copy,
            ):
                copy.set_types(
                    ["int8", "varchar", "varchar", "varchar", "jsonb", "bytea", "timestamptz"]
                )
                for row in made[start : start + 500]:
                    copy.write_row(row)
        used = cpu_seconds(pid) - before
        stored = connection.execute(
            "SELECT avg(pg_column_size(features)) FROM rank_log_cost"
        ).fetchone()[0]  # type: ignore[index]
        connection.execute("DROP TABLE rank_log_cost")
    return {"ms_a_row": 1000 * used / len(made), "stored_bytes": float(stored)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--logged-by", help="a database whose rank log's full pages to copy instead (a bench shop)"
    )
    args = parser.parse_args()
    server = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    made = (
        logged_rows(f"{server}/{args.logged_by}", args.rows) if args.logged_by else rows(args.rows)
    )
    methods = ("pglz", "lz4")
    found: dict[str, list[dict[str, float]]] = {method: [] for method in methods}
    for round_ in range(args.rounds):
        for method in methods[round_ % 2 :] + methods[: round_ % 2]:  # each first in turn
            found[method].append(one_round(f"{server}/{DATABASE}", method, made))
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {DATABASE}")
    summary = {
        method: {
            "cpu_ms_a_row": round(statistics.median(r["ms_a_row"] for r in runs), 3),
            "rounds": [round(r["ms_a_row"], 3) for r in runs],
            "stored_bytes": round(statistics.median(r["stored_bytes"] for r in runs)),
        }
        for method, runs in found.items()
    }
    source = args.logged_by or "generated"
    print(
        json.dumps(
            {
                "rows": len(made),
                "source": source,
                "matrix_bytes": POSITIONS * FEATURES * 4,
                **summary,
            }
        )
    )


if __name__ == "__main__":
    main()
