"""Training sets: the requests shoppers saw, joined with what they did afterwards.

The requests are the rank log's and, where there is none, the impression events' (history a
retailer imported). Each (request, item) becomes one row with its features, its position and a
graded label: 3 purchased, 2 added to cart, 1 clicked, 0 nothing; purchases also give revenue.
Events are matched by request id and item id (carts and purchases sent without a request id are
attributed to the shopper's click at ingest, see events.services).

Features: the logged float32 ones where they are valid (no skew between training and serving);
rebuilt as of the request's time from the event log (ranking/learning/replay.py) where the log
had none (no signal version yet), stale ones (a version older than TRAINING_STALE_SIGNALS_SECONDS
at the request), another feature schema's, or no log at all. Degraded answers are left out
(served without signals, in the retriever's order) and counted. `TrainingSet.provenance` says how
many requests came from each source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from django.conf import settings

from events.models import Event, EventType
from events.queries import shopper_key
from ranking.engine.features import standardised_relevance
from ranking.learning.rank_log import VersionItems, logged_matrix, logged_relevance
from ranking.learning.replay import PastRequest, features_as_of
from ranking.models import RankLog
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SCHEMA_HASH

POPULARITY = FEATURE_INDEX["popularity"]

GRADES: dict[str, int] = {EventType.CLICK: 1, EventType.ADD_TO_CART: 2, EventType.PURCHASE: 3}
# Carts and purchases can follow the request by days; events this long after the window count.
OUTCOME_LAG = timedelta(days=7)


class Source(StrEnum):
    """Where a training request's features came from."""

    LOGGED = "logged"
    NO_SIGNALS = "rebuilt: served before any signal refresh"
    STALE = "rebuilt: served on stale signals"
    OTHER_SCHEMA = "rebuilt: logged with another feature schema"
    ITEMS_GONE = "rebuilt: the item columns it referred to are gone"
    HISTORY = "rebuilt: impressions without a rank log"


@dataclass(frozen=True)
class LoggedRequest:
    request_id: str
    created_at: datetime
    item_ids: tuple[str, ...]
    features: np.ndarray | None  # positions x features, float32; None: rebuild them
    query: str = ""
    shopper_key: str = ""
    source: Source = Source.LOGGED
    relevance: np.ndarray | None = None  # the standardised relevance column, when known
    signals_at: datetime | None = None  # the version the logged features were read from
    surface: str = ""
    swapped_at: int = 0  # k when exploration swapped positions k and k + 1, else 0


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
    # N: the item's popularity counted from the events before the request (the baseline);
    # the popularity feature where none was computed.
    popularity: np.ndarray | None = None
    # requests per Source, skipped degraded answers, and how far logged features are from
    # their rebuild (training/serving skew)
    provenance: dict[str, Any] = field(default_factory=dict)
    # per request: k when exploration swapped positions k and k + 1, else 0
    swapped_at: np.ndarray | None = None

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
            popularity=self.popularity_baseline[first:last],
            provenance=self.provenance,
            swapped_at=self.swaps[start:stop],
        )

    @property
    def swaps(self) -> np.ndarray:
        if self.swapped_at is not None:
            return self.swapped_at
        return np.zeros(self.requests, dtype=np.int64)

    @property
    def popularity_baseline(self) -> np.ndarray:
        if self.popularity is not None:
            return self.popularity
        return self.features[:, FEATURE_INDEX["popularity"]].astype(np.float64)

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
    requests: Iterable[LoggedRequest],
    outcomes: dict[tuple[str, str], Outcome],
    popularity: Sequence[np.ndarray] | None = None,
    provenance: dict[str, Any] | None = None,
) -> TrainingSet:
    """Join requests (with their features) with outcomes keyed by (request id, item id), and
    each request's popularity baseline when given. Pure: no database."""
    blocks: list[np.ndarray] = []
    labels: list[int] = []
    revenue: list[float] = []
    positions: list[int] = []
    items: list[int] = []
    starts: list[int] = []
    times: list[np.datetime64] = []
    swaps: list[int] = []
    codes: dict[str, int] = {}
    row = 0
    for request in requests:
        shown = len(request.item_ids)
        if shown == 0:
            continue
        starts.append(row)
        times.append(np.datetime64(request.created_at.replace(tzinfo=None), "us"))
        swaps.append(request.swapped_at)
        assert request.features is not None, "features are rebuilt before the join"
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
        popularity=np.concatenate(popularity) if popularity else None,
        provenance=provenance or {},
        swapped_at=np.asarray(swaps, dtype=np.int64),
    )


def logged_requests(
    *,
    customer_id: int,
    surface: str,
    start: datetime,
    end: datetime,
    skipped: dict[str, int] | None = None,
) -> Iterable[LoggedRequest]:
    """The customer's logged requests of a surface in [start, end), in time order, each marked
    with whether its features can be used as logged. Degraded answers are skipped (counted in
    `skipped` when given)."""
    stale_after = timedelta(seconds=settings.TRAINING_STALE_SIGNALS_SECONDS)
    rows = (
        RankLog.objects.for_customer(customer_id)
        .filter(
            surface=surface,
            created_at__gte=start,
            created_at__lt=end,
        )
        .order_by("created_at", "id")
        .values_list(
            "request_id",
            "created_at",
            "item_ids",
            "features",
            "schema_hash",
            "query",
            "shopper_key",
            "signals_at",
            "degraded",
            "swapped_at",
            "signals_version",
            "items_by_reference",
        )
    )
    items = VersionItems(customer_id)
    for (
        request_id,
        created_at,
        item_ids,
        blob,
        schema,
        query,
        shopper,
        signals_at,
        degraded,
        swapped_at,
        version,
        by_reference,
    ) in rows.iterator(chunk_size=2000):
        if degraded:
            if skipped is not None:
                skipped["degraded"] = skipped.get("degraded", 0) + 1
            continue
        if not item_ids:
            continue
        if schema != SCHEMA_HASH:
            # Another schema has other columns; relevance is the last column in every schema.
            yield LoggedRequest(
                request_id,
                created_at,
                tuple(item_ids),
                None,
                query,
                shopper,
                Source.OTHER_SCHEMA,
                relevance=logged_relevance(bytes(blob), len(item_ids)),
                surface=surface,
                swapped_at=swapped_at or 0,
            )
            continue
        blob = bytes(blob)
        relevance = logged_relevance(blob, len(item_ids))
        if signals_at is None:
            source, keep = Source.NO_SIGNALS, None
        elif created_at - signals_at > stale_after:
            source, keep = Source.STALE, None
        else:
            if not by_reference:
                keep = logged_matrix(blob, item_ids, None)
            elif version is not None:
                keep = logged_matrix(blob, item_ids, items.of(version))
            else:  # (never written so: a row by reference names its version)
                keep = None
            source = Source.LOGGED if keep is not None else Source.ITEMS_GONE
        yield LoggedRequest(
            request_id,
            created_at,
            tuple(item_ids),
            keep,
            query,
            shopper,
            source,
            relevance,
            signals_at,
            surface,
            swapped_at or 0,
        )


def impression_requests(
    *, customer_id: int, surface: str, start: datetime, end: datetime, logged: set[str]
) -> list[LoggedRequest]:
    """Requests known only from impression events (history imported without a rank log): one
    per impression event whose request id the rank log does not have, items in the order
    shown, which stands in for the retriever's relevance. An impression without a request id is
    its own request (its clicks cannot join it)."""
    pages: dict[str, list[tuple[int, str]]] = {}
    heads: dict[str, tuple[datetime, str, str]] = {}
    rows = (
        Event.objects.for_customer(customer_id)
        .filter(
            type=EventType.IMPRESSION,
            surface=surface,
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .order_by()
        .values_list(
            "event_id",
            "ordinal",
            "item_id",
            "occurred_at",
            "request_id",
            "query",
            "user_id",
            "session_id",
        )
    )
    for event_id, ordinal, item_id, at, request_id, query, user_id, session_id in rows.iterator(
        chunk_size=20_000
    ):
        if request_id in logged:
            continue
        key = request_id or f"event:{event_id}"
        pages.setdefault(key, []).append((ordinal, item_id))
        heads.setdefault(key, (at, query, shopper_key(user_id, session_id)))
    requests = []
    for key, page in pages.items():
        at, query, shopper = heads[key]
        items = tuple(item_id for _, item_id in sorted(page))
        # The shop showed its search engine's order: the order stands in for the relevance the
        # engine would have sent (z-scores, as the engine standardises relevance).
        relevance = standardised_relevance(-np.arange(len(items), dtype=np.float64))
        requests.append(
            LoggedRequest(
                key,
                at,
                items,
                None,
                query,
                shopper,
                Source.HISTORY,
                relevance=relevance,
                surface=surface,
            )
        )
    return requests


def outcomes_load(
    *, customer_id: int, start: datetime, end: datetime
) -> dict[tuple[str, str], Outcome]:
    """Best grade and purchase revenue per (request id, item id) of the customer's events."""
    events = (
        Event.objects.for_customer(customer_id)
        .filter(
            occurred_at__gte=start,
            occurred_at__lt=end + OUTCOME_LAG,
            type__in=list(GRADES),
        )
        .exclude(request_id="")
    )
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
    """One customer's training set of a surface over [start, end): logged requests and, where
    there is no log, impressions; features rebuilt where the log's are unusable; every request's
    popularity baseline counted from the events before it."""
    skipped: dict[str, int] = {}
    requests = list(
        logged_requests(
            customer_id=customer_id, surface=surface, start=start, end=end, skipped=skipped
        )
    )
    logged_ids = set(
        RankLog.objects.for_customer(customer_id)
        .filter(created_at__gte=start - OUTCOME_LAG, created_at__lt=end)
        .values_list("request_id", flat=True)
    )
    requests += impression_requests(
        customer_id=customer_id, surface=surface, start=start, end=end, logged=logged_ids
    )
    requests.sort(key=lambda request: (request.created_at, request.request_id))
    rebuilt = features_as_of(
        customer_id=customer_id,
        requests=[
            PastRequest(
                request_id=request.request_id,
                at=request.created_at,
                query=request.query,
                shopper_key=request.shopper_key,
                item_ids=request.item_ids,
                relevance=request.relevance,
                signals_at=request.signals_at,
            )
            for request in requests
        ],
    )
    provenance: dict[str, Any] = {
        "requests": {source.value: 0 for source in Source},
        "skipped degraded answers": skipped.get("degraded", 0),
        "skew": _skew(requests, rebuilt),
    }
    complete = []
    for request, features in zip(requests, rebuilt, strict=True):
        provenance["requests"][request.source.value] += 1
        if request.features is None:
            request = replace(request, features=features)
        complete.append(request)
    return training_set_build(
        complete,
        outcomes_load(customer_id=customer_id, start=start, end=end),
        popularity=[features[:, POPULARITY].astype(np.float64) for features in rebuilt],
        provenance=provenance,
    )


def _skew(requests: Sequence[LoggedRequest], rebuilt: Sequence[np.ndarray]) -> dict[str, Any]:
    """How far the logged features of the requests used as logged are from their rebuild: the
    share of values off by more than 1e-4 (relative), per feature where any is."""
    pairs = [
        (request.features, features)
        for request, features in zip(requests, rebuilt, strict=True)
        if request.source == Source.LOGGED and request.features is not None
    ]
    if not pairs:
        return {"rows": 0, "features": {}}
    logged = np.concatenate([pair[0] for pair in pairs]).astype(np.float64)
    again = np.concatenate([pair[1] for pair in pairs]).astype(np.float64)
    off = np.abs(logged - again) > 1e-4 * (1.0 + np.abs(logged))
    shares = off.mean(axis=0)
    return {
        "rows": len(logged),
        "features": {
            name: round(float(share), 4)
            for name, share in zip(FEATURES, shares, strict=True)
            if share > 0
        },
    }
