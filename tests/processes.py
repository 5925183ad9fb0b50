"""Helpers for tests that run the project in other processes (runserver, workers, gunicorn)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
