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
from merchandising import services as merchandising_services
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
    ExperimentKind,
    ExperimentMethod,
    ModelStatus,
    RankingConfig,
    RankingModel,
    SignalVersion,
)
from ranking.signals.backend import signal_store
from ranking.signals.refresh import RefreshResult, refresh_signals
from ranking.signals.schema import SCHEMA_HASH


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
    live: bool = True,
    config: RankingConfig | None = None,
) -> RankingConfig:
    """Create or replace the live config of a surface; every API process uses it within
    seconds. With `live` False, create (or change `config`, one that is not live) a config that
    serves nobody until an experiment tries it on B or makes it live."""
    if live:
        serving = RankingConfig.objects.for_customer(customer.pk).live().filter(surface=surface)
        config = serving.first() or RankingConfig(customer=customer, surface=surface)
    elif config is None or config.pk is None:
        config = RankingConfig(customer=customer, surface=surface, live=False)
    elif config.live or config.customer_id != customer.pk:
        raise ValidationError({"live": "This config is live: change it as the live one."})
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
def ranking_config_make_live(*, config: RankingConfig, user: Any = None) -> RankingConfig:
    """Serve this config on its surface; the one it replaces stays, not live (to try again or
    to make live again)."""
    locked = RankingConfig.objects.select_for_update().get(pk=config.pk)
    if locked.live:
        return locked
    RankingConfig.objects.for_customer(locked.customer_id).live().filter(
        surface=locked.surface
    ).update(live=False)
    locked.live = True
    locked.updated_at = timezone.now()
    locked.updated_by = (
        user if user is not None and getattr(user, "is_authenticated", False) else None
    )
    locked.save(update_fields=["live", "updated_at", "updated_by"])
    runtime_sync.bump_generation(locked.customer_id)
    return locked


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
    errors = _treatment_errors(experiment)
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
    if experiment.enabled:
        running = Experiment.objects.for_customer(experiment.customer_id).filter(
            surface=experiment.surface, enabled=True
        )
        errors.update(_layer_errors(experiment, list(running.exclude(pk=experiment.pk))))
    return errors


def layer_slot(taken: list[tuple[int, int]], percent: int, keep: int | None = None) -> int | None:
    """The first percent of a free slice of `percent` in a layer whose running experiments
    hold `taken` ((first percent, share) each); `keep` stays if still free. None: no room."""
    held = sorted(taken)
    starts = ([] if keep is None else [keep]) + [0] + [first + share for first, share in held]
    for start in starts:
        end = start + percent
        if end <= 100 and all(end <= first or first + share <= start for first, share in held):
            return start
    return None


def _layer_errors(experiment: Experiment, running: list[Experiment]) -> dict[str, list[str]]:
    """Why the experiment cannot run beside the surface's running ones (docs/experiments.md
    "Layers"): its layer has no free slice of its share, or another layer's experiment changes
    the scoring too (a shopper in both would need two scorers). Sets `layer_slot` when it can."""
    surface, layer = experiment.surface, experiment.layer
    same = [other for other in running if other.layer == layer]
    if experiment.changes_scorer:
        for other in running:
            if other.layer != layer and other.changes_scorer:
                return {
                    "layer": [
                        f"'{other.name}' in layer '{other.layer}' also changes how {surface} "
                        f"scores items, and a shopper in both would need two scorers: put this "
                        f"experiment in layer '{other.layer}' so they split its shoppers, or "
                        f"stop the other first."
                    ]
                }
    taken = [(other.layer_slot or 0, other.traffic_percent) for other in same]
    slot = layer_slot(taken, experiment.traffic_percent, keep=experiment.layer_slot)
    if slot is None:
        free = 100 - sum(share for _, share in taken)
        holders = ", ".join(f"'{other.name}' {other.traffic_percent}%" for other in same)
        return {
            "traffic_percent": [
                f"Layer '{layer}' of {surface} has {free}% of its shoppers free ({holders} "
                f"hold the rest), not {experiment.traffic_percent}% in one piece: take less, "
                f"put it in another layer, or stop one of them first."
            ]
        }
    experiment.layer_slot = slot
    return {}


def _treatment_errors(experiment: Experiment) -> dict[str, list[str]]:
    """Why B cannot be what the experiment's kind says, by field: exactly the model of a model
    experiment, the config of a config experiment, neither for rules."""
    errors: dict[str, list[str]] = {}
    kind = experiment.kind
    model, config = experiment.treatment_model, experiment.treatment_config
    if kind != ExperimentKind.MODEL and model is not None:
        errors["treatment_model"] = ["Only a model experiment has a model of B: clear it."]
    if kind != ExperimentKind.CONFIG and config is not None:
        errors["treatment_config"] = ["Only a config experiment has a config of B: clear it."]
    if kind == ExperimentKind.MODEL:
        if model is None:
            errors["treatment_model"] = ["Choose the model B's shoppers are scored by."]
        else:
            errors.update(_model_errors(experiment, model))
    elif kind == ExperimentKind.CONFIG:
        if config is None:
            errors["treatment_config"] = ["Choose the ranking config B's shoppers get."]
        else:
            errors.update(_config_errors(experiment, config))
    elif kind == ExperimentKind.RULES and experiment.method == ExperimentMethod.INTERLEAVE:
        errors["method"] = [
            "Rules cannot be interleaved (they pin, hide and move items in one list): "
            "compare them with an A/B test."
        ]
    return errors


def _config_errors(experiment: Experiment, config: RankingConfig) -> dict[str, list[str]]:
    if config.customer_id != experiment.customer_id or config.surface != experiment.surface:
        return {"treatment_config": ["Choose a ranking config of this customer and surface."]}
    if not experiment.enabled:
        return {}  # a stopped experiment serves nothing: its B may since have been promoted
    if config.live:
        return {"treatment_config": ["This config already serves everyone: B would equal A."]}
    if _active_model_on(experiment.customer_id, experiment.surface):
        return {
            "treatment_config": [
                "A model serves this surface, and a config's blend serves only where no model "
                "does: test a model, or roll the model back first."
            ]
        }
    return {}


def _active_model_on(customer_id: int, surface: str) -> bool:
    return RankingModel.objects.active().for_customer(customer_id).filter(surface=surface).exists()


def _model_errors(experiment: Experiment, model: RankingModel) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
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
    by hand; enabling it again clears that record. Saves of one customer's experiments take
    turns (a lock on the customer), so two cannot take the same slice of a layer."""
    Customer.objects.select_for_update().filter(pk=experiment.customer_id).first()
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
    experiment.full_clean(exclude=["treatment_model", "treatment_config"])
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
def experiment_promote(*, experiment: Experiment, user: str, override_reason: str = "") -> str:
    """End the experiment and serve B to everyone: its model through the registry's guarded
    activation, its config as the surface's live config, or its rules untagged. Returns what
    serves now, in words. Raises registry.ActivationRefused when a guard refuses,
    PromotionRefused when the experiment cannot be promoted; either way nothing changes."""
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if locked.end_reason in FINAL_ENDS:
        raise PromotionRefused(f"This experiment ended for good: {locked.end_summary}.")
    served = _promote_treatment(locked, user=user, override_reason=override_reason)
    summary = f"B promoted by {user}: {served} serves everyone on {locked.surface}"
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
    return served


def _promote_treatment(experiment: Experiment, *, user: str, override_reason: str) -> str:
    if experiment.kind == ExperimentKind.CONFIG:
        config = experiment.treatment_config
        if config is None:
            raise PromotionRefused("This experiment has no config of B.")
        if _active_model_on(experiment.customer_id, experiment.surface):
            raise PromotionRefused(
                "A model serves this surface, so its config's blend would serve nobody: roll "
                "the model back first."
            )
        ranking_config_make_live(config=config)
        return f"the config {config.name}"
    if experiment.kind == ExperimentKind.RULES:
        note = f"serves everyone: B of experiment {experiment.pk} promoted by {user}"
        untagged = merchandising_services.rules_untag(experiment=experiment, note=note)
        return f"its {len(untagged)} rule(s)" if len(untagged) != 1 else "its rule"
    if experiment.treatment_model is None:
        raise PromotionRefused("This experiment has no model of B.")
    model = registry.model_activate(
        model=experiment.treatment_model, user=user, override_reason=override_reason
    )
    return model.label


@transaction.atomic
def experiment_delete(*, experiment: Experiment) -> None:
    customer_id = experiment.customer_id
    experiment.delete()
    runtime_sync.bump_generation(customer_id)
