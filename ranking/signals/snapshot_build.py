"""Building a host's copy of a signal version (ranking/signals/snapshot.py) in a short-lived process
of its own: `python -m ranking.signals.snapshot_build`, the job as JSON on its standard input.

A serving worker that built the copy itself kept what the build allocated (the heap does not give
freed small objects back whole) and, under load, the build's Redis calls each waited for the
serving threads to hand back the GIL: at 1,000,000 items it was not done after 20 s. A process of
its own returns all its memory when it exits and competes for the CPU, not for the worker's GIL.
It imports no Django and no metrics (a process that exits would leave its metric files behind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from ranking.signals.snapshot import BUILD_SLICE, Table, write

# A build that takes longer is stopped (and tried again later); 1,000,000 items take seconds.
BUILD_TIMEOUT_SECONDS = 600.0
_ROOT = Path(__file__).resolve().parents[2]


class RedisVersion:
    """A published version's two hashes as a build reads them (VersionSource): fields by HSCAN,
    records by HMGET, a slice at a time, so the build never holds the version whole."""

    def __init__(self, client: Any, meta_key: str, items_key: str, query_key: str) -> None:
        self.client = client
        self.meta_key = meta_key
        self.keys = {"items": items_key, "qi": query_key}

    def field_slices(self, table: Table) -> Iterator[list[bytes]]:
        cursor = 0
        while True:
            cursor, page = self.client.hscan(self.keys[table], cursor, count=BUILD_SLICE)
            yield list(page)
            if not cursor:
                return

    def records(self, table: Table, fields: list[bytes]) -> list[bytes | None]:
        records: list[bytes | None] = self.client.hmget(self.keys[table], fields)
        return records

    def lengths(self) -> tuple[int, int] | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.meta_key)
        pipe.hlen(self.keys["items"])
        pipe.hlen(self.keys["qi"])
        exists, items, queries = pipe.execute()
        return (items, queries) if exists else None


class SnapshotBuildFailed(Exception):
    """The build's process failed or did not finish in time."""


def build_in_child(
    *,
    url: str,
    cluster: bool,
    timeout: float,
    version_keys: tuple[str, str, str],
    directory: Path,
    manifest: dict[str, object],
) -> None:
    """Write the version's files into `directory` from a process of its own; returns once it
    exited. The Redis URL goes on standard input, never on the command line others can read."""
    job = {
        "url": url,
        "cluster": cluster,
        "timeout": timeout,
        "version_keys": version_keys,
        "directory": str(directory),
        "manifest": manifest,
    }
    path = os.pathsep.join(filter(None, (str(_ROOT), os.environ.get("PYTHONPATH"))))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ranking.signals.snapshot_build"],
            input=json.dumps(job).encode(),
            capture_output=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            env={**os.environ, "PYTHONPATH": path},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SnapshotBuildFailed(f"not done after {BUILD_TIMEOUT_SECONDS:.0f} s") from exc
    if done.returncode:
        lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise SnapshotBuildFailed(f"exited with {done.returncode}: {lines[-1]}")


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    client_class: Any = RedisCluster if job["cluster"] else redis.Redis
    client = client_class.from_url(
        job["url"], socket_timeout=job["timeout"], socket_connect_timeout=job["timeout"]
    )
    try:
        write(Path(job["directory"]), RedisVersion(client, *job["version_keys"]), job["manifest"])
    finally:
        client.close()


if __name__ == "__main__":
    main()
