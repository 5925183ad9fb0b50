"""Event ingestion: validate the batch whole, store it once, update shoppers' signals.

Attribution: a click, add-to-cart or purchase that names a `request_id` inherits the query and
surface of that request's impression. An add-to-cart or purchase without one is attributed to the
shopper's latest click on the same item within ATTRIBUTION_WINDOW (its request, query, surface),
and marked `request_attributed`. Impressions get positions from their order.

Shopper profiles: the event log in PostgreSQL is the record; the profiles in the signal store
follow it. After the batch commits, its clicks, carts and purchases go to the store (a short
timeout, behind the store's breaker). What the store does not take, and every batch while older
ones still wait, is kept as a PendingProfileUpdate and replayed in order by
`pending_profile_updates_replay` (a beat task), each under its own `once` id, so a replay that
dies between applying an update and deleting it never applies it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import sql
from psycopg.errors import UniqueViolation

from catalog.selectors import item_shopper_facts
from core.bulk_copy import copy_rows
from core.errors import FieldError, invalid_request
from events import selectors
from events.contracts import AddToCartIn, ClickIn, EventIn, ImpressionIn, PurchaseIn
from events.models import Event, PendingProfileUpdate
from events.queries import normalise_query, shopper_key
from ranking.signals.backend import signal_store
from ranking.signals.shopper import ShopperAction
from ranking.signals.store import SignalStoreUnavailable

logger = logging.getLogger(__name__)

ATTRIBUTION_WINDOW = timedelta(days=7)
# Pending profile updates one replay step reads at a time (each is one ingest batch).
REPLAY_BATCH = 100
# Events stamped further ahead than this are refused: a client clock is wrong.
MAX_CLOCK_SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class _Origin:
    request_id: str
    query: str
    surface: str
    at: datetime


def _future_errors(events: Sequence[EventIn], now: datetime) -> list[FieldError]:
    limit = now + MAX_CLOCK_SKEW
    return [
        FieldError(
            ("events", index, "timestamp"),
            "in_future",
            f"{event.timestamp.isoformat()} is in the future; check the client's clock.",
        )
        for index, event in enumerate(events)
        if event.timestamp > limit
    ]


def _duplicate_item_errors(events: Sequence[EventIn]) -> list[FieldError]:
    errors = []
    for index, event in enumerate(events):
        if isinstance(event, ImpressionIn) and len(set(event.items)) != len(event.items):
            errors.append(
                FieldError(("events", index, "items"), "duplicate", "An item is listed twice.")
            )
    return errors


def _shopper(event: EventIn) -> str:
    return shopper_key(event.user_id, event.session_id)


def _impression_origins(customer_id: int, events: Sequence[EventIn]) -> dict[str, _Origin]:
    """request_id -> the impression it came from, from this batch first, then the log."""
    origins = {
        event.request_id: _Origin(
            event.request_id, normalise_query(event.query), event.surface or "", event.timestamp
        )
        for event in events
        if isinstance(event, ImpressionIn) and event.request_id
    }
    wanted = {
        event.request_id
        for event in events
        if not isinstance(event, ImpressionIn)
        and event.request_id
        and event.request_id not in origins
    }
    if wanted:
        stored = selectors.impressions_of_requests(customer_id=customer_id, request_ids=wanted)
        for request_id, query, surface, at in stored:
            origins.setdefault(request_id, _Origin(request_id, query, surface, at))
    return origins


def _latest_clicks(
    customer_id: int, events: Sequence[EventIn], origins: dict[str, _Origin]
) -> dict[tuple[str, str], list[_Origin]]:
    """(shopper, item) -> clicks that carried a request, for carts and purchases without one."""
    needing = [
        event
        for event in events
        if isinstance(event, AddToCartIn | PurchaseIn) and not event.request_id and _shopper(event)
    ]
    clicks: dict[tuple[str, str], list[_Origin]] = {}
    if not needing:
        return clicks
    for event in events:
        if isinstance(event, ClickIn) and event.request_id and _shopper(event):
            origin = origins.get(event.request_id)
            clicks.setdefault((_shopper(event), event.item_id), []).append(
                _Origin(
                    event.request_id,
                    origin.query if origin else normalise_query(event.query),
                    origin.surface if origin else event.surface or "",
                    event.timestamp,
                )
            )
    earliest = min(event.timestamp for event in needing) - ATTRIBUTION_WINDOW
    # Read by the sets of shoppers and items, then keep only the (shopper, item) pairs asked for.
    wanted = {(_shopper(event), event.item_id) for event in needing}
    stored = selectors.clicks_with_request(
        customer_id=customer_id,
        item_ids={event.item_id for event in needing},
        user_ids={event.user_id for event in needing if event.user_id},
        session_ids={event.session_id for event in needing if not event.user_id},
        since=earliest,
    )
    for user_id, session_id, item_id, request_id, query, surface, at in stored:
        key = (shopper_key(user_id, session_id), item_id)
        if key not in wanted:
            continue
        clicks.setdefault(key, []).append(_Origin(request_id, query, surface, at))
    return clicks


def _attribute(
    event: EventIn,
    origins: dict[str, _Origin],
    clicks: dict[tuple[str, str], list[_Origin]],
) -> tuple[_Origin | None, bool]:
    if event.request_id:
        return origins.get(event.request_id), False
    if isinstance(event, AddToCartIn | PurchaseIn):
        candidates = [
            click
            for click in clicks.get((_shopper(event), event.item_id), [])
            if event.timestamp - ATTRIBUTION_WINDOW <= click.at <= event.timestamp
        ]
        if candidates:
            return max(candidates, key=lambda click: click.at), True
    return None, False


# The event log's columns in the order the ingest writes them, by COPY and by bulk_create alike.
_COLUMNS = (
    "customer_id",
    "event_id",
    "ordinal",
    "type",
    "item_id",
    "position",
    "occurred_at",
    "received_at",
    "user_id",
    "session_id",
    "request_id",
    "request_attributed",
    "surface",
    "query",
    "quantity",
    "price",
    "revenue",
)
_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
_Row = tuple[object, ...]


def _rows(
    customer_id: int,
    event: EventIn,
    origin: _Origin | None,
    attributed: bool,
    received_at: datetime,
) -> list[_Row]:
    """The event's rows as plain tuples in _COLUMNS order: building model objects cost more
    than inserting them."""
    shopper_and_origin = (
        event.user_id or "",
        event.session_id or "",
        event.request_id or (origin.request_id if origin else ""),
        attributed,
        event.surface or (origin.surface if origin else ""),
        normalise_query(event.query) or (origin.query if origin else ""),
    )
    if isinstance(event, ImpressionIn):
        return [
            (
                customer_id,
                event.event_id,
                ordinal,
                event.type,
                item_id,
                ordinal + 1,
                event.timestamp,
                received_at,
                *shopper_and_origin,
                1,
                None,
                0.0,
            )
            for ordinal, item_id in enumerate(event.items)
        ]
    position = event.position if isinstance(event, ClickIn) else None
    quantity = event.quantity if isinstance(event, AddToCartIn | PurchaseIn) else 1
    price = event.price if isinstance(event, PurchaseIn) else None
    revenue = event.price * event.quantity if isinstance(event, PurchaseIn) else 0.0
    return [
        (
            customer_id,
            event.event_id,
            0,
            event.type,
            event.item_id,
            position,
            event.timestamp,
            received_at,
            *shopper_and_origin,
            quantity,
            price,
            revenue,
        )
    ]


def _store_copy(rows: list[_Row]) -> set[str]:
    """PostgreSQL: COPY the rows straight into the log; returns the event ids stored.

    COPY writes rows in bulk, far cheaper than INSERT (ON CONFLICT or not). It fails whole when
    a batch racing this one stored one of its ids since the look-up; the rows are then inserted
    again skipping conflicts, and the ids the other batch stored count as duplicates here.
    """
    try:
        with transaction.atomic(), connection.cursor() as wrapper:
            copy_rows(wrapper.cursor, "events_event", _COLUMNS, rows)
    except UniqueViolation:
        return _store_skipping_conflicts(rows)
    return {str(row[1]) for row in rows}


def _store_skipping_conflicts(rows: list[_Row]) -> set[str]:
    """COPY into a scratch table, then move the rows whose key is new into the log."""
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE events_ingest_rows ON COMMIT DROP"
                " AS SELECT {columns} FROM events_event WITH NO DATA"
            ).format(columns=_COLUMN_LIST)
        )
        copy_rows(cursor, "events_ingest_rows", _COLUMNS, rows)
        cursor.execute(
            sql.SQL(
                """
                WITH stored AS (
                    INSERT INTO events_event ({columns}) SELECT {columns} FROM events_ingest_rows
                    ON CONFLICT (customer_id, event_id, ordinal) DO NOTHING
                    RETURNING event_id, ordinal
                )
                SELECT event_id FROM stored WHERE ordinal = 0
                """
            ).format(columns=_COLUMN_LIST)
        )
        stored = {event_id for (event_id,) in cursor.fetchall()}
        # Dropped now, not only at commit: a caller's transaction may ingest more than once.
        cursor.execute("DROP TABLE events_ingest_rows")
        return stored


def _store_orm(rows: list[_Row]) -> set[str]:
    """Other databases (SQLite of the embedded default): the ORM. Its IMMEDIATE transactions
    serialise batches, so the duplicate look-up already saw every stored id."""
    Event.objects.bulk_create(
        [Event(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
        batch_size=2000,
        ignore_conflicts=True,
    )
    return {str(row[1]) for row in rows}


def events_ingest(*, customer_id: int, events: Sequence[EventIn]) -> IngestResult:
    """Store a validated batch; repeated event ids (in the log or the batch) are duplicates.

    The batch is stored whole or not at all (one transaction): a database error leaves nothing
    of it. Once it is committed nothing raises: the shopper profiles' update is applied, or kept
    to be replayed."""
    now = timezone.now()
    errors = _future_errors(events, now) + _duplicate_item_errors(events)
    if errors:
        raise invalid_request(errors)
    with transaction.atomic():
        seen = selectors.event_ids_stored(
            customer_id=customer_id, event_ids={event.event_id for event in events}
        )
        fresh: list[EventIn] = []
        for event in events:
            if event.event_id not in seen:
                seen.add(event.event_id)
                fresh.append(event)
        origins = _impression_origins(customer_id, fresh)
        clicks = _latest_clicks(customer_id, fresh, origins)
        rows = []
        for event in fresh:
            origin, attributed = _attribute(event, origins, clicks)
            rows.extend(_rows(customer_id, event, origin, attributed, now))
        store = _store_copy if connection.vendor == "postgresql" else _store_orm
        stored = store(rows) if rows else set()
        accepted = [event for event in fresh if event.event_id in stored]
        actions = shopper_actions(customer_id=customer_id, events=accepted)
        # Behind older pending updates, this one waits its turn: profiles see actions in order.
        # Queued here, it commits with the events or not at all.
        queued = bool(actions) and selectors.profile_updates_pending(customer_id=customer_id)
        if queued:
            profile_update_queue(customer_id=customer_id, actions=actions)
    if actions and not queued:
        shopper_actions_apply(customer_id=customer_id, actions=actions)
    return IngestResult(accepted=len(accepted), duplicates=len(events) - len(accepted))


def shopper_actions(*, customer_id: int, events: Sequence[EventIn]) -> list[ShopperAction]:
    """The clicks, carts and purchases of known shoppers, with what the catalog says of each
    item (brand, categories, price) now."""
    acting = [
        event
        for event in events
        if isinstance(event, ClickIn | AddToCartIn | PurchaseIn) and _shopper(event)
    ]
    if not acting:
        return []
    items = item_shopper_facts(customer_id=customer_id, item_ids={e.item_id for e in acting})
    unknown: tuple[str, tuple[str, ...], float | None] = ("", (), None)
    return [
        ShopperAction(
            shopper_key=_shopper(event),
            item_id=event.item_id,
            action=event.type,
            timestamp=event.timestamp.timestamp(),
            brand=items.get(event.item_id, unknown)[0],
            categories=items.get(event.item_id, unknown)[1],
            price=items.get(event.item_id, unknown)[2],
        )
        for event in acting
    ]


def shopper_actions_apply(*, customer_id: int, actions: Sequence[ShopperAction]) -> None:
    """Fold actions into the shopper profiles, so the next ranking reflects them; when the
    signal store does not take them, keep them for the replay. Never raises: the events are
    stored already, and the answer must say so."""
    try:
        signal_store().record_shopper_actions(customer_id, actions)
        return
    except SignalStoreUnavailable as exc:
        logger.warning(
            "signal store unavailable (%s): %d shopper actions kept for replay",
            exc.reason,
            len(actions),
        )
    try:
        profile_update_queue(customer_id=customer_id, actions=actions)
    except DatabaseError:
        # PostgreSQL went down since the batch committed: the events are in the log, but these
        # profile updates are lost (training rebuilds profiles from the log; ranking does not).
        logger.error(
            "database unavailable: %d shopper actions of stored events not kept for replay",
            len(actions),
            exc_info=True,
        )


@transaction.atomic
def profile_update_queue(*, customer_id: int, actions: Sequence[ShopperAction]) -> None:
    """Keep a batch's actions for the replay, behind every update of the customer kept before."""
    PendingProfileUpdate.objects.create(
        customer_id=customer_id,
        actions=[
            [a.shopper_key, a.item_id, a.action, a.timestamp, a.brand, list(a.categories), a.price]
            for a in actions
        ],
    )


def _pending_actions(pending: PendingProfileUpdate) -> list[ShopperAction]:
    return [
        ShopperAction(
            shopper_key=shopper,
            item_id=item_id,
            action=action,
            timestamp=timestamp,
            brand=brand,
            categories=tuple(categories),
            price=price,
        )
        for shopper, item_id, action, timestamp, brand, categories, price in pending.actions
    ]


def pending_profile_updates_replay(*, limit: int = 2000) -> int:
    """Apply pending profile updates to the signal store, oldest first per customer, deleting
    each once applied; returns how many were applied. Stops at the first the store refuses
    (still down: the next run goes on from there) or after `limit`.

    Each update carries its own `once` id, which the store remembers with the profile change in
    one atomic step: if this run dies after applying updates and before deleting them, the next
    run finds them applied and only deletes them. Two runs at once apply each update once too."""
    store = signal_store()
    applied = 0
    for customer_id in selectors.unscoped_customers_with_profile_updates():
        while applied < limit:
            batch = selectors.profile_updates_oldest(
                customer_id=customer_id, limit=min(REPLAY_BATCH, limit - applied)
            )
            if not batch:
                break
            done: list[int] = []
            try:
                for pending in batch:
                    actions = _pending_actions(pending)
                    store.record_shopper_actions(customer_id, actions, once=str(pending.token))
                    done.append(pending.pk)
            except SignalStoreUnavailable as exc:
                logger.warning(
                    "signal store unavailable (%s): %d profile updates still pending",
                    exc.reason,
                    selectors.unscoped_profile_updates_count() - len(done),
                )
                return applied + _forget_applied(done)
            applied += _forget_applied(done)
    return applied


def _forget_applied(ids: list[int]) -> int:
    PendingProfileUpdate.objects.filter(pk__in=ids).delete()
    return len(ids)
