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
