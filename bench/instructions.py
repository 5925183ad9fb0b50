"""What a /v1/rank request costs the service's process against the floor's (bench/floor.py), in
measures that other jobs on the machine do not move: docs/performance.md, "CPU per request
against the floor".

On a bench shop a `bench/compare.py --keep` run left (its `BENCH_DATABASE` and
`BENCH_NAMESPACE`), the same requests go through the service's WSGI app (production settings,
multiprocess metrics, the runtime-sync thread and the rank log's writes running) and through the
floor's, called in process the way gunicorn calls them, after a warm-up. Three measures:

- `cpu` (the default): both apps in one process, alternating rounds of `--requests` requests
  (the floor first in even rounds), the process's CPU time (every thread) per request.
- `--callgrind`: each app in a process of its own under valgrind's callgrind, counting the
  instructions of `--requests` requests (every thread) after a warm-up: the same count
  whatever else runs. `--profiles DIR` keeps the callgrind files for `callgrind_annotate`.
  Valgrind runs Python some 50 times slower, so work done once a second would weigh 50 times
  more per request than when served: the runtime-sync thread is off there
  (`RUNTIME_REFRESH_SECONDS=0`) and the counted requests end with writing their rank-log
  entries (`rank_log.flush()`, the sync thread's job), so each request's own share of it is
  counted. What the thread's polls cost a second is left out (an idle worker uses about
  0.01 s of CPU in 10 s).
- `--served`: both under gunicorn with `platform/gunicorn.conf.py` (as bench/rank.py serves
  them), alternating closed-loop rounds of `--seconds` at `--connections`, the workers' CPU time
  per request from /proc: gunicorn's own handling included. `--against DIR` serves a third,
  the service from another checkout (`git worktree add` or `git archive` of the commit before a
  change), in the same rotation: a change's effect served, side by side.

    BENCH_DATABASE=rankwell_bench_w4 BENCH_NAMESPACE=rwbenchw4 \\
        REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/instructions.py \\
        --candidates 100 1000 [--callgrind | --served]

Prints one JSON line per candidate count: each side's medians and spreads and the ratio.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rank  # bench/rank.py, beside this file

WARM_UP = 100
Call = Callable[[bytes], None]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--requests", type=int, default=300, help="a round's requests")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--profiles", type=Path, help="--callgrind: keep the files here")
    parser.add_argument("--served", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0, help="--served: a round's length")
    parser.add_argument("--connections", type=int, default=4, help="--served")
    parser.add_argument("--workers", type=int, default=2, help="--served: gunicorn workers")
    parser.add_argument(
        "--against", type=Path, help="--served: also serve the service from this checkout"
    )
    parser.add_argument("--child", choices=("service", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.bodies, args.requests)
        return
    env = rank.configure_environment(secrets.token_urlsafe(50), quick=False)
    # Metrics in multiprocess mode, as gunicorn's workers write them.
    metrics = rank.VAR / "prometheus-instructions"
    metrics.mkdir(parents=True, exist_ok=True)
    for stale in metrics.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    import django

    django.setup()
    key, floor_env = shop()
    os.environ.update({**floor_env, "BENCH_KEY": key})
    with tempfile.TemporaryDirectory() as tmp:
        world = reused_world()
        for candidates in args.candidates:
            bodies = Path(tmp) / f"rank-{candidates}.jsonl"
            bodies.write_bytes(b"\n".join(rank.rank_bodies(world, candidates, 200, candidates)))
            if args.callgrind:
                result = callgrind(bodies, args.requests, args.rounds, args.profiles, candidates)
            elif args.served:
                result = served(env, floor_env, key, bodies, args.rounds, args.seconds, args)
            else:
                result = in_process(bodies, args.requests, args.rounds)
            print(json.dumps({"candidates": candidates, **result}), flush=True)


def shop() -> tuple[str, dict[str, str]]:
    """A new API key of the kept shop, and the floor's environment (its packed vectors written
    into Redis the first time)."""
    import redis

    from customers.models import Customer, Scope
    from customers.services import api_key_create

    customer = Customer.objects.get(slug="bench")
    _, key = api_key_create(customer=customer, name="instructions", scopes=[Scope.RANK])
    prefix = f"{rank.NAMESPACE}:floor:"
    marker = f"{rank.NAMESPACE}:floor-ready"
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    library = client.get(marker)
    if library is None or not Path(library.decode()).exists():
        floor_env = rank.floor_setup(prefix)
        client.set(marker, floor_env["FLOOR_MODEL_LIBRARY"])
    else:
        from ranking.signals.schema import FEATURES

        floor_env = {
            "FLOOR_DATABASE_URL": os.environ["DATABASE_URL"],
            "FLOOR_CUSTOMER_ID": str(customer.pk),
            "FLOOR_REDIS_URL": os.environ["REDIS_URL"],
            "FLOOR_PREFIX": prefix,
            "FLOOR_WIDTH": str(len(FEATURES)),
            "FLOOR_MODEL_LIBRARY": library.decode(),
        }
    return key, floor_env


def reused_world() -> Any:
    from demo.simulation import build_world

    size: dict[str, Any] = rank.FULL
    return build_world(n_items=size["items"], n_shoppers=size["shoppers"], seed=7)


def wsgi_caller(app: Callable[..., Any], key: str) -> Call:
    """One POST /v1/rank through `app` with the environ gunicorn gives it; asserts a 200."""
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/v1/rank",
        "RAW_URI": "/v1/rank",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "SERVER_NAME": rank.SERVER,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "gunicorn",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": f"{rank.SERVER}:8000",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)

    def call(body: bytes) -> None:
        environ = {**base, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
        answer = app(environ, start_response)
        b"".join(answer)
        close = getattr(answer, "close", None)
        if close is not None:
            close()
        status = statuses.pop()
        assert status.startswith("200"), status

    return call


def load_app(side: str) -> Call:
    if side == "floor":
        import floor  # bench/floor.py

        return wsgi_caller(floor.app, "")
    from config.wsgi import application

    return wsgi_caller(application, os.environ["BENCH_KEY"])


def read_bodies(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def run(call: Call, bodies: list[bytes], count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        call(bodies[n % len(bodies)])


def warm(calls: list[Call], bodies: list[bytes]) -> None:
    """Caches loaded, trees compiled, the signal snapshot mapped; then the collector frozen as
    platform/gunicorn.conf.py does in each worker."""
    for call in calls:
        run(call, bodies, WARM_UP)
    snapshots_ready()
    for call in calls:
        run(call, bodies, WARM_UP)
    gc.collect()
    gc.freeze()


def snapshots_ready(seconds: float = 900.0) -> None:
    """Wait for the thread that maps (or builds) the signal snapshot the first requests asked
    for: until it is ready, requests read the records from Redis, and under valgrind mapping
    takes many seconds, so counting before it would count another path."""
    from django.apps import apps

    if not apps.ready:  # the floor's process
        return
    from ranking.signals.backend import signal_store

    cache = getattr(signal_store(), "snapshots", None)
    deadline = time.monotonic() + seconds
    while cache is not None and cache._pending and time.monotonic() < deadline:
        time.sleep(0.2)
    if cache is not None and not cache._mapped:
        raise RuntimeError("no signal snapshot was mapped: the counts would be of Redis reads")


def in_process(bodies_file: Path, requests: int, rounds: int) -> dict[str, Any]:
    """The process's CPU time (all threads) per request, in alternating rounds."""
    bodies = read_bodies(bodies_file)
    calls = {"floor": load_app("floor"), "service": load_app("service")}
    warm(list(calls.values()), bodies)
    found: dict[str, list[float]] = {"floor": [], "service": []}
    for round_ in range(rounds):
        order = ("floor", "service") if round_ % 2 == 0 else ("service", "floor")
        for side in order:
            started = time.process_time()
            run(calls[side], bodies, requests, round_ * requests)
            found[side].append((time.process_time() - started) / requests * 1000)
    return summary(found, "cpu_ms", 3)


def summary(found: dict[str, list[float]], unit: str, digits: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, values in found.items():
        median = statistics.median(values)
        out[side] = {
            unit: round(median, digits),
            "lowest": round(min(values), digits),
            "highest": round(max(values), digits),
            "rounds": [round(v, digits) for v in values],
        }
    out["ratio"] = round(out["service"][unit] / out["floor"][unit], 3)
    return out


def callgrind(
    bodies: Path, requests: int, rounds: int, profiles: Path | None, candidates: int
) -> dict[str, Any]:
    """Instructions per request, each side in a process of its own under callgrind (`rounds`
    processes a side, alternating; the counts barely move, so 2 are plenty)."""
    found: dict[str, list[float]] = {"floor": [], "service": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            order = ("floor", "service") if round_ % 2 == 0 else ("service", "floor")
            for side in order:
                out = Path(tmp) / f"callgrind.{side}.{candidates}.{round_}"
                subprocess.run(
                    [
                        "env",
                        "RUNTIME_REFRESH_SECONDS=0",
                        "valgrind",
                        "--tool=callgrind",
                        "--instr-atstart=no",
                        f"--callgrind-out-file={out}",
                        sys.executable,
                        __file__,
                        "--child",
                        side,
                        "--bodies",
                        str(bodies),
                        "--requests",
                        str(requests),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                found[side].append(instructions(out) / requests / 1e6)
                if profiles is not None:
                    profiles.mkdir(parents=True, exist_ok=True)
                    out.replace(profiles / out.name)
    return summary(found, "instructions_millions", 3)


def instructions(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def child(side: str, bodies_file: Path, requests: int) -> None:
    """Under callgrind: warm up uncounted, then count `requests` requests."""
    import django

    rank.configure_environment(os.environ["SECRET_KEY"], quick=False)
    if side == "service":
        django.setup()
    bodies = read_bodies(bodies_file)
    call = load_app(side)
    warm([call], bodies)
    flush: Callable[[], Any] = lambda: None  # noqa: E731
    if side == "service":
        from ranking.learning import rank_log

        rank_log.flush()
        flush = rank_log.flush
    toggle = ["callgrind_control", "--instr=on", str(os.getpid())]
    subprocess.run(toggle, check=True, capture_output=True)
    run(call, bodies, requests, WARM_UP)
    flush()
    toggle[1] = "--instr=off"
    subprocess.run(toggle, check=True, capture_output=True)


def served(
    env: dict[str, str],
    floor_env: dict[str, str],
    key: str,
    bodies: Path,
    rounds: int,
    seconds: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Both under gunicorn (`--workers`, the service's config), closed loops alternating; the
    workers' CPU time per answered request."""
    import contextlib

    common = {
        "path": "/v1/rank",
        "bodies": bodies,
        "header": [f"Authorization: Bearer {key}"],
        "connections": args.connections,
    }
    sides = ["floor", "service"] + (["against"] if args.against else [])
    found: dict[str, list[float]] = {side: [] for side in sides}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    tails: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    # The busier worker's share of the workers' CPU in a round: 0.5 when both carried the load.
    shares: dict[str, list[float]] = {side: [] for side in sides}
    with contextlib.ExitStack() as stack:
        servers = {
            "floor": stack.enter_context(
                rank.gunicorn({**env, **floor_env}, args.workers, "prometheus-floor", "floor:app")
            ),
            "service": stack.enter_context(rank.gunicorn(env, args.workers)),
        }
        if args.against:
            against = rank.gunicorn(
                env, args.workers, "prometheus-against", root=args.against.resolve()
            )
            servers["against"] = stack.enter_context(against)
        for port, _ in servers.values():
            rank.loadgen("closed", port, duration=3.0, **common)
        for round_ in range(rounds):
            shift = round_ % len(sides)  # each side first in turn
            for side in sides[shift:] + sides[:shift]:
                port, master = servers[side]
                workers = rank.worker_pids(master.pid)
                before = [rank.cpu_seconds(pid) for pid in workers]
                result = rank.loadgen("closed", port, duration=seconds, **common)
                each = [rank.cpu_seconds(pid) - b for pid, b in zip(workers, before, strict=True)]
                spent = sum(each)
                shares[side].append(round(max(each) / spent, 2))
                answered = result["statuses"].get("200", 0)
                found[side].append(spent / answered * 1000)
                rates[side].append(result["achieved_rps"])
                tails[side].append((result["p50_ms"], result["p99_ms"]))
    out = summary(found, "cpu_ms", 3)
    for side, values in rates.items():
        out[side]["req_s"] = [round(v) for v in values]
        out[side]["p50_ms"] = [round(p50, 2) for p50, _ in tails[side]]
        out[side]["p99_ms"] = [round(p99, 2) for _, p99 in tails[side]]
        out[side]["busier_worker_share"] = shares[side]
    if args.against:
        out["against_ratio"] = round(out["against"]["cpu_ms"] / out["floor"]["cpu_ms"], 3)
    return out


if __name__ == "__main__":
    main()
