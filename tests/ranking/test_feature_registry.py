"""The feature registry: the schema, the refresh and the explanations all read one entry per
feature, and what trained models and stored signal versions depend on does not move."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from customers.models import Customer
from events.models import Event
from explain.reasons import phrase
from explain.units import feature_name, shown_value
from ranking.configs import DEFAULT_WEIGHTS
from ranking.signals import refresh
from ranking.signals.counts import CARTS, decay
from ranking.signals.features import (
    BY_NAME,
    REGISTRY,
    Family,
    Feature,
    ItemInputs,
    Unit,
    short_count,
)
from ranking.signals.schema import FEATURES, N_ITEM, SCHEMA_HASH, build_schema
from tests.factories import CustomerFactory, ItemFactory

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FROZEN_SNAPSHOT = Path(__file__).parent / "data" / "snapshot_before_feature_registry.json"

# Trained models and stored signal versions carry this hash: a change of a name, of the order or
# of the categories kept per item makes every one of them unusable until retrained.
PINNED_SCHEMA_HASH = "054c28e98e2d2470"
PINNED_FEATURES = (
    "ctr",
    "add_to_cart_rate",
    "conversion_rate",
    "revenue_per_impression",
    "popularity",
    "trend",
    "impressions_long",
    "clicks_long",
    "add_to_carts_long",
    "purchases_long",
    "revenue_long",
    "impressions_short",
    "clicks_short",
    "purchases_short",
    "price",
    "price_percentile",
    "freshness",
    "in_stock",
    "query_ctr",
    "query_conversion_rate",
    "user_category_affinity",
    "user_brand_affinity",
    "user_price_gap",
    "user_recently_viewed",
    "user_purchased",
    "session_category_affinity",
    "session_brand_affinity",
    "relevance",
)


def test_the_schema_keeps_its_names_order_and_hash() -> None:
    assert FEATURES == PINNED_FEATURES
    assert SCHEMA_HASH == PINNED_SCHEMA_HASH


def _events(customer: Any, item_id: str, kind: str, count: int, days_ago: float, **extra: Any):
    Event.objects.bulk_create(
        Event(
            customer=customer,
            event_id=f"{item_id}-{kind}-{days_ago}-{extra}-{n}",
            type=kind,
            item_id=item_id,
            occurred_at=NOW - timedelta(days=days_ago),
            **extra,
        )
        for n in range(count)
    )


def small_shop() -> Customer:
    """A small shop: catalog items with and without events, an item with events and no catalog
    entry, query pairs kept and dropped."""
    customer = CustomerFactory()
    for n, (price, categories) in enumerate(
        [(10, ["shoes", "shoes/running"]), (80, ["shoes", "shoes/running"]), (35, ["shoes"])]
    ):
        ItemFactory(
            customer=customer,
            external_id=f"s{n}",
            price=price,
            brand=f"brand-{n % 2}",
            categories=categories,
            created_at=NOW - timedelta(days=20 * n),
        )
    ItemFactory(customer=customer, external_id="quiet", price=None, in_stock=False, brand="")
    for days_ago in (0.2, 2.5, 6, 15, 60):
        _events(customer, "s0", "impression", 30, days_ago, query="trail", position=2)
        _events(customer, "s0", "click", 4, days_ago, query="trail")
        _events(customer, "s1", "impression", 20, days_ago, query="trail", position=1)
        _events(customer, "s1", "add_to_cart", 2, days_ago)
        _events(customer, "s1", "purchase", 1, days_ago, revenue=80.0, price=80.0, query="trail")
        _events(customer, "s2", "impression", 12, days_ago, position=5)
        _events(customer, "ghost", "impression", 6, days_ago, query="hats")
    _events(customer, "ghost", "click", 1, 3, query="hats")
    _events(customer, "s2", "impression", 2, 1, query="rare")
    return customer


def small_shop_snapshot() -> dict[str, Any]:
    """A refresh of the small shop, as plain numbers."""
    snapshot, _ = refresh.compute_snapshot(customer_id=small_shop().pk, version=1, now=NOW)
    meta = snapshot.meta
    records = snapshot.item_records
    # Keyed by id and by name: the catalog's row order (and so the codes) is the database's.
    items = {
        item_id: {
            "signals": records["signals"][row].tolist(),
            "brand": meta.brands[records["brand"][row]] if records["brand"][row] >= 0 else None,
            "categories": [
                meta.categories[code] for code in records["categories"][row] if code >= 0
            ],
        }
        for row, item_id in enumerate(snapshot.item_ids)
    }
    pairs = dict(zip(snapshot.query_keys, snapshot.query_records["signals"].tolist(), strict=True))
    return {
        "items": items,
        "query_pairs": {
            f"{query}|{item_id}": pairs[query, item_id] for query, item_id in sorted(pairs)
        },
        "default_item": meta.default_item["signals"].tolist(),
        "feature_mean": meta.feature_mean.tolist(),
        "feature_std": meta.feature_std.tolist(),
        "stats": meta.stats,
        "schema_hash": meta.schema_hash,
    }


def _assert_same_numbers(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, list):
        assert isinstance(actual, list), where
        assert len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same_numbers(a, e, f"{where}[{index}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert set(actual) == set(expected), where
        for key, e in expected.items():
            _assert_same_numbers(actual[key], e, f"{where}.{key}")
    elif isinstance(expected, float):
        # PostgreSQL decays in SQL, SQLite in numpy: the two agree to float rounding.
        assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-7), where
    else:
        assert actual == expected, where


@pytest.mark.django_db
def test_the_refresh_gives_the_numbers_it_gave_before_the_registry() -> None:
    """The refresh was split along the feature registry: a small shop's signal version (records,
    defaults, statistics, query pairs) is what the function before the split computed."""
    expected = json.loads(FROZEN_SNAPSHOT.read_text())

    _assert_same_numbers(small_shop_snapshot(), expected, "snapshot")


def _random_inputs(rows: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    long_counts = rng.gamma(1.0, 20.0, size=(rows, refresh.COLUMNS))
    long_counts[rng.random(rows) < 0.2] = 0.0
    short_counts = long_counts * rng.random((rows, refresh.COLUMNS))
    prices = rng.gamma(2.0, 30.0, size=rows)
    prices[rng.random(rows) < 0.2] = np.nan
    return {
        "short_counts": short_counts,
        "long_counts": long_counts,
        "prices": prices,
        "price_percentile": rng.random(rows),
        "median_price": float(np.nanmedian(prices)),
        "freshness": rng.random(rows),
        "in_stock": (rng.random(rows) < 0.8).astype(float),
    }


@pytest.mark.parametrize("per_row_priors", [False, True])
def test_item_signals_are_bit_for_bit_those_of_the_frozen_computation(
    per_row_priors: bool,
) -> None:
    """Fixed random counts and catalog values, with customer priors (the refresh) or one prior per
    row (training's past moments): the item signals and the unknown item's equal, bit for bit,
    those of a frozen copy of the functions before the split."""
    inputs = _random_inputs(300, seed=17)
    priors = refresh.customer_priors(inputs["long_counts"].sum(axis=0))
    if per_row_priors:
        priors = refresh.customer_priors(
            np.cumsum(inputs["long_counts"], axis=0)[::-1] + np.arange(300)[:, None]
        )

    signals = refresh.item_signal_matrix(ItemInputs(priors=priors, **inputs))
    defaults = refresh.default_item_signals(priors, inputs["median_price"])

    np.testing.assert_array_equal(signals, _frozen_item_signal_matrix(priors=priors, **inputs))
    np.testing.assert_array_equal(
        defaults, _frozen_default_item_signals(priors, inputs["median_price"])
    )


# The item signals as ranking/signals/refresh.py computed them before the feature registry
# (commit 9502241), kept verbatim as the reference the registry's computation must equal.
_FROZEN_ITEM_FEATURES = PINNED_FEATURES[:18]


def _frozen_smoothed(
    successes: np.ndarray, trials: np.ndarray, prior: np.ndarray | float, m: float
) -> np.ndarray:
    return np.minimum((successes + prior * m) / (trials + m), 1.0)


def _frozen_item_signal_matrix(
    *,
    short_counts: np.ndarray,
    long_counts: np.ndarray,
    priors: dict[str, np.ndarray],
    prices: np.ndarray,
    price_percentile: np.ndarray,
    median_price: float,
    freshness: np.ndarray,
    in_stock: np.ndarray,
) -> np.ndarray:
    clicks, carts, purchases, impressions_col, revenue, examined = 1, 2, 3, 0, 4, 5
    prior_strength = 50.0
    n = len(long_counts)
    impressions = long_counts[:, examined]
    signals = np.zeros((n, len(_FROZEN_ITEM_FEATURES)))
    column = {name: index for index, name in enumerate(_FROZEN_ITEM_FEATURES)}
    for name, counts_column in (
        ("ctr", clicks),
        ("add_to_cart_rate", carts),
        ("conversion_rate", purchases),
    ):
        signals[:, column[name]] = _frozen_smoothed(
            long_counts[:, counts_column], impressions, priors[name], prior_strength
        )
    signals[:, column["revenue_per_impression"]] = (
        long_counts[:, revenue] + priors["revenue_per_impression"] * prior_strength
    ) / (impressions + prior_strength)

    def engagement(counts: np.ndarray) -> np.ndarray:
        return counts[:, clicks] * 1.0 + counts[:, carts] * 3.0 + counts[:, purchases] * 10.0

    def effective_days(window_days: int, half_life: float) -> float:
        return float(np.sum(np.power(0.5, np.arange(window_days) / half_life)))

    signals[:, column["popularity"]] = np.log1p(engagement(long_counts))
    short_rate = engagement(short_counts) / effective_days(7, 2.0)
    long_rate = engagement(long_counts) / effective_days(90, 14.0)
    signals[:, column["trend"]] = np.log1p(short_rate) - np.log1p(long_rate)
    for name, counts, col in (
        ("impressions_long", long_counts, impressions_col),
        ("clicks_long", long_counts, clicks),
        ("add_to_carts_long", long_counts, carts),
        ("purchases_long", long_counts, purchases),
        ("revenue_long", long_counts, revenue),
        ("impressions_short", short_counts, impressions_col),
        ("clicks_short", short_counts, clicks),
        ("purchases_short", short_counts, purchases),
    ):
        signals[:, column[name]] = np.log1p(counts[:, col])
    signals[:, column["price"]] = np.log1p(np.where(np.isnan(prices), median_price, prices))
    signals[:, column["price_percentile"]] = price_percentile
    signals[:, column["freshness"]] = freshness
    signals[:, column["in_stock"]] = in_stock
    return signals


def _frozen_default_item_signals(priors: dict[str, np.ndarray], median_price: float) -> np.ndarray:
    shape = np.shape(priors["ctr"])
    defaults = np.zeros((*shape, len(_FROZEN_ITEM_FEATURES)))
    column = {name: index for index, name in enumerate(_FROZEN_ITEM_FEATURES)}
    for name, value in priors.items():
        defaults[..., column[name]] = value
    defaults[..., column["price"]] = math.log1p(median_price)
    defaults[..., column["price_percentile"]] = 0.5
    defaults[..., column["in_stock"]] = 1.0
    return defaults


# A feature as a new one would be added: one registry entry, its computation given by a helper.
ADDED = Feature(
    "add_to_carts_short",
    Family.ITEM_COUNT,
    "add-to-carts, 7 days",
    Unit.LOG_COUNT,
    "often carted recently",
    "seldom carted recently",
    compute=short_count(CARTS),
)


@pytest.mark.django_db
def test_a_feature_added_to_the_registry_reaches_every_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One entry more in the registry: the schema's columns, the refresh's records, defaults and
    statistics, and the explain pages' name, unit and reasons follow, with no other change."""
    registry = (*REGISTRY[:N_ITEM], ADDED, *REGISTRY[N_ITEM:])

    schema = build_schema(registry)

    assert schema.names == (*FEATURES[:N_ITEM], "add_to_carts_short", *FEATURES[N_ITEM:])
    assert schema.names[-1] == "relevance"
    assert schema.item_record["signals"].shape == (N_ITEM + 1,)
    assert schema.query_slice == slice(N_ITEM + 1, N_ITEM + 3)
    assert schema.hash != SCHEMA_HASH

    customer = small_shop()
    before, _ = refresh.compute_snapshot(customer_id=customer.pk, version=1, now=NOW)
    after, _ = refresh.compute_snapshot(customer_id=customer.pk, version=2, now=NOW, schema=schema)

    assert after.meta.schema_hash == schema.hash
    assert after.item_records["signals"].shape == (len(before.item_ids), N_ITEM + 1)
    np.testing.assert_array_equal(
        after.item_records["signals"][:, :N_ITEM], before.item_records["signals"]
    )
    s1 = after.item_ids.index("s1")
    # Two carts 0.2, 2.5 and 6 days before noon: 0, 2 and 6 calendar days old.
    carts_in_a_week = decay(np.array([0.0, 2.0, 6.0]), 7, 2.0).sum() * 2
    assert after.item_records["signals"][s1, N_ITEM] == pytest.approx(math.log1p(carts_in_a_week))
    assert after.meta.default_item["signals"][N_ITEM] == 0.0
    assert len(after.meta.feature_mean) == len(after.meta.feature_std) == len(FEATURES) + 1
    np.testing.assert_array_equal(after.query_records, before.query_records)

    monkeypatch.setitem(BY_NAME, ADDED.name, ADDED)
    assert feature_name(ADDED.name) == "add-to-carts, 7 days"
    assert shown_value(ADDED.name, math.log1p(12.0)) == "12"
    assert phrase(ADDED.name, 0.4, 2.0, 1.0) == "often carted recently"
    assert phrase(ADDED.name, -0.4, 0.5, 1.0) == "seldom carted recently"


def test_the_registry_refuses_features_out_of_their_block_or_twice() -> None:
    with pytest.raises(ValueError, match="blocks"):
        build_schema((*REGISTRY, ADDED))
    with pytest.raises(ValueError, match="unique"):
        build_schema((*REGISTRY[:N_ITEM], REGISTRY[0], *REGISTRY[N_ITEM:]))
    with pytest.raises(ValueError, match="rate or a computation"):
        Feature("wishes", Family.ITEM_COUNT, "wishes", Unit.LOG_COUNT, "many", "few")


def test_every_feature_is_documented_and_every_default_weight_is_a_feature() -> None:
    signals_doc = (Path(__file__).parents[2] / "docs" / "signals.md").read_text()

    assert [name for name in FEATURES if f"`{name}`" not in signals_doc] == []
    assert {name for weights in DEFAULT_WEIGHTS.values() for name in weights} <= set(FEATURES)
