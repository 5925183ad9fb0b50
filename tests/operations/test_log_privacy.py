"""Logs never carry a shopper's id or query. The rank-log flush task gets both in its arguments,
and Celery logs a task's arguments when a worker receives it, retries it and fails it: a real
worker (JSON logs at INFO, as in production) on the real broker runs the flush that
`rank_log.flush()` enqueues while the database is down (retries, each retry a new message) and a
batch it cannot read (fails), and not one of its log lines names the shopper or the query."""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest
from celery import Celery, current_app

from ranking.learning import rank_log
from ranking.signals.schema import FEATURES
from tests.conftest import NAMESPACE
from tests.operations.conftest import ROOT
from tests.processes import celery_worker_command, free_port

QUEUE = f"ops-privacy-{NAMESPACE}"
TASK = "ranking.tasks.flush_rank_log_split"
SHOPPER = "u:shopper-7f3a9c-private"
QUERY = "pregnancy test discreet"


@dataclass
class Worker:
    producer: Celery
    lines: queue.Queue[str]
    process: subprocess.Popen[str]


@pytest.fixture
def worker(redis_url: str) -> Iterator[Worker]:
    """A worker whose database refuses connections (nothing listens on its port)."""
    broker_url = redis_url.rsplit("/", 1)[0] + "/1"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker_url,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/down",
    }
    process = subprocess.Popen(
        celery_worker_command(QUEUE),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    producer = Celery("rankwell-test-producer", broker=broker_url)
    yield Worker(producer, lines, process)
    process.terminate()
    process.wait(timeout=20)
    with producer.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)  # the retries still waiting
    producer.close()


def enqueued_flush(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `rank_log.flush()` hands to the broker for one served request of SHOPPER."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[tuple[str, dict[str, Any]]] = []
    # The current app may be this test's producer, which must send for real afterwards.
    with monkeypatch.context() as patch:
        patch.setattr(
            current_app, "send_task", lambda name, **options: sent.append((name, options))
        )
        rank_log.record(
            customer_id=1,
            request_id="req-private-1",
            surface="search",
            query=QUERY,
            shopper_key=SHOPPER,
            model="config:default",
            item_ids=("sku-1", "sku-2"),
            features=np.zeros((2, len(FEATURES)), dtype=np.float32),
        )
        assert rank_log.flush() == 1
    ((task, options),) = sent
    assert task == TASK
    return options


def wait_for(worker: Worker, seen: list[str], condition: Any, what: str) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker never {what}:\n" + "".join(seen))
        try:
            seen.append(worker.lines.get(timeout=1))
        except queue.Empty:
            continue


def test_a_retried_and_a_failed_flush_never_log_the_shopper_or_the_query(
    worker: Worker, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = enqueued_flush(settings, monkeypatch)
    assert SHOPPER not in options["argsrepr"]
    assert QUERY not in options["argsrepr"]
    retried = worker.producer.send_task(TASK, queue=QUEUE, **options)
    unreadable = [{**options["args"][0][0], "features": "not base64!"}]
    failed = worker.producer.send_task(
        TASK, args=[unreadable], queue=QUEUE, argsrepr=options["argsrepr"]
    )

    seen: list[str] = []

    def entries() -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in seen if line.startswith("{")]

    def received(task_id: str) -> int:
        return sum(1 for e in entries() if e["message"] == f"Task {TASK}[{task_id}] received")

    def logged(task_id: str, text: str) -> bool:
        return any(f"[{task_id}]" in e["message"] and text in e["message"] for e in entries())

    wait_for(worker, seen, lambda: received(retried.id) >= 2, "received the flush's retry")
    wait_for(worker, seen, lambda: logged(failed.id, "raised unexpected"), "failed the flush")

    assert logged(retried.id, "retry: Retry in")  # the database was down: retried
    assert any(e["level"] == "ERROR" and "exception" in e for e in entries())
    retry_receipts = [e for e in entries() if e["message"] == f"Task {TASK}[{retried.id}] received"]
    assert retry_receipts[-1]["data"]["args"] == "[<1 rank-log entries>]"
    output = "".join(seen)
    assert SHOPPER not in output
    assert "shopper-7f3a9c" not in output
    assert QUERY not in output
