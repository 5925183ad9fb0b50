"""Every Prometheus metric of Rankwell, in one place, and how they are exposed.

HTTP latency and errors per endpoint come from django-prometheus's middleware
(`django_http_requests_latency_seconds_by_view_method`, `django_http_responses_total_by_status_
view_method_total`). The metrics below are the domain's. Under gunicorn with several workers, and
in Celery's prefork children, `PROMETHEUS_MULTIPROC_DIR` is set: each process writes its samples
to files there and one scrape sums them (prometheus_client's multiprocess mode).

Label sets are bounded: `surface`, `stage` and `variant` are enums, `customer` is the customer id
for at most `METRICS_MAX_CUSTOMERS` customers per process (then "other"), `task` is a task name.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import REGISTRY, Collector

from core.settings_cache import settings_cached

logger = logging.getLogger(__name__)

# Rank latency buckets: the budgets are p50 3-8 ms and p99 8-20 ms, so they are fine below 50 ms.
RANK_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)
STAGE_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)
CANDIDATE_BUCKETS = (1, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
TASK_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800)

# The engine's stages, as the `stage` label names them: "engine" is the whole pass around
# `rank(...)`; the engine reports the others itself (RankOutcome.stage_seconds).
STAGES = ("engine", "features", "score", "rules", "explain")

RANK_SECONDS = Histogram(
    "rankwell_rank_seconds",
    "Time to answer POST /v1/rank, from validated body to rendered response.",
    ["customer", "surface"],
    buckets=RANK_BUCKETS,
)
RANK_STAGE_SECONDS = Histogram(
    "rankwell_rank_stage_seconds",
    "Time spent in each stage of the ranking engine.",
    ["surface", "stage"],
    buckets=STAGE_BUCKETS,
)
RANK_CANDIDATES = Histogram(
    "rankwell_rank_candidates",
    "Candidates sent per rank request.",
    ["surface"],
    buckets=CANDIDATE_BUCKETS,
)
RANK_DEGRADED = Counter(
    "rankwell_rank_degraded",
    "Rank requests answered in degraded mode, by the dependency that failed.",
    ["customer", "surface", "reason"],
)
RANK_ITEMS = Counter(
    "rankwell_rank_items",
    "Candidate items ranked (the denominator of the missing-signal ratio).",
    ["customer", "surface"],
)
RANK_MISSING_SIGNALS = Counter(
    "rankwell_rank_missing_signals",
    "Items ranked with defaults for missing data: item signals, query-item signals, relevance.",
    ["customer", "surface", "kind"],
)
ACTIVE_MODEL_VERSION = Gauge(
    "rankwell_active_model_version",
    "Version of the model that ranked the latest request (0: the config's weighted blend).",
    ["customer", "surface"],
    multiprocess_mode="mostrecent",
)
EXPERIMENT_EXPOSURES = Counter(
    "rankwell_experiment_exposures",
    "Rank requests of a known shopper answered in a variant (A, B or interleaved) of one of the "
    "surface's running experiments; a request in experiments of several layers counts once "
    "for each. Requests without user or session are in no experiment and not counted.",
    ["customer", "surface", "experiment", "variant"],
)
SIGNAL_SNAPSHOTS = Counter(
    "rankwell_signal_snapshots",
    "Host-shared signal snapshots a process made ready (mapped, built, rebuilt) or gave up on "
    "for a while (failed: its requests read Redis).",
    ["outcome"],
)
CACHE_LOOKUPS = Counter(
    "rankwell_cache_lookups",
    "Lookups in the per-process runtime caches (API keys, ranking configs).",
    ["cache", "result"],
)
RANK_LOG_DROPPED = Counter(
    "rankwell_rank_log_dropped",
    "Rank-log entries dropped because the process's buffer was full (training rows lost).",
)
RANK_LOG_BAD_ENTRIES = Counter(
    "rankwell_rank_log_bad_entries",
    "Rank-log entries the database could not hold as they were: cleaned (NUL characters "
    "removed, then written) or dropped (still refused; the rest of their batch was written).",
    ["outcome"],
)
EVENTS = Counter(
    "rankwell_events",
    "Events sent to POST /v1/events: accepted, duplicate (ignored) or rejected (invalid batch).",
    ["customer", "outcome"],
)
RATE_LIMIT_DECISIONS = Counter(
    "rankwell_rate_limit_decisions",
    "Rate-limit decisions (customers/ratelimit.py) by limit (the endpoint group of an API key: "
    "rank, events, other; or invalid_keys per client address) and outcome: allowed, limited "
    "(429), failed_open (Redis slow or down: allowed without a decision).",
    ["limit", "outcome"],
)
API_KEY_REFUSALS = Counter(
    "rankwell_api_key_refusals",
    "Requests refused for their API key: invalid (unknown or revoked, 401) or address_limited "
    "(the client address sent too many invalid keys, 429 without looking the key up).",
    ["reason"],
)
TASK_SECONDS = Histogram(
    "rankwell_celery_task_seconds",
    "Celery task run time, by task and final state.",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)
TASK_RETRIES = Counter("rankwell_celery_task_retries", "Celery task retries.", ["task"])
TASK_FAILURES = Counter("rankwell_celery_task_failures", "Celery tasks that failed.", ["task"])

MAX_CUSTOMER_LABELS = int(os.environ.get("METRICS_MAX_CUSTOMERS", "500"))
_customer_labels: set[str] = set()
_customer_labels_lock = threading.Lock()


def customer_label(customer_id: int | None) -> str:
    """The `customer` label: the id, for a bounded number of customers per process."""
    if customer_id is None:
        return "unknown"
    label = str(customer_id)
    if label in _customer_labels:
        return label
    with _customer_labels_lock:
        if len(_customer_labels) >= MAX_CUSTOMER_LABELS:
            return "other"
        _customer_labels.add(label)
    return label


def model_version(model: str | None) -> int:
    """`lambdamart@3` -> 3; no model (the weighted blend) -> 0."""
    if not model or "@" not in model:
        return 0
    try:
        return int(model.rsplit("@", 1)[1])
    except ValueError:
        return 0


# Labelled children of the rank path's metrics, each looked up once per process: `labels()`
# costs more than the observation it precedes. Bounded as the labels are (see above).
_children: dict[tuple[object, ...], Any] = {}


@settings_cached
def _lean_path() -> bool:
    return bool(settings.API_LEAN_PATH)


def labelled(metric: MetricWrapperBase, *labels: str) -> Any:
    """`metric.labels(*labels)`, from this process's cache once looked up (API_LEAN_PATH)."""
    if not _lean_path():
        return metric.labels(*labels)
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


# The rank path writes some thirty samples a request. In multiprocess mode the stock write
# (prometheus_client's MmapedValue.inc) takes the process's metrics lock, asks the kernel for the
# pid to notice a fork (a system call, about 0.6 us here), finds the sample's place in the file
# by its key and packs value and timestamp there. `inc` and `observe` write the same bytes to the
# same place under the same lock, at once, but find the place once per child (its "slot": the
# file's mapping and the sample's offset) and learn of a fork from os.register_at_fork instead of
# the pid. Outside multiprocess mode they call the value's own `inc`. Either way the stock
# methods' checks are skipped: a child from `labels()` (or an unlabelled metric) is always
# observable and the rank path's amounts are never negative. tests/test_metric_writes.py compares
# every sample with the stock methods', in both modes, across growth, fork and threads.

_SLOT = "_rankwell_slot"  # the attribute holding a child's slot, None outside multiprocess mode
# A sample in a multiprocess file: value, then timestamp (0.0 for a counter's or histogram's).
# Packed, then copied in, as prometheus_client does: `pack_into` zeroes the bytes before it
# writes them, and a scrape reading in between would see 0.
_sample = struct.Struct("dd").pack
_slotted: weakref.WeakSet[Any] = weakref.WeakSet()  # children holding a slot, forgotten at fork
_fork_hook_lock = threading.Lock()
_fork_hook_registered = False


def _values_lock(value: Any) -> threading.Lock | None:
    """The lock every MmapedValue of the value's class writes under (a closure variable of the
    class's methods), or None when prometheus_client's values are not made that way."""
    method = getattr(type(value), "inc", None)
    code, cells = getattr(method, "__code__", None), getattr(method, "__closure__", None)
    if code is None or cells is None or "lock" not in code.co_freevars:
        return None
    lock = cells[code.co_freevars.index("lock")].cell_contents
    return lock if isinstance(lock, type(_fork_hook_lock)) else None


def _forget_slots() -> None:
    """In a forked child the slots point into the parent's files: each child finds its own
    slot again, after prometheus_client's pid check has moved the values to the child's files."""
    for metric in list(_slotted):
        metric.__dict__.pop(_SLOT, None)
    _slotted.clear()


def _find_slot(metric: Any, values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """`metric`'s slot: (lock, file, mapping, (offset of each of `values`)), kept on the metric;
    None (kept too) when its values are not multiprocess ones, so the stock write is used."""
    global _fork_hook_registered
    first = values[0]
    lock = _values_lock(first) if getattr(type(first), "_multiprocess", False) else None
    if lock is None:
        setattr(metric, _SLOT, None)
        return None
    if not _fork_hook_registered:  # then never taken again: a fork cannot catch it held
        with _fork_hook_lock:
            if not _fork_hook_registered:
                os.register_at_fork(after_in_child=_forget_slots)
                _fork_hook_registered = True
    first.get()  # the stock pid check: after a fork, the values move to this process's files
    with lock:
        file = first._file
        positions = tuple(file._positions.get(value._key) for value in values)
        if file._m is None or None in positions or any(v._file is not file for v in values):
            return None  # a closed or unknown file: the stock write, and a new look next time
        slot = (lock, file, file._m, positions)
        setattr(metric, _SLOT, slot)
        _slotted.add(metric)
    return slot


def inc(counter: Any, amount: float = 1) -> None:
    """`counter.inc(amount)` of a Counter's child or unlabelled Counter (amount >= 0)."""
    value = counter._value
    try:
        slot = counter._rankwell_slot
    except AttributeError:
        slot = _find_slot(counter, (value,))
    if slot is not None:
        lock, file, mapping, (at,) = slot
        lock.acquire()
        try:
            # The mapping is replaced when the file grows and closed when a fork's reset moves
            # the values to new files: then the slot is stale, the stock write goes, and the
            # slot is found again.
            if file._m is mapping:
                total = value._value = value._value + amount
                mapping[at : at + 16] = _sample(total, 0.0)
                return
        finally:
            lock.release()
        value.inc(amount)
        _find_slot(counter, (value,))
        return
    value.inc(amount)


def observe(histogram: Any, amount: float) -> None:
    """`histogram.observe(amount)` of a Histogram's child or unlabelled Histogram."""
    bounds = histogram._upper_bounds
    # As the stock walk: the first bound at or above the amount; NaN lands in no bucket.
    bucket = bisect_left(bounds, amount) if amount <= bounds[-1] else -1
    try:
        slot = histogram._rankwell_slot
    except AttributeError:
        slot = _find_slot(histogram, (histogram._sum, *histogram._buckets))
    if slot is not None:
        lock, file, mapping, at = slot
        lock.acquire()
        try:
            if file._m is mapping:  # as in `inc`
                total = histogram._sum
                sum_ = total._value = total._value + amount
                mapping[at[0] : at[0] + 16] = _sample(sum_, 0.0)
                if bucket >= 0:  # the bucket's offset follows the sum's in the slot
                    count = histogram._buckets[bucket]
                    n = count._value = count._value + 1
                    bucket_at = at[bucket + 1]
                    mapping[bucket_at : bucket_at + 16] = _sample(n, 0.0)
                return
        finally:
            lock.release()
    histogram._sum.inc(amount)
    if bucket >= 0:
        histogram._buckets[bucket].inc(1)
    if slot is not None:  # stale: the next write uses the file's new mapping
        _find_slot(histogram, (histogram._sum, *histogram._buckets))


def observe_stage(surface: str, stage: str, seconds: float) -> None:
    """Record one engine stage's duration; `stage` is one of STAGES."""
    observe(labelled(RANK_STAGE_SECONDS, surface, stage), seconds)


def observe_rank(
    *,
    customer_id: int | None,
    surface: str,
    seconds: float,
    candidates: int,
    degraded_reason: str | None,
    missing: dict[str, int] | None = None,
    model: str | None = None,
    candidate_served: bool = False,
) -> None:
    """Record one answered rank request. `model` served it (None: the config's blend); it is
    the surface's active model unless an experiment's candidate served (`candidate_served`)."""
    customer = customer_label(customer_id)
    observe(labelled(RANK_SECONDS, customer, surface), seconds)
    observe(labelled(RANK_CANDIDATES, surface), candidates)
    if degraded_reason is not None:
        inc(labelled(RANK_DEGRADED, customer, surface, degraded_reason))
    else:
        inc(labelled(RANK_ITEMS, customer, surface), candidates)
    for kind, count in (missing or {}).items():
        missing_signals = labelled(RANK_MISSING_SIGNALS, customer, surface, kind)
        if count:  # adding 0 writes the value the child's sample already holds
            inc(missing_signals, count)
    if degraded_reason is None and customer_id is not None and not candidate_served:
        labelled(ACTIVE_MODEL_VERSION, customer, surface).set(model_version(model))


def observe_exposure(*, customer_id: int, surface: str, experiment_id: int, variant: str) -> None:
    """Count one shopper's request answered by an experiment's variant."""
    inc(
        labelled(
            EXPERIMENT_EXPOSURES, customer_label(customer_id), surface, str(experiment_id), variant
        )
    )


def observe_events(*, customer_id: int, accepted: int, duplicates: int, rejected: int) -> None:
    customer = customer_label(customer_id)
    for outcome, count in (("accepted", accepted), ("duplicate", duplicates)):
        EVENTS.labels(customer, outcome).inc(count)
    if rejected:
        EVENTS.labels(customer, "rejected").inc(rejected)


def events_in_body(body: bytes) -> int:
    """How many events a refused batch held, read leniently: 0 when the body is no batch."""
    try:
        events = orjson.loads(body).get("events")
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return len(events) if isinstance(events, list) else 0


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry() -> CollectorRegistry:
    """What one scrape reads: every process's samples in multiprocess mode, else this one's."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


# Collectors that read an app's tables at scrape time (so their values are right in any process),
# registered by the app's AppConfig.ready(): ranking's signal age and experiments.
_SCRAPE_COLLECTORS: list[Callable[[], Collector]] = []


def register_scrape_collector(factory: Callable[[], Collector]) -> None:
    """Add a collector made afresh for each scrape of /metrics (once per process)."""
    if factory not in _SCRAPE_COLLECTORS:
        _SCRAPE_COLLECTORS.append(factory)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`/metrics`: the Prometheus text exposition of every metric above, plus those read from
    the database by the registered scrape collectors (signal age, experiments)."""
    from_database = CollectorRegistry()
    for factory in _SCRAPE_COLLECTORS:
        from_database.register(factory())
    body = generate_latest(scrape_registry()) + generate_latest(from_database)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def start_metrics_server(port: int) -> None:
    """Serve /metrics from a Celery worker or beat process on `port` (its children included)."""
    from prometheus_client import start_http_server

    start_http_server(port, registry=scrape_registry())
