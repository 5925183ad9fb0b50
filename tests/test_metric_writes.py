"""core.metrics' `inc` and `observe` write the samples the stock Counter.inc and
Histogram.observe write, and core.settings_cache follows a setting changed by a test."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings as django_settings
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from core.metrics import RANK_BUCKETS, inc, observe
from core.settings_cache import settings_cached

# Bucket bounds themselves, around them, beyond the last, negative, infinite and NaN.
AMOUNTS = st.one_of(
    st.sampled_from([*RANK_BUCKETS, 0.0, -0.0, math.inf, -math.inf, math.nan]),
    st.floats(min_value=-1.0, max_value=2.0),
    st.floats(allow_nan=True, allow_infinity=True),
)


def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    """Every sample but the creation times, NaN made comparable."""
    return [
        (sample.name, sample.labels, -1.0 if math.isnan(sample.value) else sample.value)
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


@given(st.lists(AMOUNTS, max_size=20))
def test_observe_writes_the_samples_of_histogram_observe(amounts: list[float]) -> None:
    stock, ours = CollectorRegistry(), CollectorRegistry()
    stock_seconds = Histogram("seconds", "", ["surface"], buckets=RANK_BUCKETS, registry=stock)
    our_seconds = Histogram("seconds", "", ["surface"], buckets=RANK_BUCKETS, registry=ours)
    stock_plain = Histogram("plain", "", buckets=RANK_BUCKETS, registry=stock)
    our_plain = Histogram("plain", "", buckets=RANK_BUCKETS, registry=ours)

    for amount in amounts:
        stock_seconds.labels("search").observe(amount)
        observe(our_seconds.labels("search"), amount)
        stock_plain.observe(amount)
        observe(our_plain, amount)

    assert samples(ours) == samples(stock)


@given(st.lists(st.one_of(st.integers(0, 10**6), st.floats(0, 1e9)), max_size=20))
def test_inc_writes_the_samples_of_counter_inc(amounts: list[float]) -> None:
    stock, ours = CollectorRegistry(), CollectorRegistry()
    stock_items = Counter("items", "", ["surface"], registry=stock)
    our_items = Counter("items", "", ["surface"], registry=ours)
    stock_plain = Counter("plain", "", registry=stock)
    our_plain = Counter("plain", "", registry=ours)

    for amount in amounts:
        stock_items.labels("search").inc(amount)
        inc(our_items.labels("search"), amount)
        stock_plain.inc()
        inc(our_plain)

    assert samples(ours) == samples(stock)


@settings_cached
def _slot_wait() -> float:
    return float(django_settings.API_SLOT_WAIT_SECONDS)


def test_a_cached_setting_follows_a_test_that_changes_it(settings: Any) -> None:
    before = _slot_wait()

    settings.API_SLOT_WAIT_SECONDS = before + 7

    assert _slot_wait() == before + 7
