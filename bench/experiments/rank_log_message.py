"""What a rank-log entry costs an API process that hands its batches to Celery (production: the
Celery workers that write the log run elsewhere), and the size of a batch's message: entries sent
whole (a version's first requests, and every entry before the split when recorded) against
entries split when recorded (their items sent before). 500 entries of 100 positions, the message
encoded by kombu as the broker gets it; medians of 7 rounds of this thread's CPU time. No
database or broker needed (docs/performance.md, "The rank log split when recorded").

    .venv/bin/python bench/experiments/rank_log_message.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ENTRIES = 500
ROUNDS = 7


def main() -> None:
    import django

    django.setup()
    import numpy as np
    from celery import current_app
    from django.utils import timezone
    from kombu.serialization import dumps

    from ranking.learning import rank_log
    from ranking.signals.schema import FEATURES, N_ITEM

    rng = np.random.default_rng(0)
    whole = [
        rank_log.RankLogEntry(
            customer_id=1,
            request_id=f"r{n}",
            surface="search",
            query="red running shoes",
            shopper_key="u:shopper-123",
            model="lambdamart@1",
            item_ids=tuple(f"sku-{rng.integers(100_000)}" for _ in range(100)),
            features=rng.random((100, len(FEATURES))).astype("<f4").tobytes(),
            created_at=timezone.now(),
            signals_version=3,
            signals_at=timezone.now().isoformat(),
        )
        for n in range(ENTRIES)
    ]
    split = [
        replace(
            entry,
            features=rank_log.feature_matrix(entry.features)[:, N_ITEM:].tobytes(),
            items_by_reference=True,
        )
        for entry in whole
    ]
    sizes: list[int] = []
    current_app.send_task = lambda name, args, **options: sizes.append(  # type: ignore[method-assign]
        len(dumps((args, {}, {}), serializer="json")[2])
    )
    for label, batch in (("sent whole", whole), ("split when recorded", split)):
        spent = []
        for _ in range(ROUNDS):
            rank_log.reset()
            started = time.thread_time()
            rank_log._send(batch)
            spent.append(time.thread_time() - started)
        per_entry = statistics.median(spent) / ENTRIES * 1e6
        print(f"{label}: {per_entry:.1f} us an entry, a message of {sizes[-1] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
