"""`make quality`: ranking quality on the shopper simulator, through the public API.

Serves a database of its own (`rankwell_quality`, created anew) with gunicorn in production
settings and a Celery worker (the rank log is flushed through it, as in production), then runs
demo/quality.py's scenarios: each on a new shop, catalog and events through the API, the operator
cycle through `manage.py refresh_signals` and `manage.py train_model --activate` (every guard on,
no override), and fresh sessions scored against the shoppers' true preferences. Writes
bench/quality.json and the tables of docs/quality.md.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/quality.py \\
        [--quick] [--in-process] [--scenarios compressed steady history] [--seeds 1 2 3]

`--in-process` drives the same API views with Django's test client and runs the commands in
this process (eager tasks): no gunicorn or worker, the numbers the same in kind; the suite's
quick check uses it. `--quick` runs toy sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.rank import SERVER, free_port, wait_for  # noqa: E402
from demo.quality import (  # noqa: E402
    QUICK,
    SCENARIOS,
    CommandFailed,
    ScenarioResult,
    Sizes,
    iter_runs,
    summarise,
)

RESULTS = ROOT / "bench" / "quality.json"
DOC = ROOT / "docs" / "quality.md"
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"
VAR = ROOT / "var" / "quality"
PYTHON = sys.executable


def configure(quick: bool, in_process: bool, scenarios: list[str]) -> dict[str, str]:
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        raise SystemExit("REDIS_URL must name the Redis to run against")
    suffix = "_quick" if quick else ""
    if set(scenarios) != set(SCENARIOS):
        # A run of some scenarios has a database and namespace of its own, so runs of the others
        # can go on beside it (tests/test_quality.py runs the quick mode in two processes).
        suffix += "_" + "_".join(sorted(set(scenarios)))
    database = f"rankwell_quality{suffix}{'_inproc' if in_process else ''}"
    host = os.environ.get("QUALITY_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    env = {
        "RANKWELL_ENV": "development" if in_process else "production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": f"{SERVER},testserver",
        "DATABASE_URL": f"{host}/{database}",
        "REDIS_URL": redis_url,
        "SIGNAL_STORE_NAMESPACE": f"rwquality{suffix}{'i' if in_process else ''}",
        "MEDIA_ROOT": str(VAR / f"media{suffix}"),
        "LOG_LEVEL": "WARNING",
        "RUNTIME_REFRESH_SECONDS": "0.5",
        # Toy sizes have toy holdouts: the guard's minimum is lowered for them only.
        **({"TRAINING_MIN_HOLDOUT_REQUESTS": "100"} if quick else {}),
    }
    if not in_process:
        env["CELERY_BROKER_URL"] = redis_url.rsplit("/", 1)[0] + "/14"
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import psycopg

    with psycopg.connect(f"{host}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {database}")
    _drop_namespace(env["SIGNAL_STORE_NAMESPACE"])
    return env


def _drop_namespace(namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(match=f"{namespace}:*", count=5000))
    for start in range(0, len(keys), 5000):
        client.unlink(*keys[start : start + 5000])
    client.close()


def new_customer(name: str) -> tuple[int, str, str]:
    """A customer and an API key with every scope: (id, slug, key)."""
    from customers.models import Scope
    from customers.services import api_key_create, customer_create

    customer = customer_create(name=name, slug=name)
    _, key = api_key_create(customer=customer, name="quality", scopes=Scope.values)
    return customer.pk, customer.slug, key


def wait_for_rank_log(customer_id: int, expected: int, seconds: float = 120.0) -> None:
    """Training reads the rank log: wait until every ranked request is in it."""
    from ranking.models import RankLog

    deadline = time.monotonic() + seconds
    while RankLog.objects.filter(customer_id=customer_id).count() < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("the rank log was not written in time")
        time.sleep(0.2)


class HttpShop:
    """The shop through gunicorn; commands as `manage.py` subprocesses."""

    def __init__(self, port: int, customer_id: int, key: str, env: dict[str, str]) -> None:
        self.customer_id = customer_id
        self.key = key
        self.env = {**os.environ, **env}
        self.port = port
        self.connection = http.client.HTTPConnection(SERVER, port, timeout=60)
        self.ranked = 0

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps(body)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        for attempt in range(3):
            try:
                self.connection.request(method, path, payload, headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                if attempt == 2:
                    raise
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return orjson.loads(data) if data else {}

    def put_items(self, items: list[dict[str, Any]]) -> None:
        self._call("PUT", "/v1/catalog/items", {"items": items})

    def send_events(self, events: list[dict[str, Any]]) -> None:
        self._call("POST", "/v1/events", {"events": events})

    def rank(self, body: dict[str, Any]) -> dict[str, Any]:
        self.ranked += 1
        return self._call("POST", "/v1/rank", body)

    def command(self, *args: str) -> str:
        if args[0] == "train_model":
            wait_for_rank_log(self.customer_id, self.ranked)
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise CommandFailed((done.stderr.strip().splitlines() or ["failed"])[-1])
        return done.stdout


class InProcessShop:
    """The same API views through Django's test client; commands in this process."""

    def __init__(self, customer_id: int, key: str) -> None:
        from django.test import Client

        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        self.customer_id = customer_id

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = getattr(self.client, method)(
            path, orjson.dumps(body), content_type="application/json"
        )
        if response.status_code >= 300:
            content = response.content[:300]
            raise RuntimeError(f"{method} {path}: {response.status_code} {content!r}")
        return orjson.loads(response.content) if response.content else {}

    def put_items(self, items: list[dict[str, Any]]) -> None:
        self._call("put", "/v1/catalog/items", {"items": items})

    def send_events(self, events: list[dict[str, Any]]) -> None:
        self._call("post", "/v1/events", {"events": events})

    def rank(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("post", "/v1/rank", body)

    def command(self, *args: str) -> str:
        from django.core.management import CommandError, call_command

        from ranking.learning import rank_log

        rank_log.flush()
        out = io.StringIO()
        try:
            call_command(*args, stdout=out, stderr=io.StringIO())
        except CommandError as exc:
            raise CommandFailed(str(exc)) from exc
        return out.getvalue()


@contextlib.contextmanager
def served(env: dict[str, str]) -> Iterator[int]:
    """gunicorn (production settings) and a Celery worker on this run's database."""
    port = free_port()
    VAR.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        **env,
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(VAR / "prometheus"),
    }
    (VAR / "prometheus").mkdir(exist_ok=True)
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "--config",
            "platform/gunicorn.conf.py",
            "--bind",
            f"{SERVER}:{port}",
            "config.wsgi",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            "default,signals,ranklog,training",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://{SERVER}:{port}/healthz")
        yield port
    finally:
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            process.wait(timeout=60)


def markdown(summary: dict[str, Any], runs: list[ScenarioResult], meta: dict[str, Any]) -> str:
    """The tables of docs/quality.md."""
    lines = [
        f"Measured {meta['measured_at']} by `{meta['command']}` ({meta['mode']}); "
        f"seeds {', '.join(map(str, meta['seeds']))}; sizes {meta['sizes']}. Mean over seeds "
        "with its 95% interval; ratios are to the popularity order on the same sessions.",
        "",
    ]
    for scenario, surfaces in summary.items():
        for surface, rankers in surfaces.items():
            lines += [
                f"**{scenario}, {surface}**",
                "",
                "| ranker | NDCG@10 | revenue / session | purchases / session | clicks / session |"
                " NDCG vs popularity | revenue vs popularity |",
                "|---|---|---|---|---|---|---|",
            ]
            for ranker, row in rankers.items():
                cells = [_cell(row[m]) for m in ("ndcg@10", "revenue", "purchases", "clicks")]
                ratios = [_cell(row[f"{m} vs popularity"], "x") for m in ("ndcg@10", "revenue")]
                lines.append(f"| {ranker} | " + " | ".join(cells + ratios) + " |")
            lines.append("")
    served_lines = sorted(
        {
            f"- {run.scenario} seed {run.seed}, {surface}: {words}"
            for run in runs
            for surface, words in run.served.items()
        }
    )
    lines += ["What each surface served after the last operator cycle:", "", *served_lines, ""]
    ablated = [run for run in runs if run.ablation]
    if ablated:
        lines += [
            f"**Ablation** ({ablated[0].scenario}, seed {ablated[0].seed}: a model trained without "
            "each family, and one with every feature, each served with a recorded override and "
            "evaluated on the same fresh sessions)",
            "",
            "| trained without | surface | NDCG@10 | revenue / session | against every feature "
            "(NDCG@10, revenue) |",
            "|---|---|---|---|---|",
        ]
        run = ablated[0]
        families = run.ablation or {}
        full = families.get("nothing (every feature)", {})
        for surface in ("search", "browse"):
            for family, by_surface in families.items():
                row = by_surface.get(surface)
                if row is None:
                    continue
                base = full.get(surface)
                change = (
                    f"{row['ndcg@10'] / base['ndcg@10'] - 1:+.2%}, "
                    f"{row['revenue'] / base['revenue'] - 1:+.2%}"
                    if base and base["ndcg@10"] > 0 and base["revenue"] > 0
                    else "-"
                )
                lines.append(
                    f"| {family} | {surface} | {row['ndcg@10']:.4f} | {row['revenue']:.2f} "
                    f"| {change} |"
                )
        lines.append("")
    return "\n".join(lines)


def _cell(interval: dict[str, float], unit: str = "") -> str:
    return f"{interval['mean']:.3f}{unit} ({interval['low']:.3f}-{interval['high']:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--ablation", default="steady", help="scenario to run the ablation on (its first seed)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/quality.md")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    env = configure(args.quick, args.in_process, args.scenarios)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)

    def progress(line: str) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} {line}", flush=True)

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        port = None if args.in_process else stack.enter_context(served(env))

        def shop_factory(name: str) -> tuple[Any, str]:
            customer_id, slug, key = new_customer(name)
            if port is None:
                return InProcessShop(customer_id, key), slug
            return HttpShop(port, customer_id, key, env), slug

        runs = list(
            iter_runs(
                shop_factory,
                scenarios=tuple(args.scenarios),
                seeds=tuple(args.seeds),
                sizes=sizes,
                ablation_scenario=args.ablation or None,
                progress=progress,
            )
        )
    summary = summarise(runs)
    meta = {
        "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "command": "make quality" if not args.quick else "bench/quality.py --quick",
        "mode": "in-process API" if args.in_process else "gunicorn + Celery worker",
        "seeds": args.seeds,
        "sizes": asdict(sizes),
        "seconds": round(time.perf_counter() - started),
    }
    result = {"meta": meta, "summary": summary, "runs": [asdict(run) for run in runs]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_doc:
        text = DOC.read_text() if DOC.exists() else f"{BEGIN}\n{END}\n"
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        DOC.write_text(f"{head}{BEGIN}\n{markdown(summary, runs, meta)}\n{END}{tail}")
    headline = {
        scenario: {
            surface: {
                ranker: {
                    "ndcg@10 vs popularity": row["ndcg@10 vs popularity"]["mean"],
                    "revenue vs popularity": row["revenue vs popularity"]["mean"],
                }
                for ranker, row in rankers.items()
                if ranker not in ("random", "popularity")
            }
            for surface, rankers in surfaces.items()
        }
        for scenario, surfaces in summary.items()
    }
    print(json.dumps({"headline": headline, "seconds": meta["seconds"]}))


if __name__ == "__main__":
    main()
