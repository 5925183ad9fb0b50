"""Training: split the requests by time, correct for position bias, fit, compare on the later
part with the live ranker and the popularity order, and register a candidate with a report.

The comparison (docs/learning.md): on the holdout, NDCG@10 of graded labels and the expected
revenue per search, both corrected for position bias, of the new model, of the live ranker (the
active model, or the config's blend when none serves) scored on the features it would have had,
and of the popularity order counted from the events before each request (never a logged feature).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from threadpoolctl import threadpool_limits

from ranking.configs import blend_config
from ranking.engine.scoring import Scorer
from ranking.learning import artifacts
from ranking.learning.dataset import TrainingSet, training_set_load
from ranking.learning.lgbm import lightgbm
from ranking.learning.metrics import CLICKS, NDCG, REVENUE, REVENUE_NDCG, label_gains, ndcg_at_k
from ranking.learning.propensity import MAX_WEIGHT, PositionBias, estimate_position_bias
from ranking.learning.registry import active_model_scorer
from ranking.learning.scorers import LinearModelScorer, TreeModelScorer
from ranking.models import Algorithm, RankingModel
from ranking.signals.backend import signal_store
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SCHEMA_HASH
from ranking.signals.store import SignalMeta, SignalStoreUnavailable

Progress = Callable[[str], None]
# A feature "varies" when its values over the rows spread wider than this (features are rates,
# shares, log counts and z-scores: a spread this small is rounding, or the clock moving on).
CONSTANT_TOLERANCE = 1e-4


class NotEnoughData(Exception):
    """Too few labelled requests to train and evaluate a model."""


AUTO = "auto"
# The share of the training requests "auto" judges its candidates on.
VALIDATION_FRACTION = 0.15


@dataclass(frozen=True)
class TrainingParams:
    # "linear", "lambdamart", or "auto": both, the better on later training requests
    algorithm: str = AUTO
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
    # "graded": clicks 1, carts 3, purchases 7 (gains of labels 1, 2, 3); "revenue": a
    # purchase also gains its value (in units of the median purchase: the retailer's revenue),
    # so a dear purchase counts more than a cheap one; "auto": both, as for the algorithm.
    target: str = AUTO
    # Features the model must not use (held constant in training): to measure what they bring.
    without: tuple[str, ...] = ()


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


GRADED_GAINS = [0.0, 1.0, 3.0, 7.0]
# Purchase value buckets for the revenue target: a purchase of value v gets label 3 + bucket,
# bucket = round(log2(v / median purchase)) clipped to -3..+4, gain 7 x (1 + 2 ** bucket): a
# purchase still counts 7 as in the graded target, plus its value in units of the median one.
REVENUE_BUCKETS = range(-3, 5)


def ranking_labels(data: TrainingSet, params: TrainingParams) -> tuple[np.ndarray, list[float]]:
    """Integer labels and the gain of each label, for LightGBM's lambdarank (and the linear
    model's target)."""
    if params.target != "revenue" or not (data.revenue > 0).any():
        return data.labels, GRADED_GAINS
    bought = data.revenue > 0
    median = float(np.median(data.revenue[bought]))
    buckets = np.clip(np.rint(np.log2(np.maximum(data.revenue, 1e-9) / median)), -3, 4)
    labels = np.where(bought, 3 + buckets - REVENUE_BUCKETS.start, data.labels).astype(np.int32)
    labels = np.where(bought, labels, np.minimum(data.labels, 2))
    gains = GRADED_GAINS[:3] + [7.0 * (1.0 + 2.0**bucket) for bucket in REVENUE_BUCKETS]
    return labels, gains


def training_features(data: TrainingSet, params: TrainingParams) -> np.ndarray:
    """The features the model may use: those it is asked to go without are held at 0."""
    if not params.without:
        return data.features
    features = data.features.copy()
    features[:, [FEATURE_INDEX[name] for name in params.without]] = 0.0
    return features


def fit_lambdamart(data: TrainingSet, bias: PositionBias | None, params: TrainingParams) -> Fitted:
    keep = _labelled_groups(data)
    data = _select_groups(data, keep)
    labels, gains = ranking_labels(data, params)
    dataset = lightgbm.Dataset(
        training_features(data, params),
        label=labels,
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
            "label_gain": gains,
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
    values = training_features(data, params).astype(np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    labels, gains = ranking_labels(data, params)
    target = np.asarray(gains)[labels]
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
        popularity=data.popularity_baseline[rows],
        provenance=data.provenance,
        swapped_at=data.swaps[keep],
    )


def holdout_metrics(
    holdout: TrainingSet, scores: np.ndarray, bias: PositionBias
) -> dict[str, float]:
    """NDCG@10 on graded labels (gain 2^label - 1) and on purchase revenue, corrected for
    position bias (gains weighted by inverse propensity, pooled normalisation); the expected
    revenue and clicks per search in the top 10 of the new order (each outcome counted at the
    examination probability of its new position over that of the position it was shown at);
    and the uncorrected NDCG (per-request mean on the raw labels), which favours the order that
    was served."""
    weights = bias.weights(holdout.positions)
    gains = label_gains(holdout.labels)
    starts = holdout.group_starts
    return {
        NDCG: round(ndcg_at_k(gains * weights, scores, starts, pooled=True), 6),
        REVENUE_NDCG: round(ndcg_at_k(holdout.revenue * weights, scores, starts, pooled=True), 6),
        REVENUE: round(counterfactual_per_request(holdout, scores, bias, holdout.revenue), 6),
        CLICKS: round(
            counterfactual_per_request(
                holdout, scores, bias, (holdout.labels > 0).astype(np.float64)
            ),
            6,
        ),
        f"{NDCG} uncorrected": round(ndcg_at_k(gains, scores, starts), 6),
        f"{REVENUE_NDCG} uncorrected": round(ndcg_at_k(holdout.revenue, scores, starts), 6),
    }


def counterfactual_per_request(
    data: TrainingSet, scores: np.ndarray, bias: PositionBias, outcome: np.ndarray, k: int = 10
) -> float:
    """The outcome per request had the items been ordered by `scores`, under the
    position-based model: an outcome seen at position p would be seen at its new position q
    (within the top k) with probability theta_q / theta_p (the ratio capped like the weights)."""
    new_positions = np.empty(len(scores), dtype=np.int64)
    for start, stop in zip(
        data.group_starts, np.append(data.group_starts[1:], len(scores)), strict=False
    ):
        order = np.lexsort((np.arange(stop - start), -scores[start:stop]))
        new_positions[start + order] = np.arange(1, stop - start + 1)
    theta = bias.examination_at(new_positions) * bias.weights(data.positions)
    ratio = np.where(new_positions <= k, np.minimum(theta, MAX_WEIGHT), 0.0)
    return float((outcome * ratio).sum() / max(data.requests, 1))


def time_split(data: TrainingSet, holdout_fraction: float) -> tuple[TrainingSet, TrainingSet]:
    """Earlier requests train, the later `holdout_fraction` evaluate (requests in time order)."""
    cut = round(data.requests * (1.0 - holdout_fraction))
    return data.groups(0, cut), data.groups(cut, data.requests)


def position_bias_of(train: TrainingSet) -> PositionBias:
    return estimate_position_bias(
        train.positions,
        train.item_codes,
        (train.labels > 0).astype(np.int8),
        features=train.features,
        group_starts=train.group_starts,
        swapped_at=train.swaps,
    )


def fit_with(
    train: TrainingSet, bias: PositionBias, params: TrainingParams, customer_id: int
) -> Fitted:
    """Fit one algorithm and target (neither "auto"). `train` is the set `bias` was estimated
    on, or its first requests."""
    used = bias if params.position_bias_correction else None
    if params.algorithm == Algorithm.LAMBDAMART:
        return fit_lambdamart(train, used, params)
    if params.algorithm == Algorithm.CLICK_MODEL:
        return fit_click_model(train, bias, params)
    return fit_linear(train, used, params, customer_id)


def fit_click_model(data: TrainingSet, bias: PositionBias, params: TrainingParams) -> Fitted:
    """Boosted trees fitted (cross-entropy) to the click model's posterior that the shopper
    wanted each item shown: position bias is already taken out of that target, and every
    impression informs it, clicked or not. Scores are its log-odds."""
    if bias.wanted is None or len(bias.wanted) < len(data.labels):
        raise NotEnoughData("the click model needs the regression EM's estimate")
    dataset = lightgbm.Dataset(
        training_features(data, params),
        label=bias.wanted[: len(data.labels)],
        feature_name=list(FEATURES),
        params={"feature_pre_filter": False, "verbose": -1},
    )
    booster = lightgbm.train(
        {
            "objective": "cross_entropy",
            "learning_rate": params.learning_rate,
            "num_leaves": 15,
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


def choose(
    train: TrainingSet,
    bias: PositionBias,
    params: TrainingParams,
    customer_id: int,
    live: LiveRanker | None = None,
) -> tuple[TrainingParams, list[dict[str, object]]]:
    """Resolve "auto" algorithm and target: each candidate is fitted on the earlier part of the
    training requests and judged on the rest (never on the holdout, which must stay unbiased for
    the guard) as the guard will judge it: by its worse lift, on NDCG@10 and on revenue per
    search, over the better of the popularity order and the live ranker. Returns the chosen
    parameters and the table of candidates."""
    algorithms = [params.algorithm]
    if params.algorithm == AUTO:
        algorithms = [Algorithm.LINEAR, Algorithm.LAMBDAMART]
        if bias.wanted is not None:
            algorithms.append(Algorithm.CLICK_MODEL)
    targets = ["graded", "revenue"] if params.target == AUTO else [params.target]
    candidates = [
        (algorithm, target)
        for algorithm in algorithms
        for target in targets
        # the click model ranks by how wanted an item is: one target
        if algorithm != Algorithm.CLICK_MODEL or target == targets[0]
    ]
    if len(candidates) == 1:
        return replace(params, algorithm=candidates[0][0], target=candidates[0][1]), []
    fitting, validation = time_split(train, VALIDATION_FRACTION)
    baseline = holdout_metrics(validation, validation.popularity_baseline, bias)
    if live is not None:
        rival = holdout_metrics(
            validation, live.scorer.scores(validation.features, live.meta), bias
        )
        baseline = {key: max(value, rival[key]) for key, value in baseline.items()}
    table: list[dict[str, object]] = []
    for algorithm, target in candidates:
        candidate = replace(params, algorithm=algorithm, target=target)
        fitted = fit_with(fitting, bias, candidate, customer_id)
        metrics = holdout_metrics(validation, fitted.scorer.scores(validation.features, None), bias)
        worse_lift = min(
            metrics[NDCG] / max(baseline[NDCG], 1e-12),
            metrics[REVENUE] / max(baseline[REVENUE], 1e-12),
        )
        table.append(
            {
                "algorithm": algorithm,
                "target": target,
                NDCG: metrics[NDCG],
                REVENUE: metrics[REVENUE],
                "worse lift": round(worse_lift, 4),
            }
        )
    best = max(table, key=lambda row: float(row["worse lift"]))  # type: ignore[arg-type]
    return replace(params, algorithm=str(best["algorithm"]), target=str(best["target"])), table


def fit(
    train: TrainingSet, params: TrainingParams, customer_id: int
) -> tuple[Fitted, PositionBias]:
    """Estimate the position bias, resolve "auto" choices and fit on all of `train`."""
    bias = position_bias_of(train)
    chosen, _ = choose(train, bias, params, customer_id)
    return fit_with(train, bias, chosen, customer_id), bias


@dataclass(frozen=True)
class LiveRanker:
    """What serves the surface now: the active model, or the config's blend."""

    label: str  # "lambdamart@3", or "config:<name>"
    scorer: Scorer
    meta: SignalMeta | None  # the blend standardises with the live version's statistics
    model_id: int | None


def live_ranker(*, customer_id: int, surface: str) -> LiveRanker | None:
    """The surface's live ranker, or None when it cannot be scored (a blend without signals)."""
    active = active_model_scorer(customer_id=customer_id, surface=surface)
    if active is not None:
        return LiveRanker(active[0].label, active[1], None, active[0].pk)
    config = blend_config(customer_id=customer_id, surface=surface)
    try:
        meta = signal_store().current_meta(customer_id)
    except SignalStoreUnavailable:
        meta = None
    if meta is None:
        return None
    return LiveRanker(f"config:{config.name}", config.scorer, meta, None)


def evaluate(
    holdout: TrainingSet,
    bias: PositionBias,
    model: Scorer,
    live: LiveRanker | None,
) -> dict[str, object]:
    """The holdout metrics of the new model, the live ranker, the popularity order (counted
    from events) and the order that was served, with the model's lift over the first two and
    its 95% interval."""
    model_scores = model.scores(holdout.features, None)
    popularity = holdout.popularity_baseline
    report: dict[str, object] = {
        "model": holdout_metrics(holdout, model_scores, bias),
        "baseline": holdout_metrics(holdout, popularity, bias),
        "served": holdout_metrics(holdout, -holdout.positions.astype(np.float64), bias),
        "active": None,
        "active_model_id": None,
        "active_label": None,
        "lift": {"baseline": lift_intervals(holdout, model_scores, popularity, bias)},
        "holdout_requests_with_outcomes": holdout.labelled_requests(),
    }
    if live is not None:
        live_scores = live.scorer.scores(holdout.features, live.meta)
        report["active"] = holdout_metrics(holdout, live_scores, bias)
        report["active_model_id"] = live.model_id
        report["active_label"] = live.label
        report["lift"]["active"] = lift_intervals(holdout, model_scores, live_scores, bias)  # type: ignore[index]
    return report


def _per_request(
    data: TrainingSet, scores: np.ndarray, bias: PositionBias
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per request: the corrected DCG@10 and ideal DCG@10 of graded gains, and the
    counterfactual revenue in the top 10."""
    weights = bias.weights(data.positions)
    gains = label_gains(data.labels) * weights
    bounds = np.append(data.group_starts, len(scores))
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = np.zeros(data.requests)
    ideal = np.zeros(data.requests)
    revenue = np.zeros(data.requests)
    for index, (start, stop) in enumerate(itertools.pairwise(bounds)):
        order = np.lexsort((np.arange(stop - start), -scores[start:stop]))
        gain = gains[start:stop]
        top = gain[order][:10]
        best = np.sort(gain)[::-1][:10]
        dcg[index] = (top * discounts[: len(top)]).sum()
        ideal[index] = (best * discounts[: len(best)]).sum()
        positions = np.empty(stop - start, dtype=np.int64)
        positions[order] = np.arange(1, stop - start + 1)
        ratio = bias.examination_at(positions) * weights[start:stop]
        kept = np.where(positions <= 10, np.minimum(ratio, MAX_WEIGHT), 0.0)
        revenue[index] = (data.revenue[start:stop] * kept).sum()
    return dcg, ideal, revenue


def lift_intervals(
    data: TrainingSet, scores: np.ndarray, other: np.ndarray, bias: PositionBias, draws: int = 400
) -> dict[str, list[float]]:
    """The relative lift of `scores` over `other` on NDCG@10 and revenue per search, with a 95%
    interval from a paired bootstrap over requests: [low, estimate, high]."""
    dcg, ideal, revenue = _per_request(data, scores, bias)
    other_dcg, _, other_revenue = _per_request(data, other, bias)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, max(data.requests, 1), (draws, data.requests))

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float]:
        if not data.requests or denominator.sum() <= 0:
            return [0.0, 0.0, 0.0]
        estimate = numerator.sum() / denominator.sum() - 1.0
        drawn = numerator[picks].sum(axis=1) / np.maximum(denominator[picks].sum(axis=1), 1e-12)
        low, high = np.percentile(drawn - 1.0, [2.5, 97.5])
        return [round(float(low), 4), round(float(estimate), 4), round(float(high), 4)]

    del ideal  # the same for both orders: it cancels in the ratio
    return {NDCG: ratio(dcg, other_dcg), REVENUE: ratio(revenue, other_revenue)}


def feature_report(
    train: TrainingSet, holdout: TrainingSet, fitted: Fitted, params: TrainingParams
) -> dict[str, object]:
    """Per feature: the share of training rows where it is not 0 (coverage), its share of the
    model's importance, whether it varied in training; and the features that were constant in
    training but vary on the later requests (the model cannot use what it never saw vary)."""
    features = training_features(train, params)
    coverage = (features != 0).mean(axis=0) if len(features) else np.zeros(len(FEATURES))
    spread = np.ptp(features, axis=0) if len(features) else np.zeros(len(FEATURES))
    later = np.ptp(holdout.features, axis=0) if holdout.requests else np.zeros(len(FEATURES))
    importance = model_importance(fitted.scorer)
    total = importance.sum() or 1.0
    rows = [
        {
            "feature": name,
            "coverage": round(float(coverage[index]), 4),
            "importance": round(float(importance[index] / total), 4),
            "varied": bool(spread[index] > CONSTANT_TOLERANCE),
        }
        for index, name in enumerate(FEATURES)
    ]
    constant = [
        name
        for index, name in enumerate(FEATURES)
        if spread[index] <= CONSTANT_TOLERANCE
        and later[index] > CONSTANT_TOLERANCE
        and name not in params.without
    ]
    return {"features": rows, "constant_features": constant}


def model_importance(scorer: Scorer) -> np.ndarray:
    """Per feature: LightGBM's total split gain, or a linear model's |coefficient| (on
    standardised features)."""
    if isinstance(scorer, TreeModelScorer):
        return np.asarray(scorer.booster.feature_importance("gain"), dtype=np.float64)
    if isinstance(scorer, LinearModelScorer):
        return np.abs(scorer.coef)
    return np.zeros(len(FEATURES))


def comparison_words(metrics: dict[str, object], report: dict[str, object]) -> list[str]:
    """The comparison in plain words, as the registry shows it."""
    words = []
    lift = metrics.get("lift") or {}
    assert isinstance(lift, dict)
    names = {
        "baseline": "the popularity order",
        "active": f"the live ranker ({metrics.get('active_label')})",
    }
    for key, name in names.items():
        values = lift.get(key)
        if not values:
            continue
        ndcg, revenue = values[NDCG], values[REVENUE]
        words.append(
            f"Against {name}: ranking quality (NDCG@10) {_percent(ndcg[1])} "
            f"(95% interval {_percent(ndcg[0])} to {_percent(ndcg[2])}), revenue per search "
            f"{_percent(revenue[1])} ({_percent(revenue[0])} to {_percent(revenue[2])})."
        )
    requests = metrics.get("holdout_requests_with_outcomes", 0)
    words.append(
        f"Judged on {requests} later requests with a click, cart or purchase "
        f"(at least {settings.TRAINING_MIN_HOLDOUT_REQUESTS} are needed to tell)."
    )
    constant = report.get("constant_features") or []
    assert isinstance(constant, list)
    if constant:
        words.append(
            "Never varied in training, so the model cannot use them: "
            + ", ".join(str(name) for name in constant)
            + "."
        )
    return words


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


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
    """Train a candidate for one customer's surface and register it with its report."""
    params = params or TrainingParams()
    until = until or timezone.now()
    start = until - timedelta(days=days or settings.TRAINING_WINDOW_DAYS)
    progress(f"Loading requests and outcomes from {start:%Y-%m-%d} to {until:%Y-%m-%d}...")
    data = training_set_load(customer_id=customer_id, surface=surface, start=start, end=until)
    counts = data.row_counts()
    progress(
        f"  {counts['requests']} requests ({counts['labelled_requests']} with outcomes), "
        f"{counts['rows']} rows, {counts['clicks']} clicks, {counts['purchases']} purchases"
    )
    for source, requests in data.provenance.get("requests", {}).items():
        if requests:
            progress(f"  {requests} requests: {source}")
    train, holdout = time_split(data, params.holdout_fraction)
    if min(train.labelled_requests(), holdout.labelled_requests()) < params.min_labelled_requests:
        raise NotEnoughData(
            f"{train.labelled_requests()} training and {holdout.labelled_requests()} holdout "
            f"requests with outcomes; at least {params.min_labelled_requests} each are needed"
        )
    progress("Estimating the position bias...")
    bias = position_bias_of(train)
    progress(f"  examination ~ position^-{bias.eta:.2f} ({bias.method})")
    live = live_ranker(customer_id=customer_id, surface=surface)
    params, selection = choose(train, bias, params, customer_id, live)
    for row in selection:
        progress(
            f"  candidate {row['algorithm']} / {row['target']}: NDCG@10 {row[NDCG]:.4f}, "
            f"revenue per search {row[REVENUE]:.3f} on later training requests"
        )
    progress(f"Fitting {params.algorithm} ({params.target}) on {train.requests} requests...")
    fitted = fit_with(train, bias, params, customer_id)
    progress(f"Evaluating on the {holdout.requests} later requests...")
    metrics = evaluate(holdout, bias, fitted.scorer, live)
    report = {
        "provenance": data.provenance,
        "selection": selection,
        **feature_report(train, holdout, fitted, params),
    }
    words = comparison_words(metrics, report)
    report["comparison"] = words
    for line in words:
        progress(f"  {line}")
    with transaction.atomic():
        latest = (
            RankingModel.objects.for_customer(customer_id)
            .filter(surface=surface)
            .aggregate(Max("version"))["version__max"]
        )
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
            report=report,
            artifact_path=path,
            artifact_sha256=digest,
            created_by=created_by,
        )
    progress(f"Registered {model.label} as a candidate (artifact {path}).")
    return model


def _as_aware(value: np.datetime64) -> datetime:
    seconds = value.astype("datetime64[us]").astype(np.int64) / 1e6
    return datetime.fromtimestamp(float(seconds), tz=UTC)
