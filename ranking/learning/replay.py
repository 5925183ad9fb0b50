"""Point-in-time features: what the engine would have scored a past request on, rebuilt from the
event log and the catalog (what Feast's historical retrieval and Metarank's replay do).

For a request at time t every signal is computed as a refresh run at t would have computed it,
counting only the events that happened before t, and the shopper's profile is folded from the
shopper's actions before t. The arithmetic is the refresh's own (ranking/signals/refresh.py:
item_signal_matrix, customer_priors, query_pair_signals, which apply the feature registry) and
the profile's own (ranking/signals/shopper.py: ProfileBuilder, shopper_columns), so a rebuilt row
equals the row the engine logged when its signals were fresh (tests/ranking/test_replay.py), up
to the order in which float sums were added.

How: the events of the window (plus the 90 days the long window looks back) are read once, sorted
by (key, time); a key's decayed count before t is a difference of two prefix sums found by binary
search, with the decay weights of t's day. Whole-request cost: one pass over the events per
distinct request day and a binary search per (request, item).

What the event log cannot tell is taken as now: the catalog (price, stock, brand, categories) is
today's, since no catalog history is kept; an item's freshness counts from its catalog creation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from events.models import Event, EventType
from events.queries import shopper_key
from ranking.signals.counts import (
    CLICKS,
    COLUMNS,
    EXAMINATION_ETA,
    EXAMINED,
    IMPRESSIONS,
    LONG_HALF_LIFE_DAYS,
    LONG_WINDOW_DAYS,
    PAIR_COLUMNS,
    PURCHASES,
    REVENUE,
    SHORT_HALF_LIFE_DAYS,
    SHORT_WINDOW_DAYS,
)
from ranking.signals.features import ItemInputs, freshness_at
from ranking.signals.refresh import (
    TYPE_COLUMN,
    CatalogArrays,
    _weights_by_age,
    catalog_arrays,
    customer_priors,
    default_item_signals,
    item_signal_matrix,
    query_pair_signals,
)
from ranking.signals.schema import (
    FEATURE_INDEX,
    FEATURES,
    MAX_ITEM_CATEGORIES,
    N_ITEM,
    QUERY_PRIOR_COLUMNS,
    QUERY_SLICE,
    RELEVANCE_COLUMN,
    SHOPPER_SLICE,
)
from ranking.signals.shopper import ItemCodes, ProfileBuilder, ShopperAction, shopper_columns

US_PER_DAY = 86_400_000_000
ACTIONS = (EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)
_PRICE = FEATURE_INDEX["price"]


@dataclass(frozen=True)
class PastRequest:
    """A request to rebuild: when, for whom, which items in the order shown."""

    request_id: str
    at: datetime
    query: str  # normalised
    shopper_key: str
    item_ids: tuple[str, ...]
    # The standardised relevance column as logged; None when unknown (history imported as
    # impressions): 0, as for a request without relevance.
    relevance: np.ndarray | None = None
    # When the item and query signals are taken: the refresh the request was served from, when
    # that is what to reproduce; None: a refresh right before the request.
    signals_at: datetime | None = None

    @property
    def signals_moment(self) -> datetime:
        """Never after the request: what happened after it must not leak into it."""
        return min(self.signals_at, self.at) if self.signals_at else self.at


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


@dataclass
class _EventLog:
    """The window's events as arrays."""

    type: np.ndarray  # TYPE_COLUMN code
    item: np.ndarray  # code into items
    micros: np.ndarray  # occurred_at, microseconds since the epoch
    revenue: np.ndarray
    position: np.ndarray  # 1-based, 1 where none
    query: np.ndarray  # code into queries, -1 for none
    items: dict[str, int]
    queries: dict[str, int]
    actions: dict[str, list[tuple[int, int, str]]]  # shopper -> [(micros, item code, type)]


def _load_events(customer_id: int, since: datetime, until: datetime) -> _EventLog:
    items: dict[str, int] = {}
    queries: dict[str, int] = {}
    actions: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    kinds, codes, micros, revenue, query_codes, positions = [], [], [], [], [], []
    rows = (
        Event.objects.for_customer(customer_id)
        .filter(occurred_at__gte=since, occurred_at__lt=until)
        .order_by()
        .values_list(
            "type",
            "item_id",
            "occurred_at",
            "revenue",
            "query",
            "user_id",
            "session_id",
            "position",
        )
    )
    for kind, item_id, occurred_at, value, query, user_id, session_id, position in rows.iterator(
        chunk_size=20_000
    ):
        code = items.setdefault(item_id, len(items))
        at = _micros(occurred_at)
        kinds.append(TYPE_COLUMN[kind])
        codes.append(code)
        micros.append(at)
        revenue.append(value or 0.0)
        positions.append(position or 1)
        query_codes.append(queries.setdefault(query, len(queries)) if query else -1)
        if kind in ACTIONS:
            shopper = shopper_key(user_id, session_id)
            if shopper:
                actions[shopper].append((at, code, kind))
    return _EventLog(
        type=np.asarray(kinds, dtype=np.int8),
        item=np.asarray(codes, dtype=np.int64),
        micros=np.asarray(micros, dtype=np.int64),
        revenue=np.asarray(revenue, dtype=np.float64),
        position=np.asarray(positions, dtype=np.float64),
        query=np.asarray(query_codes, dtype=np.int64),
        items=items,
        queries=queries,
        actions=actions,
    )


class _PrefixSums:
    """Decayed sums of events per key before given moments, by binary search on (key, time)."""

    def __init__(
        self,
        keys: np.ndarray,
        micros: np.ndarray,
        values: np.ndarray,  # events x columns, undecayed
        first_micros: int,
    ) -> None:
        order = np.lexsort((micros, keys))
        self.keys = keys[order]
        self.micros = micros[order]
        self.values = values[order]
        self.days = (self.micros // US_PER_DAY).astype(np.int64)
        self.first = first_micros
        self.span = int(self.micros.max() - first_micros + 2) if len(order) else 1
        # key x span + time in one int64 per (key, moment), ordered as (key, time); with so many
        # keys that it would overflow, time counts in milliseconds (events in the request's own
        # millisecond then count as after it).
        n_keys = int(self.keys.max()) + 1 if len(order) else 1
        self.unit = 1 if n_keys * self.span < 2**62 else 1000
        self.span = self.span // self.unit + 2
        self.sorted_positions = self._composite(self.keys, self.micros)

    def _composite(self, keys: np.ndarray, micros: np.ndarray) -> np.ndarray:
        offset = np.clip((micros - self.first) // self.unit, 0, self.span - 1)
        return keys.astype(np.int64) * self.span + offset

    def before(
        self, keys: np.ndarray, micros: np.ndarray, weights_by_age: np.ndarray
    ) -> np.ndarray:
        """Per (key, moment): the sum of weights_by_age[day age] x values over the key's events
        before the moment (ages past the table weigh 0)."""
        result = np.zeros((len(keys), self.values.shape[1]))
        if not len(self.keys) or not len(keys):
            return result
        known = keys >= 0
        targets = self._composite(np.maximum(keys, 0), micros)
        ends = np.searchsorted(self.sorted_positions, targets, side="left")
        starts = np.searchsorted(
            self.sorted_positions, np.maximum(keys, 0) * self.span, side="left"
        )
        days = micros // US_PER_DAY
        table = np.asarray(weights_by_age)
        for day in np.unique(days[known]):
            age = day - self.days
            weight = np.where(
                (age >= 0) & (age < len(table)), table[np.clip(age, 0, len(table) - 1)], 0.0
            )
            cumulative = np.vstack(
                [
                    np.zeros((1, self.values.shape[1])),
                    np.cumsum(self.values * weight[:, None], axis=0),
                ]
            )
            rows = np.flatnonzero(known & (days == day))
            result[rows] = cumulative[ends[rows]] - cumulative[starts[rows]]
        return result

    def count_between(self, keys: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Per key: how many of its events fall in [start, end)."""
        if not len(self.keys):
            return np.zeros(len(keys), dtype=np.int64)
        safe = np.maximum(keys, 0)
        upper = np.searchsorted(self.sorted_positions, self._composite(safe, end), side="left")
        lower = np.searchsorted(self.sorted_positions, self._composite(safe, start), side="left")
        return np.where(keys >= 0, upper - lower, 0)


def _count_columns(log: _EventLog, mask: np.ndarray) -> np.ndarray:
    """Events x COLUMNS: impressions, clicks, carts, purchases (0/1), revenue, and the
    impression's examination weight, as the refresh sums them."""
    kinds = log.type[mask]
    values = np.zeros((len(kinds), COLUMNS))
    values[np.arange(len(kinds)), kinds] = 1.0
    values[:, REVENUE] = log.revenue[mask]
    values[:, EXAMINED] = np.where(
        kinds == IMPRESSIONS, np.power(log.position[mask], -EXAMINATION_ETA), 0.0
    )
    return values


def features_as_of(*, customer_id: int, requests: Sequence[PastRequest]) -> list[np.ndarray]:
    """The float32 feature matrix (positions x FEATURES) each request would have been scored on
    had the signals been refreshed just before it."""
    if not requests:
        return []
    first = min(min(request.at, request.signals_moment) for request in requests)
    last = max(max(request.at, request.signals_moment) for request in requests)
    log = _load_events(customer_id, first - timedelta(days=LONG_WINDOW_DAYS + 1), last)
    catalog = catalog_arrays(customer_id)
    catalog_row = {item_id: row for row, item_id in enumerate(catalog.item_ids)}
    start_micros = _micros(first) - (LONG_WINDOW_DAYS + 1) * US_PER_DAY

    # One query row per (request, position).
    sizes = np.array([len(request.item_ids) for request in requests])
    moments = np.repeat([_micros(request.signals_moment) for request in requests], sizes)
    item_ids = [item_id for request in requests for item_id in request.item_ids]
    item_codes = np.fromiter((log.items.get(i, -1) for i in item_ids), np.int64, len(item_ids))

    everything = np.ones(len(log.type), dtype=bool)
    item_sums = _PrefixSums(log.item, log.micros, _count_columns(log, everything), start_micros)
    short = item_sums.before(item_codes, moments, _table(SHORT_WINDOW_DAYS, SHORT_HALF_LIFE_DAYS))
    long_ = item_sums.before(item_codes, moments, _table(LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS))
    window_start = moments - LONG_WINDOW_DAYS * US_PER_DAY
    has_events = item_sums.count_between(item_codes, window_start, moments) > 0

    # The customer-level priors: every event as one key.
    all_sums = _PrefixSums(
        np.zeros(len(log.type), dtype=np.int64),
        log.micros,
        _count_columns(log, everything),
        start_micros,
    )
    totals = all_sums.before(
        np.zeros(len(requests), dtype=np.int64),
        np.array([_micros(request.signals_moment) for request in requests]),
        _table(LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS),
    )
    priors = {name: np.repeat(value, sizes) for name, value in customer_priors(totals).items()}

    rows = np.fromiter((catalog_row.get(i, -1) for i in item_ids), np.int64, len(item_ids))
    in_catalog = rows >= 0
    safe_rows = np.maximum(rows, 0)
    signals = item_signal_matrix(
        ItemInputs(
            short_counts=short,
            long_counts=long_,
            priors=priors,
            prices=np.where(in_catalog, _take(catalog.prices, safe_rows, np.nan), np.nan),
            price_percentile=np.where(
                in_catalog, _take(catalog.price_percentile, safe_rows, 0.5), 0.5
            ),
            median_price=catalog.median_price,
            freshness=np.where(
                in_catalog,
                freshness_at(_take(catalog.created_ts, safe_rows, 0.0), moments / 1e6),
                0.0,
            ),
            in_stock=np.where(in_catalog, _take(catalog.in_stock, safe_rows, 1.0), 1.0),
        )
    )
    known = in_catalog | has_events
    unknown = np.flatnonzero(~known)
    if len(unknown):
        signals[unknown] = default_item_signals(
            {name: value[unknown] for name, value in priors.items()}, catalog.median_price
        )
    stored = signals.astype(np.float32)  # what the signal store holds

    matrix = np.zeros((len(item_ids), len(FEATURES)))
    matrix[:, :N_ITEM] = stored
    matrix[:, QUERY_SLICE] = stored[:, QUERY_PRIOR_COLUMNS]  # a pair never seen: its prior
    _query_columns(log, requests, sizes, item_ids, moments, start_micros, known, signals, matrix)
    _shopper_columns(log, requests, sizes, item_ids, catalog, catalog_row, rows, matrix)
    offset = 0
    for request, size in zip(requests, sizes, strict=True):
        if request.relevance is not None:
            matrix[offset : offset + size, RELEVANCE_COLUMN] = request.relevance[:size]
        offset += size
    rebuilt = matrix.astype(np.float32)
    return np.split(rebuilt, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [rebuilt]


def _table(window_days: int, half_life: float) -> np.ndarray:
    return np.asarray(_weights_by_age(window_days, half_life)[:window_days])


def _take(values: np.ndarray, rows: np.ndarray, empty: float) -> np.ndarray:
    return values[rows] if len(values) else np.full(len(rows), empty)


def _query_columns(
    log: _EventLog,
    requests: Sequence[PastRequest],
    sizes: np.ndarray,
    item_ids: list[str],
    moments: np.ndarray,
    start_micros: int,
    known: np.ndarray,
    signals: np.ndarray,
    matrix: np.ndarray,
) -> None:
    """The query-item signals of the pairs the refresh would have kept; others keep the item's
    own rates (set by the caller), as the engine does."""
    queries = np.repeat(
        [log.queries.get(request.query, -1) if request.query else -1 for request in requests], sizes
    )
    if not (queries >= 0).any():
        return
    n_items = max(len(log.items), 1)
    with_query = log.query >= 0
    wanted = np.isin(log.type, [IMPRESSIONS, CLICKS, PURCHASES]) & with_query
    pair_keys = log.query[wanted] * n_items + log.item[wanted]
    # Renumber the pairs densely so the (key, time) codes stay small.
    unique_pairs, dense = np.unique(pair_keys, return_inverse=True)
    sums = _PrefixSums(
        dense,
        log.micros[wanted],
        _count_columns(log, wanted)[:, list(PAIR_COLUMNS)],
        start_micros,
    )
    item_codes = np.fromiter((log.items.get(i, -1) for i in item_ids), np.int64, len(item_ids))
    request_pairs = np.where((queries >= 0) & (item_codes >= 0), queries * n_items + item_codes, -1)
    position = np.searchsorted(unique_pairs, request_pairs)
    position = np.clip(position, 0, max(len(unique_pairs) - 1, 0))
    found = (request_pairs >= 0) & (len(unique_pairs) > 0)
    if len(unique_pairs):
        found &= unique_pairs[position] == request_pairs
    codes = np.where(found, position, -1)
    counts = sums.before(codes, moments, _table(LONG_WINDOW_DAYS, LONG_HALF_LIFE_DAYS))
    kept, values = query_pair_signals(counts, signals[:, QUERY_PRIOR_COLUMNS])
    use = found & kept & known
    matrix[use, QUERY_SLICE] = values[use].astype(np.float32)


def _shopper_columns(
    log: _EventLog,
    requests: Sequence[PastRequest],
    sizes: np.ndarray,
    item_ids: list[str],
    catalog: CatalogArrays,
    catalog_row: dict[str, int],
    rows: np.ndarray,
    matrix: np.ndarray,
) -> None:
    """Each request's shopper signals from the shopper's actions before it, folded in time
    order as the live profile folds them."""
    codes = {code: item_id for item_id, code in log.items.items()}
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    brand_codes = np.where(rows >= 0, _take(catalog.brand_codes, np.maximum(rows, 0), -1), -1)
    category_codes = np.full((len(rows), MAX_ITEM_CATEGORIES), -1, dtype=np.int64)
    if len(catalog.item_ids):
        category_codes[rows >= 0] = catalog.category_codes[rows[rows >= 0]]
    by_shopper: dict[str, list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        if request.shopper_key:
            by_shopper[request.shopper_key].append(index)
    for shopper, indexes in by_shopper.items():
        actions = sorted(log.actions.get(shopper, ()))
        builder = ProfileBuilder()
        done = 0
        for index in sorted(indexes, key=lambda i: requests[i].at):
            request = requests[index]
            moment = _micros(request.at)
            while done < len(actions) and actions[done][0] < moment:
                at, code, kind = actions[done]
                builder.add(_action(shopper, codes[code], kind, at, catalog, catalog_row))
                done += 1
            if not done:
                continue
            span = slice(offsets[index], offsets[index + 1])
            items = ItemCodes(
                item_ids=request.item_ids,
                brand=brand_codes[span],
                categories=category_codes[span],
                log_price=matrix[span, _PRICE],
                brand_index=catalog.brands,
                category_index=catalog.categories,
            )
            matrix[span, SHOPPER_SLICE] = shopper_columns(builder.profile(), items, moment / 1e6)


def _action(
    shopper: str,
    item_id: str,
    kind: str,
    micros: int,
    catalog: CatalogArrays,
    catalog_row: dict[str, int],
) -> ShopperAction:
    """The action as ingest would have folded it, with the item's catalog entry."""
    row = catalog_row.get(item_id)
    if row is None:
        return ShopperAction(shopper, item_id, kind, micros / 1e6, "", ())
    price = catalog.prices[row]
    return ShopperAction(
        shopper,
        item_id,
        kind,
        micros / 1e6,
        catalog.brand_names[row],
        catalog.category_lists[row],
        None if np.isnan(price) else float(price),
    )
