"""`make bench` keeps running: its quick mode, in a few seconds, without judging the timings."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_runs_and_reports_its_numbers() -> None:
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    env = {
        **os.environ,
        "REDIS_URL": settings.SIGNAL_STORE["URL"],
        # bench/rank.py makes its own database on the suite's PostgreSQL server
        "BENCH_POSTGRES": f"postgres://{credentials}@{database['HOST']}:{database['PORT']}",
    }

    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "'ratio'" in lines["signal_read"]
    assert "'added_ms'" in lines["rules"]
    for measured in (
        "'rank_100'",
        "'rank_1000'",
        "'ingest'",
        "'worker_memory_mb'",
        "'floor_1000'",
        "'encodings_1000'",
        "'floor_ingest'",
    ):
        assert measured in lines["served"]
    assert "'workers_cpu_seconds'" in lines["served"]
    # The bench shop's answers from this host's snapshot of its signals equal Redis's.
    served = ast.literal_eval(lines["served"])
    for candidates in (100, 1000):
        exact = served[f"snapshot_exact_{candidates}"]
        assert exact["snapshot_mapped"]
        assert exact["identical"] == exact["requests"] == 10  # bench/rank.py's QUICK
        assert exact["degraded"] == 0
        # The direct rank path answers as Django does, and answered every one of them.
        direct = served[f"direct_exact_{candidates}"]
        assert direct["identical"] == direct["answered_directly"] == direct["ok"] == 10
    assert "'profile_error'" not in lines["served"]
    served_profile = (ROOT / "var" / "bench" / "profile-served-quick.txt").read_text()
    assert "ranked_answer" in served_profile
    assert "'refresh_seconds'" in lines["refresh"]
    assert "'rss_growth_mb'" in lines["memory"]
    assert "'rank_100_limiter_cost_median_us'" in lines["ratelimit"]
    # Through a Redis freeze and a Redis outage: every answer a 200 or a 202, nothing refused.
    faults = ast.literal_eval(lines["faults"])
    assert faults["rank_freeze"]["errors"] == 0
    assert set(faults["ingest_outage"]["redis_down"]["statuses"]) == {"202"}
    outage = faults["ingest_outage"]
    assert outage["replayed_updates"] == outage["pending_updates_after_outage"] > 0
