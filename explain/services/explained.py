"""One explained ranking: the candidates (pasted, a category's top items, or a logged request),
the ranker (live, without rules, the config's blend, a registry model), the engine run with
explanations on, and each returned item with its exact breakdown, top reason, bar and move
against the ranking without rules.

Everything is read for one customer, already checked visible to the caller (explain.views).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import numpy as np

from catalog.models import Item
from catalog.selectors import items_by_id
from events.queries import normalise_query, shopper_key
from explain import selectors
from explain.charts import DivergingBar, bar_scale, diverging_bar
from explain.reasons import mean_contributions, top_reasons
from merchandising.engine import RuleSet
from merchandising.loading import load_drafts, rule_set
from merchandising.preview import preview_candidates
from ranking.configs import blend_config
from ranking.engine.experiments import INTERLEAVED
from ranking.engine.pipeline import rank
from ranking.engine.records import (
    Contribution,
    Explanation,
    RankerConfig,
    RankInput,
    RankOutcome,
    RuleEffect,
)
from ranking.learning.artifacts import ArtifactRefused, scorer_load
from ranking.learning.rank_log import logged_relevance
from ranking.runtime import customer_runtime
from ranking.signals.backend import signal_store
from ranking.signals.schema import FEATURE_INDEX
from ranking.signals.store import SignalMeta, SignalStoreUnavailable

MAX_CANDIDATES = 500
# How many catalog items of a category are looked at to pick its most popular ones.
CATEGORY_SCAN = 5000
EXACT_TOLERANCE = 1e-6

RANKER_LIVE = "live"
RANKER_NO_RULES = "live-norules"
RANKER_BLEND = "blend"
# The live ranker with the customer's unpublished drafts added: what would serve once they are
# published (the workbench's "after"); not a choice of the explain form.
RANKER_DRAFTS = "live-drafts"
MODEL_PREFIX = "model-"

SOURCE_IDS = "ids"
SOURCE_CATEGORY = "category"
SOURCE_LOG = "log"

METHOD_TEXT = {
    "linear": "each contribution is a coefficient times the feature's standardised "
    "value; the base value is the intercept (0 for a config's blend)",
    "tree_shap": "LightGBM's own exact tree SHAP contributions; the base value is "
    "the model's expected score",
}
_POPULARITY = FEATURE_INDEX["popularity"]


class ExplainError(Exception):
    """The request cannot be explained as asked; `field` names the form field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ExplainParams:
    """What the form asks for, validated (explain.forms)."""

    customer_id: int
    surface: str
    query: str = ""
    category: str = ""
    user_id: str = ""
    context: dict[str, str] = field(default_factory=dict)
    at: datetime | None = None
    source: str = SOURCE_IDS
    ids: tuple[tuple[str, float | None], ...] = ()
    from_category: str = ""
    top_n: int = 50
    request_id: str = ""
    ranker: str = RANKER_LIVE


@dataclass(frozen=True)
class Candidates:
    surface: str
    query: str
    shopper_key: str
    item_ids: tuple[str, ...]
    relevance: np.ndarray
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ranker:
    key: str
    label: str
    config: RankerConfig


@dataclass(frozen=True)
class ExplainedItem:
    position: int
    item_id: str
    title: str
    brand: str
    price: Decimal | None
    in_catalog: bool
    rank_score: float  # after rules (boosts and buries multiply it)
    explanation: Explanation
    reason: str
    also: str = ""  # the second reason, if any
    bar: DivergingBar | None = None

    @property
    def model_score(self) -> float:
        return self.explanation.model_score

    @property
    def rank_score_before_rules(self) -> float:
        return sigmoid(self.explanation.model_score)

    @property
    def contributions(self) -> tuple[Contribution, ...]:
        return self.explanation.contributions

    @property
    def rules(self) -> tuple[RuleEffect, ...]:
        return self.explanation.rules

    @property
    def position_before_rules(self) -> int:
        return self.explanation.position_before_rules

    @property
    def move(self) -> str:
        """The move against the ranking without rules: ▲n up, ▼n down, = unchanged."""
        return position_move(self.position_before_rules, self.position)

    @property
    def residual(self) -> float:
        """model score - (base value + contributions): 0 up to float rounding when exact."""
        return breakdown_residual(self.explanation)

    @property
    def exact(self) -> bool:
        return abs(self.residual) <= EXACT_TOLERANCE


@dataclass(frozen=True)
class RemovedItem:
    item_id: str
    title: str
    rule_id: int
    reason: str


@dataclass(frozen=True)
class Explained:
    """One explained ranking: every returned item with its breakdown, and the hidden ones."""

    params: ExplainParams
    ranker: Ranker
    request: RankInput
    items: tuple[ExplainedItem, ...]
    removed: tuple[RemovedItem, ...]
    degraded: bool
    model: str | None
    notes: tuple[str, ...]
    # The customer's mean and standard deviation of each feature (schema order), if known.
    typical: np.ndarray | None = None
    spread: np.ndarray | None = None

    def item(self, item_id: str) -> ExplainedItem | None:
        return next((item for item in self.items if item.item_id == item_id), None)

    @property
    def method(self) -> str:
        return self.items[0].explanation.method if self.items else ""

    @property
    def method_text(self) -> str:
        return METHOD_TEXT.get(self.method, self.method)

    @property
    def largest_residual(self) -> float:
        return max((abs(item.residual) for item in self.items), default=0.0)

    @property
    def exact(self) -> bool:
        return self.largest_residual <= EXACT_TOLERANCE


def sigmoid(model_score: float) -> float:
    """The engine's transform (ranking.engine.pipeline.rank_score) for one score."""
    return math.exp(-float(np.logaddexp(0.0, -model_score)))


def breakdown_residual(explanation: Explanation) -> float:
    total = explanation.base_value + math.fsum(c.contribution for c in explanation.contributions)
    return explanation.model_score - total


def position_move(before: int, after: int) -> str:
    if before == after:
        return "="
    return f"▲{before - after}" if after < before else f"▼{after - before}"


# --- the candidates -----------------------------------------------------------------------------


def _category_candidates(params: ExplainParams) -> tuple[list[str], list[str]]:
    """The `top_n` most popular catalog items of the category (popularity signal, ties by id)."""
    item_ids = preview_candidates(
        customer_id=params.customer_id,
        query="",
        category=params.from_category,
        count=CATEGORY_SCAN,
    )
    if not item_ids:
        raise ExplainError("from_category", "No catalog item is in this category.")
    try:
        fetch = signal_store().fetch(params.customer_id, item_ids, "", "")
    except SignalStoreUnavailable:
        note = "The signal store did not answer: the category's first items by id stand in."
        return item_ids[: params.top_n], [note]
    popularity = fetch.item_records["signals"][:, _POPULARITY].astype(np.float64)
    order = np.lexsort((np.asarray(item_ids), -popularity))
    return [item_ids[index] for index in order[: params.top_n]], []


def candidates_resolve(params: ExplainParams) -> Candidates:
    """The candidates to rank, with the surface, query and shopper they are ranked for: the form's,
    or the logged request's when replaying one."""
    if params.source == SOURCE_LOG:
        logged = selectors.rank_log_of(customer_id=params.customer_id, request_id=params.request_id)
        if logged is None:
            raise ExplainError("request_id", "No logged request of this customer has this id.")
        relevance = logged_relevance(bytes(logged.features), len(logged.item_ids))
        note = (
            f"Replaying logged request {logged.request_id} of {logged.created_at:%Y-%m-%d %H:%M} "
            f"(served by {logged.model}): its surface, query, shopper and items, with the "
            "relevance as logged (standardised), ranked now by the ranker chosen."
        )
        log_notes = [note]
        if logged.variant == INTERLEAVED and logged.teams:
            picked = Counter(logged.teams)
            log_notes.append(
                f"It was served interleaved (experiment {logged.experiment_id}): the live "
                f"ranker's and B's orders merged by team draft, then the rules; of the "
                f"{len(logged.teams)} positions logged, A picked {picked['A']}, B picked "
                f"{picked['B']} and rules placed {picked['-']} (per position: {logged.teams}). "
                "The replay ranks with one ranker, so its order is not the one served."
            )
        return Candidates(
            surface=logged.surface,
            query=logged.query,
            shopper_key=logged.shopper_key,
            item_ids=tuple(logged.item_ids),
            relevance=relevance.astype(np.float64),
            notes=tuple(log_notes),
        )
    notes: list[str] = []
    if params.source == SOURCE_CATEGORY:
        item_ids, notes = _category_candidates(params)
        relevance = np.full(len(item_ids), np.nan)
    else:
        item_ids = [item_id for item_id, _ in params.ids]
        relevance = np.array([np.nan if r is None else r for _, r in params.ids], dtype=float)
    if not item_ids:
        raise ExplainError("ids", "Give at least one candidate item id.")
    if len(item_ids) > MAX_CANDIDATES:
        raise ExplainError("ids", f"At most {MAX_CANDIDATES} candidates; {len(item_ids)} given.")
    return Candidates(
        surface=params.surface,
        query=normalise_query(params.query),
        shopper_key=shopper_key(params.user_id, None),
        item_ids=tuple(item_ids),
        relevance=relevance,
        notes=tuple(notes),
    )


# --- the rankers --------------------------------------------------------------------------------


def ranker_choices(*, customer_id: int, surface: str | None) -> list[tuple[str, str]]:
    """What can be explained and compared: the live ranker (with and without rules), the config's
    blend, and each registry model of the customer that scores on the live schema."""
    choices = [
        (RANKER_LIVE, "live ranker (active model or blend, with rules)"),
        (RANKER_NO_RULES, "live ranker without rules"),
        (RANKER_BLEND, "the config's blend, no model (with rules)"),
    ]
    choices += [
        (f"{MODEL_PREFIX}{model.pk}", f"{model.surface} model {model.label} ({model.status})")
        for model in selectors.models_of(customer_id=customer_id, surface=surface)
    ]
    return choices


def ranker_build(*, customer_id: int, surface: str, key: str, field_name: str) -> Ranker:
    """The RankerConfig a choice stands for; every choice keeps the live rules but the one
    without rules."""
    live = customer_runtime(customer_id).config_for(surface)
    live_label = live.scorer.label or f"blend {live.name!r}"
    if key == RANKER_LIVE:
        return Ranker(key, f"live: {live_label}, with rules", live)
    if key == RANKER_NO_RULES:
        return Ranker(key, f"live: {live_label}, without rules", replace(live, rules=None))
    if key == RANKER_DRAFTS:
        serving = live.rules.rules if isinstance(live.rules, RuleSet) else ()
        rules = rule_set([*serving, *load_drafts(customer_id)]).for_surface(surface)
        label = f"live: {live_label}, with rules and the unpublished changes"
        return Ranker(key, label, replace(live, rules=rules if rules.rules else None))
    if key == RANKER_BLEND:
        blend = blend_config(customer_id=customer_id, surface=surface)
        label = f"blend {blend.name!r} (no model), with rules"
        return Ranker(key, label, replace(live, scorer=blend.scorer))
    model_id = key.removeprefix(MODEL_PREFIX)
    model = None
    if key.startswith(MODEL_PREFIX) and selectors.is_id(model_id):
        model = selectors.model_of(customer_id=customer_id, model_id=int(model_id))
    if model is None or model.surface != surface:
        raise ExplainError(field_name, f"No model of this customer's {surface} surface is {key!r}.")
    try:
        scorer = scorer_load(model)
    except ArtifactRefused as exc:
        raise ExplainError(field_name, str(exc)) from exc
    label = f"model {model.label} ({model.status}), with rules"
    return Ranker(key, label, replace(live, scorer=scorer))


# --- one explained ranking ----------------------------------------------------------------------


def explain_ranking(params: ExplainParams, *, ranker_key: str | None = None) -> Explained:
    """Rank the candidates with explanations on; every returned item gets its exact breakdown."""
    candidates = candidates_resolve(params)
    key = ranker_key or params.ranker
    ranker = ranker_build(
        customer_id=params.customer_id,
        surface=candidates.surface,
        key=key,
        field_name="ranker" if ranker_key is None else "compare",
    )
    request = RankInput(
        surface=candidates.surface,
        query=candidates.query,
        category=params.category,
        shopper_key=candidates.shopper_key,
        item_ids=candidates.item_ids,
        relevance=candidates.relevance,
        context=params.context,
        limit=None,
        explain=True,
        at=params.at,
    )
    outcome = rank(request, ranker.config, signal_store(), params.customer_id)
    meta = _current_meta(params.customer_id)
    typical = None if meta is None else meta.feature_mean
    spread = None if meta is None else meta.feature_std
    notes = list(candidates.notes)
    catalog = items_by_id(customer_id=params.customer_id, item_ids=list(request.item_ids))
    missing = [item_id for item_id in request.item_ids if item_id not in catalog]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        notes.append(f"{len(missing)} candidate(s) not in the catalog, ranked on defaults: {shown}")
    if outcome.degraded or outcome.explanations is None:
        notes.append("The signal store did not answer: no explanation can be computed now.")
        return Explained(params, ranker, request, (), (), True, outcome.model, tuple(notes))
    if outcome.missing.signals_version is None:
        notes.append("This shop has no signals yet: every item ranks on defaults.")

    items = explained_items(request, outcome, catalog, typical)
    removed = tuple(
        RemovedItem(
            item_id=request.item_ids[removal.index],
            title=catalog[request.item_ids[removal.index]].title
            if request.item_ids[removal.index] in catalog
            else "",
            rule_id=removal.rule_id,
            reason=removal.reason,
        )
        for removal in outcome.removed
    )
    return Explained(
        params,
        ranker,
        request,
        items,
        removed,
        False,
        outcome.model,
        tuple(notes),
        typical,
        spread,
    )


def explained_items(
    request: RankInput,
    outcome: RankOutcome,
    catalog: Mapping[str, Item],
    typical: np.ndarray | None,
) -> tuple[ExplainedItem, ...]:
    """The returned items, best first, each with its breakdown, top reason and bar (one scale
    for the whole table)."""
    assert outcome.explanations is not None
    # Reasons say what sets each item apart from the others returned (docs/explain.md).
    among = mean_contributions([e.contributions for e in outcome.explanations])
    items = []
    for position, (index, score, explanation) in enumerate(
        zip(outcome.order.tolist(), outcome.scores.tolist(), outcome.explanations, strict=True), 1
    ):
        item_id = request.item_ids[index]
        item = catalog.get(item_id)
        reasons = top_reasons(explanation.contributions, typical, 2, among)
        items.append(
            ExplainedItem(
                position=position,
                item_id=item_id,
                title=item.title if item else "(not in the catalog)",
                brand=item.brand if item else "",
                price=item.price if item else None,
                in_catalog=item is not None,
                rank_score=float(score),
                explanation=explanation,
                reason=reasons[0] if reasons else "close to a typical item on every feature",
                also=reasons[1] if len(reasons) > 1 else "",
            )
        )
    scale = bar_scale([item.contributions for item in items])
    return tuple(replace(item, bar=diverging_bar(item.contributions, scale)) for item in items)


def _current_meta(customer_id: int) -> SignalMeta | None:
    """The current signal version's meta (typical values), None when unknown or unreachable."""
    try:
        return signal_store().current_meta(customer_id)
    except SignalStoreUnavailable:
        return None


def parse_candidates(text: str) -> tuple[tuple[str, float | None], ...]:
    """Pasted candidates: one per line or comma-separated, each `id` or `id relevance`."""
    result: list[tuple[str, float | None]] = []
    seen: set[str] = set()
    for chunk in text.replace(",", "\n").splitlines():
        words = chunk.split()
        if not words:
            continue
        if len(words) > 2:
            raise ValueError(f"{chunk.strip()!r}: write an id, optionally followed by a relevance.")
        relevance = None
        if len(words) == 2:
            try:
                relevance = float(words[1])
            except ValueError:
                raise ValueError(f"{chunk.strip()!r}: the relevance must be a number.") from None
            if not math.isfinite(relevance):
                raise ValueError(f"{chunk.strip()!r}: the relevance must be finite.")
        if words[0] in seen:
            raise ValueError(f"{words[0]!r} appears twice.")
        seen.add(words[0])
        result.append((words[0], relevance))
    return tuple(result)


def neighbours(
    items: Sequence[ExplainedItem],
) -> list[tuple[ExplainedItem, ExplainedItem | None]]:
    """Each item with the one just below it, None for the last (the "why above" links)."""
    below: list[ExplainedItem | None] = [*items[1:], None]
    return list(zip(items, below, strict=False))
