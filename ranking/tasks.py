"""Celery tasks of ranking: thin doors into ranking.services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from customers.models import Customer
from ranking import services
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
    if not Customer.objects.active().filter(pk=customer_id).exists():
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
    customer_ids = list(Customer.objects.active().values_list("id", flat=True))
    for customer_id in customer_ids:
        refresh_signals.delay(customer_id)
    return len(customer_ids)
