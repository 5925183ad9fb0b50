"""Training: split the logged requests by time, correct for position bias, fit, compare on the
later part against the active model and a popularity baseline, and register a candidate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from threadpoolctl import threadpool_limits

from ranking.engine.scoring import Scorer
from ranking.learning import artifacts
from ranking.learning.dataset import TrainingSet, training_set_load
from ranking.learning.lgbm import lightgbm
from ranking.learning.metrics import label_gains, ndcg_at_k
from ranking.learning.propensity import PositionBias, estimate_position_bias
from ranking.learning.scorers import LinearModelScorer, TreeModelScorer
from ranking.models import Algorithm, RankingModel
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SCHEMA_HASH

Progress = Callable[[str], None]
POPULARITY = FEATURE_INDEX["popularity"]
NDCG = "ndcg@10"
REVENUE_NDCG = "revenue_ndcg@10"


class NotEnoughData(Exception):
    """Too few labelled requests to train and evaluate a model."""


@dataclass(frozen=True)
class TrainingParams:
    algorithm: str = Algorithm.LAMBDAMART
    # Inverse propensity weighting of the labels (docs/learning.md); off only to measure it.
    position_bias_correction: bool = True
    # Weight purchases by their value relative to the mean purchase.
    revenue_weight: bool = False
    holdout_fraction: float = 0.2
    rounds: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_data_in_leaf: int = 100
    ridge_alpha: float = 1.0
    seed: int = 7
    min_labelled_requests: int = 20


@dataclass(frozen=True)
class Fitted:
    scorer: Scorer
    artifact: bytes


def _noop(message: str) -> None:
    pass


def row_weights(data: TrainingSet, bias: PositionBias | None, params: TrainingParams) -> np.ndarray:
    """Per-row weights for LambdaMART. A labelled row weighs its inverse propensity; LightGBM
    weighs each row's summed pairwise gradient, so an unlabelled row takes the mean weight of its
    request's labelled rows, the pairs it belongs to (see docs/learning.md)."""
    positive = data.labels > 0
    weights = np.ones(len(data.labels))
    if bias is not None:
        weights[positive] = bias.weights(data.positions[positive])
    if params.revenue_weight and (data.revenue > 0).any():
        bought = data.revenue > 0
        weights[bought] *= data.revenue[bought] / data.revenue[bought].mean()
    starts = data.group_starts
    sizes = data.group_sizes
    positives = np.add.reduceat(positive.astype(np.float64), starts)
    weighted = np.add.reduceat(np.where(positive, weights, 0.0), starts)
    mean_positive = np.divide(weighted, positives, out=np.ones_like(weighted), where=positives > 0)
    return np.where(positive, weights, np.repeat(mean_positive, sizes))


def fit_lambdamart(data: TrainingSet, bias: PositionBias | None, params: TrainingParams) -> Fitted:
    keep = _labelled_groups(data)
    data = _select_groups(data, keep)
    dataset = lightgbm.Dataset(
        data.features,
        label=data.labels,
        group=data.group_sizes,
        weight=row_weights(data, bias, params),
        feature_name=list(FEATURES),
        params={"feature_pre_filter": False, "verbose": -1},
    )
    booster = lightgbm.train(
        {
            "objective": "lambdarank",
            "metric": "ndcg",
            "lambdarank_truncation_level": 20,
            "label_gain": [0, 1, 3, 7],
            "learning_rate": params.learning_rate,
            "num_leaves": params.num_leaves,
            "min_data_in_leaf": params.min_data_in_leaf,
            "num_threads": 1,
            "deterministic": True,
            "seed": params.seed,
            "verbose": -1,
        },
        dataset,
        num_boost_round=params.rounds,
    )
    return Fitted(TreeModelScorer(booster, label=None), booster.model_to_string().encode())


def fit_linear(
    data: TrainingSet, bias: PositionBias | None, params: TrainingParams, customer_id: int
) -> Fitted:
    """Ridge regression on standardised features of the propensity-corrected gain
    (gain / examination probability: an unbiased estimate of the gain were every row seen)."""
    values = data.features.astype(np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    target = label_gains(data.labels)
    if bias is not None:
        target = target * bias.weights(data.positions)
    # Imported here: API processes import this module (the registry does) and never fit.
    from sklearn.linear_model import Ridge

    with threadpool_limits(1):
        ridge = Ridge(alpha=params.ridge_alpha).fit((values - mean) / std, target)
    coef = np.asarray(ridge.coef_, dtype=np.float64)
    intercept = float(ridge.intercept_)
    return Fitted(
        LinearModelScorer(coef=coef, mean=mean, std=std, intercept=intercept, label=None),
        artifacts.linear_artifact(
            customer_id=customer_id, coef=coef, mean=mean, std=std, intercept=intercept
        ),
    )


def _labelled_groups(data: TrainingSet) -> np.ndarray:
    return np.add.reduceat((data.labels > 0).astype(np.int64), data.group_starts) > 0


def _select_groups(data: TrainingSet, keep: np.ndarray) -> TrainingSet:
    rows = np.repeat(keep, data.group_sizes)
    sizes = data.group_sizes[keep]
    return TrainingSet(
        features=data.features[rows],
        labels=data.labels[rows],
        revenue=data.revenue[rows],
        positions=data.positions[rows],
        item_codes=data.item_codes[rows],
        group_starts=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
        request_times=data.request_times[keep],
    )


def holdout_metrics(
    holdout: TrainingSet, scores: np.ndarray, bias: PositionBias
) -> dict[str, float]:
    """NDCG@10 on graded labels (gain 2^label - 1) and on purchase revenue, corrected for
    position bias (gains weighted by inverse propensity, pooled normalisation), and the same
    uncorrected (per-request mean on the raw labels), which favours the order that was served."""
    weights = bias.weights(holdout.positions)
    gains = label_gains(holdout.labels)
    starts = holdout.group_starts
    return {
        NDCG: round(ndcg_at_k(gains * weights, scores, starts, pooled=True), 6),
        REVENUE_NDCG: round(ndcg_at_k(holdout.revenue * weights, scores, starts, pooled=True), 6),
        f"{NDCG} uncorrected": round(ndcg_at_k(gains, scores, starts), 6),
        f"{REVENUE_NDCG} uncorrected": round(ndcg_at_k(holdout.revenue, scores, starts), 6),
    }


def time_split(data: TrainingSet, holdout_fraction: float) -> tuple[TrainingSet, TrainingSet]:
    """Earlier requests train, the later `holdout_fraction` evaluate (requests in time order)."""
    cut = round(data.requests * (1.0 - holdout_fraction))
    return data.groups(0, cut), data.groups(cut, data.requests)


def fit(
    train: TrainingSet, params: TrainingParams, customer_id: int
) -> tuple[Fitted, PositionBias]:
    bias = estimate_position_bias(
        train.positions, train.item_codes, (train.labels > 0).astype(np.int8)
    )
    used = bias if params.position_bias_correction else None
    if params.algorithm == Algorithm.LAMBDAMART:
        return fit_lambdamart(train, used, params), bias
    return fit_linear(train, used, params, customer_id), bias


def evaluate(
    holdout: TrainingSet,
    bias: PositionBias,
    model: Scorer,
    active: tuple[RankingModel, Scorer] | None,
) -> dict[str, object]:
    """The holdout metrics of the new model, the active model, the popularity baseline and the
    order that was served."""
    report: dict[str, object] = {
        "model": holdout_metrics(holdout, model.scores(holdout.features, None), bias),
        "baseline": holdout_metrics(
            holdout, holdout.features[:, POPULARITY].astype(np.float64), bias
        ),
        "served": holdout_metrics(holdout, -holdout.positions.astype(np.float64), bias),
        "active": None,
        "active_model_id": None,
    }
    if active is not None:
        report["active"] = holdout_metrics(holdout, active[1].scores(holdout.features, None), bias)
        report["active_model_id"] = active[0].pk
    return report


def model_train(
    *,
    customer_id: int,
    surface: str,
    params: TrainingParams | None = None,
    until: datetime | None = None,
    days: int | None = None,
    created_by: str = "",
    progress: Progress = _noop,
) -> RankingModel:
    """Train a candidate for one customer's surface on its rank log and register it."""
    from ranking.learning.registry import active_model_scorer

    params = params or TrainingParams()
    until = until or timezone.now()
    start = until - timedelta(days=days or settings.TRAINING_WINDOW_DAYS)
    progress(f"Loading the rank log and outcomes from {start:%Y-%m-%d} to {until:%Y-%m-%d}...")
    data = training_set_load(customer_id=customer_id, surface=surface, start=start, end=until)
    counts = data.row_counts()
    progress(
        f"  {counts['requests']} requests ({counts['labelled_requests']} with outcomes), "
        f"{counts['rows']} rows, {counts['clicks']} clicks, {counts['purchases']} purchases"
    )
    train, holdout = time_split(data, params.holdout_fraction)
    if min(train.labelled_requests(), holdout.labelled_requests()) < params.min_labelled_requests:
        raise NotEnoughData(
            f"{train.labelled_requests()} training and {holdout.labelled_requests()} holdout "
            f"requests with outcomes; at least {params.min_labelled_requests} each are needed"
        )
    progress(f"Fitting {params.algorithm} on {train.requests} requests...")
    fitted, bias = fit(train, params, customer_id)
    progress(f"  position bias: examination ~ position^-{bias.eta:.2f}")
    progress(f"Evaluating on the {holdout.requests} later requests...")
    active = active_model_scorer(customer_id=customer_id, surface=surface)
    metrics = evaluate(holdout, bias, fitted.scorer, active)
    progress(f"  {_summary(metrics)}")
    with transaction.atomic():
        latest = RankingModel.objects.filter(customer_id=customer_id, surface=surface).aggregate(
            Max("version")
        )["version__max"]
        version = (latest or 0) + 1
        path, digest = artifacts.artifact_save(
            customer_id=customer_id,
            surface=surface,
            algorithm=params.algorithm,
            version=version,
            content=fitted.artifact,
        )
        model = RankingModel.objects.create(
            customer_id=customer_id,
            surface=surface,
            algorithm=params.algorithm,
            version=version,
            schema_hash=SCHEMA_HASH,
            params=asdict(params),
            train_from=start,
            train_until=until,
            holdout_from=_as_aware(holdout.request_times[0]) if holdout.requests else until,
            row_counts={"train": train.row_counts(), "holdout": holdout.row_counts()},
            propensity=bias.to_json(),
            metrics=metrics,
            artifact_path=path,
            artifact_sha256=digest,
            created_by=created_by,
        )
    progress(f"Registered {model.label} as a candidate (artifact {path}).")
    return model


def _as_aware(value: np.datetime64) -> datetime:
    seconds = value.astype("datetime64[us]").astype(np.int64) / 1e6
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def _summary(metrics: dict[str, object]) -> str:
    parts = []
    for name in ("model", "active", "baseline", "served"):
        values = metrics.get(name)
        if isinstance(values, dict):
            parts.append(f"{name} NDCG@10 {values[NDCG]:.4f} (revenue {values[REVENUE_NDCG]:.4f})")
    return "; ".join(parts)
