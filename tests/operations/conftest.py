"""Helpers of the operations tests: the repository root and the external tools they need.

A missing tool fails its test with the command that installs it; nothing is skipped.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from customers.services import api_key_create
from tests.conftest import NAMESPACE
from tests.factories import CustomerFactory
from tests.processes import free_port, subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str, *, env_var: str, candidates: tuple[Path, ...] = (), install: str) -> str:
    """The path of a command-line tool, or a test failure that says how to install it."""
    configured = os.environ.get(env_var)
    if configured:
        return configured
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: run `{install}` (or set {env_var})")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """A Prometheus text exposition as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@contextmanager
def gunicorn_serving(
    port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn with platform/gunicorn.conf.py serving config.wsgi on 127.0.0.1:`port`, its output
    in `log`, from its first answer to /healthz (any status) until the block ends."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "platform/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "config.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"gunicorn did not start:\n{log.read_text()}")
            time.sleep(0.2)
        finally:
            connection.close()
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Server:
    port: int
    pid: int  # gunicorn's master
    key: str
    log: Path

    def ask(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
        """Status and seconds of one request on a new connection (as a new client would)."""
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, time.monotonic() - started
        finally:
            connection.close()


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[Server]:
    """gunicorn as production runs it (two workers, the config's threads), on the test
    database; its output goes to a file."""
    _, key = api_key_create(customer=CustomerFactory(), name="probe", scopes=["rank"])
    port = free_port()
    env = {
        **os.environ,
        "RANKWELL_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": subprocess_database_url(),
        "SIGNAL_STORE_NAMESPACE": NAMESPACE,
        "RUNTIME_REFRESH_SECONDS": "1",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": "",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("CELERY_BROKER_URL", None)
    log = tmp_path / "gunicorn.log"
    with gunicorn_serving(port, env, log) as process:
        yield Server(port, process.pid, key, log)
