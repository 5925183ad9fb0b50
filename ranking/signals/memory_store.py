"""The in-process signal store of the embedded default (one process, no Redis).

A version is an immutable object; publishing replaces the reference to it in one assignment,
which is atomic in CPython, so readers see the old or the new version whole.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ranking.signals.idsets import IdSet, id_slots
from ranking.signals.shopper import EMPTY_PROFILE, ProfileBuilder, ShopperAction, ShopperProfile
from ranking.signals.store import (
    LOST_MESSAGE,
    SignalFetch,
    SignalMeta,
    SignalSnapshot,
    SignalStore,
    SignalStoreUnavailable,
    decode_items,
)

K = TypeVar("K")


@dataclass(frozen=True)
class _Version:
    meta: SignalMeta
    item_rows: dict[str, int]
    item_records: np.ndarray
    query_rows: dict[tuple[str, str], int]
    query_records: np.ndarray


def _take(
    rows_by_key: dict[K, int], records: np.ndarray, keys: Sequence[K]
) -> tuple[np.ndarray, np.ndarray]:
    """The records of `keys` (a copy, row 0 where missing) and the found mask."""
    rows = np.fromiter((rows_by_key.get(key, -1) for key in keys), dtype=np.int64, count=len(keys))
    found = rows >= 0
    if len(records) == 0:
        return np.zeros(len(keys), dtype=records.dtype), found
    return records[np.maximum(rows, 0)], found


EMPTY_ID_SET = IdSet(frozenset())


class MemorySignalStore(SignalStore):
    def __init__(self) -> None:
        self._current: dict[int, _Version] = {}
        self._shoppers: dict[tuple[int, str], ProfileBuilder] = {}
        self._attribute_sets: dict[tuple[int, str], IdSet] = {}
        self._applied: set[str] = set()  # the `once` ids of replayed shopper-action batches
        self._lock = threading.Lock()

    def fetch(
        self,
        customer_id: int,
        item_ids: Sequence[str],
        query: str,
        shopper_key: str,
        attribute_sets: Sequence[str] = (),
        *,
        published: bool = False,
    ) -> SignalFetch:
        version = self._current.get(customer_id)
        if version is None and published:  # the process restarted since the last refresh
            raise SignalStoreUnavailable(LOST_MESSAGE, reason="signal_store_lost")
        profile = self.shopper_profile(customer_id, shopper_key) if shopper_key else EMPTY_PROFILE
        masks = {}
        if attribute_sets:
            slots = id_slots(item_ids)  # once per request, shared by every set's lookup
            for name in attribute_sets:
                members = self._attribute_sets.get((customer_id, name), EMPTY_ID_SET)
                masks[name] = members.mask(item_ids, slots)
        if version is None:
            records, found = decode_items([None] * len(item_ids), None)
            return SignalFetch(None, records, found, None, None, profile, masks)
        records, found = _take(version.item_rows, version.item_records, item_ids)
        records[~found] = version.meta.default_item
        query_records = query_found = None
        if query:
            keys = [(query, item_id) for item_id in item_ids]
            query_records, query_found = _take(version.query_rows, version.query_records, keys)
            query_records[~query_found] = np.zeros((), dtype=query_records.dtype)
        return SignalFetch(version.meta, records, found, query_records, query_found, profile, masks)

    def attribute_set_replace(self, customer_id: int, name: str, item_ids: Sequence[str]) -> None:
        with self._lock:
            self._attribute_sets[(customer_id, name)] = IdSet(frozenset(item_ids))

    def attribute_sets_update(
        self, customer_id: int, changes: dict[str, tuple[Sequence[str], Sequence[str]]]
    ) -> None:
        with self._lock:
            for name, (added, removed) in changes.items():
                members = self._attribute_sets.get((customer_id, name), EMPTY_ID_SET).members
                updated = (members | set(added)) - set(removed)
                self._attribute_sets[(customer_id, name)] = IdSet(updated)

    def attribute_sets_retain(self, customer_id: int, names: Sequence[str]) -> None:
        with self._lock:
            for key in [k for k in self._attribute_sets if k[0] == customer_id]:
                if key[1] not in names:
                    del self._attribute_sets[key]

    def publish(self, customer_id: int, snapshot: SignalSnapshot) -> int:
        version = _Version(
            meta=snapshot.meta,
            item_rows={item_id: row for row, item_id in enumerate(snapshot.item_ids)},
            item_records=np.array(snapshot.item_records, copy=True),
            query_rows={key: row for row, key in enumerate(snapshot.query_keys)},
            query_records=np.array(snapshot.query_records, copy=True),
        )
        self._current[customer_id] = version
        return snapshot.meta.version

    def current_versions(self, customer_ids: Sequence[int]) -> dict[int, int | None]:
        return {
            customer_id: version.meta.version
            if (version := self._current.get(customer_id))
            else None
            for customer_id in customer_ids
        }

    def current_meta(self, customer_id: int) -> SignalMeta | None:
        version = self._current.get(customer_id)
        return version.meta if version else None

    def record_shopper_actions(
        self, customer_id: int, actions: Sequence[ShopperAction], *, once: str = ""
    ) -> None:
        with self._lock:
            if once:
                if once in self._applied:
                    return
                self._applied.add(once)
            for action in sorted(actions, key=lambda action: action.timestamp):
                key = (customer_id, action.shopper_key)
                self._shoppers.setdefault(key, ProfileBuilder()).add(action)

    def shopper_profile(self, customer_id: int, shopper_key: str) -> ShopperProfile:
        with self._lock:
            shopper = self._shoppers.get((customer_id, shopper_key))
            return shopper.profile() if shopper is not None else EMPTY_PROFILE

    def drop_customer(self, customer_id: int) -> None:
        with self._lock:
            self._current.pop(customer_id, None)
            for key in [key for key in self._shoppers if key[0] == customer_id]:
                del self._shoppers[key]
            for set_key in [k for k in self._attribute_sets if k[0] == customer_id]:
                del self._attribute_sets[set_key]

    def ping(self) -> None:
        return None
