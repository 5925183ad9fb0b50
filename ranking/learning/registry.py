"""The model registry's writes (activation, rollback) and the loading of active models.

Guards on activation (docs/learning.md):
- a model whose feature schema is not the live signal schema is never activated;
- an artifact that does not match its checksum is never activated or served;
- a model needs an explicit override with a reason, recorded with the activation, when on its
  holdout it did not beat both the popularity order and the live ranker (active model or blend)
  on NDCG@10 and on revenue per search, when the holdout was too small to tell, or when a feature
  it would be served was constant over its training rows.
Activation and rollback bump the customer's runtime generation after commit, so every API process
serves the new model within RUNTIME_REFRESH_SECONDS.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from customers import runtime_sync
from customers.models import Customer
from ranking.engine.scoring import Scorer
from ranking.learning.artifacts import ArtifactRefused, scorer_load
from ranking.learning.metrics import NDCG, REVENUE
from ranking.models import ModelStatus, RankingModel
from ranking.signals.schema import SCHEMA_HASH

logger = logging.getLogger(__name__)


class ActivationRefused(Exception):
    """The model cannot be activated as asked; `needs_override` says whether a reason would do."""

    def __init__(self, message: str, *, needs_override: bool = False) -> None:
        super().__init__(message)
        self.needs_override = needs_override


def activation_blockers(model: RankingModel) -> list[str]:
    """What forbids activating the model whatever the reason given."""
    blockers = []
    if model.schema_hash != SCHEMA_HASH:
        blockers.append(
            f"{model.label} was trained on feature schema {model.schema_hash}; the live signal "
            f"schema is {SCHEMA_HASH}"
        )
    if model.status == ModelStatus.ACTIVE:
        blockers.append(f"{model.label} is already active")
    return blockers


def activation_warnings(model: RankingModel) -> list[str]:
    """What activating the model needs an override with a reason for."""
    metrics = model.metrics or {}
    mine = metrics.get("model") or {}
    if NDCG not in mine:
        return [f"{model.label} has no holdout metrics"]
    warnings = []
    requests = metrics.get("holdout_requests_with_outcomes")
    minimum = settings.TRAINING_MIN_HOLDOUT_REQUESTS
    if requests is not None and requests < minimum:
        warnings.append(
            f"its holdout had {requests} requests with outcomes, too few to tell it apart from "
            f"the live ranker (at least {minimum} are needed)"
        )
    lifts = metrics.get("lift") or {}
    warnings += _not_better(
        model,
        mine,
        metrics.get("baseline"),
        "the popularity order",
        (lifts.get("baseline") or {}).get(NDCG),
    )
    current = _active(model.customer_id, model.surface)
    if current is not None and current.pk != model.pk:
        if metrics.get("active_model_id") != current.pk or not metrics.get("active"):
            warnings.append(
                f"{model.label} was not compared with the active model {current.label} on its "
                "holdout (train it again to compare)"
            )
        else:
            warnings += _not_better(
                model,
                mine,
                metrics["active"],
                f"the active {current.label}",
                (lifts.get("active") or {}).get(NDCG),
            )
    elif metrics.get("active") and metrics.get("active_model_id") is None:
        label = metrics.get("active_label") or "the config's blend"
        warnings += _not_better(
            model,
            mine,
            metrics["active"],
            f"the live {label}",
            (lifts.get("active") or {}).get(NDCG),
        )
    constant = (model.report or {}).get("constant_features") or []
    if constant:
        warnings.append(
            f"{model.label} was trained while {', '.join(constant)} never varied, so it cannot "
            "use them, though they vary now"
        )
    return warnings


def _not_better(
    model: RankingModel,
    mine: dict[str, float],
    other: dict[str, float] | None,
    name: str,
    lift: list[float] | None = None,
) -> list[str]:
    """Warnings where the model did not beat `other`: higher on NDCG@10 and on revenue per
    search, and (when the interval was measured) an NDCG@10 lift whose 95% interval lies above
    0, so that a difference within the holdout's noise does not replace a ranker."""
    if not other:
        return []
    warnings = []
    for metric, words in ((NDCG, "NDCG@10"), (REVENUE, "revenue per search")):
        if metric in mine and metric in other and mine[metric] <= other[metric]:
            warnings.append(
                f"{model.label} scored {words} {mine[metric]:.4f} on its holdout, not above "
                f"{name}'s {other[metric]:.4f}"
            )
    if not warnings and lift and lift[0] <= 0:
        warnings.append(
            f"{model.label}'s NDCG@10 lift over {name} is within the holdout's noise "
            f"({lift[1]:+.1%}, 95% interval {lift[0]:+.1%} to {lift[2]:+.1%})"
        )
    return warnings


def _active(customer_id: int, surface: str) -> RankingModel | None:
    return RankingModel.objects.active().for_customer(customer_id).filter(surface=surface).first()


@transaction.atomic
def model_activate(*, model: RankingModel, user: str, override_reason: str = "") -> RankingModel:
    """Make the model its surface's active model; the one it replaces becomes its `previous`."""
    model = RankingModel.objects.select_for_update().get(pk=model.pk)
    blockers = activation_blockers(model)
    if blockers:
        raise ActivationRefused("; ".join(blockers))
    try:
        scorer_load(model)
    except ArtifactRefused as exc:
        raise ActivationRefused(str(exc)) from exc
    warnings = activation_warnings(model)
    override_reason = override_reason.strip()
    if warnings and not override_reason:
        raise ActivationRefused(
            "; ".join(warnings) + ". Activating it needs an override with a reason.",
            needs_override=True,
        )
    current = _active(model.customer_id, model.surface)
    if current is not None:
        current.status = ModelStatus.RETIRED
        current.save(update_fields=["status"])
    model.status = ModelStatus.ACTIVE
    model.previous = current
    model.activated_at = timezone.now()
    model.activated_by = user
    model.override_reason = (
        f"{override_reason} (overriding: {'; '.join(warnings)})" if warnings else ""
    )
    model.save(
        update_fields=["status", "previous", "activated_at", "activated_by", "override_reason"]
    )
    _bump_after_commit(model.customer_id)
    logger.info("model %s activated by %s", model, user)
    return model


def model_decide(*, model: RankingModel, user: str = "beat") -> RankingModel:
    """The training loop's decision on a new candidate: serve it when its customer opted in to
    automatic activation and no guard objects; keep it as a candidate otherwise. The decision
    and the numbers behind it are recorded in the model's report either way."""
    reasons = activation_blockers(model) + activation_warnings(model)
    opted_in = (
        Customer.objects.filter(pk=model.customer_id).values_list("auto_activate_models", flat=True)
    ).first()
    if not opted_in:
        action = "kept as a candidate: this customer activates models by hand"
    elif reasons:
        action = "kept as a candidate: " + "; ".join(reasons)
    else:
        try:
            model = model_activate(model=model, user=user)
            action = "activated: it beat the popularity order and the live ranker"
        except ActivationRefused as exc:
            action = f"kept as a candidate: {exc}"
    metrics = model.metrics or {}
    model.report = {
        **(model.report or {}),
        "decision": {
            "at": timezone.now().isoformat(),
            "by": user,
            "action": action,
            "model": {key: (metrics.get("model") or {}).get(key) for key in (NDCG, REVENUE)},
            "popularity": {
                key: (metrics.get("baseline") or {}).get(key) for key in (NDCG, REVENUE)
            },
            "live": {key: (metrics.get("active") or {}).get(key) for key in (NDCG, REVENUE)},
        },
    }
    model.save(update_fields=["report"])
    logger.info("model %s: %s", model, action)
    return model


@transaction.atomic
def model_rollback(*, customer_id: int, surface: str, user: str) -> RankingModel | None:
    """Retire the active model and serve the one it replaced (or the config's blend when it
    replaced none). Returns the model now serving, None for the blend."""
    current = (
        RankingModel.objects.select_for_update()
        .active()
        .for_customer(customer_id)
        .filter(surface=surface)
        .first()
    )
    if current is None:
        raise ActivationRefused(f"no active model on {surface} to roll back")
    target = current.previous
    if target is not None:
        if target.schema_hash != SCHEMA_HASH:
            raise ActivationRefused(
                f"the previous model {target.label} was trained on another feature schema"
            )
        try:
            scorer_load(target)
        except ArtifactRefused as exc:
            raise ActivationRefused(str(exc)) from exc
    current.status = ModelStatus.RETIRED
    current.save(update_fields=["status"])
    if target is not None:
        target.status = ModelStatus.ACTIVE
        target.activated_at = timezone.now()
        target.activated_by = user
        target.override_reason = f"rollback from {current.label}"
        target.save(update_fields=["status", "activated_at", "activated_by", "override_reason"])
    _bump_after_commit(customer_id)
    logger.info("rolled back %s by %s", current, user)
    return target


def _bump_after_commit(customer_id: int) -> None:
    transaction.on_commit(lambda: runtime_sync.bump_generation(customer_id))


def active_model_scorer(*, customer_id: int, surface: str) -> tuple[RankingModel, Scorer] | None:
    """The surface's active model and its verified scorer, or None (no model, or refused)."""
    model = _active(customer_id, surface)
    if model is None:
        return None
    scorer = _usable_scorer(model)
    return None if scorer is None else (model, scorer)


def active_scorers(customer_id: int) -> dict[str, Scorer]:
    """Scorer per surface of the customer's active models that may serve: of the live schema,
    with a verified artifact. A refused model is logged and its surface keeps the config's
    blend, so a bad artifact never takes ranking down."""
    scorers = {}
    for model in RankingModel.objects.active().for_customer(customer_id):
        scorer = _usable_scorer(model)
        if scorer is not None:
            scorers[model.surface] = scorer
    return scorers


def usable_scorer(model: RankingModel) -> Scorer | None:
    """The model's verified scorer if it may serve (live schema, intact artifact), else None."""
    return _usable_scorer(model)


def _usable_scorer(model: RankingModel) -> Scorer | None:
    if model.schema_hash != SCHEMA_HASH:
        logger.error("active model %s has another feature schema; not serving it", model)
        return None
    try:
        return scorer_load(model)
    except ArtifactRefused:
        logger.exception("active model %s refused; serving the config's blend", model)
        return None
