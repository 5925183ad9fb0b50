"""Signal refresh: SQL aggregation, decay, Beta smoothing, catalog signals, tasks and schedule."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from events.models import Event
from ranking import tasks
from ranking.models import SignalVersion
from ranking.signals import features, refresh
from ranking.signals.backend import signal_store
from ranking.signals.schema import ITEM_FEATURES
from tests.factories import CustomerFactory, ItemFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
COLUMN = {name: index for index, name in enumerate(ITEM_FEATURES)}


def events(
    customer: Any, item_id: str, kind: str, count: int, days_ago: float, **extra: Any
) -> None:
    at = NOW - timedelta(days=days_ago)
    Event.objects.bulk_create(
        Event(
            customer=customer,
            event_id=f"{item_id}-{kind}-{days_ago}-{extra}-{n}",
            type=kind,
            item_id=item_id,
            occurred_at=at,
            **extra,
        )
        for n in range(count)
    )


def signals_of(customer: Any) -> tuple[dict[str, np.ndarray], Any]:
    snapshot, _ = refresh.compute_snapshot(customer_id=customer.pk, version=1, now=NOW)
    by_id = {
        item_id: snapshot.item_records["signals"][row].astype(float)
        for row, item_id in enumerate(snapshot.item_ids)
    }
    return by_id, snapshot


def pairs_of(snapshot: Any) -> dict[tuple[str, str], np.ndarray]:
    return dict(zip(snapshot.query_keys, snapshot.query_records["signals"], strict=True))


def test_rates_are_beta_smoothed_towards_the_customer_rate() -> None:
    customer = CustomerFactory()
    events(customer, "a", "impression", 100, 0)
    events(customer, "a", "click", 10, 0)
    events(customer, "b", "impression", 100, 0)
    events(customer, "b", "click", 30, 0)

    signals, snapshot = signals_of(customer)

    prior = 40 / 200
    m = features.PRIOR_STRENGTH
    assert snapshot.meta.stats["priors"]["ctr"] == pytest.approx(prior)
    assert signals["a"][COLUMN["ctr"]] == pytest.approx((10 + prior * m) / (100 + m), rel=1e-6)
    assert signals["b"][COLUMN["ctr"]] == pytest.approx((30 + prior * m) / (100 + m), rel=1e-6)
    # An item never shown gets the prior itself.
    assert snapshot.meta.default_item["signals"][COLUMN["ctr"]] == pytest.approx(prior)


def test_old_events_count_less_and_events_past_the_window_not_at_all() -> None:
    customer = CustomerFactory()
    events(customer, "a", "click", 1, 0)
    events(customer, "a", "click", 1, refresh.LONG_HALF_LIFE_DAYS)
    events(customer, "a", "click", 5, refresh.LONG_WINDOW_DAYS + 1)

    signals, _ = signals_of(customer)

    assert signals["a"][COLUMN["clicks_long"]] == pytest.approx(math.log1p(1.5), rel=1e-6)
    # The short window (7 days) sees only today's click.
    assert signals["a"][COLUMN["clicks_short"]] == pytest.approx(math.log1p(1.0), rel=1e-6)


def test_purchases_drive_popularity_and_revenue() -> None:
    customer = CustomerFactory()
    for item_id in ("a", "b"):
        events(customer, item_id, "impression", 50, 1)
    events(customer, "a", "purchase", 3, 1, revenue=30.0, price=10.0)

    signals, _ = signals_of(customer)

    assert signals["a"][COLUMN["popularity"]] > signals["b"][COLUMN["popularity"]]
    assert signals["a"][COLUMN["conversion_rate"]] > signals["b"][COLUMN["conversion_rate"]]
    assert signals["a"][COLUMN["revenue_long"]] > 0
    assert signals["b"][COLUMN["revenue_long"]] == 0


def test_a_rising_item_trends_up_and_a_fading_one_down() -> None:
    customer = CustomerFactory()
    events(customer, "rising", "click", 10, 0)
    events(customer, "fading", "click", 10, 30)

    signals, _ = signals_of(customer)

    assert signals["rising"][COLUMN["trend"]] > 0 > signals["fading"][COLUMN["trend"]]


def test_catalog_signals_price_percentile_stock_and_freshness() -> None:
    customer = CustomerFactory()
    for n, price in enumerate([10, 20, 30]):
        ItemFactory(
            customer=customer,
            external_id=f"s{n}",
            price=price,
            categories=["shoes", "shoes/running"],
            created_at=NOW - timedelta(days=30 * n),
        )
    ItemFactory(customer=customer, external_id="out", in_stock=False, categories=["hats"])

    signals, _ = signals_of(customer)

    assert [signals[f"s{n}"][COLUMN["price_percentile"]] for n in range(3)] == [0.0, 0.5, 1.0]
    assert signals["out"][COLUMN["in_stock"]] == 0.0
    assert signals["s0"][COLUMN["in_stock"]] == 1.0
    assert signals["s0"][COLUMN["freshness"]] == pytest.approx(1.0, abs=1e-3)
    assert signals["s1"][COLUMN["freshness"]] == pytest.approx(math.exp(-1), rel=1e-3)


def test_query_item_rates_are_smoothed_towards_the_item_rate() -> None:
    customer = CustomerFactory()
    events(customer, "a", "impression", 40, 0, query="shoes")
    events(customer, "a", "click", 20, 0, query="shoes")
    events(customer, "a", "impression", 60, 0, query="boots")

    signals, snapshot = signals_of(customer)

    pairs = dict(zip(snapshot.query_keys, snapshot.query_records["signals"][:, 0], strict=True))
    item_ctr = signals["a"][COLUMN["ctr"]]
    m = features.QUERY_PRIOR_STRENGTH
    assert pairs[("shoes", "a")] == pytest.approx((20 + item_ctr * m) / (40 + m), rel=1e-5)
    assert pairs[("boots", "a")] < item_ctr < pairs[("shoes", "a")]


def test_a_customer_refresh_reads_only_its_own_events() -> None:
    mine, theirs = CustomerFactory(), CustomerFactory()
    events(theirs, "a", "click", 50, 0)
    events(mine, "b", "click", 1, 0)

    signals, _ = signals_of(mine)

    assert set(signals) == {"b"}


def test_the_refresh_task_publishes_and_records_a_version() -> None:
    customer = CustomerFactory()
    ItemFactory(customer=customer, external_id="a")

    tasks.refresh_signals.delay(customer.pk)

    recorded = SignalVersion.objects.get(customer=customer)
    assert recorded.items == 1
    assert signal_store().current_meta(customer.pk).version == recorded.version  # type: ignore[union-attr]


def test_the_schedule_refreshes_every_active_customer_and_no_other() -> None:
    active, inactive = CustomerFactory(), CustomerFactory(is_active=False)

    tasks.schedule_signal_refresh.delay()

    assert SignalVersion.objects.filter(customer=active).count() == 1
    assert not SignalVersion.objects.filter(customer=inactive).exists()


def test_beat_runs_the_schedule(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-signals-for-active-customers"]

    assert entry["task"] == tasks.schedule_signal_refresh.name
    assert entry["schedule"] == settings.SIGNAL_REFRESH_INTERVAL_SECONDS


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="compares PostgreSQL's path with the portable one"
)
def test_postgresql_decay_in_sql_gives_the_signals_of_the_portable_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL weights events by age in SQL; SQLite's per-day sums must give the same signals."""
    customer = CustomerFactory()
    ItemFactory(customer=customer, external_id="a", price=10, categories=["shoes"])
    for days_ago in (0, 0.5, 1.2, 3, 6.9, 7.1, 13, 40, 89.5, 89.99, 91, -1):
        events(customer, "a", "impression", 7, days_ago, query="shoes", position=3)
        events(customer, "b", "impression", 4, days_ago, query="boots", position=1)
        events(customer, "a", "click", 2, days_ago, query="shoes")
        events(customer, "b", "add_to_cart", 1, days_ago)
        events(customer, "a", "purchase", 1, days_ago, revenue=25.0, price=25.0, query="boots")
    events(customer, "c", "impression", 2, 1, query="hats")
    events(customer, "c", "click", 1, 95, query="hats")

    in_sql, in_sql_snapshot = signals_of(customer)
    monkeypatch.setattr(refresh, "_decays_in_sql", lambda: False)
    portable, portable_snapshot = signals_of(customer)

    assert set(in_sql) == set(portable) == {"a", "b", "c"}
    for item_id, values in portable.items():
        np.testing.assert_allclose(in_sql[item_id], values, rtol=1e-6, atol=1e-7)
    assert in_sql_snapshot.meta.stats["priors"] == pytest.approx(
        portable_snapshot.meta.stats["priors"]
    )
    pairs_in_sql, pairs_portable = pairs_of(in_sql_snapshot), pairs_of(portable_snapshot)
    # ("hats", "c") has too few impressions and only a click past the window: stored by neither.
    assert (
        set(pairs_in_sql) == set(pairs_portable) == {("shoes", "a"), ("boots", "b"), ("boots", "a")}
    )
    for key, values in pairs_portable.items():
        np.testing.assert_allclose(pairs_in_sql[key], values, rtol=1e-6)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the concurrent path is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_query_sums_run_on_their_own_connection_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside a transaction (a refresh task) the (query, item) sums run on another connection,
    in another thread, at the same time as the item sums; the version is the same as when they
    run one after the other (inside a transaction)."""
    customer = CustomerFactory()
    ItemFactory(customer=customer, external_id="a", price=10, categories=["shoes"])
    for days_ago in (0, 2, 30):
        events(customer, "a", "impression", 30, days_ago, query="shoes")
        events(customer, "b", "impression", 25, days_ago, query="boots")
        events(customer, "a", "click", 3, days_ago, query="shoes")
        events(customer, "b", "purchase", 1, days_ago, revenue=9.0, price=9.0, query="boots")
    threads: list[str] = []
    original = refresh._query_sums

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(refresh, "_query_sums", recording)

    concurrent, concurrent_snapshot = signals_of(customer)
    with transaction.atomic():
        one_by_one, one_by_one_snapshot = signals_of(customer)

    assert threads[0].startswith("refresh-query-sums")
    assert threads[1] == threading.current_thread().name
    assert set(concurrent) == set(one_by_one) == {"a", "b"}
    for item_id, values in one_by_one.items():
        np.testing.assert_array_equal(concurrent[item_id], values)
    assert pairs_of(concurrent_snapshot).keys() == {("shoes", "a"), ("boots", "b")}
    for key, values in pairs_of(one_by_one_snapshot).items():
        np.testing.assert_array_equal(pairs_of(concurrent_snapshot)[key], values)


def test_rates_count_impressions_by_how_likely_their_position_was_looked_at() -> None:
    """An item shown at position 4 has a quarter of the chances to be clicked that it has at 1:
    its click rate is judged per examined impression, so it is not punished for where it was
    shown (and an item kept on top is not credited for it)."""
    customer = CustomerFactory()
    events(customer, "low", "impression", 100, 0, position=4)
    events(customer, "low", "click", 10, 0)
    events(customer, "top", "impression", 100, 0, position=1)
    events(customer, "top", "click", 25, 0)

    signals, snapshot = signals_of(customer)

    prior = snapshot.meta.stats["priors"]["ctr"]
    m = features.PRIOR_STRENGTH
    assert prior == pytest.approx(35 / (25 + 100))
    assert signals["low"][COLUMN["ctr"]] == pytest.approx((10 + prior * m) / (25 + m), rel=1e-6)
    assert signals["top"][COLUMN["ctr"]] == pytest.approx((25 + prior * m) / (100 + m), rel=1e-6)
    assert signals["low"][COLUMN["ctr"]] > signals["top"][COLUMN["ctr"]]
    assert signals["low"][COLUMN["impressions_long"]] == pytest.approx(np.log1p(100))


def test_query_pairs_of_an_item_the_item_sums_did_not_see_wait_for_the_next_refresh() -> None:
    """The (query, item) sums run on their own connection: an item's first events can land
    between the two reads. Its pairs are left for the next refresh rather than fail this one."""
    row_of = {"a": 0}
    signals = np.zeros((1, len(ITEM_FEATURES)))
    keys = [("shoes", "a"), ("shoes", "new")]
    sums = np.array([[40.0, 4.0, 1.0, 40.0], [50.0, 5.0, 0.0, 50.0]])

    pairs, records, groups = refresh._query_signals((keys, sums, 2), row_of, signals)

    assert pairs == [("shoes", "a")]
    assert len(records) == 1
    assert groups == 2


@pytest.mark.django_db
def test_the_refresh_command_refreshes_one_named_active_shop_or_every_active_one() -> None:
    first, second = CustomerFactory(slug="first-shop"), CustomerFactory(slug="second-shop")
    closed = CustomerFactory(slug="closed-shop", is_active=False)

    one, every = StringIO(), StringIO()
    call_command("refresh_signals", customer="first-shop", stdout=one)
    call_command("refresh_signals", stdout=every)
    with pytest.raises(CommandError, match="No active customer with slug 'closed-shop'"):
        call_command("refresh_signals", customer="closed-shop")
    with pytest.raises(CommandError, match="No active customer with slug 'nobody'"):
        call_command("refresh_signals", customer="nobody")

    assert one.getvalue().startswith("first-shop: version 1,")
    assert sorted(line.split(":")[0] for line in every.getvalue().splitlines()) == [
        "first-shop",
        "second-shop",
    ]
    assert SignalVersion.objects.for_customer(first.pk).count() == 2
    assert SignalVersion.objects.for_customer(second.pk).count() == 1
    assert not SignalVersion.objects.for_customer(closed.pk).exists()
