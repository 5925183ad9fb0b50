"""/v1/rank and /v1/events through gunicorn with production settings, on a shop it builds itself.

1. Builds the bench shop in its own PostgreSQL database (`rankwell_bench`, dropped and created
   again each run) and Redis namespace (`rwbench`, removed at the end): a simulated catalog with
   brands and categories, simulated shoppers whose history gives the signals and personal
   profiles, a refresh, traffic ranked by the engine and logged, a LambdaMART of 200 trees
   trained on that log and activated, and 10 active rules that apply to every search.
2. Serves it with gunicorn (platform/gunicorn.conf.py: RANKWELL_ENV=production, a SECRET_KEY
   made for the run, DEBUG off, ALLOWED_HOSTS=127.0.0.1, one worker per core).
3. Measures, with bench/loadgen.py in its own process: the generator's own ceiling against a
   trivial server; per candidate count, the maximum throughput (closed loop) and then the latency
   percentiles at half of it (open loop, constant rate, latency from each request's due time);
   events ingest throughput (batches of 1000 events); and the workers' peak RSS.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/rank.py [--quick]

Prints one JSON line. The load generator shares the machine's cores with the server, as the
numbers in docs/performance.md say.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# --quick uses its own database and namespace, so the suite can run it while a full run goes on.
DATABASE, QUICK_DATABASE = "rankwell_bench", "rankwell_bench_quick"
NAMESPACE, QUICK_NAMESPACE = "rwbench", "rwbenchquick"
SERVER = "127.0.0.1"
VAR = ROOT / "var" / "bench"
PYTHON = sys.executable
PROTOBUF = "application/x-protobuf"

FULL = {
    "items": 100_000,
    "shoppers": 20_000,
    "history_sessions": 30_000,
    "ranked_sessions": 6_000,
    "trees": 200,
    "max_seconds": 10.0,
    "open_seconds": 30.0,
    "ingest_seconds": 10.0,
    "candidates": (100, 1000),
    "floor_rounds": 4,
    "floor_seconds": 10.0,
    "encoding_seconds": 5.0,
    "exact_requests": 40,
}
QUICK = {
    "items": 2_000,
    "shoppers": 300,
    "history_sessions": 600,
    "ranked_sessions": 300,
    "trees": 10,
    "max_seconds": 1.0,  # the served profile's spy samples for a second less than this
    # Half a second a load-generator run: enough requests to check each measure still works
    # (34 runs of a second each took 46 s of the quick run's 80).
    "open_seconds": 0.5,
    "ingest_seconds": 0.5,
    "candidates": (100, 1000),
    "floor_rounds": 2,
    "floor_seconds": 0.5,
    "encoding_seconds": 0.5,
    # Each is answered with explanations, twice: 40 of them took the quick run 44 s.
    "exact_requests": 10,
}


def configure_environment(secret_key: str, quick: bool) -> dict[str, str]:
    """The environment of this process and of gunicorn: production settings on bench stores."""
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        raise SystemExit("REDIS_URL must name the Redis to benchmark against")
    global DATABASE, NAMESPACE
    if quick:
        DATABASE, NAMESPACE = QUICK_DATABASE, QUICK_NAMESPACE
    # A run beside another one (another worktree's) names its own database and namespace.
    DATABASE = os.environ.get("BENCH_DATABASE", DATABASE)
    NAMESPACE = os.environ.get("BENCH_NAMESPACE", NAMESPACE)
    host = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    env = {
        "RANKWELL_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": SERVER,
        "DATABASE_URL": f"{host}/{DATABASE}",
        "REDIS_URL": redis_url,
        "SIGNAL_STORE_NAMESPACE": NAMESPACE,
        "MEDIA_ROOT": str(VAR / "media"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


def recreate_database(create: bool = True) -> None:
    import psycopg

    host = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{host}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        if create:
            connection.execute(f"CREATE DATABASE {DATABASE}")


def drop_namespace() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(match=f"{NAMESPACE}:*", count=5000))
    for start in range(0, len(keys), 5000):
        client.unlink(*keys[start : start + 5000])
    client.close()


def ten_rules(world: Any, rng: Any) -> list[dict[str, Any]]:
    """Ten rules that apply to every search: hide, boosts, buries, a pin, a slot, diversity."""
    from demo.simulation import BRANDS

    def some_ids(n: int) -> list[str]:
        return [world.item_ids[i] for i in rng.choice(len(world.item_ids), n, replace=False)]

    departments = sorted({category.department for category in world.categories})
    return [
        {
            "name": "hide a recall",
            "selector": {"item_ids": some_ids(50)},
            "action": {"type": "hide"},
        },
        {
            "name": "boost brand 0",
            "selector": {"brands": [BRANDS[0]]},
            "action": {"type": "boost", "factor": 1.5},
        },
        {
            "name": "boost brands 1-2",
            "selector": {"brands": [BRANDS[1], BRANDS[2]]},
            "action": {"type": "boost", "strength": "weak"},
        },
        {
            "name": "boost a department",
            "selector": {"categories": [departments[0]]},
            "action": {"type": "boost", "factor": 1.2},
        },
        {
            "name": "boost in stock under 50",
            "selector": {"price_max": 50.0, "in_stock": True},
            "action": {"type": "boost", "factor": 1.1},
        },
        {
            "name": "bury expensive",
            "selector": {"price_min": 400.0},
            "action": {"type": "bury", "factor": 0.7},
        },
        {
            "name": "bury orange",
            "selector": {"attributes": {"color": ["orange"]}},
            "action": {"type": "bury", "factor": 0.9},
        },
        {
            "name": "pin two",
            "action": {
                "type": "pin",
                "pins": [
                    {"item_id": item_id, "position": n} for n, item_id in enumerate(some_ids(2), 1)
                ],
            },
        },
        {
            "name": "slot brand 3",
            "selector": {"brands": [BRANDS[3]]},
            "action": {"type": "slot", "positions": [5, 10]},
        },
        {
            "name": "brand diversity",
            "action": {"type": "diversity", "field": "brand", "max_items": 3, "top_k": 20},
        },
    ]


def build_shop(size: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    """The bench shop as described above; returns (world, API key, facts about it)."""
    import numpy as np
    from django.core.management import call_command
    from django.utils import timezone

    from catalog.contracts import CatalogItemIn
    from catalog.services import items_upsert
    from customers.models import Customer, Scope
    from customers.services import api_key_create, customer_create
    from demo.simulation import build_world, simulate
    from demo.traffic import events_send, simulate_ranked_traffic
    from merchandising.contracts import RuleIn
    from merchandising.services import rule_create
    from ranking.learning import rank_log, registry
    from ranking.learning.training import TrainingParams, model_train
    from ranking.services import signals_refresh

    timings: dict[str, float] = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    customer = customer_create(name="Bench shop", slug="bench", max_candidates=1000)
    # The load generator measures the serving path, not the rate limiter's refusals.
    Customer.objects.filter(pk=customer.pk).update(
        rank_requests_per_second=1_000_000,
        rank_burst=1_000_000,
        events_requests_per_second=1_000_000,
        events_burst=1_000_000,
    )
    world = build_world(n_items=size["items"], n_shoppers=size["shoppers"], seed=7)
    catalog = [CatalogItemIn.model_validate(row, strict=False) for row in world.catalog()]
    for start in range(0, len(catalog), 5000):
        items_upsert(customer_id=customer.pk, items=catalog[start : start + 5000])
    timings["catalog_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    end = timezone.now() - timedelta(hours=1)
    first_day, middle = end - timedelta(days=28), end - timedelta(days=7)
    history: list[dict[str, Any]] = []
    for events in simulate(world, sessions=size["history_sessions"], start=first_day, end=middle):
        history.extend(events)
    events_send(customer.pk, history)
    timings["history_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    refreshed = signals_refresh(customer_id=customer.pk)
    timings["first_refresh_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    simulate_ranked_traffic(
        customer_id=customer.pk,
        world=world,
        sessions=size["ranked_sessions"],
        start=middle,
        end=end,
        seed=12,
    )
    rank_log.flush()
    params = TrainingParams(
        algorithm="lambdamart", target="graded", rounds=size["trees"], min_labelled_requests=5
    )
    model = model_train(customer_id=customer.pk, surface="search", params=params)
    registry.model_activate(model=model, user="bench", override_reason="benchmark")
    timings["train_seconds"] = time.perf_counter() - started

    rng = np.random.default_rng(3)
    for document in ten_rules(world, rng):
        rule_create(customer=customer, document=RuleIn.model_validate(document))
    _, key = api_key_create(customer=customer, name="bench", scopes=[Scope.RANK, Scope.EVENTS])
    vacuum_analyze()
    facts = {
        "items": size["items"],
        "shoppers": size["shoppers"],
        "history_events": len(history),
        "features": len(refreshed_features()),
        "model": model.label,
        "trees": trees_of(model),
        "active_rules": 10,
        "refresh": str(refreshed),
        "setup": {name: round(seconds, 1) for name, seconds in timings.items()},
    }
    return world, key, facts


def vacuum_analyze() -> None:
    """What autovacuum does to a production database after a bulk load. This machine's PostgreSQL
    runs with autovacuum off: without statistics the planner answered ingest's duplicate look-up
    (1000 event ids) by scanning all of the customer's events, 300 ms a batch instead of 4 ms."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def refreshed_features() -> tuple[str, ...]:
    from ranking.signals.schema import FEATURES

    return tuple(FEATURES)


def trees_of(model: Any) -> int:
    from ranking.learning.registry import active_model_scorer

    active = active_model_scorer(customer_id=model.customer_id, surface="search")
    assert active is not None
    booster = active[1].booster  # type: ignore[attr-defined]
    return int(booster.num_trees())


def rank_bodies(world: Any, candidates: int, count: int, seed: int) -> list[bytes]:
    """Search requests of `candidates` items (mostly from the query's department), each for a
    simulated shopper with a history, with the retriever's relevance."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    departments = np.array([c.department for c in world.categories])[world.item_category]
    bodies = []
    for _ in range(count):
        category = int(rng.integers(len(world.categories)))
        pool = np.flatnonzero(departments == world.categories[category].department)
        picked = rng.choice(pool, size=min(len(pool), candidates * 3 // 4), replace=False)
        rest = rng.choice(len(world.item_ids), size=candidates * 2, replace=False)
        rest = rest[~np.isin(rest, picked)][: candidates - len(picked)]
        items = np.concatenate([picked, rest])
        relevance = rng.normal(8.0, 2.0, len(items)).round(4)
        body = {
            "surface": "search",
            "query": str(rng.choice(world.categories[category].queries)),
            "user_id": world.shopper_ids[int(rng.integers(len(world.shopper_ids)))],
            "items": [
                {"id": world.item_ids[i], "relevance": float(r)}
                for i, r in zip(items, relevance, strict=True)
            ],
        }
        bodies.append(orjson.dumps(body))
    return bodies


def event_bodies(world: Any, batches: int, seed: int) -> list[bytes]:
    """Batches of 1000 new events: 60% impressions of 20 items, clicks, carts and purchases."""
    import numpy as np
    import orjson
    from django.utils import timezone

    rng = np.random.default_rng(seed)
    now = timezone.now() - timedelta(minutes=5)
    bodies = []
    for batch in range(batches):
        events = []
        for n in range(1000):
            shopper = world.shopper_ids[int(rng.integers(len(world.shopper_ids)))]
            item = world.item_ids[int(rng.integers(len(world.item_ids)))]
            event: dict[str, Any] = {
                "event_id": f"bench-{seed}-{batch}-{n}",
                "timestamp": (now + timedelta(milliseconds=n)).isoformat(),
                "user_id": shopper,
                "request_id": f"req-{seed}-{batch}-{n // 10}",
                "surface": "search",
            }
            draw = rng.random()
            if draw < 0.6:
                picks = rng.choice(len(world.item_ids), 20, replace=False)
                event.update(type="impression", items=[world.item_ids[i] for i in picks])
            elif draw < 0.9:
                event.update(type="click", item_id=item, position=int(rng.integers(1, 21)))
            elif draw < 0.97:
                event.update(type="add_to_cart", item_id=item)
            else:
                event.update(type="purchase", item_id=item, price=19.9)
            events.append(event)
        bodies.append(orjson.dumps({"events": events}))
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((SERVER, 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (local http)
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered")
        time.sleep(0.2)


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str],
    workers: int,
    metrics: str = "prometheus",
    app: str = "config.wsgi",
    root: Path = ROOT,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """gunicorn with the service's config (platform/gunicorn.conf.py) serving `app`: the service,
    or the floor (bench/floor.py) under the very same settings; `root`: another checkout's code
    (bench/instructions.py --against)."""
    port = free_port()
    server_env = {
        **os.environ,
        **env,
        "PORT": str(port),
        "GUNICORN_WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(VAR / metrics),
        "GUNICORN_ACCESS_LOG": "",
    }
    VAR.mkdir(parents=True, exist_ok=True)
    with (VAR / f"{metrics}.log").open("w") as log:  # the server's own log, for a failed run
        process = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "--config",
                "platform/gunicorn.conf.py",
                "--bind",
                f"{SERVER}:{port}",
                "--pythonpath",
                str(root / "bench"),
                app,
            ],
            cwd=root,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if app == "config.wsgi":
            wait_for(f"http://{SERVER}:{port}/healthz")
        else:
            wait_for_port(port)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_port(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((SERVER, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def floor_setup(prefix: str) -> dict[str, str]:
    """What bench/floor.py needs: each item's features as one packed float32 vector in Redis
    (the last features the service logged for it; items never ranked get the median vector),
    and the shared library of the active model's compiled trees. Returns the floor's
    environment."""
    import numpy as np
    import redis

    from ranking.learning.artifacts import artifact_read
    from ranking.learning.compiled import compile_model
    from ranking.learning.rank_log import VersionItems, logged_matrix
    from ranking.models import RankingModel, RankLog
    from ranking.signals.schema import FEATURES

    model = RankingModel.objects.get(customer__slug="bench", surface="search", status="active")
    compiled = compile_model(artifact_read(model).decode())
    width = len(FEATURES)
    assert compiled.width == width, (compiled.width, width)
    features: dict[str, bytes] = {}
    logged = RankLog.objects.filter(customer=model.customer).order_by("id")
    versions = VersionItems(model.customer_id)  # the item columns stored by reference
    for item_ids, blob, version, by_reference in logged.values_list(
        "item_ids", "features", "signals_version", "items_by_reference"
    ).iterator(chunk_size=500):
        items = versions.of(version) if by_reference else None
        rows = logged_matrix(bytes(blob), item_ids, items)
        for item_id, row in zip(item_ids, rows if rows is not None else (), strict=False):
            features[item_id] = row.tobytes()
    median = np.median(
        np.frombuffer(b"".join(features.values()), dtype=np.float32).reshape(-1, width), axis=0
    ).astype(np.float32)
    from catalog.models import Item

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    item_ids = Item.objects.filter(customer=model.customer).values_list("external_id", flat=True)
    pipe = client.pipeline(transaction=False)
    for n, item_id in enumerate(item_ids.iterator(chunk_size=5000), 1):
        pipe.set(f"{prefix}{item_id}", features.get(item_id, median.tobytes()))
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()
    client.close()
    from django.db import connection

    with connection.cursor() as cursor:  # the event table's twin, for the floor's COPY
        cursor.execute("DROP TABLE IF EXISTS floor_event")
        cursor.execute(
            "CREATE TABLE floor_event (LIKE events_event INCLUDING DEFAULTS INCLUDING "
            "CONSTRAINTS INCLUDING INDEXES INCLUDING IDENTITY)"
        )
    return {
        "FLOOR_DATABASE_URL": os.environ["DATABASE_URL"],
        "FLOOR_CUSTOMER_ID": str(model.customer_id),
        "FLOOR_REDIS_URL": os.environ["REDIS_URL"],
        "FLOOR_PREFIX": prefix,
        "FLOOR_WIDTH": str(width),
        "FLOOR_MODEL_LIBRARY": str(compiled._library._name),
    }


def side_by_side(
    service: int,
    floor: int,
    key: str,
    bodies: Path,
    rounds: int,
    seconds: float,
    workers: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Closed-loop rounds of `seconds` at 4 connections, alternating the floor and /v1/rank
    (floor first in odd rounds, the service first in even ones); medians over the rounds and
    the service's ratios to the floor. With each side's worker pids, each round also says the
    busier worker's share of the workers' CPU (0.5: both carried the load)."""
    import statistics

    common = {"path": "/v1/rank", "bodies": bodies, "header": [f"Authorization: Bearer {key}"]}
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "service": []}
    ports = {"floor": floor, "service": service}
    for port in ports.values():  # warm both: caches, compiled trees, connections
        loadgen("closed", port, duration=min(3.0, seconds), connections=4, **common)
    for round_ in range(rounds):
        order = ("floor", "service") if round_ % 2 == 0 else ("service", "floor")
        for name in order:
            pids = (workers or {}).get(name, [])
            before = [cpu_seconds(pid) for pid in pids]
            run = loadgen("closed", ports[name], duration=seconds, connections=4, **common)
            runs[name].append(
                {k: run[k] for k in ("achieved_rps", "p50_ms", "p99_ms", "statuses", "errors")}
            )
            each = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
            if sum(each) > 0:
                runs[name][-1]["busier_worker_share"] = round(max(each) / sum(each), 2)
    medians = {
        name: {
            measure: round(statistics.median(run[measure] for run in found), 3)
            for measure in ("achieved_rps", "p50_ms", "p99_ms")
        }
        for name, found in runs.items()
    }
    for name, found in runs.items():
        rates = [run["achieved_rps"] for run in found]
        medians[name]["rps_spread"] = round((max(rates) - min(rates)) / statistics.median(rates), 3)
    floor_m, service_m = medians["floor"], medians["service"]
    return {
        "rounds": rounds,
        "seconds": seconds,
        "connections": 4,
        "runs": runs,
        "medians": medians,
        "ratio": {
            "throughput": round(service_m["achieved_rps"] / floor_m["achieved_rps"], 3),
            "p50": round(service_m["p50_ms"] / floor_m["p50_ms"], 3),
            "p99": round(service_m["p99_ms"] / floor_m["p99_ms"], 3),
        },
    }


def protobuf_bodies(json_bodies: Path) -> Path:
    """The same rank requests as RankRequest messages, one base64 line each (for loadgen)."""
    import base64

    import orjson

    from wire.rankwell.v1 import rank_pb2

    lines = []
    for line in json_bodies.read_bytes().splitlines():
        document = orjson.loads(line)
        items = [rank_pb2.Candidate(**item) for item in document.pop("items")]
        message = rank_pb2.RankRequest(items=items, **document)
        lines.append(base64.b64encode(message.SerializeToString()))
    path = json_bodies.with_suffix(".protobuf")
    path.write_bytes(b"\n".join(lines))
    return path


def measure_encodings(
    port: int, key: str, bodies: Path, seconds: float, workers: list[int]
) -> dict[str, Any]:
    """/v1/rank in JSON and in protobuf (both ways), closed loop at 32 connections, JSON first
    then protobuf, twice: throughput, the workers' CPU per request, and bytes on the wire per
    request and answer (the median request of the file; one answer)."""
    import base64
    import statistics
    import urllib.request

    encoded = protobuf_bodies(bodies)
    auth = f"Authorization: Bearer {key}"
    kinds = {
        "json": (
            {"bodies": bodies, "header": [auth]},
            "application/json",
            bodies.read_bytes().splitlines(),
        ),
        "protobuf": (
            {
                "bodies": encoded,
                "base64": True,
                "content_type": PROTOBUF,
                "header": [auth, f"Accept: {PROTOBUF}"],
            },
            PROTOBUF,
            [base64.b64decode(line) for line in encoded.read_bytes().splitlines()],
        ),
    }
    result: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in kinds}
    for _ in range(2):
        for name, (options, _, _) in kinds.items():
            with cpu_split(workers) as split:
                run = loadgen(
                    "closed",
                    port,
                    path="/v1/rank",
                    duration=seconds,
                    connections=CLOSED_CONNECTIONS,
                    **options,
                )
            runs[name].append(
                {
                    "achieved_rps": run["achieved_rps"],
                    "worker_cpu_ms": round(
                        split["workers_cpu_seconds"] * 1000 / run["completed"], 3
                    ),
                    "statuses": run["statuses"],
                }
            )
    for name, (_, content_type, raw) in kinds.items():
        body = raw[0]
        request = urllib.request.Request(
            f"http://{SERVER}:{port}/v1/rank",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": content_type,
                "Accept": content_type,
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            answer_bytes = len(answer.read())
        result[name] = {
            "runs": runs[name],
            "achieved_rps": statistics.median(r["achieved_rps"] for r in runs[name]),
            "worker_cpu_ms": statistics.median(r["worker_cpu_ms"] for r in runs[name]),
            "request_bytes": int(statistics.median(len(b) for b in raw)),
            "answer_bytes": answer_bytes,
        }
    return result


def side_by_side_ingest(
    service: int, floor: int, key: str, world: Any, tmp: Path, rounds: int, seconds: float
) -> dict[str, Any]:
    """Closed-loop rounds of event batches (1000 events, 16 connections), alternating the floor
    and /v1/events as `side_by_side` does; each round sends batches never sent before, so both
    write every row (a repeated batch would be only duplicates for the service)."""
    import statistics

    header = [f"Authorization: Bearer {key}"]
    # More batches than a round can send at twice this machine's best rate so far.
    batches = max(4, int(seconds * 40))
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "service": []}
    ports = {"floor": floor, "service": service}
    for round_ in range(rounds):
        order = ("floor", "service") if round_ % 2 == 0 else ("service", "floor")
        for side, name in enumerate(order):
            bodies = tmp / f"events-{round_}-{name}.jsonl"
            bodies.write_bytes(
                b"\n".join(event_bodies(world, batches, seed=5000 + 2 * round_ + side))
            )
            run = loadgen(
                "closed",
                ports[name],
                path="/v1/events",
                bodies=bodies,
                duration=seconds,
                connections=16,
                header=header,
            )
            bodies.unlink()
            runs[name].append(
                {
                    "events_per_second": round(run["completed"] * 1000 / run["seconds"]),
                    "p50_ms": run["p50_ms"],
                    "p99_ms": run["p99_ms"],
                    "statuses": run["statuses"],
                    "wrapped": run["completed"] > batches,
                }
            )
    medians = {
        name: {
            measure: statistics.median(run[measure] for run in found)
            for measure in ("events_per_second", "p50_ms", "p99_ms")
        }
        for name, found in runs.items()
    }
    return {
        "rounds": rounds,
        "seconds": seconds,
        "connections": 16,
        "runs": runs,
        "medians": medians,
        "ratio": {
            "throughput": round(
                medians["service"]["events_per_second"] / medians["floor"]["events_per_second"], 3
            ),
            "p50": round(medians["service"]["p50_ms"] / medians["floor"]["p50_ms"], 3),
        },
    }


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak RSS) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def snapshot_pages_mb(pid: int) -> dict[str, float]:
    """The process's resident pages of mapped signal snapshots (ranking/signals/snapshot.py) and
    how many of them are private to it: shared pages are the host's one copy, so the workers'
    memory stays flat in their number."""
    totals = {"Rss": 0, "Private_Clean": 0, "Private_Dirty": 0}
    mapped = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        first = line.split(maxsplit=1)[0]
        if "-" in first and not first.endswith(":"):  # a mapping's header line
            mapped = "rankwell-signals" in line or "signal-snapshots" in line
        elif mapped and first[:-1] in totals:
            totals[first[:-1]] += int(line.split()[1])
    return {
        "resident_mb": round(totals["Rss"] / 1024, 1),
        "private_mb": round((totals["Private_Clean"] + totals["Private_Dirty"]) / 1024, 1),
    }


def loadgen(mode: str, port: int, **options: Any) -> dict[str, Any]:
    command = [PYTHON, str(ROOT / "bench" / "loadgen.py"), mode, "--port", str(port)]
    for name, value in options.items():
        if value is True:
            command.append(f"--{name.replace('_', '-')}")
            continue
        for one in value if isinstance(value, list) else [value]:
            command += [f"--{name.replace('_', '-')}", str(one)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def generator_ceiling(seconds: float) -> dict[str, Any]:
    """The generator's own limits against a server that does nothing (same JSON, no work)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready"
        server = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "bench" / "loadgen.py"),
                "trivial",
                "--port",
                str(port),
                "--ready-file",
                str(ready),
            ],
        )
        try:
            deadline = time.monotonic() + 10
            while not ready.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            closed = loadgen("closed", port, duration=seconds, connections=16)
            rate = round(closed["achieved_rps"] / 2)
            opened = loadgen("open", port, rate=rate, duration=seconds, connections=32)
        finally:
            server.terminate()
            server.wait(timeout=10)
    return {"max_rps": closed["achieved_rps"], "open_at_half": opened}


TICKS = os.sysconf("SC_CLK_TCK")
# Closed loops keep this many connections busy. Keep-alive ties a connection to the worker that
# accepted it, and with 8 connections one worker often accepted all of them (measured: per-worker
# CPU 8.7 s and 0.0 s), so the maximum measured one worker or two by chance; with 32 both
# workers got their share in every run.
CLOSED_CONNECTIONS = 32


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_seconds() -> tuple[float, float, float]:
    """(busy, stolen, all) CPU seconds of the whole machine so far, from /proc/stat; stolen is
    time the hypervisor gave to other machines while this one wanted to run."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle, stolen = ticks[3] + ticks[4], ticks[7]
    return (sum(ticks) - idle - stolen) / TICKS, stolen / TICKS, sum(ticks) / TICKS


def processes_named(*names: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if command.startswith(names):
                pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def cpu_split(workers: list[int]) -> Iterator[dict[str, Any]]:
    """Where the machine's CPU went while the block ran: the gunicorn workers, Redis, PostgreSQL
    (when they run on this machine) and everything else (the load generator first of all)."""

    def groups() -> dict[str, list[int]]:
        return {
            "workers": workers,
            "redis": processes_named("redis-server"),
            "postgres": processes_named("postgres"),
        }

    before = {pid: cpu_seconds(pid) for pids in groups().values() for pid in pids}
    worker_before = {pid: cpu_seconds(pid) for pid in workers}
    busy_before, stolen_before, all_before = machine_seconds()
    split: dict[str, Any] = {}
    yield split
    busy, stolen, every = machine_seconds()
    # A PostgreSQL backend that started meanwhile counts all its time; one that ended, nothing
    # (not minus its past).
    used = {
        name: sum(max(0.0, cpu_seconds(pid) - before.get(pid, 0.0)) for pid in pids)
        for name, pids in groups().items()
    }
    used["other"] = max(0.0, (busy - busy_before) - sum(used.values()))
    used["stolen"] = stolen - stolen_before
    used["idle"] = max(0.0, (every - all_before) - (busy - busy_before) - used["stolen"])
    split.update({f"{name}_cpu_seconds": round(value, 2) for name, value in used.items()})
    split["per_worker_cpu_seconds"] = [
        round(cpu_seconds(pid) - worker_before[pid], 2) for pid in workers
    ]


def served_profile(workers: list[int], seconds: float, report: Path) -> subprocess.Popen[bytes]:
    """py-spy (pinned in the dev extras) sampling every worker for `seconds`, in the background;
    `write_served_profile` turns its raw stacks into the report."""
    spy = Path(PYTHON).parent / "py-spy"
    commands = " & ".join(
        f"{spy} record --nonblocking --rate 200 --format raw --duration {max(1, int(seconds))} "
        f"--pid {pid} --output {report}.{pid}.raw"
        for pid in workers
    )
    return subprocess.Popen(  # noqa: S602 (our own command line, no outside input)
        f"{commands} & wait", shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def write_served_profile(workers: list[int], report: Path, header: str) -> None:
    """Inclusive and own share of the samples per function, over all workers' threads."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for pid in workers:
        raw = Path(f"{report}.{pid}.raw")
        if not raw.exists():
            continue
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [
                frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") else frame
                for frame in stack.split(";")
            ]
            total += int(count)
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
            own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        raw.unlink()
    lines = [header, f"{total} samples", "", "inclusive %  function (file)"]
    top = sorted(inclusive.items(), key=lambda pair: -pair[1])[:60]
    lines += [f"{100 * n / max(total, 1):10.1f}  {frame}" for frame, n in top]
    lines += ["", "own %  function (file)"]
    top = sorted(own.items(), key=lambda pair: -pair[1])[:40]
    lines += [f"{100 * n / max(total, 1):6.1f}  {frame}" for frame, n in top]
    report.write_text("\n".join(lines) + "\n")


def measure_rank(
    port: int,
    key: str,
    bodies: Path,
    size: dict[str, Any],
    workers: list[int],
    profile: Path | None = None,
) -> dict[str, Any]:
    common = {"path": "/v1/rank", "bodies": bodies, "header": [f"Authorization: Bearer {key}"]}
    closed = {"connections": CLOSED_CONNECTIONS, **common}
    loadgen("closed", port, duration=min(3.0, size["max_seconds"]), **closed)
    with cpu_split(workers) as split:
        maximum = loadgen("closed", port, duration=size["max_seconds"], **closed)
    maximum["cpu"] = split
    if profile is not None:
        # A run of its own: py-spy takes CPU from the machine while it samples.
        spy = served_profile(workers, size["max_seconds"] - 1, profile)
        profiled = loadgen("closed", port, duration=size["max_seconds"], **closed)
        _, errors = spy.communicate(timeout=60)
        header = (
            f"py-spy on the {len(workers)} gunicorn workers (all threads, GIL or not) during a "
            f"closed-loop run of {bodies.stem} ({profiled['achieved_rps']} req/s while sampled)"
        )
        write_served_profile(workers, profile, header)
        if spy.returncode:
            maximum["profile_error"] = errors.decode(errors="replace")[-500:]
    rate = max(1, round(maximum["achieved_rps"] / 2))
    at_half = loadgen(
        "open", port, rate=rate, duration=size["open_seconds"], connections=32, **common
    )
    return {"max": maximum, "at_half": at_half}


def measure_ingest(
    port: int, key: str, bodies: Path, size: dict[str, Any], workers: list[int]
) -> dict[str, Any]:
    from events.models import Event

    before = Event.objects.count()
    with cpu_split(workers) as split:
        result = loadgen(
            "closed",
            port,
            path="/v1/events",
            bodies=bodies,
            duration=size["ingest_seconds"],
            connections=16,
            header=[f"Authorization: Bearer {key}"],
        )
    rows = Event.objects.count() - before
    return {
        "cpu": split,
        "batch_events": 1000,
        "requests": result["completed"],
        "statuses": result["statuses"],
        "events_per_second": round(result["completed"] * 1000 / result["seconds"]),
        "event_rows_written": rows,
        "p50_ms": result["p50_ms"],
    }


def profile_rank(key: str, bodies: Path, rounds: int, report: Path) -> dict[str, Any]:
    """The rank path (the application gunicorn serves, the same stores) under pyinstrument, in a
    fresh process of this environment so its heap is a worker's, not this builder's (a big heap
    makes the garbage collector's passes, and so the profile, look worse than a worker's)."""
    output = subprocess.run(
        [
            PYTHON,
            __file__,
            "--profile-child",
            str(bodies),
            "--profile",
            str(report),
            "--rounds",
            str(rounds),
        ],
        env={**os.environ, "BENCH_KEY": key},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def profile_child(bodies_file: Path, rounds: int, report: Path) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from pyinstrument import Profiler

    from config.wsgi import application

    bodies = bodies_file.read_bytes().splitlines()
    key = os.environ["BENCH_KEY"]

    def post(body: bytes) -> None:
        status, _, content = wsgi_post(application, key, body)
        assert status.startswith("200"), content

    for body in bodies[:50]:
        post(body)
    gc.collect()
    gc.freeze()  # as each gunicorn worker does after loading (platform/gunicorn.conf.py)
    started = time.perf_counter()
    for n in range(rounds):
        post(bodies[n % len(bodies)])
    plain = time.perf_counter() - started
    profiler = Profiler(interval=0.0002)
    with profiler:
        for n in range(rounds):
            post(bodies[n % len(bodies)])
    report.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(json.dumps({"requests": rounds, "mean_ms_unprofiled": round(plain / rounds * 1000, 2)}))


def snapshot_exact(key: str, bodies: Path, count: int) -> dict[str, Any]:
    """The first `count` bodies answered with explanations twice in this process: every record
    read from Redis, then from this host's snapshot of the version (ranking/signals/snapshot.py).
    The answers must be identical but for their request ids; also how long the snapshot took to
    be ready after the first request asked for it."""
    import orjson
    from django.conf import settings
    from django.test import Client

    from ranking.signals import backend as store_backend
    from ranking.signals.redis_store import RedisSignalStore

    client = Client(HTTP_HOST=SERVER, HTTP_AUTHORIZATION=f"Bearer {key}")
    requests = [
        orjson.loads(body) | {"explain": True} for body in bodies.read_bytes().splitlines()[:count]
    ]

    def answers() -> list[dict[str, Any]]:
        out = []
        for body in requests:
            reply = client.post("/v1/rank", orjson.dumps(body), content_type="application/json")
            answer = orjson.loads(reply.content)
            answer.pop("request_id", None)
            out.append(answer)
        return out

    original = settings.SIGNAL_STORE
    try:
        settings.SIGNAL_STORE = {**original, "SNAPSHOT_DIR": None}
        store_backend.reset_signal_store()
        from_redis = answers()
        settings.SIGNAL_STORE = original
        store_backend.reset_signal_store()
        store = store_backend.signal_store()
        assert isinstance(store, RedisSignalStore)
        assert store.snapshots is not None
        started = time.perf_counter()
        client.post("/v1/rank", orjson.dumps(requests[0]), content_type="application/json")
        store.snapshots.wait(300)
        ready = time.perf_counter() - started
        mapped = bool(store.snapshots._mapped)
        from_snapshot = answers()
    finally:
        settings.SIGNAL_STORE = original
        store_backend.reset_signal_store()
    return {
        "requests": len(requests),
        "snapshot_mapped": mapped,
        "snapshot_ready_seconds": round(ready, 2),
        "identical": sum(a == b for a, b in zip(from_redis, from_snapshot, strict=True)),
        "degraded": sum(a["degraded"] for a in from_redis + from_snapshot),
    }


def wsgi_post(app: Any, key: str, body: bytes) -> tuple[str, dict[str, str], bytes]:
    """POST /v1/rank through a WSGI application as gunicorn calls it: the status, the headers
    and the body, the request's own id taken out of them."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/rank",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": SERVER,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": SERVER,
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    started: list[Any] = []
    chunks = app(environ, lambda status, headers, *_: started.extend((status, headers)))
    content = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    headers = dict(started[1])
    request_id = headers.pop("X-Request-ID")
    return started[0], headers, content.replace(request_id.encode(), b"")


def direct_exact(key: str, bodies: Path, count: int) -> dict[str, Any]:
    """The first `count` bodies, with explanations, answered by the application gunicorn serves
    (config/wsgi.py: the direct rank path, ranking/direct.py) and by Django alone, called as
    gunicorn calls them. The answers (status, headers, body) must be identical but for their
    request ids, and every one must have been answered directly."""
    import orjson

    from config.wsgi import django_application
    from ranking.direct import DirectRank

    handed_on = 0

    def django(environ: dict[str, Any], start_response: Any) -> Any:
        nonlocal handed_on
        handed_on += 1
        return django_application(environ, start_response)

    requests = [
        orjson.dumps(orjson.loads(body) | {"explain": True})
        for body in bodies.read_bytes().splitlines()[:count]
    ]
    through_django = [wsgi_post(django_application, key, body) for body in requests]
    direct = DirectRank(django)
    through_direct = [wsgi_post(direct, key, body) for body in requests]
    return {
        "requests": len(requests),
        "answered_directly": len(requests) - handed_on,
        "identical": sum(a == b for a, b in zip(through_django, through_direct, strict=True)),
        "ok": sum(status.startswith("200") for status, _, _ in through_direct),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--profile-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a pyinstrument report of the rank path at 1000 candidates here, before serving",
    )
    parser.add_argument(
        "--served-profile",
        type=Path,
        help="write a py-spy report of the workers serving 1000 candidates at full speed here",
    )
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="only the side-by-side rounds against the floor (and the snapshot's exactness)",
    )
    args = parser.parse_args()
    if args.profile_child:
        profile_child(args.profile_child, args.rounds, args.profile)
        return
    size = QUICK if args.quick else FULL
    env = configure_environment(secrets.token_urlsafe(50), args.quick)
    (VAR / "media").mkdir(parents=True, exist_ok=True)
    recreate_database()
    drop_namespace()

    import django

    django.setup()
    try:
        world, key, facts = build_shop(size)
        result: dict[str, Any] = {"shop": facts, "workers": args.workers}
        if args.profile:
            with tempfile.TemporaryDirectory() as tmp:
                bodies = Path(tmp) / "rank-1000.jsonl"
                bodies.write_bytes(b"\n".join(rank_bodies(world, 1000, 200, 1000)))
                result["profile"] = profile_rank(key, bodies, 300, args.profile)
        result["generator"] = generator_ceiling(size["max_seconds"])
        with tempfile.TemporaryDirectory() as tmp, gunicorn(env, args.workers) as (port, master):
            pids = worker_pids(master.pid)
            for candidates in size["candidates"]:
                bodies = Path(tmp) / f"rank-{candidates}.jsonl"
                bodies.write_bytes(b"\n".join(rank_bodies(world, candidates, 200, candidates)))
                exact = size["exact_requests"]
                result[f"snapshot_exact_{candidates}"] = snapshot_exact(key, bodies, exact)
                result[f"direct_exact_{candidates}"] = direct_exact(key, bodies, exact)
                if args.floor_only:
                    continue
                profile = args.served_profile if candidates == 1000 else None
                result[f"rank_{candidates}"] = measure_rank(port, key, bodies, size, pids, profile)
            if args.floor_only:
                floor_env = {**env, **floor_setup(f"{NAMESPACE}:floor:")}
                with gunicorn(floor_env, args.workers, "prometheus-floor", "floor:app") as (
                    floor,
                    floor_master,
                ):
                    for candidates in size["candidates"]:
                        result[f"floor_{candidates}"] = side_by_side(
                            port,
                            floor,
                            key,
                            Path(tmp) / f"rank-{candidates}.jsonl",
                            size["floor_rounds"],
                            size["floor_seconds"],
                            {"service": pids, "floor": worker_pids(floor_master.pid)},
                        )
                result["worker_memory_mb"] = [memory_mb(pid) for pid in pids]
                result["worker_snapshot_pages_mb"] = [snapshot_pages_mb(pid) for pid in pids]
                print(json.dumps(result))
                return
            result["worker_memory_after_rank_mb"] = [memory_mb(pid) for pid in pids]
            batches = 20 if args.quick else 400
            events = Path(tmp) / "events.jsonl"
            events.write_bytes(b"\n".join(event_bodies(world, batches, seed=99)))
            result["ingest"] = measure_ingest(port, key, events, size, pids)
            result["worker_memory_mb"] = [memory_mb(pid) for pid in pids]
            result["worker_snapshot_pages_mb"] = [snapshot_pages_mb(pid) for pid in pids]
            for candidates in size["candidates"]:
                result[f"encodings_{candidates}"] = measure_encodings(
                    port,
                    key,
                    Path(tmp) / f"rank-{candidates}.jsonl",
                    size["encoding_seconds"],
                    pids,
                )
            floor_env = {**env, **floor_setup(f"{NAMESPACE}:floor:")}
            with gunicorn(floor_env, args.workers, "prometheus-floor", "floor:app") as (
                floor,
                floor_master,
            ):
                for candidates in size["candidates"]:
                    result[f"floor_{candidates}"] = side_by_side(
                        port,
                        floor,
                        key,
                        Path(tmp) / f"rank-{candidates}.jsonl",
                        size["floor_rounds"],
                        size["floor_seconds"],
                        {"service": pids, "floor": worker_pids(floor_master.pid)},
                    )
                result["floor_ingest"] = side_by_side_ingest(
                    port,
                    floor,
                    key,
                    world,
                    Path(tmp),
                    size["floor_rounds"],
                    size["floor_seconds"],
                )
    finally:
        drop_namespace()
        if args.quick:
            from django.db import connections

            connections.close_all()
            recreate_database(create=False)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
