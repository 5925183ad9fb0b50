"""Property tests: for random requests, every explanation the engine returns is exact (base value
plus contributions = model score within 1e-6) for the config's blend, a linear model and a
LambdaMART model; and "why is A above B" splits the model-score gap exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from explain import services
from ranking.configs import DEFAULT_CONFIGS
from ranking.engine.pipeline import rank, rank_score
from ranking.engine.records import RankerConfig, RankInput
from ranking.engine.scoring import BlendScorer, Scorer
from ranking.learning.propensity import PositionBias
from ranking.learning.scorers import LinearModelScorer
from ranking.learning.training import TrainingParams, TrainingSet, fit_lambdamart
from ranking.signals.schema import (
    FEATURE_INDEX,
    FEATURES,
    ITEM_RECORD,
    N_ITEM,
    QUERY_FEATURES,
    QUERY_RECORD,
    SCHEMA_HASH,
)
from ranking.signals.store import ShopperProfile, SignalFetch, SignalMeta

F = len(FEATURES)
BRANDS = ("acme", "zeta", "nova")
CATEGORIES = ("shoes", "shoes/running", "socks")
EXACT = 1e-6


@dataclass
class FixedStore:
    """A signal store that answers every fetch with the same records (the engine reads only
    `fetch`)."""

    result: SignalFetch

    def fetch(self, customer_id: int, item_ids: Any, *args: Any, **kwargs: Any) -> SignalFetch:
        return self.result


def lambdamart_scorer() -> Scorer:
    """A small LambdaMART model whose trees split on several features."""
    rng = np.random.default_rng(11)
    rows = 600
    features = rng.normal(size=(rows, F)).astype(np.float32)
    utility = (
        features[:, FEATURE_INDEX["relevance"]]
        + 0.8 * features[:, FEATURE_INDEX["query_ctr"]]
        - 0.5 * features[:, FEATURE_INDEX["price"]]
        + 0.6 * features[:, FEATURE_INDEX["user_brand_affinity"]]
    )
    data = TrainingSet(
        features=features,
        labels=np.digitize(utility, [0.5, 1.5]).astype(np.int32),
        revenue=np.zeros(rows),
        positions=np.tile(np.arange(1, 11), rows // 10).astype(np.int32),
        item_codes=np.arange(rows),
        group_starts=np.arange(0, rows, 10),
        request_times=np.arange(rows // 10).astype("datetime64[s]").astype("datetime64[us]"),
    )
    params = TrainingParams(rounds=30, min_data_in_leaf=5, num_leaves=15)
    return fit_lambdamart(data, PositionBias(np.ones(10), 0.0, 0), params).scorer


@pytest.fixture(scope="module")
def tree_scorer() -> Scorer:
    return lambdamart_scorer()


def meta_for(mean: np.ndarray, std: np.ndarray) -> SignalMeta:
    return SignalMeta(
        version=1,
        created_at="2026-11-27T00:00:00Z",
        schema_hash=SCHEMA_HASH,
        default_item=np.zeros(1, dtype=ITEM_RECORD)[0],
        feature_mean=mean,
        feature_std=std,
        brands=BRANDS,
        categories=CATEGORIES,
        stats={},
    )


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@st.composite
def requests(draw: st.DrawFn) -> tuple[RankInput, SignalFetch]:
    k = draw(st.integers(1, 25))
    signals = draw(hnp.arrays(np.float32, (k, N_ITEM), elements=finite))
    records = np.zeros(k, dtype=ITEM_RECORD)
    records["signals"] = signals
    records["brand"] = draw(hnp.arrays(np.int32, k, elements=st.integers(-1, len(BRANDS) - 1)))
    records["categories"] = -1
    records["categories"][:, 0] = draw(
        hnp.arrays(np.int32, k, elements=st.integers(-1, len(CATEGORIES) - 1))
    )
    query_found = draw(hnp.arrays(np.bool_, k))
    query_records = np.zeros(k, dtype=QUERY_RECORD)
    query_records["signals"] = draw(
        hnp.arrays(np.float32, (k, len(QUERY_FEATURES)), elements=finite)
    )
    relevance = draw(
        hnp.arrays(np.float64, k, elements=st.one_of(st.just(np.nan), st.floats(-50, 50)))
    )
    mean = draw(hnp.arrays(np.float64, F, elements=st.floats(-10, 10)))
    std = draw(hnp.arrays(np.float64, F, elements=st.floats(0.01, 100)))
    weights = draw(st.dictionaries(st.sampled_from(BRANDS), st.floats(0.1, 10), max_size=3))
    item_ids = tuple(f"sku-{n:03d}" for n in range(k))
    profile = ShopperProfile(
        brand_weights=weights,
        category_weights={"shoes": 2.0} if weights else {},
        total_weight=sum(weights.values()) + (2.0 if weights else 0.0),
        recently_viewed=frozenset(item_ids[: draw(st.integers(0, k))]),
    )
    fetch = SignalFetch(
        meta=meta_for(mean, std),
        item_records=records,
        item_found=np.ones(k, dtype=bool),
        query_records=query_records,
        query_found=query_found,
        shopper=profile,
    )
    request = RankInput(
        surface="search",
        query="shoes",
        category="",
        shopper_key="u:someone" if weights else "",
        item_ids=item_ids,
        relevance=relevance,
        limit=draw(st.one_of(st.none(), st.integers(1, k))),
        explain=True,
    )
    return request, fetch


@st.composite
def linear_scorers(draw: st.DrawFn) -> Scorer:
    return LinearModelScorer(
        coef=draw(hnp.arrays(np.float64, F, elements=st.floats(-5, 5))),
        mean=draw(hnp.arrays(np.float64, F, elements=st.floats(-10, 10))),
        std=draw(hnp.arrays(np.float64, F, elements=st.floats(0.01, 100))),
        intercept=draw(st.floats(-5, 5)),
        label="linear@1",
    )


def assert_exact(request: RankInput, fetch: SignalFetch, scorer: Scorer, method: str) -> None:
    config = RankerConfig(name="default", surface="search", scorer=scorer)
    outcome = rank(request, config, FixedStore(fetch), customer_id=1)  # type: ignore[arg-type]

    assert outcome.explanations is not None
    assert len(outcome.explanations) == len(outcome.order)  # only the returned items
    assert outcome.features is not None
    expected_scores = scorer.scores(outcome.features[outcome.order], fetch.meta)
    for explanation, expected, score in zip(
        outcome.explanations, expected_scores, outcome.scores, strict=True
    ):
        assert explanation.method == method
        assert [c.feature for c in explanation.contributions] == list(FEATURES)
        total = explanation.base_value + sum(c.contribution for c in explanation.contributions)
        assert total == pytest.approx(explanation.model_score, abs=EXACT, rel=0)
        # Equal up to the rounding of a different summation order (BLAS on another shape): one
        # part in 10^12 of the score, which reaches millions for some drawn weights.
        assert explanation.model_score == pytest.approx(expected, rel=1e-12, abs=1e-9)
        assert score == pytest.approx(rank_score(np.array([explanation.model_score]))[0])
        assert explanation.transform == "sigmoid"

    # "Why A above B": the per-feature gaps plus the base values' gap are the model-score gap.
    items = services.explained_items(request, outcome, {}, fetch.meta.feature_mean)
    assert all(item.exact for item in items)
    explained = services.Explained(
        params=services.ExplainParams(customer_id=1, surface="search"),
        ranker=services.Ranker("live", "test", config),
        request=request,
        items=items,
        removed=(),
        degraded=False,
        model=scorer.label,
        notes=(),
    )
    for a, b in zip(items, reversed(items), strict=True):
        if a.item_id == b.item_id:
            continue
        why = services.why_above(explained, a.item_id, b.item_id)
        assert why.model_score_gap == a.model_score - b.model_score
        assert why.explained_gap == pytest.approx(why.model_score_gap, abs=EXACT, rel=0)
        assert abs(why.residual) <= EXACT
        assert why.a_above == (a.position < b.position)


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(case=requests(), weights=hnp.arrays(np.float64, F, elements=st.floats(-10, 10)))
def test_the_blend_of_a_config_without_a_model_explains_exactly_as_linear(
    case: tuple[RankInput, SignalFetch], weights: np.ndarray
) -> None:
    request, fetch = case
    assert_exact(request, fetch, BlendScorer(weights), "linear")


@PROPERTY
@given(case=requests())
def test_the_default_blends_explain_exactly(case: tuple[RankInput, SignalFetch]) -> None:
    request, fetch = case
    for config in DEFAULT_CONFIGS.values():
        assert_exact(request, fetch, config.scorer, "linear")


@PROPERTY
@given(case=requests(), scorer=linear_scorers())
def test_a_linear_model_explains_exactly_with_its_intercept_as_base(
    case: tuple[RankInput, SignalFetch], scorer: LinearModelScorer
) -> None:
    request, fetch = case
    assert_exact(request, fetch, scorer, "linear")
    bases, _ = scorer.contributions(np.zeros((2, F)), None)
    assert bases.tolist() == [scorer.intercept, scorer.intercept]


@PROPERTY
@given(case=requests())
def test_a_lambdamart_model_explains_exactly_with_tree_shap(
    case: tuple[RankInput, SignalFetch], tree_scorer: Scorer
) -> None:
    request, fetch = case
    assert_exact(request, fetch, tree_scorer, "tree_shap")
