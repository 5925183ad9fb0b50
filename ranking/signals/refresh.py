"""Recompute a customer's item and query-item signals from the event log.

On PostgreSQL one SQL statement per key (item; query and item) returns the decayed sums directly,
one row per key; elsewhere (SQLite, the embedded default) the ORM sums events per (key, day,
type) and numpy applies the same decay weights. numpy then computes each feature as its entry
in the feature registry says (ranking/signals/features.py: Beta smoothing, counts, the
catalog-derived signals). The result is published as a new signal version.

compute_snapshot is a sequence of steps: read the decayed counts, lay out the items (the
catalog's, then those with events only), the customer's priors, the item signals, the query-item
signals, the packed records with the unknown item's, the standardisation statistics.

Method (also in docs/signals.md):
- Decay: an event `d` days old counts 0.5 ** (d / half_life): short window 7 days with a 2-day
  half-life, long window 90 days with a 14-day half-life.
- Rates (CTR, add-to-cart rate, conversion rate, revenue per impression) are Beta-smoothed
  towards the customer-level rate: (x + prior * m) / (impressions + m), m = PRIOR_STRENGTH
  pseudo-impressions. Query-item rates are smoothed towards the item's own rate.
- popularity = log1p(clicks + 3 add-to-carts + 10 purchases), long window, decayed.
- trend = log((1 + short engagement per effective day) / (1 + long engagement per effective day)).
- Counts are log1p of decayed counts; price is log1p(price).
- freshness = exp(-age in days / 30) from the item's catalog creation time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, ExpressionWrapper, F, FloatField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Power, TruncDate
from django.utils import timezone

from catalog.models import Item
from customers.models import Customer
from events.models import Event, EventType
from ranking.signals.counts import (
    COLUMNS,
    EXAMINATION_ETA,
    EXAMINED,
    LONG_HALF_LIFE_DAYS,
    LONG_WINDOW_DAYS,
    MIN_QUERY_IMPRESSIONS,
    PAIR_CLICKS,
    PAIR_COLUMNS,
    PAIR_EXAMINED,
    PAIR_IMPRESSIONS,
    PAIR_PURCHASES,
    REVENUE,
    SHORT_HALF_LIFE_DAYS,
    SHORT_WINDOW_DAYS,
    decay,
)
from ranking.signals.features import (
    PRIOR_STRENGTH,
    QUERY_PRIOR_STRENGTH,
    Feature,
    ItemInputs,
    UnknownItem,
    freshness_at,
    smoothed,
)
from ranking.signals.schema import MAX_ITEM_CATEGORIES, SCHEMA, Schema
from ranking.signals.store import SignalMeta, SignalSchemaMismatch, SignalSnapshot, SignalStore

logger = logging.getLogger(__name__)

# The event types in the order of the counts' first columns (ranking/signals/counts.py).
TYPES = (EventType.IMPRESSION, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)
TYPE_COLUMN = {event_type.value: column for column, event_type in enumerate(TYPES)}


@dataclass(frozen=True)
class RefreshResult:
    version: int
    items: int
    query_pairs: int
    event_groups: int
    seconds: float


def _weights_by_age(window_days: int, half_life: float) -> list[float]:
    """The decay weight of an event 0..LONG_WINDOW_DAYS days old (0 outside the window)."""
    return decay(np.arange(LONG_WINDOW_DAYS + 1, dtype=np.float64), window_days, half_life).tolist()


def _aggregate(
    events: QuerySet[Event], key_fields: tuple[str, ...], today: datetime
) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray, int]:
    """Sum events per (keys, day, type) in SQL; return keys, counts[short|long] and row count.

    counts has shape (n_keys, COLUMNS) per window: impressions, clicks, carts, purchases,
    revenue, examined impressions. The portable path (SQLite); PostgreSQL decays in SQL instead
    (_fetch_decayed_sums).
    """
    examined = ExpressionWrapper(
        Value(1.0) / Power(Coalesce(F("position"), Value(1.0)), Value(EXAMINATION_ETA)),
        output_field=FloatField(),
    )
    rows = (
        events.annotate(day=TruncDate("occurred_at"))
        .values(*key_fields, "day", "type")
        .annotate(n=Count("id"), revenue=Sum("revenue"), examined=Sum(examined))
        .order_by()
        .values_list(*key_fields, "day", "type", "n", "revenue", "examined")
    )
    key_index: dict[tuple[str, ...], int] = {}
    rows_key, rows_age, rows_type, rows_n, rows_revenue, rows_examined = [], [], [], [], [], []
    width = len(key_fields)
    today_date = today.date()
    for row in rows.iterator(chunk_size=20_000):
        key = row[:width]
        rows_key.append(key_index.setdefault(key, len(key_index)))
        rows_age.append((today_date - row[width]).days)
        rows_type.append(TYPE_COLUMN[row[width + 1]])
        rows_n.append(row[width + 2])
        rows_revenue.append(row[width + 3] or 0.0)
        rows_examined.append(row[width + 4] if row[width + 1] == EventType.IMPRESSION else 0.0)
    keys = list(key_index)
    key_rows = np.asarray(rows_key, dtype=np.int64)
    ages = np.asarray(rows_age, dtype=np.float64)
    types = np.asarray(rows_type, dtype=np.int64)
    counts = np.asarray(rows_n, dtype=np.float64)
    revenue = np.asarray(rows_revenue, dtype=np.float64)
    examined_sums = np.asarray(rows_examined, dtype=np.float64)
    windows = []
    for window_days, half_life in (
        (SHORT_WINDOW_DAYS, SHORT_HALF_LIFE_DAYS),
        (LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS),
    ):
        weight = decay(ages, window_days, half_life)
        totals = np.zeros((len(keys), COLUMNS))
        np.add.at(totals, (key_rows, types), counts * weight)
        np.add.at(totals[:, REVENUE], key_rows, revenue * weight)
        np.add.at(totals[:, EXAMINED], key_rows, examined_sums * weight)
        windows.append(totals)
    return keys, windows[0], windows[1], len(rows_key)


# One row per key with the decayed sums of each window: an event's age in calendar days of the
# current time zone (as TruncDate counts it) indexes the same weight tables numpy uses, so both
# paths agree. The item sums run in parallel workers, unless the (query, item) sums run beside
# them on another connection (refresh tasks do: `_query_sums_on_another_connection`), which keeps
# both cores busy with less contention. The (query, item) sums stay in one process:
# partial sums of millions of keys in each worker would triple the memory for little time; there
# `OFFSET 0` keeps the subquery from being inlined, so each row's age is computed once, not once
# per sum (it also rules out the parallel plan).
DECAYED_SUMS_SQL = """
    SELECT {keys}, {sums}
    FROM (
        SELECT {keys}, type, revenue, position,
            (%(short)s::float8[])[age] AS short, (%(long)s::float8[])[age] AS long
        FROM (
            SELECT {keys}, type, revenue, position,
                %(today)s::date - (occurred_at AT TIME ZONE %(tz)s)::date + 1 AS age
            FROM {table}
            WHERE customer_id = %(customer)s AND occurred_at >= %(since)s {where}
            {fence}
        ) AS dated
    ) AS weighted
    GROUP BY {keys}
    {having}
"""


def _window_sums(window: str, types: tuple[EventType, ...], revenue: bool) -> list[str]:
    """The decayed sums of a window: one per event type, revenue if asked, then the examined
    impressions (each weighted by its position's examination probability)."""
    sums = [f"COALESCE(SUM({window}) FILTER (WHERE type = '{kind.value}'), 0)" for kind in types]
    if revenue:
        sums.append(f"COALESCE(SUM({window} * revenue), 0)")
    sums.append(
        f"COALESCE(SUM({window} * power(COALESCE(position, 1)::float8,"
        f" -{EXAMINATION_ETA!r}::float8)) FILTER (WHERE type = '{EventType.IMPRESSION.value}'), 0)"
    )
    return sums


def _fetch_decayed_sums(
    *, customer_id: int, now: datetime, by_query: bool, parallel: bool = True
) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Run DECAYED_SUMS_SQL; returns the keys and their sums, one row per key."""
    if by_query:
        keys, where, fence = "query, item_id", "AND query <> ''", "OFFSET 0"
        # Only the long window's impressions, clicks and purchases make query-item signals,
        # and only pairs _query_signals keeps are read.
        sums = _window_sums(
            "long", (EventType.IMPRESSION, EventType.CLICK, EventType.PURCHASE), False
        )
        having = f"HAVING {sums[1]} + {sums[2]} > 0 OR {sums[0]} >= {MIN_QUERY_IMPRESSIONS!r}"
    else:
        # Without parallel workers the fence costs nothing and saves the age's computation in
        # each of the twelve sums: 17.5 s to 13.3 s over 10M events (docs/performance.md).
        keys, where, having, fence = "item_id", "", "", "" if parallel else "OFFSET 0"
        sums = _window_sums("short", TYPES, True) + _window_sums("long", TYPES, True)
    sql = DECAYED_SUMS_SQL.format(
        keys=keys,
        sums=", ".join(sums),
        table=Event._meta.db_table,
        where=where,
        having=having,
        fence=fence,
    )
    params: dict[str, Any] = {
        "short": _weights_by_age(SHORT_WINDOW_DAYS, SHORT_HALF_LIFE_DAYS),
        "long": _weights_by_age(LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS),
        "today": now.date(),
        "tz": timezone.get_current_timezone_name(),
        "customer": customer_id,
        "since": now - timedelta(days=LONG_WINDOW_DAYS),
    }
    width = 2 if by_query else 1
    with transaction.atomic(), connection.cursor() as cursor:
        # Memory for the hash of (query, item) keys: 7.3M keys take about 1.5 GB (within work_mem
        # times hash_mem_multiplier); with less, PostgreSQL spills to disk, slower, same sums.
        cursor.execute(
            "SELECT set_config('work_mem', %s, true)", [settings.SIGNAL_REFRESH_WORK_MEM]
        )
        if not parallel:
            cursor.execute("SELECT set_config('max_parallel_workers_per_gather', '0', true)")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    keys_found = [row[:width] for row in rows]
    sums_found = np.fromiter(
        chain.from_iterable(map(itemgetter(slice(width, None)), rows)),
        dtype=np.float64,
        count=len(rows) * len(sums),
    )
    return keys_found, sums_found.reshape(len(rows), len(sums))


def _decays_in_sql() -> bool:
    """PostgreSQL weights events by age in SQL; other databases return per-day sums to numpy."""
    return connection.vendor == "postgresql"


def _item_sums(
    events: QuerySet[Event], customer_id: int, now: datetime, parallel: bool = True
) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray, int]:
    """Item keys and their decayed sums, short and long window, and the rows the database sent.
    `parallel=False` keeps PostgreSQL's parallel workers out (the other core is busy)."""
    if _decays_in_sql():
        keys, sums = _fetch_decayed_sums(
            customer_id=customer_id, now=now, by_query=False, parallel=parallel
        )
        return keys, sums[:, :COLUMNS], sums[:, COLUMNS:], len(keys)
    return _aggregate(events, ("item_id",), now)


def _query_sums(
    events: QuerySet[Event], customer_id: int, now: datetime
) -> tuple[list[tuple[str, ...]], np.ndarray, int]:
    """(query, item) keys and their long-window impressions, clicks, purchases and examined
    impressions."""
    if _decays_in_sql():
        keys, sums = _fetch_decayed_sums(customer_id=customer_id, now=now, by_query=True)
        return keys, sums, len(keys)
    keys, _, long_counts, groups = _aggregate(events.exclude(query=""), ("query", "item_id"), now)
    return keys, long_counts[:, list(PAIR_COLUMNS)], groups


def _price_percentiles(prices: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Percentile (0..1) of each price within its group; 0.5 where price or group is missing."""
    result = np.full(len(prices), 0.5)
    known = ~np.isnan(prices) & (groups >= 0)
    index = np.flatnonzero(known)
    if not len(index):
        return result
    order = index[np.lexsort((prices[index], groups[index]))]
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank_in_group = np.arange(len(order)) - np.repeat(starts, sizes)
    size_of_group = np.repeat(sizes, sizes)
    result[order] = np.where(
        size_of_group > 1, rank_in_group / np.maximum(size_of_group - 1, 1), 0.5
    )
    return result


@dataclass(frozen=True)
class CatalogArrays:
    """The customer's catalog as the signals need it, one row per item."""

    item_ids: list[str]
    brand_names: list[str]  # as the catalog holds them, "" for none
    category_lists: list[tuple[str, ...]]
    brands: dict[str, int]  # brand -> code
    categories: dict[str, int]  # category path -> code
    brand_codes: np.ndarray  # n, -1 for none
    category_codes: np.ndarray  # n x MAX_ITEM_CATEGORIES, the most specific first, -1 for none
    prices: np.ndarray  # n, NaN where unknown
    in_stock: np.ndarray  # n, 1.0 / 0.0
    created_ts: np.ndarray  # n, epoch seconds
    price_percentile: np.ndarray  # n, within the primary (most specific) category
    median_price: float


def catalog_arrays(customer_id: int) -> CatalogArrays:
    catalog = list(
        Item.objects.for_customer(customer_id).values_list(
            "external_id", "brand", "categories", "price", "in_stock", "created_at"
        )
    )
    n = len(catalog)
    brands: dict[str, int] = {}
    categories: dict[str, int] = {}
    brand_codes = np.full(n, -1, dtype=np.int32)
    category_codes = np.full((n, MAX_ITEM_CATEGORIES), -1, dtype=np.int32)
    prices = np.full(n, np.nan)
    in_stock = np.ones(n)
    created_ts = np.zeros(n)
    primary_category = np.full(n, -1, dtype=np.int64)
    for row, (_, brand, item_categories, price, stock, created_at) in enumerate(catalog):
        if brand:
            brand_codes[row] = brands.setdefault(brand, len(brands))
        # The most specific (deepest) categories are kept when an item has too many.
        kept = sorted(item_categories, key=lambda path: -path.count("/"))[:MAX_ITEM_CATEGORIES]
        for slot, path in enumerate(kept):
            category_codes[row, slot] = categories.setdefault(path, len(categories))
        if kept:
            primary_category[row] = category_codes[row, 0]
        if price is not None:
            prices[row] = float(price)
        in_stock[row] = 1.0 if stock else 0.0
        created_ts[row] = created_at.timestamp()
    return CatalogArrays(
        item_ids=[row[0] for row in catalog],
        brand_names=[row[1] or "" for row in catalog],
        category_lists=[tuple(row[2]) for row in catalog],
        brands=brands,
        categories=categories,
        brand_codes=brand_codes,
        category_codes=category_codes,
        prices=prices,
        in_stock=in_stock,
        created_ts=created_ts,
        price_percentile=_price_percentiles(prices, primary_category),
        median_price=float(np.nanmedian(prices)) if np.any(~np.isnan(prices)) else 0.0,
    )


def customer_priors(
    long_totals: np.ndarray, features: Sequence[Feature] = SCHEMA.item
) -> dict[str, np.ndarray]:
    """The customer-level rates the item rates are smoothed towards, from the long window's
    summed (..., COLUMNS) counts: per examined impression; 0 without impressions. One per item
    rate of the registry, by its name."""
    impressions = long_totals[..., EXAMINED]
    safe = np.where(impressions > 0, impressions, 1.0)

    def rate(column: int) -> np.ndarray:
        return np.where(impressions > 0, long_totals[..., column] / safe, 0.0)

    return {f.name: rate(f.rate.column) for f in features if f.rate is not None}


def item_signal_matrix(inputs: ItemInputs, features: Sequence[Feature] = SCHEMA.item) -> np.ndarray:
    """The item signals (n x len(features), in their order) from decayed counts and catalog
    values: each registry entry's rate or computation. Priors are scalars, or one per row
    (training's past moments)."""
    signals = np.zeros((len(inputs.long_counts), len(features)))
    examined = inputs.long_counts[:, EXAMINED]
    for column, feature in enumerate(features):
        if feature.rate is not None:
            successes = inputs.long_counts[:, feature.rate.column]
            prior = inputs.priors[feature.name]
            signals[:, column] = (
                smoothed(successes, examined, prior, PRIOR_STRENGTH)
                if feature.rate.capped
                else (successes + prior * PRIOR_STRENGTH) / (examined + PRIOR_STRENGTH)
            )
        elif feature.compute is not None:
            signals[:, column] = feature.compute(inputs)
    return signals


def default_item_signals(
    priors: Mapping[str, np.ndarray],
    median_price: float,
    features: Sequence[Feature] = SCHEMA.item,
) -> np.ndarray:
    """The signals of an item the version does not know (..., len(features)): each entry's
    `unknown` (a rate's: the customer's prior)."""
    shape = np.broadcast_shapes(*(np.shape(value) for value in priors.values()))
    defaults = np.zeros((*shape, len(features)))
    unknown = UnknownItem(priors=priors, median_price=median_price)
    for column, feature in enumerate(features):
        if feature.rate is not None:
            defaults[..., column] = priors[feature.name]
        elif callable(feature.unknown):
            defaults[..., column] = feature.unknown(unknown)
        else:
            defaults[..., column] = feature.unknown
    return defaults


def query_pair_signals(
    pair_counts: np.ndarray, item_priors: np.ndarray, features: Sequence[Feature] = SCHEMA.query
) -> tuple[np.ndarray, np.ndarray]:
    """(kept mask, n x len(features) query-item signals) from the pairs' long-window decayed
    sums (n x PAIR_COLUMNS), per examined impression, each smoothed towards the item's own value
    of its prior (item_priors: n x len(features)). A pair is kept with any engagement or
    MIN_QUERY_IMPRESSIONS decayed impressions."""
    impressions = pair_counts[:, PAIR_IMPRESSIONS]
    engaged = pair_counts[:, PAIR_CLICKS] + pair_counts[:, PAIR_PURCHASES]
    examined = pair_counts[:, PAIR_EXAMINED]
    kept = (engaged > 0) | (impressions >= MIN_QUERY_IMPRESSIONS)
    values = np.zeros((len(pair_counts), len(features)))
    for column, feature in enumerate(features):
        if feature.pair_rate is not None:
            values[:, column] = smoothed(
                pair_counts[:, feature.pair_rate.column],
                examined,
                item_priors[:, column],
                QUERY_PRIOR_STRENGTH,
            )
    return kept, values


@dataclass(frozen=True)
class ItemCounts:
    """Every item of a version, the catalog's first and then those with events only, with their
    decayed counts (n x COLUMNS per window) and the rows the database sent."""

    item_ids: list[str]
    row_of: dict[str, int]
    n_catalog: int
    short: np.ndarray
    long: np.ndarray
    groups: int


def compute_snapshot(
    *, customer_id: int, version: int, now: datetime | None = None, schema: Schema = SCHEMA
) -> tuple[SignalSnapshot, int]:
    """Build a full signal version for a customer; returns it with the number of SQL groups."""
    now = now or timezone.now()
    events = Event.objects.for_customer(customer_id).filter(
        occurred_at__gte=now - timedelta(days=LONG_WINDOW_DAYS)
    )
    pending_query_sums = _query_sums_on_another_connection(events, customer_id, now)
    item_sums = _item_sums(events, customer_id, now, parallel=pending_query_sums is None)
    catalog = catalog_arrays(customer_id)
    counts = _item_counts(item_sums, catalog)
    priors = customer_priors(counts.long.sum(axis=0), schema.item)
    signals = item_signal_matrix(_item_inputs(counts, catalog, priors, now), schema.item)
    query_sums = (
        pending_query_sums.result()
        if pending_query_sums is not None
        else _query_sums(events, customer_id, now)
    )
    query_keys, query_records, query_groups = _query_signals(
        query_sums, counts.row_of, signals, schema
    )
    records, default_item = _item_records(signals, catalog, priors, schema)
    mean, std = _feature_statistics(signals, query_records, schema)
    meta = SignalMeta(
        version=version,
        created_at=now.isoformat(),
        schema_hash=schema.hash,
        default_item=default_item,
        feature_mean=mean,
        feature_std=std,
        brands=tuple(catalog.brands),
        categories=tuple(catalog.categories),
        stats={
            "items": len(counts.item_ids),
            "catalog_items": counts.n_catalog,
            "query_pairs": len(query_keys),
            "priors": {name: float(value) for name, value in priors.items()},
            "median_price": catalog.median_price,
        },
    )
    snapshot = SignalSnapshot(meta, counts.item_ids, records, query_keys, query_records)
    return snapshot, counts.groups + query_groups


def _item_counts(
    item_sums: tuple[list[tuple[str, ...]], np.ndarray, np.ndarray, int], catalog: CatalogArrays
) -> ItemCounts:
    """The version's items (the catalog's, then those with events and no catalog entry) and
    their decayed counts: zero for an item without events."""
    event_keys, short, long_, groups = item_sums
    item_ids = list(catalog.item_ids)
    known = set(item_ids)
    item_ids += [key[0] for key in event_keys if key[0] not in known]
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    short_counts = np.zeros((len(item_ids), COLUMNS))
    long_counts = np.zeros((len(item_ids), COLUMNS))
    if event_keys:
        rows = np.fromiter((row_of[key[0]] for key in event_keys), dtype=np.int64)
        short_counts[rows] = short
        long_counts[rows] = long_
    return ItemCounts(item_ids, row_of, len(catalog.item_ids), short_counts, long_counts, groups)


def _item_inputs(
    counts: ItemCounts, catalog: CatalogArrays, priors: dict[str, np.ndarray], now: datetime
) -> ItemInputs:
    """What the item signals are computed from; an item with events and no catalog entry has no
    price (the median), percentile 0.5, freshness 0, and is in stock."""
    extra = len(counts.item_ids) - counts.n_catalog
    return ItemInputs(
        short_counts=counts.short,
        long_counts=counts.long,
        priors=priors,
        prices=np.r_[catalog.prices, np.full(extra, np.nan)],
        price_percentile=np.r_[catalog.price_percentile, np.full(extra, 0.5)],
        median_price=catalog.median_price,
        freshness=np.r_[freshness_at(catalog.created_ts, now.timestamp()), np.zeros(extra)],
        in_stock=np.r_[catalog.in_stock, np.ones(extra)],
    )


def _item_records(
    signals: np.ndarray, catalog: CatalogArrays, priors: dict[str, np.ndarray], schema: Schema
) -> tuple[np.ndarray, np.ndarray]:
    """The packed item records (signals, brand and category codes; -1 for items not in the
    catalog) and the record of an item the version does not know."""
    extra = len(signals) - len(catalog.item_ids)
    records = np.zeros(len(signals), dtype=schema.item_record)
    records["signals"] = signals
    records["brand"] = np.r_[catalog.brand_codes, np.full(extra, -1, dtype=np.int32)]
    records["categories"] = np.r_[
        catalog.category_codes, np.full((extra, MAX_ITEM_CATEGORIES), -1, dtype=np.int32)
    ]
    default_item = np.zeros((), dtype=schema.item_record)
    default_item["signals"] = default_item_signals(priors, catalog.median_price, schema.item)
    default_item["brand"] = -1
    default_item["categories"] = -1
    return records, default_item


def _feature_statistics(
    signals: np.ndarray, query_records: np.ndarray, schema: Schema
) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation over the version (the blend's z-scores): item
    and query-item signals over their records (a query-item feature without any pair: its
    prior's), shopper signals and relevance as they are (0, 1); a constant's deviation is 1."""
    mean = np.zeros(len(schema.names))
    std = np.ones(len(schema.names))
    if len(signals):
        mean[: schema.n_item] = signals.mean(axis=0)
        std[: schema.n_item] = signals.std(axis=0)
    if len(query_records):
        query_values = query_records["signals"].astype(np.float64)
        mean[schema.query_slice] = query_values.mean(axis=0)
        std[schema.query_slice] = query_values.std(axis=0)
    else:
        mean[schema.query_slice] = mean[schema.query_prior_columns]
        std[schema.query_slice] = std[schema.query_prior_columns]
    std[~(std > 1e-12)] = 1.0
    return mean, std


def _query_sums_on_another_connection(
    events: QuerySet[Event], customer_id: int, now: datetime
) -> Future[tuple[list[tuple[str, ...]], np.ndarray, int]] | None:
    """On PostgreSQL, the (query, item) sums, the refresh's longest statement (a hash aggregate
    on one core), start at once on a connection of their own, while this one sums the items and
    reads the catalog on the other core. Not inside a transaction (a test's, say): the other
    connection could not see its rows. The two reads may be a few new events apart; the next
    refresh catches up, as it does with events that arrive during one."""
    if not _decays_in_sql() or connection.in_atomic_block:
        return None

    def run() -> tuple[list[tuple[str, ...]], np.ndarray, int]:
        try:
            return _query_sums(events, customer_id, now)
        finally:
            connection.close()  # this thread's own connection

    pool = ThreadPoolExecutor(1, thread_name_prefix="refresh-query-sums")
    try:
        return pool.submit(run)
    finally:
        pool.shutdown(wait=False)


def _query_signals(
    query_sums: tuple[list[tuple[str, ...]], np.ndarray, int],
    row_of: dict[str, int],
    signals: np.ndarray,
    schema: Schema = SCHEMA,
) -> tuple[list[tuple[str, str]], np.ndarray, int]:
    """The query-item records of the pairs kept, with their keys, and the rows the database sent."""
    keys, pair_counts, groups = query_sums
    if not keys:
        return [], np.zeros(0, dtype=schema.query_record), groups
    # Read on their own connection, the pairs may name an item whose first event arrived after
    # the item sums were read: it has no item row yet (-1), and the next refresh has both.
    rows = np.fromiter(
        map(row_of.get, map(itemgetter(1), keys), repeat(-1)), dtype=np.int64, count=len(keys)
    )
    item_priors = signals[:, schema.query_prior_columns][rows]
    kept, values = query_pair_signals(pair_counts, item_priors, schema.query)
    keep = np.flatnonzero(kept & (rows >= 0))
    records = np.zeros(len(keep), dtype=schema.query_record)
    records["signals"] = values[keep]
    # The keys are (query, item id) pairs already: the list as it is when every pair is kept.
    pairs = cast(list[tuple[str, str]], keys)
    return (pairs if len(keep) == len(pairs) else [pairs[i] for i in keep]), records, groups


def allocate_signal_version(customer_id: int, store: SignalStore) -> int:
    """The next signal version number of a customer, counted in the database: a signal store
    that lost its data cannot hand a number out twice, and every process caches a version's
    vocabulary by its number. Above the store's current version too (stores written before the
    counter moved here numbered their own)."""
    try:
        current = store.current_meta(customer_id)
        current_version = current.version if current is not None else 0
    except SignalSchemaMismatch as older:  # the version this refresh replaces
        current_version = older.version
    with transaction.atomic():
        counted = (
            Customer.objects.select_for_update()
            .values_list("signal_version_seq", flat=True)
            .get(pk=customer_id)
        )
        version = max(counted, current_version) + 1
        Customer.objects.filter(pk=customer_id).update(signal_version_seq=version)
    return version


def refresh_signals(
    *, customer_id: int, store: SignalStore, now: datetime | None = None
) -> RefreshResult:
    """Compute and publish a new signal version for one customer."""
    started = time.perf_counter()
    version = allocate_signal_version(customer_id, store)
    snapshot, groups = compute_snapshot(customer_id=customer_id, version=version, now=now)
    store.publish(customer_id, snapshot)
    return RefreshResult(
        version=version,
        items=len(snapshot.item_ids),
        query_pairs=len(snapshot.query_keys),
        event_groups=groups,
        seconds=time.perf_counter() - started,
    )
