"""Helpers for tests that run the project in other processes (runserver, workers, gunicorn)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
def api_process(log: Path | None = None, **env: str) -> Iterator[str]:
    """A separate API process (runserver) on the test database; yields its base URL. Its
    output goes to `log` when given."""
    addr = f"127.0.0.1:{free_port()}"
    environment = {**os.environ, "DATABASE_URL": subprocess_database_url(), **env}
    output = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", addr],
        cwd=ROOT,
        env=environment,
        stdout=output,
        stderr=output,
    )
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
            [
                self.server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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


def _postgres_bindir() -> Path:
    """The directory of initdb and pg_ctl: PG_BINDIR, the one on PATH, or Debian's newest."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "initdb is needed (PostgreSQL's server binaries)"
    return found[-1].parent


class PostgresProcess:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory, a free
    loopback port, trust auth), for real faults: `kill` is `pg_ctl stop -m immediate` (the
    server dies as on a crash; committed work survives in its WAL) and `start` brings it back.
    The shared server other work uses is never touched."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        # initdb refuses root: as root the cluster belongs to the `postgres` user, and its
        # directory is made outside pytest's private (0700) temporary tree.
        self.run_as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        if os.geteuid() != 0:
            self.run_as = []
        self.root = Path(tempfile.mkdtemp(prefix="rankwell-pg-"))
        self.datadir = self.root / "data"
        self.port = free_port()
        if self.run_as:
            shutil.chown(self.root, user="postgres", group="postgres")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        subprocess.run(
            [*self.run_as, *command], check=True, capture_output=True, timeout=60, cwd=self.root
        )

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            " -c full_page_writes=off -c max_connections=40 -c shared_buffers=16MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def kill(self) -> None:
        """Stop the server as a crash does: no checkpoint, every connection cut."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self.run_as,
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def celery_worker_command(queue: str) -> list[str]:
    """A real Celery worker of this project's app on one queue: one process (solo pool), no
    cluster chatter, INFO logs."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "--queues",
        queue,
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "INFO",
    ]
