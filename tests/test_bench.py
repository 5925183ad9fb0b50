"""`make bench` keeps running: its quick mode, in a few seconds, without judging the timings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_runs_and_reports_its_numbers() -> None:
    env = {**os.environ, "REDIS_URL": settings.SIGNAL_STORE["URL"]}

    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "'ratio'" in lines["signal_read"]
    assert "'added_ms'" in lines["rules"]
