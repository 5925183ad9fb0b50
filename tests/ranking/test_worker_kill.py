"""A Celery worker killed (SIGKILL) in the middle of a task loses nothing and shows nothing half
done: the signal version it was writing never becomes visible, and the task comes back to the
queue (acks_late) for the next worker, which finishes it exactly once.

Real processes: the worker is `celery -A config worker` on the Redis broker and the test
database, killed for real; the broker's visibility timeout is shortened to seconds so the test
sees the redelivery production sees after CELERY_VISIBILITY_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from celery import Celery

from catalog.models import Item
from ranking.learning.rank_log import RankLogEntry
from ranking.models import RankLog, SignalVersion
from ranking.signals.backend import signal_store
from ranking.signals.schema import FEATURES
from tests.conftest import NAMESPACE
from tests.factories import CustomerFactory
from tests.processes import ROOT, celery_worker_command, subprocess_database_url

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"kill-{NAMESPACE}"
VISIBILITY_SECONDS = 3


class Worker:
    """One worker process; its output is read on a thread so `wait_for` can watch it."""

    def __init__(self, broker_url: str, redis_url: str) -> None:
        env = {
            **os.environ,
            "CELERY_BROKER_URL": broker_url,
            "DATABASE_URL": subprocess_database_url(),
            "CELERY_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
            # The test's own signal-store keys, which the test reads back.
            "REDIS_URL": redis_url,
            "SIGNAL_STORE_NAMESPACE": NAMESPACE,
        }
        self.process = subprocess.Popen(
            celery_worker_command(QUEUE),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines[-40:])
            assert time.monotonic() < deadline, f"never saw {text!r}:\n" + "".join(self.lines[-40:])
            time.sleep(0.02)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def workers(redis_url: str) -> Iterator[Callable[[], Worker]]:
    broker = redis_url.rsplit("/", 1)[0] + "/1"
    started: list[Worker] = []
    producer = Celery("rankwell-test-producer", broker=broker)

    def start() -> Worker:
        worker = Worker(broker, redis_url)
        started.append(worker)
        return worker

    start.producer = producer  # type: ignore[attr-defined]
    yield start
    for worker in started:
        worker.stop()
    producer.close()


def until(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    output: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}\n{output()}"
        time.sleep(0.2)


def test_a_worker_killed_mid_refresh_shows_no_half_version_and_the_refresh_completes(
    workers: Callable[[], Worker],
) -> None:
    customer = CustomerFactory()
    Item.objects.bulk_create(
        Item(
            customer=customer,
            external_id=f"sku-{n}",
            title=f"Item {n}",
            brand=f"b{n % 50}",
            categories=[f"c{n % 20}"],
            price=10 + n % 90,
        )
        for n in range(30_000)
    )
    first = workers()
    workers.producer.send_task(  # type: ignore[attr-defined]
        "ranking.tasks.refresh_signals", args=[customer.pk], queue=QUEUE
    )
    first.wait_for("] received")
    time.sleep(0.3)  # inside the refresh: computing or writing its 30,000 item records
    first.kill()

    # Nothing of the killed version can be read: no pointer, no recorded version.
    assert signal_store().current_versions([customer.pk])[customer.pk] is None
    assert not SignalVersion.objects.filter(customer=customer).exists()

    # The next worker, started once the visibility timeout has passed, takes the task back.
    time.sleep(VISIBILITY_SECONDS + 0.5)
    workers()
    until(
        lambda: SignalVersion.objects.filter(customer=customer).exists(),
        60 + VISIBILITY_SECONDS,
        "the refresh never came back to a worker",
    )
    version = SignalVersion.objects.get(customer=customer)
    assert version.items == 30_000
    assert signal_store().current_versions([customer.pk])[customer.pk] == version.version
    fetched = signal_store().fetch(customer.pk, ["sku-0", "sku-29999"], "", "")
    assert fetched.item_found.all()


def test_a_worker_killed_mid_flush_loses_no_rank_log_row_and_writes_none_twice(
    workers: Callable[[], Worker],
) -> None:
    customer = CustomerFactory()
    features = np.zeros((20, len(FEATURES)), dtype="<f4").tobytes()
    payload = [
        RankLogEntry(
            customer_id=customer.pk,
            request_id=f"req-{n}",
            surface="search",
            query="shoes",
            shopper_key="",
            model="config:default",
            item_ids=tuple(f"sku-{k}" for k in range(20)),
            features=features,
            created_at=datetime.now(UTC),
        ).to_payload()
        for n in range(3000)
    ]
    first = workers()
    workers.producer.send_task(  # type: ignore[attr-defined]
        "ranking.tasks.flush_rank_log", args=[payload], queue=QUEUE
    )
    first.wait_for("] received")
    time.sleep(0.05)
    first.kill()

    time.sleep(VISIBILITY_SECONDS + 0.5)
    second = workers()
    until(
        lambda: RankLog.objects.filter(customer=customer).count() == 3000,
        60 + VISIBILITY_SECONDS,
        "the rank-log batch was lost",
        lambda: "".join(first.lines[-15:] + second.lines[-30:]),
    )
    time.sleep(VISIBILITY_SECONDS + 1)  # a second delivery, if any, has had its chance
    assert RankLog.objects.filter(customer=customer).count() == 3000
