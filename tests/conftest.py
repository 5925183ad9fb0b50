"""Fixtures shared by the whole suite.

The suite runs against the real PostgreSQL and Redis named by DATABASE_URL and REDIS_URL (the
Makefile points them at local servers). Each test run uses its own Redis key namespace, removed
after every test.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis
from django.conf import settings
from django.test import Client

from customers import auth, ratelimit, runtime_sync
from customers.models import ApiKey, Customer, Scope
from ranking.learning import rank_log
from ranking.signals import backend as store_backend
from ranking.signals import store as store_module
from tests.factories import ApiKeyFactory, CustomerFactory
from tests.processes import RedisProcess

NAMESPACE = f"rwtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _drop_namespace(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture(scope="session", autouse=True)
def _snapshot_files_removed() -> Iterator[None]:
    """The run's host copies of signal versions (ranking/signals/snapshot.py) go with its
    namespace."""
    yield
    directory = settings.SIGNAL_STORE.get("SNAPSHOT_DIR")
    if directory:
        shutil.rmtree(os.path.join(directory, NAMESPACE), ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_runtime(settings: Any) -> Iterator[None]:
    """Each test starts with empty per-process caches and its own signal-store keys."""
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "NAMESPACE": NAMESPACE}
    redis_url = settings.SIGNAL_STORE["URL"]
    store_backend.reset_signal_store()
    runtime_sync.clear_caches()
    auth.forget_unknown_keys()
    rank_log.reset()
    yield
    rank_log.reset()
    store_backend.reset_signal_store()
    if redis_url:
        _drop_namespace(redis_url, NAMESPACE)


@pytest.fixture
def patient_signal_store(settings: Any) -> Iterator[None]:
    """Signal-store reads wait up to 2 s, not the service's 0.2 s, for the tests of pages, whose
    server shares two cores with the test (and chromium): a read that times out on one page and
    not the next gives the two pages different candidates (a fresh-clone `make test` saw the
    "why" page miss the listing's second item that way), or a degraded answer where the test
    needs signals. What the pages show when the store does not answer is tested with a store
    that is really down (tests/explain/test_pages.py, test_insight.py), which a timeout does not
    change. The e2e and explain tests use it (their conftest.py)."""
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "TIMEOUT_SECONDS": 2.0}
    store_backend.reset_signal_store()
    yield
    store_backend.reset_signal_store()


@pytest.fixture
def memory_store(settings: Any) -> store_module.SignalStore:
    """Switch this test to the in-process signal store of the embedded default."""
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "BACKEND": "memory"}
    store_backend.reset_signal_store()
    return store_backend.signal_store()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis Cluster of three primaries on local ports, as ElastiCache's cluster mode
    runs it (redis-server and redis-cli come with the Redis that `make test` ensures)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    needed = "redis-server and redis-cli are needed (platform/dev/ensure-services.sh)"
    assert server, needed
    assert cli, needed
    workdir = tmp_path_factory.mktemp("redis-cluster")
    ports = [_cluster_port() for _ in range(3)]
    nodes = [
        subprocess.Popen(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            _wait_for_port(port)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                [cli, "-p", str(ports[0]), "cluster", "info"], capture_output=True, check=True
            ).stdout
        ):
            assert time.monotonic() < deadline, "the local Redis Cluster never became ready"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.terminate()
            node.wait(timeout=10)


def _cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free and valid too."""
    while True:
        port = random.randrange(20000, 30000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"redis-server on {port} never listened"
            time.sleep(0.05)


@pytest.fixture
def private_redis(tmp_path: Any, settings: Any) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, made the signal store: faults on it touch nothing
    else. Killed at the end, frozen or not."""
    server = RedisProcess(tmp_path)
    server.start()
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "URL": server.url}
    store_backend.reset_signal_store()
    try:
        yield server
    finally:
        server.kill()
        store_backend.reset_signal_store()


@pytest.fixture
def redis_url() -> str:
    url = settings.SIGNAL_STORE["URL"]
    assert url, "the suite needs REDIS_URL (make test sets it)"
    return url


def hold_bucket_empty(key: str, group: str, seconds: int = 60) -> str:
    """Hold an API key's token bucket of `group` empty for `seconds` (its refill counted from that
    far ahead of Redis's clock), so the key's next requests are refused however slowly the machine
    runs: with a rate of 1 a second a token comes back while a slow test is still asking. The
    bucket's Redis key is returned, for the test to delete."""
    key_id = ApiKey.objects.get(key_hash=auth.hash_key(key)).pk
    bucket = f"{ratelimit.limiter().prefix}:k{key_id}:{group}"
    client = redis.Redis.from_url(settings.SIGNAL_STORE["URL"])
    now, _ = client.time()
    client.set(bucket, f"0.000000 {now + seconds}.000000", px=seconds * 1000)
    return bucket


@dataclass
class ApiCaller:
    """Calls /v1 as one customer's key."""

    client: Client
    customer: Customer
    key: str

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.key}"}

    def post(self, path: str, body: Any, **extra: Any) -> Any:
        data = body if isinstance(body, bytes | str) else orjson.dumps(body)
        content_type = extra.pop("content_type", "application/json")
        return self.client.post(path, data, content_type=content_type, **self._headers(), **extra)

    def put(self, path: str, body: Any, **extra: Any) -> Any:
        data = body if isinstance(body, bytes | str) else orjson.dumps(body)
        content_type = extra.pop("content_type", "application/json")
        return self.client.put(path, data, content_type=content_type, **self._headers(), **extra)

    def get(self, path: str) -> Any:
        return self.client.get(path, **self._headers())

    def delete(self, path: str) -> Any:
        return self.client.delete(path, **self._headers())


@pytest.fixture
def make_caller(db: None) -> Callable[..., ApiCaller]:
    def make(customer: Customer | None = None, scopes: list[str] | None = None) -> ApiCaller:
        customer = customer or CustomerFactory()
        api_key = ApiKeyFactory(customer=customer, name="test", scopes=scopes or Scope.values)
        return ApiCaller(Client(), customer, api_key.plaintext)

    return make


@pytest.fixture
def api(make_caller: Callable[..., ApiCaller]) -> ApiCaller:
    """A caller with every scope, for a fresh customer."""
    return make_caller()


@pytest.fixture
def other_api(make_caller: Callable[..., ApiCaller]) -> ApiCaller:
    """A second customer's caller, for tenant-isolation tests."""
    return make_caller()
