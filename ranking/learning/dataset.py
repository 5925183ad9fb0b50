"""Training sets: the rank log joined with what shoppers did afterwards.

Each logged (request, item) becomes one row with the logged float32 features, its position and a
graded label: 3 purchased, 2 added to cart, 1 clicked, 0 nothing; purchases also give revenue.
Events are matched by request id and item id (carts and purchases sent without a request id are
attributed to the shopper's click at ingest, see events.services).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from events.models import Event, EventType
from ranking.learning.rank_log import feature_matrix
from ranking.models import RankLog
from ranking.signals.schema import FEATURES, SCHEMA_HASH

GRADES: dict[str, int] = {EventType.CLICK: 1, EventType.ADD_TO_CART: 2, EventType.PURCHASE: 3}
# Carts and purchases can follow the request by days; events this long after the window count.
OUTCOME_LAG = timedelta(days=7)


@dataclass(frozen=True)
class LoggedRequest:
    request_id: str
    created_at: datetime
    item_ids: tuple[str, ...]
    features: np.ndarray  # positions x features, float32


@dataclass(frozen=True)
class Outcome:
    grade: int
    revenue: float


@dataclass(frozen=True)
class TrainingSet:
    """Rows grouped by request (contiguous, requests in time order)."""

    features: np.ndarray  # N x F float32
    labels: np.ndarray  # N, 0..3
    revenue: np.ndarray  # N, purchase value
    positions: np.ndarray  # N, 1-based position shown
    item_codes: np.ndarray  # N, a code per distinct item id
    group_starts: np.ndarray  # first row of each request
    request_times: np.ndarray  # per request, datetime64[us]

    @property
    def requests(self) -> int:
        return len(self.group_starts)

    @property
    def group_sizes(self) -> np.ndarray:
        return np.diff(np.append(self.group_starts, len(self.labels)))

    def groups(self, start: int, stop: int) -> TrainingSet:
        """The requests start..stop (by index), as a training set of their own."""
        bounds = np.append(self.group_starts, len(self.labels))
        first, last = bounds[start], bounds[stop]
        return TrainingSet(
            features=self.features[first:last],
            labels=self.labels[first:last],
            revenue=self.revenue[first:last],
            positions=self.positions[first:last],
            item_codes=self.item_codes[first:last],
            group_starts=self.group_starts[start:stop] - first,
            request_times=self.request_times[start:stop],
        )

    def labelled_requests(self) -> int:
        sizes = self.group_sizes
        per_group = np.add.reduceat(self.labels > 0, self.group_starts) if len(sizes) else sizes
        return int((per_group > 0).sum())

    def row_counts(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "labelled_requests": self.labelled_requests(),
            "rows": len(self.labels),
            "clicks": int((self.labels >= 1).sum()),
            "carts": int((self.labels >= 2).sum()),
            "purchases": int((self.labels >= 3).sum()),
        }


def training_set_build(
    requests: Iterable[LoggedRequest], outcomes: dict[tuple[str, str], Outcome]
) -> TrainingSet:
    """Join logged requests with outcomes keyed by (request id, item id). Pure: no database."""
    blocks: list[np.ndarray] = []
    labels: list[int] = []
    revenue: list[float] = []
    positions: list[int] = []
    items: list[int] = []
    starts: list[int] = []
    times: list[np.datetime64] = []
    codes: dict[str, int] = {}
    row = 0
    for request in requests:
        shown = len(request.item_ids)
        if shown == 0:
            continue
        starts.append(row)
        times.append(np.datetime64(request.created_at.replace(tzinfo=None), "us"))
        blocks.append(request.features[:shown])
        for item_id in request.item_ids:
            outcome = outcomes.get((request.request_id, item_id))
            labels.append(outcome.grade if outcome else 0)
            revenue.append(outcome.revenue if outcome else 0.0)
            items.append(codes.setdefault(item_id, len(codes)))
        positions.extend(range(1, shown + 1))
        row += shown
    return TrainingSet(
        features=np.concatenate(blocks) if blocks else np.zeros((0, len(FEATURES)), np.float32),
        labels=np.asarray(labels, dtype=np.int32),
        revenue=np.asarray(revenue, dtype=np.float64),
        positions=np.asarray(positions, dtype=np.int32),
        item_codes=np.asarray(items, dtype=np.int64),
        group_starts=np.asarray(starts, dtype=np.int64),
        request_times=np.asarray(times, dtype="datetime64[us]"),
    )


def logged_requests(
    *, customer_id: int, surface: str, start: datetime, end: datetime
) -> Iterable[LoggedRequest]:
    """The customer's logged requests of a surface in [start, end), in time order, of the live
    feature schema only (a log row of another schema has other columns)."""
    rows = (
        RankLog.objects.filter(
            customer_id=customer_id,
            surface=surface,
            created_at__gte=start,
            created_at__lt=end,
            schema_hash=SCHEMA_HASH,
        )
        .order_by("created_at", "id")
        .values_list("request_id", "created_at", "item_ids", "features")
    )
    for request_id, created_at, item_ids, features in rows.iterator(chunk_size=2000):
        yield LoggedRequest(
            request_id, created_at, tuple(item_ids), feature_matrix(bytes(features))
        )


def outcomes_load(
    *, customer_id: int, start: datetime, end: datetime
) -> dict[tuple[str, str], Outcome]:
    """Best grade and purchase revenue per (request id, item id) of the customer's events."""
    events = Event.objects.filter(
        customer_id=customer_id,
        occurred_at__gte=start,
        occurred_at__lt=end + OUTCOME_LAG,
        type__in=list(GRADES),
    ).exclude(request_id="")
    grades: dict[tuple[str, str], int] = {}
    revenue: dict[tuple[str, str], float] = {}
    for request_id, item_id, kind, value in events.values_list(
        "request_id", "item_id", "type", "revenue"
    ).iterator(chunk_size=5000):
        key = (request_id, item_id)
        grades[key] = max(grades.get(key, 0), GRADES[kind])
        if kind == EventType.PURCHASE:
            revenue[key] = revenue.get(key, 0.0) + value
    return {key: Outcome(grade, revenue.get(key, 0.0)) for key, grade in grades.items()}


def training_set_load(
    *, customer_id: int, surface: str, start: datetime, end: datetime
) -> TrainingSet:
    """One customer's training set of a surface over [start, end)."""
    return training_set_build(
        logged_requests(customer_id=customer_id, surface=surface, start=start, end=end),
        outcomes_load(customer_id=customer_id, start=start, end=end),
    )
