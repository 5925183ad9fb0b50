"""The feature matrix's computed columns (ranking/engine/features.py, ranking/signals/shopper.py)
against plain references: the relevance's z-scores bit for bit as numpy's mean() and std() give
them, and the shopper's recent items and price gap item by item."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ranking.engine.features import standardised_relevance
from ranking.signals.schema import MAX_ITEM_CATEGORIES, SHOPPER_FEATURES
from ranking.signals.shopper import ItemCodes, ShopperProfile, shopper_columns

VIEWED = SHOPPER_FEATURES.index("user_recently_viewed")
PURCHASED = SHOPPER_FEATURES.index("user_purchased")
PRICE_GAP = SHOPPER_FEATURES.index("user_price_gap")

relevances = st.lists(
    st.one_of(
        st.just(math.nan),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
        st.sampled_from([0.0, 1.0, 1e-300, 3.5]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(relevances)
def test_relevance_z_scores_are_numpys_mean_and_std_bit_for_bit(values: list[float]) -> None:
    relevance = np.array(values, dtype=np.float64)
    given_ = ~np.isnan(relevance)
    expected = np.zeros(len(relevance))
    if given_.sum() >= 2:
        known = relevance[given_]
        if known.std() > 0:
            expected[given_] = (known - known.mean()) / known.std()

    assert standardised_relevance(relevance).tobytes() == expected.tobytes()


CATEGORIES = ("shoes", "shoes/running", "shoes/trail", "bags", "hats")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([f"sku-{n}" for n in range(12)]), min_size=1, max_size=30),
    st.frozensets(st.sampled_from([f"sku-{n}" for n in range(16)]), max_size=6),
    st.frozensets(st.sampled_from([f"sku-{n}" for n in range(16)]), max_size=6),
    st.dictionaries(
        st.sampled_from(CATEGORIES), st.one_of(st.just(0.0), st.floats(0.01, 5.0)), max_size=5
    ),
    st.data(),
)
def test_recent_items_and_price_gap_are_those_of_each_item(
    item_ids: list[str],
    viewed: frozenset[str],
    purchased: frozenset[str],
    price_weights: dict[str, float],
    data: st.DataObject,
) -> None:
    """An item is marked viewed or purchased exactly when the profile holds it; its price gap is
    its log price minus the shopper's usual price in its most specific category that has one, 0
    where none has."""
    k = len(item_ids)
    index = {name: code for code, name in enumerate(CATEGORIES)}
    codes = np.array(
        data.draw(
            st.lists(
                st.lists(
                    st.integers(-1, len(CATEGORIES) - 1),
                    min_size=MAX_ITEM_CATEGORIES,
                    max_size=MAX_ITEM_CATEGORIES,
                ),
                min_size=k,
                max_size=k,
            )
        ),
        dtype=np.int32,
    )
    log_price = np.array(data.draw(st.lists(st.floats(0.0, 8.0), min_size=k, max_size=k)))
    price_sums = {name: weight * 2.5 + 0.25 for name, weight in price_weights.items()}
    profile = ShopperProfile(
        total_weight=1.0,
        price_sums=price_sums,
        price_weights=price_weights,
        recently_viewed=viewed,
        purchased=purchased,
    )
    items = ItemCodes(
        item_ids=tuple(item_ids),
        brand=np.full(k, -1),
        categories=codes,
        log_price=log_price,
        brand_index={},
        category_index=index,
    )

    columns = shopper_columns(profile, items, now=0.0)

    assert columns[:, VIEWED].tolist() == [float(item in viewed) for item in item_ids]
    assert columns[:, PURCHASED].tolist() == [float(item in purchased) for item in item_ids]
    for row in range(k):
        usual = [
            price_sums[CATEGORIES[code]] / price_weights[CATEGORIES[code]]
            for code in codes[row]
            if code >= 0 and price_weights.get(CATEGORIES[code], 0.0) > 0
        ]
        expected = log_price[row] - usual[0] if usual else 0.0
        assert columns[row, PRICE_GAP] == expected


def test_an_infinite_usual_price_gives_the_gap_to_the_largest_float() -> None:
    """A usual price that overflows (a weight too small to divide by) counts as the largest
    float, as it always has, not as infinity."""
    profile = ShopperProfile(
        total_weight=1.0,
        price_sums={"shoes": 1.0, "bags": -1.0},
        price_weights={"shoes": 5e-324, "bags": 5e-324},
    )
    codes = np.full((3, MAX_ITEM_CATEGORIES), -1, dtype=np.int32)
    codes[0, 0], codes[1, 0] = 0, 1
    items = ItemCodes(
        item_ids=("a", "b", "c"),
        brand=np.full(3, -1),
        categories=codes,
        log_price=np.array([2.0, 2.0, 2.0]),
        brand_index={},
        category_index={"shoes": 0, "bags": 1},
    )

    gap = shopper_columns(profile, items, now=0.0)[:, PRICE_GAP]

    largest = np.finfo(np.float64).max
    assert gap.tolist() == [2.0 - largest, 2.0 + largest, 0.0]
