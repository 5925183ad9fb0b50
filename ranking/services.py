"""Writes for ranking: signal refreshes, ranking configs and experiments."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from customers import runtime_sync
from customers.models import Customer
from merchandising.attribute_sets import attribute_sets_sync
from ranking.configs import weights_clean
from ranking.experiment_stats import Lift
from ranking.experiments import check_summary, experiment_result, guardrail_breach, guardrail_words
from ranking.interleaving import interleaving_result, interleaving_summary
from ranking.learning import registry
from ranking.learning.registry import usable_scorer
from ranking.models import (
    Experiment,
    ExperimentEnd,
    ExperimentMethod,
    ModelStatus,
    RankingConfig,
    RankingModel,
    SignalVersion,
)
from ranking.signals.refresh import RefreshResult, refresh_signals
from ranking.signals.schema import SCHEMA_HASH
from ranking.signals.store import signal_store


def signals_refresh(*, customer_id: int) -> RefreshResult:
    """Recompute and publish a customer's signals, and record the version; recompute the rules'
    attribute sets too (repairing any write an outage made them miss)."""
    # The sets first: after the store lost its data, the version's readers find them in place.
    attribute_sets_sync(customer_id)
    result = refresh_signals(customer_id=customer_id, store=signal_store())
    first = not SignalVersion.objects.for_customer(customer_id).exists()
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
    config = RankingConfig.objects.for_customer(customer.pk).filter(surface=surface).first()
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


# Experiments that ended for good: enabling them again is refused (start a new one).
FINAL_ENDS = (ExperimentEnd.GUARDRAIL, ExperimentEnd.PROMOTED)
GUARDRAIL_USER = "guardrail"

logger = logging.getLogger(__name__)


class PromotionRefused(Exception):
    """The experiment's B cannot be promoted in its state (the model's guards are
    registry.ActivationRefused)."""


def experiment_errors(experiment: Experiment) -> dict[str, list[str]]:
    """Why the experiment cannot run as set, by field (empty when it can)."""
    errors: dict[str, list[str]] = {}
    model = experiment.treatment_model
    if model.customer_id != experiment.customer_id or model.surface != experiment.surface:
        errors["treatment_model"] = ["Choose a model of this customer and surface."]
    elif not experiment.enabled:
        pass  # a stopped experiment serves nothing: its B may since have been promoted
    elif model.status == ModelStatus.ACTIVE:
        errors["treatment_model"] = ["This model already serves everyone: B would equal A."]
    elif usable_scorer(model) is None:
        errors["treatment_model"] = [
            "This model cannot serve: another feature schema, or an artifact that fails its "
            "checksum."
        ]
    starts, ends = experiment.starts_at, experiment.ends_at
    if starts is not None and ends is not None and ends <= starts:
        errors["ends_at"] = ["End it after it starts."]
    elif experiment.enabled and ends is not None and ends <= timezone.now():
        errors["ends_at"] = ["This end has passed: move it later for the experiment to run."]
    stored = Experiment.objects.filter(pk=experiment.pk).first() if experiment.pk else None
    if experiment.enabled and stored is not None and stored.end_reason in FINAL_ENDS:
        errors["enabled"] = [
            f"This experiment ended for good ({stored.end_summary}): start a new one to test again."
        ]
        return errors
    running = Experiment.objects.filter(
        customer_id=experiment.customer_id, surface=experiment.surface, enabled=True
    ).exclude(pk=experiment.pk)
    if experiment.enabled and running.exists():
        errors["enabled"] = [f"An experiment already runs on {experiment.surface}: stop it first."]
    return errors


def _username(user: Any) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


def _end(experiment: Experiment, *, reason: str, by: str, summary: str) -> None:
    experiment.enabled = False
    experiment.ended_at = timezone.now()
    experiment.ended_by = by
    experiment.end_reason = reason
    experiment.end_summary = summary
    experiment.updated_at = experiment.ended_at


END_FIELDS = ["enabled", "ended_at", "ended_by", "end_reason", "end_summary", "updated_at"]


@transaction.atomic
def experiment_save(*, experiment: Experiment, user: Any = None) -> Experiment:
    """Create or change an experiment after checking that B can serve and differs from A;
    every API process runs it (or stops it) within seconds. Unticking *enabled* records a stop
    by hand; enabling it again clears that record."""
    errors = experiment_errors(experiment)
    if errors:
        raise ValidationError(errors)
    was_running = (
        Experiment.objects.filter(pk=experiment.pk).values_list("enabled", flat=True).first()
        if experiment.pk
        else None
    )
    if was_running and not experiment.enabled:
        who = _username(user)
        _end(
            experiment,
            reason=ExperimentEnd.STOPPED,
            by=who,
            summary=f"stopped by {who}" if who else "stopped by hand",
        )
    elif experiment.enabled and experiment.end_reason:
        experiment.ended_at, experiment.ended_by = None, ""
        experiment.end_reason, experiment.end_summary = "", ""
    experiment.updated_at = timezone.now()
    experiment.updated_by = user if user is not None and user.is_authenticated else None
    experiment.full_clean(exclude=["treatment_model"])
    experiment.save()
    runtime_sync.bump_generation(experiment.customer_id)
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, reason: str, by: str, summary: str) -> bool:
    """Stop a running experiment and record when, why and by whom: every API process sends
    everyone to A within seconds. False (and nothing changed) when it was not running."""
    locked = Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
    if locked is None or not locked.enabled:
        return False
    _end(locked, reason=reason, by=by, summary=summary)
    locked.save(update_fields=END_FIELDS)
    customer_id = locked.customer_id
    transaction.on_commit(lambda: runtime_sync.bump_generation(customer_id))
    return True


def experiment_end_if_due(*, experiment: Experiment, now: datetime | None = None) -> bool:
    """Record the end of a running experiment whose end time has passed (it served nobody B since
    then already: the runtime checks the window on every request). True when it ended now."""
    now = now or timezone.now()
    if not experiment.enabled or experiment.ends_at is None or experiment.ends_at > now:
        return False
    return experiment_stop(
        experiment=experiment,
        reason=ExperimentEnd.SCHEDULED,
        by="schedule",
        summary=f"ended as scheduled, {experiment.ends_at:%Y-%m-%d %H:%M} UTC",
    )


def experiment_check(*, experiment: Experiment) -> Lift | None:
    """The periodic check: read the experiment's result, keep its summary (Experiment.last_check)
    and, when it runs and the guardrail finds B significantly worse on revenue per search, stop
    it. Returns the lift that stopped it, None when it runs on. An interleaving experiment is
    read but never stopped: the guardrail judges revenue per search of A against B, which
    interleaving does not measure (docs/experiments.md, section 13)."""
    if experiment.method == ExperimentMethod.INTERLEAVE:
        reading = interleaving_result(experiment=experiment)
        Experiment.objects.filter(pk=experiment.pk).update(
            checked_at=timezone.now(), last_check=interleaving_summary(reading)
        )
        return None
    result = experiment_result(experiment=experiment)  # a long read: outside any transaction
    breach = guardrail_breach(result) if experiment.enabled else None
    with transaction.atomic():
        Experiment.objects.filter(pk=experiment.pk).update(
            checked_at=timezone.now(), last_check=check_summary(result)
        )
        if breach is None:
            return None
        stopped = experiment_stop(
            experiment=experiment,
            reason=ExperimentEnd.GUARDRAIL,
            by=GUARDRAIL_USER,
            summary=guardrail_words(breach),
        )
    if not stopped:
        return None
    logger.warning(
        "experiment %s %s",
        experiment.pk,
        guardrail_words(breach),
        extra={"customer_id": experiment.customer_id, "experiment_id": experiment.pk},
    )
    return breach


@transaction.atomic
def experiment_promote(
    *, experiment: Experiment, user: str, override_reason: str = ""
) -> RankingModel:
    """End the experiment and serve B's model to everyone through the registry's guarded
    activation. Raises registry.ActivationRefused when a guard refuses, PromotionRefused when
    the experiment cannot be promoted; either way nothing changes."""
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if locked.end_reason in FINAL_ENDS:
        raise PromotionRefused(f"This experiment ended for good: {locked.end_summary}.")
    model = registry.model_activate(
        model=locked.treatment_model, user=user, override_reason=override_reason
    )
    summary = f"B promoted by {user}: {model.label} serves everyone on {locked.surface}"
    if locked.enabled:
        _end(locked, reason=ExperimentEnd.PROMOTED, by=user, summary=summary)
    else:  # stopped by hand earlier: the end becomes the promotion, at its own time
        locked.end_reason, locked.ended_by, locked.end_summary = (
            ExperimentEnd.PROMOTED,
            user,
            summary,
        )
        locked.ended_at = locked.ended_at or timezone.now()
    locked.save(update_fields=END_FIELDS)
    customer_id = locked.customer_id
    transaction.on_commit(lambda: runtime_sync.bump_generation(customer_id))
    return model


@transaction.atomic
def experiment_delete(*, experiment: Experiment) -> None:
    customer_id = experiment.customer_id
    experiment.delete()
    runtime_sync.bump_generation(customer_id)
