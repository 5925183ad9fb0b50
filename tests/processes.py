"""Helpers for tests that run the project in other processes (runserver, workers, gunicorn)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_database_url() -> str:
    """The test database (pytest-django's), as another process's DATABASE_URL."""
    database = connection.settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


@contextmanager
def api_process(**env: str) -> Iterator[str]:
    """A separate API process (runserver) on the test database; yields its base URL."""
    addr = f"127.0.0.1:{free_port()}"
    environment = {**os.environ, "DATABASE_URL": subprocess_database_url(), **env}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", addr],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://{addr}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class RedisProcess:
    """A redis-server of the test's own on a loopback port, for real faults: stopped (killed),
    frozen (SIGSTOP) and restarted empty. No persistence: a restart loses every key, as a
    cache node replaced by ElastiCache does."""

    def __init__(self, workdir: Path) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is needed (platform/dev/ensure-services.sh installs it)"
        self.server = server
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.server, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"redis-server on {self.port} never listened"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.thaw()
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart_empty(self) -> None:
        self.kill()
        self.start()

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
