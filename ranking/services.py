"""Writes for ranking: signal refreshes and ranking configs."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from customers import runtime_sync
from customers.models import Customer
from ranking.configs import weights_clean
from ranking.models import RankingConfig, SignalVersion
from ranking.signals.refresh import RefreshResult, refresh_signals
from ranking.signals.schema import SCHEMA_HASH
from ranking.signals.store import signal_store


def signals_refresh(*, customer_id: int) -> RefreshResult:
    """Recompute and publish a customer's signals, and record the version."""
    result = refresh_signals(customer_id=customer_id, store=signal_store())
    SignalVersion.objects.create(
        customer_id=customer_id,
        version=result.version,
        schema_hash=SCHEMA_HASH,
        items=result.items,
        query_pairs=result.query_pairs,
        event_groups=result.event_groups,
        seconds=result.seconds,
    )
    return result


@transaction.atomic
def ranking_config_save(
    *,
    customer: Customer,
    surface: str,
    name: str,
    weights: dict[str, Any],
    personalization_weight: float,
    user: Any = None,
) -> RankingConfig:
    """Create or replace the config of a surface; every API process uses it within seconds."""
    config = RankingConfig.objects.filter(customer=customer, surface=surface).first()
    config = config or RankingConfig(customer=customer, surface=surface)
    config.name = name
    config.weights = weights_clean(weights)
    config.personalization_weight = personalization_weight
    config.updated_by = user if user is not None and user.is_authenticated else None
    config.full_clean()
    config.save()
    runtime_sync.bump_generation(customer.pk)
    return config


@transaction.atomic
def ranking_config_delete(*, config: RankingConfig) -> None:
    customer_id = config.customer_id
    config.delete()
    runtime_sync.bump_generation(customer_id)
