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
import threading
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


# The rank path writes some thirty samples a request, each a locked write to this process's
# metrics file in multiprocess mode. `inc` and `observe` below write the same samples as the
# stock methods with less Python around that write: a child from `labels()` (or an unlabelled
# metric) is always observable and the rank path's amounts are never negative, so the stock
# methods' checks are skipped, and a histogram finds its bucket by bisection, not by a walk.


def inc(counter: Any, amount: float = 1) -> None:
    """`counter.inc(amount)` of a Counter's child or unlabelled Counter (amount >= 0)."""
    counter._value.inc(amount)


def observe(histogram: Any, amount: float) -> None:
    """`histogram.observe(amount)` of a Histogram's child or unlabelled Histogram."""
    histogram._sum.inc(amount)
    bounds = histogram._upper_bounds
    if amount <= bounds[-1]:  # as the stock walk, NaN lands in no bucket
        histogram._buckets[bisect_left(bounds, amount)].inc(1)


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
    labelled(
        EXPERIMENT_EXPOSURES, customer_label(customer_id), surface, str(experiment_id), variant
    ).inc()


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
