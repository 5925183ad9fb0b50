"""The rank log: what each rank request showed, with the exact features it was scored on.

A request appends one entry to a bounded in-process buffer (no database, no Redis). The
runtime-sync thread drains it every second and hands batches to the `flush_rank_log` Celery task,
which bulk-inserts `RankLog` rows. When the buffer is full the oldest entries are dropped and
counted: losing some training rows is better than growing without bound or slowing the shopper.

The item columns of a request read from a signal version (18 of its 28 features: the item and
catalog families) are a function of the version and the item, so they are stored once per
(version, item) in `RankLogItemSignals` and the row keeps the rest (`items_by_reference`): a
row of 100 positions stores 4 KB of features instead of 11 KB, and PostgreSQL keeps it in its
heap page instead of compressing it out of line (docs/performance.md, "The rank log's item
columns by reference"). `logged_features` puts a row's matrix back together, bit for bit.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg.errors
from celery import current_app
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from core.bulk_copy import copy_rows
from core.metrics import RANK_LOG_BAD_ENTRIES, RANK_LOG_DROPPED
from core.settings_cache import settings_cached
from customers.models import Customer
from ranking.engine.features import standardised_relevance
from ranking.engine.records import RankInput, RankOutcome
from ranking.models import RankLog, RankLogItemSignals, SignalVersion
from ranking.signals.schema import FEATURES, N_ITEM, RELEVANCE_COLUMN, SCHEMA_HASH

logger = logging.getLogger(__name__)

FEATURE_DTYPE = np.dtype("<f4")

# Sent by name: ranking/tasks.py, where the task lives, imports this module. A batch may hold
# entries split when recorded (`items_by_reference`): it goes to `FLUSH_SPLIT_TASK`, which a
# worker from before the split does not know and discards, instead of storing a split row as if
# it were whole. `ranking.tasks.flush_rank_log` stays for the messages of API processes from
# before.
FLUSH_SPLIT_TASK = "ranking.tasks.flush_rank_log_split"


@dataclass(frozen=True, slots=True)
class RankLogEntry:
    customer_id: int
    request_id: str
    surface: str
    query: str
    shopper_key: str
    model: str
    item_ids: tuple[str, ...]  # in the order shown: position p is index p - 1
    features: bytes  # positions x features, little-endian float32
    created_at: datetime
    category: str = ""
    signals_version: int | None = None
    signals_at: str | None = None  # ISO 8601, the version's SignalMeta.created_at
    degraded: bool = False
    swapped_at: int | None = None
    experiment_id: int | None = None
    variant: str = ""
    # {"<rule id>": "held_out" | "exposed"} per matching rule with a holdout; None for none.
    rule_holdouts: dict[str, str] | None = None
    teams: str | None = None  # interleaved requests: the team per position
    # {"<experiment id>": variant} of the shopper's experiments in other layers; None for none.
    layer_variants: dict[str, str] | None = None
    # `features` holds only the columns after the item ones (N_ITEM on): the item columns of
    # every position are stored already for (customer, signals_version), found so at record time.
    items_by_reference: bool = False

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe, for the Celery message."""
        return {
            "customer_id": self.customer_id,
            "request_id": self.request_id,
            "surface": self.surface,
            "query": self.query,
            "shopper_key": self.shopper_key,
            "model": self.model,
            "item_ids": list(self.item_ids),
            "features": base64.b64encode(self.features).decode(),
            "created_at": self.created_at.isoformat(),
            "category": self.category,
            "signals_version": self.signals_version,
            "signals_at": self.signals_at,
            "degraded": self.degraded,
            "swapped_at": self.swapped_at,
            "experiment_id": self.experiment_id,
            "variant": self.variant,
            "rule_holdouts": self.rule_holdouts,
            "teams": self.teams,
            "layer_variants": self.layer_variants,
            "items_by_reference": self.items_by_reference,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RankLogEntry:
        return cls(
            customer_id=int(payload["customer_id"]),
            request_id=str(payload["request_id"]),
            surface=str(payload["surface"]),
            query=str(payload["query"]),
            shopper_key=str(payload["shopper_key"]),
            model=str(payload["model"]),
            item_ids=tuple(payload["item_ids"]),
            features=base64.b64decode(payload["features"]),
            created_at=datetime.fromisoformat(payload["created_at"]),
            category=str(payload.get("category", "")),
            signals_version=payload.get("signals_version"),
            signals_at=payload.get("signals_at"),
            degraded=bool(payload.get("degraded", False)),
            swapped_at=payload.get("swapped_at"),
            experiment_id=payload.get("experiment_id"),
            variant=str(payload.get("variant") or ""),
            rule_holdouts=payload.get("rule_holdouts"),
            teams=payload.get("teams"),
            layer_variants=payload.get("layer_variants"),
            items_by_reference=bool(payload.get("items_by_reference", False)),
        )

    @property
    def signals_time(self) -> datetime | None:
        return datetime.fromisoformat(self.signals_at) if self.signals_at else None


def feature_matrix(features: bytes) -> np.ndarray:
    """A whole logged feature blob back as a positions x features float32 matrix."""
    return np.frombuffer(features, dtype=FEATURE_DTYPE).reshape(-1, len(FEATURES))


ITEM_BYTES = N_ITEM * FEATURE_DTYPE.itemsize


def logged_relevance(features: bytes, positions: int) -> np.ndarray:
    """The standardised relevance column of a logged blob, of any layout or schema: the
    request's block is the last column in every schema (schema.py), whole or by reference."""
    return np.frombuffer(features, dtype=FEATURE_DTYPE).reshape(positions, -1)[:, -1].copy()


def logged_matrix(
    features: bytes, item_ids: Sequence[str], item_rows: Mapping[str, bytes] | None
) -> np.ndarray | None:
    """A logged row's positions x features matrix. `item_rows` (item id to its item columns, of
    the row's signal version) for a row stored by reference, None for a whole one. None when an
    item's columns are not there (purged, or never written: training then rebuilds the row)."""
    if item_rows is None:
        return feature_matrix(features)
    parts = []
    for item_id in item_ids:
        part = item_rows.get(item_id)
        if part is None or len(part) != ITEM_BYTES:
            return None
        parts.append(part)
    matrix = np.empty((len(item_ids), len(FEATURES)), dtype=FEATURE_DTYPE)
    items = np.frombuffer(b"".join(parts), dtype=FEATURE_DTYPE)
    matrix[:, :N_ITEM] = items.reshape(len(item_ids), N_ITEM)
    matrix[:, N_ITEM:] = np.frombuffer(features, dtype=FEATURE_DTYPE).reshape(len(item_ids), -1)
    return matrix


def version_items(
    customer_id: int, version: int, item_ids: Sequence[str] | None = None
) -> dict[str, bytes]:
    """The item columns stored for a customer's signal version (of `item_ids` only, if given)."""
    rows = RankLogItemSignals.objects.for_customer(customer_id).filter(signals_version=version)
    if item_ids is not None:
        rows = rows.filter(item_id__in=sorted(set(item_ids)))
    return {item_id: bytes(signals) for item_id, signals in rows.values_list("item_id", "signals")}


class VersionItems:
    """The item columns the rank log stored per signal version of a customer, read a version at
    a time as the time-ordered rows reach it; the last two versions kept (workers may serve the
    old and the new version for a moment after a refresh), some 25 MB a version of 100,000
    items served."""

    KEPT = 2

    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        self.versions: dict[int, dict[str, bytes]] = {}

    def of(self, version: int) -> dict[str, bytes]:
        rows = self.versions.pop(version, None)
        if rows is None:
            rows = version_items(self.customer_id, version)
        self.versions[version] = rows  # the newest last
        while len(self.versions) > self.KEPT:
            del self.versions[next(iter(self.versions))]
        return rows


def logged_features(log: RankLog) -> np.ndarray | None:
    """One logged row's features, whole: None when its item columns are gone."""
    items = (
        version_items(log.customer_id, log.signals_version, log.item_ids)
        if log.items_by_reference and log.signals_version is not None
        else None
    )
    return logged_matrix(bytes(log.features), log.item_ids, items)


class RankLogBuffer:
    """A bounded FIFO of log entries, shared by the request threads of one process."""

    def __init__(self, capacity: int) -> None:
        self.entries: deque[RankLogEntry] = deque(maxlen=capacity)
        self.dropped = 0
        self.lock = threading.Lock()

    def append(self, entry: RankLogEntry) -> None:
        with self.lock:
            if len(self.entries) == self.entries.maxlen:
                self.dropped += 1
                RANK_LOG_DROPPED.inc()
            self.entries.append(entry)

    def drain(self, limit: int) -> list[RankLogEntry]:
        with self.lock:
            return [self.entries.popleft() for _ in range(min(limit, len(self.entries)))]

    def __len__(self) -> int:
        return len(self.entries)


buffer = RankLogBuffer(settings.RANK_LOG_BUFFER_SIZE)


@settings_cached
def _max_positions() -> int:
    return int(settings.RANK_LOG_MAX_POSITIONS)


def record(
    *,
    customer_id: int,
    request_id: str,
    surface: str,
    query: str,
    shopper_key: str,
    model: str,
    item_ids: tuple[str, ...],
    features: np.ndarray,
    at: datetime | None = None,
    category: str = "",
    signals_version: int | None = None,
    signals_at: str | None = None,
    degraded: bool = False,
    swapped_at: int | None = None,
    experiment_id: int | None = None,
    variant: str = "",
    rule_holdouts: dict[str, str] | None = None,
    teams: str | None = None,
    layer_variants: dict[str, str] | None = None,
) -> None:
    """Remember one served request: the shown items in order and their feature rows (the first
    RANK_LOG_MAX_POSITIONS positions). An in-memory append; never touches the database.

    When this process has stored the item columns of every shown item for the signal version
    already (the usual case a second after a version is first served), the entry keeps only the
    other columns: the split is done here, a few microseconds a request, instead of in the flush,
    where it held the GIL for milliseconds at a time once a second against the requests of the
    process (the p99 of /v1/rank, docs/performance.md)."""
    keep = _max_positions()
    shown = item_ids[:keep]
    matrix = features[:keep]
    split = (
        signals_version is not None
        and not degraded
        and matrix.shape[1] == len(FEATURES)
        and _stored_items.get((customer_id, signals_version), _NOTHING).issuperset(shown)
    )
    if split:
        matrix = matrix[:, N_ITEM:]
    buffer.append(
        RankLogEntry(
            customer_id=customer_id,
            request_id=request_id,
            surface=surface,
            query=query,
            shopper_key=shopper_key,
            model=model,
            item_ids=shown,
            features=np.ascontiguousarray(matrix, dtype=FEATURE_DTYPE).tobytes(),
            created_at=at or timezone.now(),
            category=category,
            signals_version=signals_version,
            signals_at=signals_at,
            degraded=degraded,
            swapped_at=swapped_at,
            experiment_id=experiment_id,
            variant=variant,
            rule_holdouts=rule_holdouts,
            teams=None if teams is None else teams[:keep],
            layer_variants=layer_variants,
            items_by_reference=split,
        )
    )


def record_outcome(
    *,
    customer_id: int,
    request_id: str,
    request: RankInput,
    outcome: RankOutcome,
    at: datetime | None = None,
) -> None:
    """Log a ranked request: the returned items in order, with their features. A degraded answer
    is logged too, flagged, with only its relevance column (training rebuilds the rest)."""
    if not len(outcome.order):
        return
    order = outcome.order[: _max_positions()]
    features = outcome.features
    if features is None:
        features = np.zeros((len(request.item_ids), len(FEATURES)))
        features[:, RELEVANCE_COLUMN] = standardised_relevance(request.relevance)
    record(
        customer_id=customer_id,
        request_id=request_id,
        surface=request.surface,
        query=request.query,
        shopper_key=request.shopper_key,
        model=outcome.model or f"config:{outcome.config}",
        item_ids=tuple([request.item_ids[index] for index in order.tolist()]),
        features=features.take(order, axis=0),  # the rows gathered without fancy indexing
        at=at,
        category=request.category,
        signals_version=outcome.missing.signals_version,
        signals_at=outcome.missing.signals_at,
        degraded=outcome.degraded,
        swapped_at=outcome.swapped_at,
        experiment_id=outcome.experiment_id if outcome.variant else None,
        variant=outcome.variant or "",
        rule_holdouts=None
        if outcome.rule_holdouts is None
        else {str(rule_id): group for rule_id, group in outcome.rule_holdouts.items()},
        teams=outcome.teams,
        layer_variants=None
        if outcome.layer_variants is None
        else {str(experiment_id): variant for experiment_id, variant in outcome.layer_variants},
    )


# The columns a rank-log row is written with, in COPY's order.
_COPY_COLUMNS = (
    "customer_id",
    "request_id",
    "surface",
    "query",
    "shopper_key",
    "model",
    "schema_hash",
    "item_ids",
    "features",
    "created_at",
    "category",
    "signals_version",
    "signals_at",
    "degraded",
    "swapped_at",
    "experiment_id",
    "variant",
    "teams",
    "rule_holdouts",
    "layer_variants",
    "items_by_reference",
)


# What one entry can cause; an outage (OperationalError) propagates, so the task retries the batch.
BAD_DATA = (DataError, IntegrityError, psycopg.errors.DataError, psycopg.errors.IntegrityError)


def _cleaned(entry: RankLogEntry) -> RankLogEntry:
    """The entry with NUL characters removed from its texts (PostgreSQL cannot store them; the
    API refuses them, but one entry must never cost its batch)."""
    texts = (
        entry.request_id,
        entry.surface,
        entry.query,
        entry.shopper_key,
        entry.model,
        entry.category,
        *entry.item_ids,
    )
    if "\x00" not in "\x1f".join(texts):
        return entry
    RANK_LOG_BAD_ENTRIES.labels("cleaned").inc()
    return replace(
        entry,
        request_id=entry.request_id.replace("\x00", ""),
        surface=entry.surface.replace("\x00", ""),
        query=entry.query.replace("\x00", ""),
        shopper_key=entry.shopper_key.replace("\x00", ""),
        model=entry.model.replace("\x00", ""),
        category=entry.category.replace("\x00", ""),
        item_ids=tuple(item_id.replace("\x00", "") for item_id in entry.item_ids),
    )


def rank_log_write(entries: list[RankLogEntry]) -> int:
    """Insert a batch of entries (see `_write`). An entry the database still refuses after
    cleaning is dropped and counted, and the others of its batch are written one by one."""
    entries = [_cleaned(entry) for entry in entries]
    try:
        return _write(entries)
    except BAD_DATA:
        if len(entries) == 1:
            RANK_LOG_BAD_ENTRIES.labels("dropped").inc()
            logger.warning("a rank-log entry was refused by the database; dropped", exc_info=True)
            return 0
    return sum(rank_log_write([entry]) for entry in entries)


def _json_bytes(value: Any) -> bytes | str:
    """JSON for a jsonb column: orjson, about ten times quicker than the json module on the
    item ids (the database stores the parsed value, so the text's spacing does not show);
    the json module where orjson refuses (a lone surrogate, which the database then refuses
    as it did before)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value)


# Per process: the item ids whose columns this process has stored, per (customer, signal
# version), so that a batch sends only the items new to the version. Only the two newest versions
# of a customer are kept (the workers switch within seconds of a refresh), and a customer's ids are
# forgotten past `_REMEMBERED_LIMIT` (the insert skips rows stored already; the set only saves
# sending them). A row the set wrongly counts as stored (purged since) is found missing when
# training reads it, and that request is rebuilt: never a wrong feature.
_stored_items: dict[tuple[int, int], set[str]] = {}
_REMEMBERED_LIMIT = 50_000
_NOTHING: frozenset[str] = frozenset()

# In the order given (sorted): two processes storing the same new items wait for one another
# instead of deadlocking, as they did in unsorted batches.
_ITEMS_INSERT = (
    "INSERT INTO ranking_ranklogitemsignals (customer_id, signals_version, item_id, signals)"
    " SELECT customer_id, signals_version, item_id, signals"
    " FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::bytea[])"
    " WITH ORDINALITY AS given (customer_id, signals_version, item_id, signals, position)"
    " ORDER BY position"
    " ON CONFLICT (customer_id, signals_version, item_id) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class _Row:
    entry: RankLogEntry
    features: bytes  # whole, or without the item columns when `by_reference`
    by_reference: bool


def _by_reference(entry: RankLogEntry) -> bool:
    """Whether the entry's item columns can be stored by reference: read from a signal version,
    not degraded, and a whole matrix of this schema."""
    return (
        entry.signals_version is not None
        and not entry.degraded
        and len(entry.features) == len(entry.item_ids) * len(FEATURES) * FEATURE_DTYPE.itemsize
    )


def _split(entries: list[RankLogEntry]) -> tuple[list[_Row], dict[tuple[int, int, str], bytes]]:
    """The rows to copy, and the item columns not stored yet by this process."""
    rows: list[_Row] = []
    items: dict[tuple[int, int, str], bytes] = {}
    for entry in entries:
        if entry.items_by_reference:  # split when recorded
            rows.append(_Row(entry, entry.features, True))
            continue
        if not _by_reference(entry):
            rows.append(_Row(entry, entry.features, False))
            continue
        assert entry.signals_version is not None
        matrix = feature_matrix(entry.features)
        stored = _stored_items.get((entry.customer_id, entry.signals_version), _NOTHING)
        if not stored.issuperset(entry.item_ids):  # one C loop in the usual case: all stored
            for position, item_id in enumerate(entry.item_ids):
                if item_id not in stored:
                    key = (entry.customer_id, entry.signals_version, item_id)
                    if key not in items:
                        items[key] = matrix[position, :N_ITEM].tobytes()
        rows.append(_Row(entry, matrix[:, N_ITEM:].tobytes(), True))
    return rows, items


def _remember(items: dict[tuple[int, int, str], bytes]) -> None:
    """Count the items as stored, once their transaction committed."""
    for customer_id, version, item_id in items:
        _stored(customer_id, version).add(item_id)


def _stored(customer_id: int, version: int) -> set[str]:
    """The ids remembered as stored for a customer's version (its older versions but the newest
    forgotten when it is new; emptied at `_REMEMBERED_LIMIT`)."""
    stored = _stored_items.get((customer_id, version))
    if stored is None:
        older = sorted(key for key in list(_stored_items) if key[0] == customer_id)
        for key in older[:-1]:
            del _stored_items[key]
        stored = _stored_items[(customer_id, version)] = set()
    elif len(stored) >= _REMEMBERED_LIMIT:
        stored.clear()
    return stored


def _store_items(items: dict[tuple[int, int, str], bytes]) -> None:
    """Insert the item columns; one already stored (by another process) is left as it is."""
    if not items:
        return
    if connection.vendor == "postgresql":
        columns: tuple[list[int], list[int], list[str], list[bytes]] = ([], [], [], [])
        for (customer_id, version, item_id), signals in sorted(items.items()):
            columns[0].append(customer_id)
            columns[1].append(version)
            columns[2].append(item_id)
            columns[3].append(signals)
        with connection.cursor() as cursor:
            cursor.execute(_ITEMS_INSERT, columns)
        return
    RankLogItemSignals.objects.bulk_create(
        [
            RankLogItemSignals(
                customer_id=customer_id, signals_version=version, item_id=item_id, signals=signals
            )
            for (customer_id, version, item_id), signals in sorted(items.items())
        ],
        batch_size=500,
        ignore_conflicts=True,
    )


def _write(entries: list[RankLogEntry]) -> int:
    """Insert a batch of entries, and the item columns they refer to, in one transaction; a
    request id already logged for the customer is skipped."""
    rows, items = _split(entries)
    with transaction.atomic():
        _store_items(items)
        _write_rows(rows)
    _remember(items)
    return len(entries)


def _write_rows(rows: list[_Row]) -> None:
    """Insert the rows; a request id already logged for the customer is skipped.

    On PostgreSQL a binary COPY: an API process without a broker writes here, on a thread beside
    the requests, and the ORM's bulk insert took about 0.2 ms of CPU per entry (150 entries a
    second per worker at 300 req/s: the p99 of /v1/rank, docs/performance.md). A request id
    logged already (a retried flush) fails the COPY whole (its savepoint rolled back); the batch
    then goes through the ORM, which skips it."""
    if connection.vendor == "postgresql":
        try:
            copied = (
                (
                    row.entry.customer_id,
                    row.entry.request_id,
                    row.entry.surface,
                    row.entry.query[:256],
                    row.entry.shopper_key[:260],
                    row.entry.model[:64],
                    SCHEMA_HASH,
                    Jsonb(row.entry.item_ids, dumps=_json_bytes),
                    row.features,
                    row.entry.created_at,
                    row.entry.category[:256],
                    row.entry.signals_version,
                    row.entry.signals_time,
                    row.entry.degraded,
                    row.entry.swapped_at,
                    row.entry.experiment_id,
                    row.entry.variant[:16],
                    row.entry.teams,
                    None if row.entry.rule_holdouts is None else Jsonb(row.entry.rule_holdouts),
                    None if row.entry.layer_variants is None else Jsonb(row.entry.layer_variants),
                    row.by_reference,
                )
                for row in rows
            )
            with transaction.atomic(), connection.cursor() as wrapper:
                copy_rows(wrapper.cursor, RankLog._meta.db_table, _COPY_COLUMNS, copied)
            return
        except UniqueViolation:
            pass
    RankLog.objects.bulk_create(
        [
            RankLog(
                customer_id=row.entry.customer_id,
                request_id=row.entry.request_id,
                surface=row.entry.surface,
                query=row.entry.query[:256],
                shopper_key=row.entry.shopper_key[:260],
                model=row.entry.model[:64],
                schema_hash=SCHEMA_HASH,
                item_ids=list(row.entry.item_ids),
                features=row.features,
                created_at=row.entry.created_at,
                category=row.entry.category[:256],
                signals_version=row.entry.signals_version,
                signals_at=row.entry.signals_time,
                degraded=row.entry.degraded,
                swapped_at=row.entry.swapped_at,
                experiment_id=row.entry.experiment_id,
                variant=row.entry.variant[:16],
                teams=row.entry.teams,
                rule_holdouts=row.entry.rule_holdouts,
                layer_variants=row.entry.layer_variants,
                items_by_reference=row.by_reference,
            )
            for row in rows
        ],
        batch_size=500,
        ignore_conflicts=True,
    )


def flush(*, limit: int | None = None) -> int:
    """Hand everything buffered (or up to `limit` entries) to the flush task, in batches.

    Called by the runtime-sync thread every second, at exit, and explicitly by the simulator and
    tests. With eager Celery (embedded default, tests) the batches are written right here, as the
    task would. Only what was buffered when the flush began is sent: the requests that arrive
    meanwhile wait for the next flush, instead of each costing a transaction of a few rows (the
    flush chased them in batches of one to five, about a millisecond of the process's CPU each).
    """
    batch_size = settings.RANK_LOG_FLUSH_BATCH
    pending = len(buffer)
    limit = pending if limit is None else min(limit, pending)
    sent = 0
    while sent < limit:
        batch = buffer.drain(min(batch_size, limit - sent))
        if not batch:
            break
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # The task would run right here; skip the message (and its log of every argument).
            rank_log_write(batch)
        else:
            _send(batch)
        sent += len(batch)
    if buffer.dropped:
        logger.warning("rank log buffer full: dropped %s entries", buffer.dropped)
        buffer.dropped = 0
    return sent


def _send(batch: list[RankLogEntry]) -> None:
    """Hand a batch to a Celery worker. The items of the entries it stores by reference (sent
    whole, the worker splits them) are counted as stored once sent, so that later requests
    showing them are split when recorded and go with their 10 columns: about 30 instead of 60-95
    us of this process's CPU a row, and a message of 500 rows of 100 positions 3.6 MB instead of
    8.4 (bench/experiments/rank_log_message.py). If a message is lost, the rows that referred to
    its items are rebuilt by training ("the item columns it referred to are gone"), never read
    with a wrong column."""
    # The task's log lines name the batch, never its shopper keys, queries or features.
    current_app.send_task(
        FLUSH_SPLIT_TASK,
        args=([entry.to_payload() for entry in batch],),
        argsrepr=f"[<{len(batch)} rank-log entries>]",
        kwargsrepr="{}",
    )
    for entry in batch:
        if not entry.items_by_reference and _by_reference(entry):
            assert entry.signals_version is not None
            _stored(entry.customer_id, entry.signals_version).update(entry.item_ids)


def flush_quietly() -> None:
    """Flush, logging instead of raising (the sync thread's job and the exit hook)."""
    try:
        flush()
    except Exception:
        logger.warning("rank log flush failed", exc_info=True)


def rank_log_purge(*, now: datetime | None = None) -> int:
    """Delete log rows older than RANK_LOG_RETENTION_DAYS, in bounded batches."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.RANK_LOG_RETENTION_DAYS)
    deleted = 0
    for customer_id in Customer.objects.values_list("id", flat=True):
        old = RankLog.objects.for_customer(customer_id).filter(created_at__lt=cutoff)
        while ids := list(old.values_list("id", flat=True)[:5000]):
            deleted += RankLog.objects.filter(id__in=ids).delete()[0]
        _purge_items(customer_id)
    return deleted


# How long after a refresh a process may still log the version before it (it follows the new one
# within a second; this is the margin).
_VERSION_OVERLAP = timedelta(hours=1)


def _purge_items(customer_id: int) -> None:
    """Delete the item columns of the signal versions no rank-log row left can refer to: the
    versions replaced more than `_VERSION_OVERLAP` before the oldest row was logged. (A row
    referring to one all the same, say from a process an hour late, is rebuilt by training.)"""
    oldest = (
        RankLog.objects.for_customer(customer_id)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    items = RankLogItemSignals.objects.for_customer(customer_id)
    if oldest is not None:
        current = (
            SignalVersion.objects.for_customer(customer_id)
            .filter(created_at__lte=oldest - _VERSION_OVERLAP)
            .order_by("-created_at")
            .values_list("version", flat=True)
            .first()
        )
        if current is None:
            return
        items = items.filter(signals_version__lt=current)
    while ids := list(items.values_list("id", flat=True)[:5000]):
        RankLogItemSignals.objects.filter(id__in=ids).delete()


def reset() -> None:
    """Drop what this process buffered and remembered (tests start each case empty)."""
    buffer.entries.clear()
    buffer.dropped = 0
    _stored_items.clear()
