"""The signal store: one interface, two backends (Redis, and in-process for the embedded default).

A signal version is written whole under a new number and then made current by one pointer swap,
so a reader sees the old or the new version, never a mix. A rank request reads everything it needs
(item records, query-item records, the shopper's profile, and the attribute sets its rules ask
about) in one `fetch`: one Redis round trip.

Attribute sets: the items matching a rule's attribute clauses, one set per distinct clause set
(named by merchandising.compiled.attribute_set_name), kept current by merchandising.attribute_sets
on rule and catalog writes and with every signal refresh. They live beside the signal versions,
not in them: a rule's set is there as soon as the rule is saved.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from ranking.signals.schema import ITEM_RECORD, QUERY_RECORD, SCHEMA_HASH
from ranking.signals.shopper import ShopperAction, ShopperProfile

LOST_MESSAGE = (
    "the signal store holds no signal version of this customer although one was published: "
    "it lost its data (a refresh republishes within FIRST_REFRESH_POLL_SECONDS)"
)


class SignalStoreUnavailable(Exception):
    """The backend did not answer in time; the caller degrades. `reason` is what the metrics
    count: "signal_store" (the read failed), "signal_store_breaker" (not tried: the breaker
    is open after many failures) or "signal_store_lost" (the store answered but lost its data:
    a refresh republishes)."""

    def __init__(self, message: str, reason: str = "signal_store") -> None:
        super().__init__(message)
        self.reason = reason


class SignalSchemaMismatch(SignalStoreUnavailable):
    """The current version was computed for another feature schema (published before a deploy
    that added, removed or reordered a feature): its records have another width and meaning, so
    nothing is read from it. Answers are degraded ("signal_schema") until a refresh publishes a
    version of this schema (`manage.py refresh_signals`, or the refresh beat)."""

    def __init__(self, version: int, schema_hash: str) -> None:
        super().__init__(
            f"signal version {version} was computed for the feature schema {schema_hash}, not "
            f"this code's {SCHEMA_HASH}: refresh the signals to republish it",
            reason="signal_schema",
        )
        self.version = version


@dataclass(frozen=True)
class SignalMeta:
    """What a reader needs to decode one signal version; immutable, cached per version."""

    version: int
    created_at: str
    schema_hash: str
    # Decoded item record used when an item is unknown to this version.
    default_item: np.ndarray
    # Mean and standard deviation of every feature column (see schema.FEATURES).
    feature_mean: np.ndarray
    feature_std: np.ndarray
    brands: tuple[str, ...]
    categories: tuple[str, ...]
    stats: dict[str, Any]
    # A hash of the meta as the store holds it: names this exact version in host-shared
    # snapshots (ranking/signals/snapshot.py); empty for a meta built in this process.
    digest: str = ""

    @cached_property
    def brand_index(self) -> dict[str, int]:
        return {name: code for code, name in enumerate(self.brands)}

    @cached_property
    def category_index(self) -> dict[str, int]:
        return {name: code for code, name in enumerate(self.categories)}

    @cached_property
    def default_item_bytes(self) -> bytes:
        return self.default_item.tobytes()

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": self.version,
                "created_at": self.created_at,
                "schema_hash": self.schema_hash,
                "default_item": self.default_item.tobytes().hex(),
                "feature_mean": self.feature_mean.tolist(),
                "feature_std": self.feature_std.tolist(),
                "brands": self.brands,
                "categories": self.categories,
                "stats": self.stats,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> SignalMeta:
        """Raises SignalSchemaMismatch for a version of another feature schema."""
        data = orjson.loads(raw)
        if data["schema_hash"] != SCHEMA_HASH:
            raise SignalSchemaMismatch(data["version"], data["schema_hash"])
        encoded = raw.encode() if isinstance(raw, str) else raw
        return cls(
            version=data["version"],
            created_at=data["created_at"],
            schema_hash=data["schema_hash"],
            default_item=np.frombuffer(bytes.fromhex(data["default_item"]), dtype=ITEM_RECORD)[0],
            feature_mean=np.asarray(data["feature_mean"], dtype=np.float64),
            feature_std=np.asarray(data["feature_std"], dtype=np.float64),
            brands=tuple(data["brands"]),
            categories=tuple(data["categories"]),
            stats=data["stats"],
            digest=hashlib.blake2b(encoded, digest_size=8).hexdigest(),
        )


@dataclass(frozen=True)
class SignalSnapshot:
    """A complete signal version ready to publish."""

    meta: SignalMeta
    item_ids: Sequence[str]
    item_records: np.ndarray  # ITEM_RECORD, aligned with item_ids
    query_keys: Sequence[tuple[str, str]]  # (normalised query, item id)
    query_records: np.ndarray  # QUERY_RECORD, aligned with query_keys


@dataclass(frozen=True)
class SignalFetch:
    """Everything one rank request reads: aligned with the requested item ids."""

    meta: SignalMeta | None
    item_records: np.ndarray  # ITEM_RECORD, one per requested item
    item_found: np.ndarray  # bool
    query_records: np.ndarray | None  # QUERY_RECORD, or None when the request has no query
    query_found: np.ndarray | None
    shopper: ShopperProfile
    # attribute set name -> bool per requested item (only the sets the request asked for)
    attribute_masks: dict[str, np.ndarray] = field(default_factory=dict)


def shopper_hash(shopper_key: str) -> str:
    """Shopper ids may be personal data: keys carry a hash, never the id itself."""
    return hashlib.blake2b(shopper_key.encode(), digest_size=12).hexdigest()


def query_field(query: str, item_id: str) -> bytes:
    return f"{query}\x1f{item_id}".encode()


def query_fields(query: str, item_ids: Sequence[str]) -> list[bytes]:
    """`query_field` of each candidate, built in one pass (a call per item shows at 1000)."""
    prefix = f"{query}\x1f"
    return [(prefix + item_id).encode() for item_id in item_ids]


def item_keys(item_ids: Sequence[str]) -> list[bytes] | None:
    """The ids UTF-8 encoded, in one pass (a call per id shows at 1000); None when one holds a
    NUL byte (the pass splits on it) or cannot be encoded."""
    if not item_ids:
        return []
    try:
        keys = "\x00".join(item_ids).encode().split(b"\x00")
    except UnicodeEncodeError:
        return None
    return keys if len(keys) == len(item_ids) else None


def query_keys(query: str, item_keys: list[bytes]) -> list[bytes]:
    """`query_field` of each of the `item_keys` (as `item_keys` gives them), in one pass."""
    prefix = f"{query}\x1f".encode()
    if not item_keys or b"\x00" in prefix:
        return [prefix + key for key in item_keys]
    return (prefix + (b"\x00" + prefix).join(item_keys)).split(b"\x00")


def decode_items(
    raw: Sequence[bytes | None], meta: SignalMeta | None
) -> tuple[np.ndarray, np.ndarray]:
    """Packed records (None where missing) -> (records, found mask)."""
    if meta is None:
        return np.zeros(len(raw), dtype=ITEM_RECORD), np.zeros(len(raw), dtype=bool)
    if None not in raw:  # the common case: every candidate known, joined at C speed
        return np.frombuffer(b"".join(raw), dtype=ITEM_RECORD), np.ones(len(raw), dtype=bool)  # type: ignore[arg-type]
    found = np.fromiter((value is not None for value in raw), dtype=bool, count=len(raw))
    default = meta.default_item_bytes
    joined = b"".join(value if value is not None else default for value in raw)
    return np.frombuffer(joined, dtype=ITEM_RECORD), found


def decode_queries(raw: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    found = np.fromiter((value is not None for value in raw), dtype=bool, count=len(raw))
    missing = bytes(QUERY_RECORD.itemsize)
    joined = b"".join(value if value is not None else missing for value in raw)
    return np.frombuffer(joined, dtype=QUERY_RECORD), found


class SignalStore(abc.ABC):
    @abc.abstractmethod
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
        """Read all signals of one request, and which items are in each of `attribute_sets`.
        Raises SignalStoreUnavailable on an outage, and with reason "signal_store_lost" when
        the store holds no version of a customer that had one (`published`, or a version this
        process read): it lost its data, and an answer without signals would be silently
        wrong."""

    @abc.abstractmethod
    def attribute_set_replace(self, customer_id: int, name: str, item_ids: Sequence[str]) -> None:
        """Make the attribute set `name` exactly `item_ids` (readers see the old or the new)."""

    @abc.abstractmethod
    def attribute_sets_update(
        self, customer_id: int, changes: dict[str, tuple[Sequence[str], Sequence[str]]]
    ) -> None:
        """Per set name, (ids to add, ids to remove): after a catalog write."""

    @abc.abstractmethod
    def attribute_sets_retain(self, customer_id: int, names: Sequence[str]) -> None:
        """Delete the customer's attribute sets not named (no rule uses them any more)."""

    @abc.abstractmethod
    def publish(self, customer_id: int, snapshot: SignalSnapshot) -> int:
        """Write a whole version, then make it current atomically; returns its number."""

    @abc.abstractmethod
    def current_versions(self, customer_ids: Sequence[int]) -> dict[int, int | None]:
        """The current version number of each customer (None: the store holds none), in one
        round trip."""

    @abc.abstractmethod
    def current_meta(self, customer_id: int) -> SignalMeta | None:
        """The meta of the current version, read fresh (not from the per-process cache)."""

    @abc.abstractmethod
    def record_shopper_actions(
        self, customer_id: int, actions: Sequence[ShopperAction], *, once: str = ""
    ) -> None:
        """Fold clicks, carts and purchases into the shoppers' profiles. With `once` (an id never
        reused), a batch already applied under that id is skipped: replays apply it once.
        Raises SignalStoreUnavailable when the store does not take it (nothing is applied)."""

    @abc.abstractmethod
    def shopper_profile(self, customer_id: int, shopper_key: str) -> ShopperProfile:
        """One shopper's profile, for explanations and tests."""

    @abc.abstractmethod
    def drop_customer(self, customer_id: int) -> None:
        """Delete everything stored for a customer."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise SignalStoreUnavailable unless the backend answers."""
