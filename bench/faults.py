"""/v1/rank and /v1/events through gunicorn while Redis fails, on a Redis of the benchmark's own.

1. Starts a private redis-server on a loopback port (its dump in a temporary directory, no
   automatic saves) and builds a bench shop on it as bench/rank.py does, smaller (20,000 items,
   100 trees, 10 rules; its own PostgreSQL database `rankwell_bench_faults`).
2. Serves it with gunicorn (platform/gunicorn.conf.py, production settings, one worker per core).
3. **Rank under a Redis freeze**: finds the maximum throughput at 100 candidates (closed loop),
   then sends half of it (open loop) for 20 s, freezing Redis (SIGSTOP) from 5 s to 10 s. Counts
   errors (non-200 answers and failed connections) and degraded answers, with their latency
   percentiles and the due times of the first and last degraded answer.
4. **Events ingest during a Redis outage**: batches of 1000 events (closed loop, 16 connections)
   for 10 s with Redis up, then 10 s with it killed (after a SAVE, so a restart brings its data
   back, as a replica failover does); then Redis is started again and the profile updates kept
   in PostgreSQL meanwhile are replayed back to back with the beat task's function, as the
   `replay-pending-profile-updates` beat does every PROFILE_REPLAY_INTERVAL_SECONDS. Reports
   events/s in both phases and the replay's time (profiles catch up within it plus one beat
   interval).

    .venv/bin/python bench/faults.py [--quick]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rank as served  # bench/rank.py: the shop, gunicorn and the load generator's driver

ROOT = Path(__file__).resolve().parent.parent

FULL = {
    "items": 20_000,
    "shoppers": 4_000,
    "history_sessions": 6_000,
    "ranked_sessions": 1_500,
    "trees": 100,
    "max_seconds": 5.0,
    "freeze_at": 5.0,
    "freeze_seconds": 5.0,
    "open_seconds": 20.0,
    "ingest_seconds": 10.0,
    "candidates": 100,
}
QUICK = {
    **FULL,
    "items": 2_000,
    "shoppers": 300,
    "history_sessions": 600,
    "ranked_sessions": 300,
    "trees": 10,
    "max_seconds": 1.0,
    "freeze_at": 1.0,
    "freeze_seconds": 1.0,
    "open_seconds": 3.0,
    "ingest_seconds": 1.0,
}
DEGRADED = '"degraded":true'


class PrivateRedis:
    """A redis-server on a free loopback port; SAVE before a kill brings the data back."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = served.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise SystemExit("redis-server is needed (platform/dev/ensure-services.sh installs it)")
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--dbfilename",
                "dump.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        served.wait_for_port(self.port, seconds=30)
        import redis

        client = redis.Redis.from_url(self.url)
        while True:  # loading a dump answers LOADING until done
            try:
                client.ping()
                break
            except redis.exceptions.BusyLoadingError:
                time.sleep(0.05)
        client.close()

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def save_and_kill(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.save()
        client.close()
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def rank_under_freeze(
    port: int,
    key: str,
    bodies: Path,
    size: dict[str, Any],
    redis: PrivateRedis,
    workers: list[int],
    dump: Path | None,
) -> dict[str, Any]:
    common = {"path": "/v1/rank", "bodies": bodies, "header": [f"Authorization: Bearer {key}"]}
    served.loadgen("closed", port, duration=min(3.0, size["max_seconds"]), connections=32, **common)
    maximum = served.loadgen("closed", port, duration=size["max_seconds"], connections=32, **common)
    rate = max(1, round(maximum["achieved_rps"] / 2))
    command = [
        served.PYTHON,
        str(ROOT / "bench" / "loadgen.py"),
        "open",
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--duration",
        str(size["open_seconds"]),
        "--connections",
        "32",
        "--mark",
        DEGRADED,
        "--path",
        "/v1/rank",
        "--bodies",
        str(bodies),
        "--header",
        f"Authorization: Bearer {key}",
    ]
    started = time.monotonic()
    generator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(max(0.0, started + size["freeze_at"] - time.monotonic()))
        redis.signal(signal.SIGSTOP)
        frozen_at = time.monotonic() - started
        if dump is not None:  # where the workers' threads are halfway through the freeze
            time.sleep(size["freeze_seconds"] / 2)
            spy = Path(served.PYTHON).parent / "py-spy"
            dump.write_text(
                "".join(
                    subprocess.run(
                        [str(spy), "dump", "--pid", str(pid)],
                        capture_output=True,
                        text=True,
                        check=False,
                    ).stdout
                    for pid in workers
                )
            )
        time.sleep(max(0.0, started + frozen_at + size["freeze_seconds"] - time.monotonic()))
    finally:
        redis.signal(signal.SIGCONT)
    thawed_at = time.monotonic() - started
    output, _ = generator.communicate(timeout=size["open_seconds"] + 120)
    during = json.loads(output.strip().splitlines()[-1])
    bad = during["errors"] + sum(n for status, n in during["statuses"].items() if status != "200")
    return {
        "max_rps": maximum["achieved_rps"],
        "rate": rate,
        "frozen_from_s": round(frozen_at, 2),
        "thawed_at_s": round(thawed_at, 2),
        "answers": during["completed"],
        "errors": bad,
        "error_rate": round(bad / max(1, during["sent"]), 5),
        "degraded": during["marked"],
        "run": during,
    }


def ingest_during_outage(
    port: int, key: str, bodies: Path, size: dict[str, Any], redis: PrivateRedis
) -> dict[str, Any]:
    from events.models import PendingProfileUpdate
    from events.tasks import replay_pending_profile_updates

    lines = bodies.read_bytes().splitlines()
    half = len(lines) // 2
    up_bodies, down_bodies = bodies.with_suffix(".up"), bodies.with_suffix(".down")
    up_bodies.write_bytes(b"\n".join(lines[:half]))
    down_bodies.write_bytes(b"\n".join(lines[half:]))

    def ingest(batches: Path) -> dict[str, Any]:
        result = served.loadgen(
            "closed",
            port,
            path="/v1/events",
            bodies=batches,
            duration=size["ingest_seconds"],
            connections=16,
            header=[f"Authorization: Bearer {key}"],
        )
        return {
            "events_per_second": round(result["completed"] * 1000 / result["seconds"]),
            "statuses": result["statuses"],
            "errors": result["errors"],
            "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
        }

    up = ingest(up_bodies)
    redis.save_and_kill()
    try:
        down = ingest(down_bodies)
        pending = PendingProfileUpdate.objects.count()
    finally:
        redis.start()
    started = time.perf_counter()
    applied = 0
    while PendingProfileUpdate.objects.exists():
        applied += replay_pending_profile_updates()
    replay_seconds = time.perf_counter() - started
    from django.conf import settings

    return {
        "redis_up": up,
        "redis_down": down,
        "pending_updates_after_outage": pending,
        "replayed_updates": applied,
        "replay_seconds": round(replay_seconds, 2),
        "replay_interval_seconds": settings.PROFILE_REPLAY_INTERVAL_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--dump",
        type=Path,
        help="write py-spy dumps of the workers' threads halfway through the freeze here",
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    served.DATABASE = "rankwell_bench_faults_quick" if args.quick else "rankwell_bench_faults"
    served.NAMESPACE = "rwbenchfaults"
    with tempfile.TemporaryDirectory() as tmp:
        redis = PrivateRedis(Path(tmp))
        redis.start()
        os.environ["REDIS_URL"] = redis.url
        try:
            env = served.configure_environment(secrets.token_urlsafe(50), quick=False)
            (served.VAR / "media").mkdir(parents=True, exist_ok=True)
            served.recreate_database()

            import django

            django.setup()
            world, key, facts = served.build_shop(size)
            result: dict[str, Any] = {"shop": facts, "workers": args.workers}
            with served.gunicorn(env, args.workers, metrics="prometheus-faults") as (port, master):
                workers = served.worker_pids(master.pid)
                bodies = Path(tmp) / "rank.jsonl"
                bodies.write_bytes(
                    b"\n".join(served.rank_bodies(world, size["candidates"], 200, 5))
                )
                result["rank_freeze"] = rank_under_freeze(
                    port, key, bodies, size, redis, workers, args.dump
                )
                events = Path(tmp) / "events.jsonl"
                batches = 20 if args.quick else 400
                events.write_bytes(b"\n".join(served.event_bodies(world, batches, seed=98)))
                result["ingest_outage"] = ingest_during_outage(port, key, events, size, redis)
        finally:
            redis.stop()
            from django.db import connections

            connections.close_all()
            served.recreate_database(create=False)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
