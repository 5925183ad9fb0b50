"""Writes for ranking: signal refreshes and ranking configs."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from customers import runtime_sync
from customers.models import Customer
from merchandising.attribute_sets import attribute_sets_sync
from ranking.configs import weights_clean
from ranking.learning.registry import usable_scorer
from ranking.models import Experiment, ModelStatus, RankingConfig, SignalVersion
from ranking.signals.refresh import RefreshResult, refresh_signals
from ranking.signals.schema import SCHEMA_HASH
from ranking.signals.store import signal_store


def signals_refresh(*, customer_id: int) -> RefreshResult:
    """Recompute and publish a customer's signals, and record the version; recompute the rules'
    attribute sets too (repairing any write an outage made them miss)."""
    # The sets first: after the store lost its data, the version's readers find them in place.
    attribute_sets_sync(customer_id)
    result = refresh_signals(customer_id=customer_id, store=signal_store())
    first = not SignalVersion.objects.filter(customer_id=customer_id).exists()
    SignalVersion.objects.create(
        customer_id=customer_id,
        version=result.version,
        schema_hash=SCHEMA_HASH,
        items=result.items,
        query_pairs=result.query_pairs,
        event_groups=result.event_groups,
        seconds=result.seconds,
    )
    if first:  # serving processes learn that this customer's store must hold a version
        runtime_sync.bump_generation(customer_id)
    return result


def signals_lost_customers() -> list[int]:
    """Active customers that had a signal version published but whose signal store holds none:
    it lost its data (Redis restarted empty). Their rank answers are degraded until a refresh
    republishes. Raises SignalStoreUnavailable when the store does not answer."""
    published = list(
        Customer.objects.active()
        .filter(Exists(SignalVersion.objects.filter(customer_id=OuterRef("pk"))))
        .values_list("id", flat=True)
    )
    current = signal_store().current_versions(published)
    return [customer_id for customer_id in published if current[customer_id] is None]


@transaction.atomic
def ranking_config_save(
    *,
    customer: Customer,
    surface: str,
    name: str,
    weights: dict[str, Any],
    personalization_weight: float,
    exploration_percent: float = 0.0,
    user: Any = None,
) -> RankingConfig:
    """Create or replace the config of a surface; every API process uses it within seconds."""
    config = RankingConfig.objects.filter(customer=customer, surface=surface).first()
    config = config or RankingConfig(customer=customer, surface=surface)
    config.name = name
    config.weights = weights_clean(weights)
    config.personalization_weight = personalization_weight
    config.exploration_percent = exploration_percent
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


def experiment_errors(experiment: Experiment) -> dict[str, list[str]]:
    """Why the experiment cannot run as set, by field (empty when it can)."""
    errors: dict[str, list[str]] = {}
    model = experiment.treatment_model
    if model.customer_id != experiment.customer_id or model.surface != experiment.surface:
        errors["treatment_model"] = ["Choose a model of this customer and surface."]
    elif model.status == ModelStatus.ACTIVE:
        errors["treatment_model"] = ["This model already serves everyone: B would equal A."]
    elif usable_scorer(model) is None:
        errors["treatment_model"] = [
            "This model cannot serve: another feature schema, or an artifact that fails its "
            "checksum."
        ]
    running = Experiment.objects.filter(
        customer_id=experiment.customer_id, surface=experiment.surface, enabled=True
    ).exclude(pk=experiment.pk)
    if experiment.enabled and running.exists():
        errors["enabled"] = [f"An experiment already runs on {experiment.surface}: stop it first."]
    return errors


@transaction.atomic
def experiment_save(*, experiment: Experiment, user: Any = None) -> Experiment:
    """Create or change an experiment after checking that B can serve and differs from A;
    every API process runs it (or stops it) within seconds."""
    errors = experiment_errors(experiment)
    if errors:
        raise ValidationError(errors)
    experiment.updated_at = timezone.now()
    experiment.updated_by = user if user is not None and user.is_authenticated else None
    experiment.full_clean(exclude=["treatment_model"])
    experiment.save()
    runtime_sync.bump_generation(experiment.customer_id)
    return experiment


@transaction.atomic
def experiment_delete(*, experiment: Experiment) -> None:
    customer_id = experiment.customer_id
    experiment.delete()
    runtime_sync.bump_generation(customer_id)
