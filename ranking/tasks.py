"""Celery tasks of ranking: thin doors into ranking.services."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from customers.selectors import customer_is_active, unscoped_active_customer_ids
from ranking import selectors, services
from ranking.experiments import ATTRIBUTION_WINDOW
from ranking.learning import rank_log, registry, training
from ranking.signals.store import SignalStoreUnavailable

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(SignalStoreUnavailable, OperationalError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
    acks_late=True,
    soft_time_limit=20 * 60,
    time_limit=25 * 60,
)
def refresh_signals(customer_id: int) -> dict[str, float]:
    """Recompute one customer's signals. Idempotent: a rerun publishes an equivalent version."""
    if not customer_is_active(customer_id=customer_id):
        logger.info("skipping signal refresh of inactive or deleted customer %s", customer_id)
        return {}
    result = services.signals_refresh(customer_id=customer_id)
    logger.info(
        "signals refreshed",
        extra={"customer_id": customer_id, "version": result.version, "seconds": result.seconds},
    )
    return {"version": result.version, "items": result.items, "seconds": result.seconds}


@shared_task(soft_time_limit=50, time_limit=60)
def schedule_signal_refresh() -> int:
    """Beat's entry point: one refresh task per active customer."""
    customer_ids = unscoped_active_customer_ids()
    for customer_id in customer_ids:
        refresh_signals.delay(customer_id)
    return len(customer_ids)


class RankLogFlushTask(Task):
    """The flush task's messages carry shopper ids and queries, and a worker logs a message's
    `argsrepr` when it receives, retries or fails it, or the arguments themselves when there is
    none, as in the messages of Celery's own retries. Every message gets a summary instead."""

    def apply_async(self, args: Any = None, kwargs: Any = None, *more: Any, **options: Any) -> Any:
        options.setdefault("argsrepr", f"[<{len(args[0]) if args else 0} rank-log entries>]")
        options.setdefault("kwargsrepr", "{<withheld>}" if kwargs else "{}")
        return super().apply_async(args, kwargs, *more, **options)


# Both flush tasks: retried while the database is away, taken back by the broker from a killed
# worker (acks_late), and kept short (a batch is a second's entries).
_FLUSH_TASK_OPTIONS: dict[str, Any] = {
    "base": RankLogFlushTask,
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "max_retries": 5,
    "acks_late": True,
    "soft_time_limit": 50,
    "time_limit": 60,
}


@shared_task(**_FLUSH_TASK_OPTIONS)
def flush_rank_log(entries: list[dict[str, Any]]) -> int:
    """Write one batch of rank-log entries. Idempotent: a request id already logged is skipped.
    (Sent by API processes from before `flush_rank_log_split`.)"""
    return _write_payloads(entries)


@shared_task(**_FLUSH_TASK_OPTIONS)
def flush_rank_log_split(entries: list[dict[str, Any]]) -> int:
    """Write one batch of rank-log entries, some of them split when recorded (`rank_log._send`).
    Idempotent, as `flush_rank_log`."""
    return _write_payloads(entries)


def _write_payloads(entries: list[dict[str, Any]]) -> int:
    return rank_log.rank_log_write([rank_log.RankLogEntry.from_payload(e) for e in entries])


@shared_task(soft_time_limit=25 * 60, time_limit=30 * 60)
def purge_rank_log() -> int:
    """Delete rank-log rows past RANK_LOG_RETENTION_DAYS."""
    return rank_log.rank_log_purge()


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    max_retries=3,
    soft_time_limit=50 * 60,
    time_limit=55 * 60,
)
def train_model(customer_id: int, surface: str, algorithm: str) -> int | None:
    """Train a candidate model for one customer's surface; None when there is too little data."""
    if not customer_is_active(customer_id=customer_id):
        return None
    try:
        model = training.model_train(
            customer_id=customer_id,
            surface=surface,
            params=training.TrainingParams(algorithm=algorithm),
            created_by="beat",
        )
    except training.NotEnoughData as exc:
        logger.info("not training %s/%s: %s", customer_id, surface, exc)
        return None
    logger.info("trained candidate %s", model, extra={"customer_id": customer_id})
    registry.model_decide(model=model)
    return model.pk


@shared_task(soft_time_limit=50, time_limit=60)
def schedule_first_refreshes() -> int:
    """Beat's entry point every few seconds: a customer whose first events arrived and who has
    no signal version yet is refreshed now, not at the next scheduled refresh; so is one whose
    signal store lost its data (its answers are degraded until then)."""
    customer_ids = selectors.unscoped_customers_without_signals()
    try:
        lost = services.signals_lost_customers()
    except SignalStoreUnavailable:
        lost = []  # the store is away: the refresh would fail too; next poll
    if lost:
        logger.error("the signal store lost the signals of %d customers: republishing", len(lost))
    customer_ids += lost
    for customer_id in customer_ids:
        refresh_signals.delay(customer_id)
    return len(customer_ids)


@shared_task(soft_time_limit=50, time_limit=60)
def schedule_model_training() -> int:
    """Beat's nightly entry point: one training task per customer surface with enough logged
    requests in the training window."""
    since = timezone.now() - timedelta(days=settings.TRAINING_WINDOW_DAYS)
    scheduled = 0
    for customer_id in unscoped_active_customer_ids():
        counts = selectors.requests_per_surface(customer_id=customer_id, since=since)
        for surface, requests in counts.items():
            if requests >= settings.TRAINING_MIN_REQUESTS:
                train_model.delay(customer_id, surface, settings.TRAINING_ALGORITHM)
                scheduled += 1
    return scheduled


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    max_retries=3,
    soft_time_limit=10 * 60,
    time_limit=12 * 60,
)
def check_experiment(experiment_id: int) -> str:
    """Read one experiment, keep the reading, and stop it if the guardrail says B is worse.
    Idempotent: a rerun reads again; a stopped experiment is not stopped twice."""
    experiment = selectors.unscoped_experiment(experiment_id=experiment_id)
    if experiment is None or not experiment.customer.is_active:
        return "skipped"
    if services.experiment_end_if_due(experiment=experiment):
        experiment.refresh_from_db()
    breach = services.experiment_check(experiment=experiment)
    return "stopped by the guardrail" if breach is not None else "checked"


@shared_task(soft_time_limit=50, time_limit=60)
def schedule_experiment_checks() -> int:
    """Beat's entry point (EXPERIMENT_CHECK_INTERVAL_SECONDS): one check per running
    experiment, and per experiment that stopped within the attribution window (late purchases
    still count for it, so its reading still moves)."""
    recently = timezone.now() - ATTRIBUTION_WINDOW
    experiment_ids = selectors.unscoped_experiments_to_check(ended_since=recently)
    for experiment_id in experiment_ids:
        check_experiment.delay(experiment_id)
    return len(experiment_ids)
