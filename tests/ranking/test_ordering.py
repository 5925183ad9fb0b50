"""The engine's ordering: best score first, equal scores by item id, whatever the input order."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ranking.engine.ordering import order_by_score


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=4), st.sampled_from([0.1, 0.5, 0.9])),
        min_size=1,
        max_size=30,
        unique_by=lambda pair: pair[0],
    )
)
def test_equal_scores_are_ordered_by_item_id(pairs: list[tuple[str, float]]) -> None:
    ids = [item_id for item_id, _ in pairs]
    scores = np.array([score for _, score in pairs])

    order = order_by_score(scores, ids).tolist()

    assert [ids[i] for i in order] == [i for i, _ in sorted(pairs, key=lambda p: (-p[1], p[0]))]


def test_a_subset_is_ordered_among_itself() -> None:
    scores = np.array([0.3, 0.9, 0.3, 0.1])

    assert order_by_score(scores, ["d", "c", "b", "a"], np.array([0, 2, 3])).tolist() == [2, 0, 3]


def reference(scores: np.ndarray, ids: list[str], candidates: list[int] | None) -> list[int]:
    """Best score first, equal scores by id; NaN scores last, in the order given."""
    given = list(range(len(ids))) if candidates is None else candidates
    scored = [i for i in given if not np.isnan(scores[i])]
    return sorted(scored, key=lambda i: (-scores[i], ids[i])) + [
        i for i in given if np.isnan(scores[i])
    ]


@given(
    st.lists(
        st.tuples(
            st.text(max_size=3),  # NUL and the empty id included
            st.sampled_from([0.0, -0.0, 1.5, -2.0, float("nan"), float("inf"), -float("inf")])
            | st.floats(),
        ),
        min_size=1,
        max_size=60,
        unique_by=lambda pair: pair[0],
    ),
    st.data(),
)
def test_the_order_is_the_reference_order_with_ties_nan_and_subsets(
    pairs: list[tuple[str, float]], data: st.DataObject
) -> None:
    ids = [item_id for item_id, _ in pairs]
    scores = np.array([score for _, score in pairs])
    candidates = data.draw(
        st.none() | st.lists(st.sampled_from(range(len(ids))), unique=True, min_size=1)
    )
    subset = None if candidates is None else np.array(candidates, dtype=np.intp)

    order = order_by_score(scores, ids, subset)

    assert order.tolist() == reference(scores, ids, candidates)
    assert order.dtype == np.intp


def test_nan_scores_keep_their_order_among_a_thousand_candidates() -> None:
    # The degraded order is by relevance, which is NaN where the retriever sent none.
    rng = np.random.default_rng(3)
    scores = rng.choice([np.nan, 1.0, 2.0, 3.0], size=1000) + rng.normal(0, 1, 1000).round(1)
    ids = [f"sku-{n}" for n in rng.permutation(1000)]

    order = order_by_score(scores, ids)

    assert order.tolist() == reference(scores, ids, None)
