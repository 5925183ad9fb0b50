"""A real Celery worker process, on a real Redis broker, refreshes a customer's signals.

The worker is started the way production starts it (`celery -A config worker`), as its own
process, against the test database; the task is sent through the broker by name.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from ranking.models import SignalVersion
from tests.conftest import NAMESPACE
from tests.factories import CustomerFactory, ItemFactory
from tests.processes import celery_worker_command, subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
QUEUE = f"signals-{NAMESPACE}"


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/1"


@pytest.fixture
def worker(broker_url: str, transactional_db: None) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker_url,
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
    yield process
    process.terminate()
    process.wait(timeout=20)


def test_a_worker_process_picks_up_a_refresh_from_the_broker(
    worker: subprocess.Popen[str], broker_url: str
) -> None:
    customer = CustomerFactory()
    ItemFactory(customer=customer, external_id="a")
    ItemFactory(customer=customer, external_id="b")

    producer = Celery("rankwell-test-producer", broker=broker_url)
    producer.send_task("ranking.tasks.refresh_signals", args=[customer.pk], queue=QUEUE)

    deadline = time.monotonic() + 60
    while not SignalVersion.objects.filter(customer=customer).exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.terminate()
            output = worker.communicate(timeout=20)[0]
            pytest.fail(f"the worker never refreshed the signals:\n{output}")
        time.sleep(0.2)
    producer.close()

    assert SignalVersion.objects.get(customer=customer).items == 2
