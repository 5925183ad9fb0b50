"""What the readout over time costs a readout page: `experiment_result` on an experiment of a few
thousand shoppers over two weeks, with the day-by-day figures (this branch) and without them
(the readout as it was before, loaded from git), on PostgreSQL. docs/experiments.md section 11.

Run it as a pytest module (it needs a test database), with the test suite's settings:

    git show merge2:ranking/experiments.py > var/old_experiments.py
    RANKWELL_ENV=test DATABASE_URL=... REDIS_URL=... .venv/bin/pytest -p no:cacheprovider -q -s \
        bench/readout_daily.py   (BENCH_SHOPPERS=20000 for more shoppers)
"""

from __future__ import annotations

import importlib.util
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from events.models import Event, EventType
from ranking import experiments
from ranking.models import Experiment, RankLog
from ranking.signals.schema import SCHEMA_HASH
from tests.factories import CustomerFactory
from tests.ranking.learning_shop import register

SHOPPERS = int(os.environ.get("BENCH_SHOPPERS", "3000"))
DAYS = 14
RUNS = 5
OLD = Path(os.environ.get("BENCH_OLD_READOUT", "var/old_experiments.py"))


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _timed(read: Any) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        read()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.mark.django_db
def test_cost_of_the_readout_over_time() -> None:
    customer = CustomerFactory()
    experiment = Experiment.objects.create(
        customer=customer,
        surface="search",
        name="bench",
        treatment_model=register(customer),
        treatment_percent=50,
    )
    rng = random.Random(1)
    start = timezone.now() - timedelta(days=DAYS + 1)
    rows, events = [], []
    for n in range(SHOPPERS):
        for visit in range(rng.randint(1, 3)):
            at = start + timedelta(days=rng.randrange(DAYS), minutes=rng.randint(0, 1400))
            request_id = f"r-{n}-{visit}"
            rows.append(
                RankLog(
                    customer=customer,
                    request_id=request_id,
                    surface="search",
                    query="q",
                    shopper_key=f"u:{n}",
                    schema_hash=SCHEMA_HASH,
                    item_ids=["sku-1"],
                    features=b"",
                    created_at=at,
                    experiment_id=experiment.pk,
                    variant="AB"[n % 2],
                )
            )
            if rng.random() < 0.3:
                events.append(
                    Event(
                        customer=customer,
                        event_id=f"c-{n}-{visit}",
                        type=EventType.CLICK,
                        item_id="sku-1",
                        occurred_at=at + timedelta(minutes=1),
                        user_id=str(n),
                        request_id=request_id,
                    )
                )
            if rng.random() < 0.1:
                price = rng.uniform(5, 80)
                events.append(
                    Event(
                        customer=customer,
                        event_id=f"p-{n}-{visit}",
                        type=EventType.PURCHASE,
                        item_id="sku-1",
                        occurred_at=at + timedelta(minutes=rng.randint(2, 300)),
                        user_id=str(n),
                        request_id=request_id if rng.random() < 0.7 else "",
                        price=price,
                        revenue=price,
                    )
                )
    RankLog.objects.bulk_create(rows, batch_size=2000)
    Event.objects.bulk_create(events, batch_size=2000)
    with_days = _timed(lambda: experiments.experiment_result(experiment=experiment))
    result = experiments.experiment_result(experiment=experiment)
    print(
        f"\n{SHOPPERS:,} shoppers, {len(rows):,} searches, {len(events):,} clicks and purchases, "
        f"{len(result.daily)} days"
    )
    print(f"readout with the days: {with_days * 1000:.0f} ms (median of {RUNS})")
    if OLD.exists():
        spec = importlib.util.spec_from_file_location("old_experiments", OLD)
        assert spec is not None
        assert spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_experiments"] = old  # its dataclasses look their module up
        spec.loader.exec_module(old)
        without = _timed(lambda: old.experiment_result(experiment=experiment))
        print(f"readout without them: {without * 1000:.0f} ms (median of {RUNS})")
