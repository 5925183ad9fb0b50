"""One ranking pass: features -> score -> rules -> order -> explanation."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace

import numpy as np

from ranking.engine.features import build_features, standardised_relevance
from ranking.engine.interleaving import (
    TEAM_B,
    interleaving_seed,
    position_scores,
    served_teams,
    team_draft,
)
from ranking.engine.ordering import order_by_score
from ranking.engine.records import (
    SCORE_TRANSFORM,
    Contribution,
    Explanation,
    Interleaving,
    MissingSignals,
    RankerConfig,
    RankInput,
    RankOutcome,
    RulesApplied,
)
from ranking.engine.scoring import Scorer
from ranking.signals.schema import FEATURES
from ranking.signals.store import SignalFetch, SignalStore, SignalStoreUnavailable


def rank_score(model_score: np.ndarray) -> np.ndarray:
    """The fixed monotone transform from model score to a positive rank score: the logistic
    sigmoid, 1 / (1 + exp(-s)), in (0, 1). Boosts and buries multiply this score."""
    return np.exp(-np.logaddexp(0.0, -model_score))


def _truncate(order: np.ndarray, limit: int | None) -> np.ndarray:
    return order if limit is None else order[:limit]


def rank_degraded(request: RankInput, config_name: str, reason: str | None = None) -> RankOutcome:
    """The best order without signals: by the retriever's relevance (items without one last),
    else as sent."""
    relevance = standardised_relevance(request.relevance)
    missing = np.isnan(request.relevance)
    if missing.all():
        order = np.arange(len(request.item_ids))
    else:
        relevance[missing] = relevance[~missing].min() - 1.0
        order = order_by_score(relevance, request.item_ids)
    order = _truncate(order, request.limit)
    missing_signals = MissingSignals(
        items_without_signals=len(request.item_ids),
        pairs_without_query_signals=len(request.item_ids) if request.query else 0,
        items_without_relevance=int(missing.sum()),
        shopper_known=False,
        signals_version=None,
    )
    return RankOutcome(
        order=order,
        scores=rank_score(relevance[order]),
        degraded=True,
        config=config_name,
        missing=missing_signals,
        features=None,
        degraded_reason=reason,
    )


def rank(
    request: RankInput,
    config: RankerConfig,
    store: SignalStore,
    customer_id: int,
    *,
    published: bool = False,
    request_id: str = "",
) -> RankOutcome:
    """Rank one request. `published`: the customer has had a signal version published, so a
    store without one lost its data (the answer is degraded, not ranked without signals).
    `request_id` seeds an interleaved request's coin flips (config.interleaving)."""
    started = time.perf_counter()
    # The matching rules are known before the read, so their attribute sets come in the same trip.
    rules = config.rules
    active = rules.matching(request) if rules is not None else []
    holdouts = None
    if rules is not None and active:
        active, holdouts = rules.hold_out(request, active)
    attribute_sets = rules.attribute_sets(active) if rules is not None else ()
    try:
        fetch = store.fetch(
            customer_id,
            request.item_ids,
            request.query,
            request.shopper_key,
            attribute_sets,
            published=published,
        )
    except SignalStoreUnavailable as exc:
        return rank_degraded(request, config.name, exc.reason)
    features, missing = build_features(request, fetch)
    featured = time.perf_counter()
    scorer = config.scorer
    model_scores = scorer.scores(features, fetch.meta)
    scores = rank_score(model_scores)
    drafted = None
    if config.interleaving is not None:
        # Interleaving happens before the rules, so hides, pins and slots hold as in any answer.
        drafted = _team_draft(request, config.interleaving, features, fetch, scores, request_id)
        scores = drafted.scores
    scored = time.perf_counter()
    if config.rules is None:
        base_order = order_by_score(scores, request.item_ids)
        applied = RulesApplied(order=base_order, scores=scores)
    else:
        applied = config.rules.apply(request, fetch, scores, active)
        base_order = order_by_score(scores, request.item_ids) if request.explain else applied.order
    swapped_at = None
    if config.exploration and not request.explain and drafted is None:
        applied, swapped_at = explore(applied, config.exploration)
    order = _truncate(applied.order, request.limit)
    ordered = time.perf_counter()
    stages = [
        ("features", featured - started),
        ("score", scored - featured),
        ("rules", ordered - scored),
    ]
    explanations = None
    teams = None
    if drafted is not None:
        teams = served_teams(order, drafted.team_b, applied.placed)
    if request.explain:
        if drafted is None:
            explanations = _explanations(
                request, scorer, fetch, features, model_scores, base_order, applied, order
            )
        else:
            explanations = _interleaved_explanations(
                request,
                scorer,
                drafted,
                fetch,
                features,
                model_scores,
                base_order,
                applied,
                order,
                teams or "",
            )
        stages.append(("explain", time.perf_counter() - ordered))
    return RankOutcome(
        order=order,
        scores=applied.scores[order],
        degraded=False,
        config=config.name,
        missing=missing,
        features=features,
        explanations=explanations,
        model=scorer.label
        if drafted is None
        else f"{scorer.label or 'config:' + config.name} + {drafted.treatment.label}",
        removed=applied.removed,
        stage_seconds=tuple(stages),
        variant=config.variant,
        experiment_id=config.experiment_id,
        layer_variants=config.layer_variants,
        swapped_at=swapped_at,
        rule_holdouts=holdouts,
        teams=teams,
    )


@dataclass(frozen=True)
class _Drafted:
    """A team-drafted request: the merged list's rank scores (per input item), each item's
    team, and B's model scores (for explanations)."""

    scores: np.ndarray
    team_b: np.ndarray  # per input item: True when B picked it
    treatment_scores: np.ndarray
    treatment: Scorer


def _team_draft(
    request: RankInput,
    interleaving: Interleaving,
    features: np.ndarray,
    fetch: SignalFetch,
    scores_a: np.ndarray,
    request_id: str,
) -> _Drafted:
    """Rank with B too, merge A's and B's orders by team draft, and give each item the rank
    score of its merged position (ranking/engine/interleaving.py)."""
    treatment = interleaving.treatment
    treatment_scores = treatment.scores(features, fetch.meta)
    scores_b = rank_score(treatment_scores)
    merged, picked_by_b = team_draft(
        order_by_score(scores_a, request.item_ids),
        order_by_score(scores_b, request.item_ids),
        interleaving_seed(interleaving.salt, request_id),
    )
    scores = np.empty(len(merged))
    scores[merged] = position_scores(scores_a, scores_b)
    team_b = np.empty(len(merged), dtype=bool)
    team_b[merged] = picked_by_b
    return _Drafted(scores, team_b, treatment_scores, treatment)


EXPLORE_TOP = 10
_exploration = random.Random()


def explore(applied: RulesApplied, share: float) -> tuple[RulesApplied, int | None]:
    """In `share` of requests, swap the items at positions k and k + 1 for a k drawn uniformly
    from the top 10 (intervention harvesting: docs/learning.md). Items a pin or slot placed
    never move. Returns the order and k (None when nothing moved)."""
    if _exploration.random() >= share:
        return applied, None
    k = _exploration.randint(1, EXPLORE_TOP - 1)
    order = applied.order
    if len(order) <= k:
        return applied, None
    # `placed`, not the rules' effects: those are recorded only when explaining, and exploration
    # runs only when not.
    if int(order[k - 1]) in applied.placed or int(order[k]) in applied.placed:
        return applied, None
    swapped = order.copy()
    swapped[k - 1], swapped[k] = order[k], order[k - 1]
    return replace(applied, order=swapped), k


def _explanations(
    request: RankInput,
    scorer: Scorer,
    fetch: SignalFetch,
    features: np.ndarray,
    model_scores: np.ndarray,
    base_order: np.ndarray,
    applied: RulesApplied,
    order: np.ndarray,
) -> tuple[Explanation, ...]:
    """Only for the returned items: exact contributions, rules' effects, position before rules."""
    positions = np.empty(len(base_order), dtype=np.int64)
    positions[base_order] = np.arange(1, len(base_order) + 1)
    base_values, contributions = scorer.contributions(features[order], fetch.meta)
    return tuple(
        Explanation(
            method=scorer.method,
            base_value=float(base_values[row]),
            contributions=tuple(
                Contribution(name, float(value), float(contribution))
                for name, value, contribution in zip(
                    FEATURES, features[index], contributions[row], strict=True
                )
            ),
            model_score=float(model_scores[index]),
            transform=SCORE_TRANSFORM,
            position_before_rules=int(positions[index]),
            rules=applied.effects.get(int(index), ()),
        )
        for row, index in enumerate(order)
    )


def _interleaved_explanations(
    request: RankInput,
    scorer: Scorer,
    drafted: _Drafted,
    fetch: SignalFetch,
    features: np.ndarray,
    model_scores: np.ndarray,
    base_order: np.ndarray,
    applied: RulesApplied,
    order: np.ndarray,
    teams: str,
) -> tuple[Explanation, ...]:
    """Each item explained by the model of the team that picked it (A's for an item a rule
    placed), its position before rules the merged list's; the transform names the team, since
    the served score is the merged position's, not the sigmoid of that model score."""
    treatment = _explanations(
        request,
        drafted.treatment,
        fetch,
        features,
        drafted.treatment_scores,
        base_order,
        applied,
        order,
    )
    control = _explanations(
        request, scorer, fetch, features, model_scores, base_order, applied, order
    )
    explained = []
    for row, team in enumerate(teams):
        picked = treatment[row] if team == TEAM_B else control[row]
        who = f"team {team}" if team != "-" else "placed by a rule, no team (A's model shown)"
        explained.append(replace(picked, transform=f"interleaved: {who}"))
    return tuple(explained)
