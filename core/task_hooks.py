"""Celery's hook signals, wired in config/celery.py: the request id travels into the tasks a
request enqueues, every task's run is timed and counted, and logs stay Django's JSON lines.

These are Celery's own signals (its documented extension points), not Django signals.
"""

from __future__ import annotations

import os
import time
from typing import Any

from core import metrics
from core.logs import customer_var, request_id_var

REQUEST_ID_HEADER = "rankwell_request_id"
CUSTOMER_HEADER = "rankwell_customer_id"

_started: dict[str, tuple[float, Any, Any]] = {}


def add_request_context_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """before_task_publish: stamp the enqueuing request's id and customer on the message."""
    if headers is None:
        return
    request_id = request_id_var.get()
    if request_id is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)
    customer_id = customer_var.get()
    if customer_id is not None:
        headers.setdefault(CUSTOMER_HEADER, customer_id)


def task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """task_prerun: bind the request id and customer the message carries, start the clock.

    A task run eagerly (the embedded default) runs inside the request and keeps its context."""
    request = getattr(task, "request", None)
    request_id = getattr(request, REQUEST_ID_HEADER, None)
    customer_id = getattr(request, CUSTOMER_HEADER, None)
    request_token = request_id_var.set(request_id) if request_id else None
    customer_token = customer_var.set(customer_id) if customer_id is not None else None
    if request_id:
        import sentry_sdk

        sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)
    if task_id:
        _started[task_id] = (time.perf_counter(), request_token, customer_token)


def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    """task_postrun: record the run time by final state and restore the context."""
    started = _started.pop(task_id, None) if task_id else None
    if started is None:
        return
    began, request_token, customer_token = started
    name = getattr(task, "name", "unknown")
    metrics.TASK_SECONDS.labels(name, (state or "UNKNOWN").lower()).observe(
        time.perf_counter() - began
    )
    if customer_token is not None:
        customer_var.reset(customer_token)
    if request_token is not None:
        request_id_var.reset(request_token)


def task_retried(sender: Any = None, **_: Any) -> None:
    metrics.TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


def task_failed(sender: Any = None, **_: Any) -> None:
    metrics.TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


def keep_django_logging(**_: Any) -> None:
    """setup_logging: with a receiver connected Celery leaves logging alone, so workers log the
    JSON lines of Django's LOGGING setting like the API does."""


def serve_metrics(**_: Any) -> None:
    """worker_init / beat_init: serve every child's metrics on METRICS_PORT (multiprocess mode)."""
    port = os.environ.get("METRICS_PORT")
    if port and metrics.multiprocess_dir():
        metrics.start_metrics_server(int(port))
