"""Logs are JSON lines carrying the request id and the customer, and a task enqueued by a
request logs with that request's id in a real worker process on the real broker; that worker
serves its task metrics on METRICS_PORT."""

from __future__ import annotations

import io
import logging
import os
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import orjson
import pytest
from celery import Celery
from django.test import Client

from core.logs import JsonFormatter, RequestContextFilter, customer_var, request_id_var
from events import services as event_services
from ranking.models import SignalVersion
from tests.conftest import NAMESPACE, ApiCaller
from tests.factories import CustomerFactory, ItemFactory
from tests.operations.conftest import ROOT, parse, value
from tests.processes import celery_worker_command, free_port, subprocess_database_url

QUEUE = f"ops-logs-{NAMESPACE}"
EVENT = {
    "event_id": "e-1",
    "type": "click",
    "timestamp": "2026-11-26T10:00:00Z",
    "user_id": "u-42",
    "item_id": "sku-1",
}


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the root logger writes, through the project's filter and JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_a_request_logs_json_lines_with_its_id_and_customer(
    api: ApiCaller, json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    bug = RuntimeError(f"could not store events sent with {api.key}")
    monkeypatch.setattr(event_services, "events_ingest", Mock(side_effect=bug))

    response = Client(raise_request_exception=False).post(
        "/v1/events",
        orjson.dumps({"events": [EVENT]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
    )

    assert response.status_code == 500
    error = next(line for line in lines(json_log) if line["logger"] == "django.request")
    assert error["level"] == "ERROR"
    assert error["request_id"] == response["X-Request-ID"]
    assert error["customer_id"] == api.customer.pk
    assert "RuntimeError" in error["exception"]
    assert api.key not in json_log.getvalue()
    assert request_id_var.get() is None  # nothing leaks into the next request


@pytest.mark.django_db
def test_an_expected_client_error_logs_no_warning_or_traceback(json_log: io.StringIO) -> None:
    client = Client()
    assert client.get("/no-such-page/").status_code == 404
    assert client.post("/v1/rank", b"{}", content_type="application/json").status_code == 401
    logged = lines(json_log)
    assert not [line for line in logged if line["level"] in ("WARNING", "ERROR")], logged
    assert not [line for line in logged if "exception" in line], logged


def test_the_demo_servers_access_lines_reach_the_console_at_every_status(
    json_log: io.StringIO,
) -> None:
    """runserver (the demo) logs each request on django.server: a 200 at INFO must be shown
    too, through the project's handler, not only 4xx through logging's last resort."""
    logging.getLogger("django.server").info('"GET /healthz HTTP/1.1" 200 15')
    assert [line["message"] for line in lines(json_log) if line["logger"] == "django.server"] == [
        '"GET /healthz HTTP/1.1" 200 15'
    ]


def test_each_response_names_a_fresh_request_id() -> None:
    client = Client()
    first = client.get("/healthz", HTTP_X_REQUEST_ID="client-chosen-id-123")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert first != second
    assert first != "client-chosen-id-123"


@dataclass
class Worker:
    broker_url: str
    output: queue.Queue[str]
    metrics_url: str


@pytest.fixture
def worker(redis_url: str, transactional_db: None, tmp_path: Path) -> Iterator[Worker]:
    """A real worker process (JSON logs and multiprocess metrics, as in production)."""
    broker_url = redis_url.rsplit("/", 1)[0] + "/1"
    metrics_port = free_port()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker_url,
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_PORT": str(metrics_port),
        "DATABASE_URL": subprocess_database_url(),
    }
    process = subprocess.Popen(
        celery_worker_command(QUEUE),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.put(line)

    threading.Thread(target=pump, daemon=True).start()
    yield Worker(broker_url, output, f"http://127.0.0.1:{metrics_port}/metrics")
    process.terminate()
    process.wait(timeout=20)


def test_a_task_logs_the_id_of_the_request_that_enqueued_it(worker: Worker) -> None:
    broker_url, output = worker.broker_url, worker.output
    customer = CustomerFactory()
    ItemFactory(customer=customer, external_id="a")
    producer = Celery("rankwell-test-producer", broker=broker_url)
    request_token = request_id_var.set("req-enqueuing-0001")
    customer_token = customer_var.set(customer.pk)
    try:
        producer.send_task("ranking.tasks.refresh_signals", args=[customer.pk], queue=QUEUE)
    finally:
        request_id_var.reset(request_token)
        customer_var.reset(customer_token)
    producer.close()

    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = output.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if '"signals refreshed"' in line:
            entry = orjson.loads(line)
            assert entry["request_id"] == "req-enqueuing-0001"
            assert entry["customer_id"] == customer.pk
            assert entry["logger"] == "ranking.tasks"
            assert SignalVersion.objects.filter(customer=customer).exists()
            break
    else:
        pytest.fail("the worker never logged the refresh:\n" + "".join(seen))

    with urllib.request.urlopen(worker.metrics_url, timeout=5) as response:  # noqa: S310
        samples = parse(response.read().decode())
    refreshes = value(
        samples,
        "rankwell_celery_task_seconds_count",
        task="ranking.tasks.refresh_signals",
        state="success",
    )
    assert refreshes == 1
