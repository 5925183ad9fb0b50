"""The Redis signal store.

Keys (all of one customer share the hash tag `{c<id>}`, so they sit in one Redis Cluster slot and
one pipeline can read them):

    <ns>:{c<id>}:ptr              current version number (the pointer that is swapped); the
                                  numbers come from PostgreSQL and are never reused
    <ns>:{c<id>}:v<n>:meta        the version's SignalMeta as JSON
    <ns>:{c<id>}:v<n>:items       hash: item id -> packed ITEM_RECORD
    <ns>:{c<id>}:v<n>:qi          hash: "query\\x1fitem id" -> packed QUERY_RECORD
    <ns>:{c<id>}:pf:<hash>        hash: shopper interests, decayed ("t" total, "b:<brand>",
                                  "c:<category>", and the price band's "p:<category>" and
                                  "w:<category>"), ranking/signals/shopper.py
    <ns>:{c<id>}:sv:<hash>        sorted set: recently viewed item ids by time
    <ns>:{c<id>}:sp:<hash>        sorted set: purchased item ids by time
    <ns>:{c<id>}:ss:<hash>        hash: the shopper's current session ("t", "b:...", "c:...",
                                  "last": its latest action's time)
    <ns>:{c<id>}:as:<name>        set: item ids matching a rule's attribute clauses
    <ns>:{c<id>}:asindex          set: the names of those sets (and "")

Each process caches the current version's meta. A fetch is one pipeline: the pointer, the item
records, the query-item records, the shopper profile and an SMISMEMBER per attribute set asked.
When the pointer it returns has moved, the next request reads the new version; the replaced
version stays readable for a grace period. Once this host holds a mapped copy of the current
version (ranking/signals/snapshot.py), the item and query-item records come from it and the
pipeline carries the rest.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import hiredis
import numpy as np
import redis
from redis.cluster import RedisCluster

from core import metrics
from core.private_dirs import private_directory
from ranking.signals.breaker import Breaker
from ranking.signals.schema import ITEM_RECORD, QUERY_RECORD
from ranking.signals.shopper import (
    EMPTY_PROFILE,
    SESSION_GAP_SECONDS,
    SHOPPER_ACTION_WEIGHTS,
    SHOPPER_RECENT_ITEMS,
    SHOPPER_TTL_SECONDS,
    ShopperAction,
    ShopperProfile,
    decayed_weight,
    log_price_of,
)
from ranking.signals.snapshot import Snapshot, SnapshotCache
from ranking.signals.snapshot_build import build_in_child
from ranking.signals.store import (
    LOST_MESSAGE,
    SignalFetch,
    SignalMeta,
    SignalSnapshot,
    SignalStore,
    SignalStoreUnavailable,
    decode_items,
    decode_queries,
    item_keys,
    query_field,
    query_fields,
    query_keys,
    shopper_hash,
)

logger = logging.getLogger(__name__)

WRITE_BATCH = 5000
# A version still being written expires by itself if its writer dies before the swap.
UNPUBLISHED_TTL_SECONDS = 3600
WRITER_TIMEOUT_SECONDS = 30.0
# A call on a request's path (attribute sets after a catalog or rule write, the current meta)
# waits at most this long.
REQUEST_WRITE_TIMEOUT_SECONDS = 2.0
# How long Redis remembers that a replayed batch of shopper actions was applied: far longer than a
# replay can take between applying a batch and deleting it from PostgreSQL.
APPLIED_MARKER_TTL_SECONDS = 7 * 24 * 3600


# Shopper actions of one ingest batch, folded as ranking.signals.shopper.ProfileBuilder does.
# KEYS: per shopper its interests hash, viewed and purchased sorted sets and session hash; last,
# with a marker TTL, the batch's "applied" marker. ARGV: the TTL, how many recent items to keep,
# the session gap, the marker's TTL (0: no marker), the deadline (epoch seconds), then per
# shopper: the number of interest increments and (name, amount) pairs; for viewed and for
# purchased the number of items and (timestamp, item id) pairs; the number of actions and, per
# action in time order, its time, its number of session increments and their (name, amount)
# pairs. ZADD takes at most 1000 items a call (Lua's unpack limit); GT keeps an item's latest
# time when an older action comes late.
# A batch whose marker exists is skipped (returns 1), and the marker is set in the same atomic
# run: a replay that dies between applying a batch and deleting it never applies it twice. A
# call Redis runs after the deadline does nothing (returns 2): its caller gave up on it by then
# and keeps the batch to replay, and a frozen Redis runs the calls it received once it thaws.
RECORD_ACTIONS_SCRIPT = """
local ttl, keep, gap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local marker_ttl, shopper_keys = tonumber(ARGV[4]), #KEYS
local clock = redis.call('TIME')
if tonumber(clock[1]) + tonumber(clock[2]) / 1000000 > tonumber(ARGV[5]) then return 2 end
if marker_ttl > 0 then
  shopper_keys = shopper_keys - 1
  if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return 1 end
end
local a = 6
for k = 1, shopper_keys, 4 do
  local n = tonumber(ARGV[a]); a = a + 1
  for _ = 1, n do
    redis.call('HINCRBYFLOAT', KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2
  end
  for j = 1, 2 do
    local m = tonumber(ARGV[a]); a = a + 1
    if m > 0 then
      local pairs_left = m
      while pairs_left > 0 do
        local take = math.min(pairs_left, 1000)
        local zargs = {}
        for _ = 1, take do
          zargs[#zargs + 1] = ARGV[a]; zargs[#zargs + 1] = ARGV[a + 1]; a = a + 2
        end
        redis.call('ZADD', KEYS[k + j], 'GT', unpack(zargs))
        pairs_left = pairs_left - take
      end
      redis.call('ZREMRANGEBYRANK', KEYS[k + j], 0, -(keep + 1))
    end
  end
  local session = KEYS[k + 3]
  local last = tonumber(redis.call('HGET', session, 'last') or '0')
  local total = tonumber(redis.call('HGET', session, 't') or '0')
  local actions = tonumber(ARGV[a]); a = a + 1
  for _ = 1, actions do
    local ts, fields = tonumber(ARGV[a]), tonumber(ARGV[a + 1]); a = a + 2
    local late = false
    if total > 0 then
      if ts - last > gap then
        redis.call('DEL', session); total = 0; last = 0
      elseif last - ts > gap then
        late = true
      end
    end
    if late then
      a = a + 2 * fields
    else
      for _ = 1, fields do
        redis.call('HINCRBYFLOAT', session, ARGV[a], ARGV[a + 1])
        if ARGV[a] == 't' then total = total + tonumber(ARGV[a + 1]) end
        a = a + 2
      end
      if ts > last then last = ts end
    end
  end
  if actions > 0 then redis.call('HSET', session, 'last', string.format('%.6f', last)) end
  for j = 0, 3 do redis.call('EXPIRE', KEYS[k + j], ttl) end
end
if marker_ttl > 0 then redis.call('SET', KEYS[#KEYS], '1', 'EX', marker_ttl) end
return 0
"""


class RedisSignalStore(SignalStore):
    def __init__(
        self,
        *,
        url: str,
        namespace: str,
        timeout: float,
        breaker_seconds: float,
        grace_seconds: int,
        cluster: bool = False,
        breaker_min_calls: int = 10,
        breaker_window_seconds: float = 1.0,
        breaker_failure_rate: float = 0.5,
        profile_timeout: float = 0.25,
        snapshot_dir: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.breaker = Breaker(
            open_seconds=breaker_seconds,
            min_calls=breaker_min_calls,
            window_seconds=breaker_window_seconds,
            failure_rate=breaker_failure_rate,
        )
        self.grace_seconds = grace_seconds
        # A Redis Cluster (ElastiCache cluster mode) works the same: every key of a customer
        # carries the hash tag {c<id>}, so one request's commands go to one node in one pipeline.
        client: Any = RedisCluster if cluster else redis.Redis
        self._url, self._cluster = url, cluster
        self._reader = client.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._writer = client.from_url(
            url, socket_timeout=WRITER_TIMEOUT_SECONDS, socket_connect_timeout=5.0
        )
        # Shopper-profile writes run on the events request path: a short timeout and the reads'
        # breaker, never the writer's 30 s. A write that fails is kept in PostgreSQL and replayed
        # (events.services), so giving up early loses nothing.
        self._profile_writer = client.from_url(
            url,
            socket_timeout=profile_timeout,
            socket_connect_timeout=profile_timeout,
            retry_on_timeout=False,
        )
        self._record_actions = self._profile_writer.register_script(RECORD_ACTIONS_SCRIPT)
        self.profile_timeout = profile_timeout
        # Catalog and rule writes update the rules' attribute sets on their request path, and the
        # explain page reads the current meta: a bounded wait (and, for catalog writes, the
        # breaker); a set given up on is repaired by the next signal refresh.
        self._request_writer = client.from_url(
            url,
            socket_timeout=REQUEST_WRITE_TIMEOUT_SECONDS,
            socket_connect_timeout=REQUEST_WRITE_TIMEOUT_SECONDS,
            retry_on_timeout=False,
        )
        self._current: dict[int, SignalMeta] = {}
        self._metas: dict[tuple[int, int], SignalMeta] = {}
        self._lock = threading.Lock()
        # None: every record comes from Redis (SIGNAL_SNAPSHOTS=false).
        self.snapshots: SnapshotCache | None = None
        if snapshot_dir is not None:
            try:
                directory = private_directory(
                    snapshot_dir, "rankwell-signals", "no signal snapshots"
                )
            except OSError:
                logger.warning("no signal snapshots: records are read from Redis", exc_info=True)
            else:
                self.snapshots = SnapshotCache(
                    directory,
                    namespace,
                    self._write_version,
                    grace_seconds,
                    count=lambda outcome: metrics.SIGNAL_SNAPSHOTS.labels(outcome).inc(),
                )

    # --- keys -----------------------------------------------------------------------------------
    def _prefix(self, customer_id: int) -> str:
        return f"{self.namespace}:{{c{customer_id}}}"

    def _version_keys(self, customer_id: int, version: int) -> tuple[str, str, str]:
        base = f"{self._prefix(customer_id)}:v{version}"
        return f"{base}:meta", f"{base}:items", f"{base}:qi"

    def _shopper_keys(self, customer_id: int, shopper_key: str) -> tuple[str, str, str, str]:
        """Interests, viewed, purchased, session."""
        prefix, digest = self._prefix(customer_id), shopper_hash(shopper_key)
        return (
            f"{prefix}:pf:{digest}",
            f"{prefix}:sv:{digest}",
            f"{prefix}:sp:{digest}",
            f"{prefix}:ss:{digest}",
        )

    def _attribute_key(self, customer_id: int, name: str) -> str:
        return f"{self._prefix(customer_id)}:as:{name}"

    def _attribute_index(self, customer_id: int) -> str:
        """The set of the customer's attribute-set names (and "", so it exists once written):
        a refresh finds the stale sets here instead of scanning every key in Redis."""
        return f"{self._prefix(customer_id)}:asindex"

    # --- reading --------------------------------------------------------------------------------
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
        if not self.breaker.allow():
            raise SignalStoreUnavailable(
                "Redis failed often lately; not trying again yet", reason="signal_store_breaker"
            )
        try:
            meta = self._current.get(customer_id)
            if meta is None:
                meta = self._load_current(customer_id)
            read = (item_ids, query, shopper_key, attribute_sets)
            pointer, fetched, copied = self._read(customer_id, meta, *read)
            if copied and meta is not None and pointer != meta.version:
                # The copy answers for the version held; whether Redis still has it (and so what
                # this request gets) only Redis can say: ask it as if there were no copy.
                pointer, fetched, _ = self._read(customer_id, meta, *read, use_snapshot=False)
            if pointer is None and (published or meta is not None):
                # Redis answered without the pointer of a customer that had one: it lost its
                # data. Forget the version read before; nothing read now is the shop's.
                self._current.pop(customer_id, None)
                self.breaker.record(True)
                raise SignalStoreUnavailable(LOST_MESSAGE, reason="signal_store_lost")
            if pointer is not None and (meta is None or pointer != meta.version):
                new_meta = self._meta(customer_id, pointer)
                if new_meta is not None:
                    self._current[customer_id] = new_meta
                    if meta is None or not fetched.item_found.any():
                        # The version we held is gone (or there was none): read the new one.
                        _, fetched, _ = self._read(customer_id, new_meta, *read)
        except redis.RedisError as exc:
            self.breaker.record(False)
            raise SignalStoreUnavailable(str(exc)) from exc
        self.breaker.record(True)
        return fetched

    def _read(
        self,
        customer_id: int,
        meta: SignalMeta | None,
        item_ids: Sequence[str],
        query: str,
        shopper_key: str,
        attribute_sets: Sequence[str],
        *,
        use_snapshot: bool = True,
    ) -> tuple[int | None, SignalFetch, bool]:
        """(the pointer, what was read, whether the records came from this host's copy)."""
        ids = list(item_ids)  # one list for the HMGET and every SMISMEMBER
        copy = self._snapshot(customer_id, meta, ids) if use_snapshot else None
        keys = copy[1] if copy is not None else item_keys(ids)  # the ids as bytes (None: a NUL)
        commands: list[tuple[Any, ...]] = [("GET", f"{self._prefix(customer_id)}:ptr")]
        if meta is not None and copy is None:
            _, items_key, query_key = self._version_keys(customer_id, meta.version)
            commands.append(_ids_command("HMGET", items_key, ids, keys))
            if query:
                fields = query_fields(query, item_ids)
                commands.append(_ids_command("HMGET", query_key, fields, fields))
        if shopper_key:
            interests, viewed, purchased, session = self._shopper_keys(customer_id, shopper_key)
            commands += [
                ("HGETALL", interests),
                ("ZRANGE", viewed, 0, -1),
                ("ZRANGE", purchased, 0, -1),
                ("HGETALL", session),
            ]
        for name in attribute_sets:
            commands.append(
                _ids_command("SMISMEMBER", self._attribute_key(customer_id, name), ids, keys)
            )
        replies = iter(self._round_trip(commands))
        raw_pointer = next(replies)
        pointer = int(raw_pointer) if raw_pointer is not None else None
        query_records = query_found = None
        if meta is not None and copy is not None:
            snapshot, keys = copy
            try:
                records, found = snapshot.item_records(keys, meta.default_item)
                if query:
                    query_records, query_found = snapshot.query_item_records(
                        query_keys(query, keys)
                    )
            except Exception:
                # A fault of the copy is never the answer: drop it and read Redis.
                logger.exception("signal snapshot of customer %s failed a lookup", customer_id)
                if self.snapshots is not None:
                    self.snapshots.drop(customer_id, meta.version, meta.digest)
                read = (item_ids, query, shopper_key, attribute_sets)
                return self._read(customer_id, meta, *read, use_snapshot=False)
        elif meta is not None:
            records, found = decode_items(next(replies), meta)
            if query:
                query_records, query_found = decode_queries(next(replies))
        else:
            records, found = decode_items([None] * len(item_ids), None)
        profile = EMPTY_PROFILE
        if shopper_key:
            profile = _profile(
                _as_dict(next(replies)), next(replies), next(replies), _as_dict(next(replies))
            )
        # SMISMEMBER's 0/1 per id as one byte each: a C pass (np.array of the list is 2.5x slower).
        masks = {
            name: np.frombuffer(bytearray(next(replies)), dtype=bool) for name in attribute_sets
        }
        fetched = SignalFetch(meta, records, found, query_records, query_found, profile, masks)
        return pointer, fetched, copy is not None

    def _round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The replies of `commands`, sent together and read back in one round trip: what a
        non-transactional pipeline does (the same bytes on the wire, the same retries, the first
        error reply raised once every reply is read), without building one per request, which
        cost the worker about twice the exchange itself (docs/performance.md). Replies come
        unconverted: HGETALL's as a flat list under RESP2 (`_as_dict`), SMISMEMBER's as 0/1.
        A Redis Cluster's pipeline routes the commands to their slot's node: it keeps it."""
        client = self._reader
        if not isinstance(client, redis.Redis):
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return list(pipe.execute())
        replies: list[Any] = _on_pooled_connection(
            client, lambda connection: _exchange(connection, commands)
        )
        return replies

    def _snapshot(
        self, customer_id: int, meta: SignalMeta | None, ids: list[str]
    ) -> tuple[Snapshot, list[bytes]] | None:
        """This host's mapped copy of the version and the ids as its keys, when it is ready and
        can answer exactly for these ids (fixed-width byte keys cannot tell an id with a NUL
        byte)."""
        if self.snapshots is None or meta is None or not meta.digest:
            return None
        snapshot = self.snapshots.get(customer_id, meta.version, meta.digest)
        if snapshot is None:
            return None
        keys = item_keys(ids)
        return (snapshot, keys) if keys is not None else None

    def _write_version(
        self, customer_id: int, version: int, directory: Path, manifest: dict[str, object]
    ) -> None:
        """A published version's files for this host's copy, written by a short-lived process
        that reads Redis a slice at a time (its memory is returned whole when it exits)."""
        build_in_child(
            url=self._url,
            cluster=self._cluster,
            timeout=WRITER_TIMEOUT_SECONDS,
            version_keys=self._version_keys(customer_id, version),
            directory=directory,
            manifest=manifest,
        )

    def _meta(self, customer_id: int, version: int) -> SignalMeta | None:
        cached = self._metas.get((customer_id, version))
        if cached is not None:
            return cached
        raw = self._reader.get(self._version_keys(customer_id, version)[0])
        if raw is None:
            return None
        meta = SignalMeta.from_json(raw)
        with self._lock:
            if len(self._metas) > 1000:
                self._metas.clear()
            self._metas[(customer_id, version)] = meta
        return meta

    def _load_current(self, customer_id: int) -> SignalMeta | None:
        pointer = self._reader.get(f"{self._prefix(customer_id)}:ptr")
        if pointer is None:
            return None
        meta = self._meta(customer_id, int(pointer))
        if meta is not None:
            self._current[customer_id] = meta
        return meta

    def current_versions(self, customer_ids: Sequence[int]) -> dict[int, int | None]:
        ids = list(customer_ids)
        try:
            pipe = self._reader.pipeline(transaction=False)
            for customer_id in ids:
                pipe.get(f"{self._prefix(customer_id)}:ptr")
            pointers = pipe.execute() if ids else []
        except redis.RedisError as exc:
            raise SignalStoreUnavailable(str(exc)) from exc
        return {
            customer_id: int(pointer) if pointer is not None else None
            for customer_id, pointer in zip(ids, pointers, strict=True)
        }

    def current_meta(self, customer_id: int) -> SignalMeta | None:
        try:
            pointer = self._request_writer.get(f"{self._prefix(customer_id)}:ptr")
            if pointer is None:
                return None
            raw = self._request_writer.get(self._version_keys(customer_id, int(pointer))[0])
        except redis.RedisError as exc:
            raise SignalStoreUnavailable(str(exc)) from exc
        return SignalMeta.from_json(raw) if raw is not None else None

    # --- writing --------------------------------------------------------------------------------
    def publish(self, customer_id: int, snapshot: SignalSnapshot) -> int:
        version = snapshot.meta.version
        meta_key, items_key, query_key = self._version_keys(customer_id, version)
        self._write_hash(items_key, snapshot.item_ids, snapshot.item_records, ITEM_RECORD.itemsize)
        fields = [query_field(query, item_id) for query, item_id in snapshot.query_keys]
        self._write_hash(query_key, fields, snapshot.query_records, QUERY_RECORD.itemsize)
        pipe = self._writer.pipeline(transaction=True)
        pipe.set(meta_key, snapshot.meta.to_json())
        for key in (items_key, query_key):
            pipe.persist(key)
        pipe.set(f"{self._prefix(customer_id)}:ptr", version, get=True)
        old_pointer = pipe.execute()[-1]
        if old_pointer is not None and int(old_pointer) != version:
            pipe = self._writer.pipeline(transaction=False)
            for key in self._version_keys(customer_id, int(old_pointer)):
                pipe.expire(key, self.grace_seconds)
            pipe.execute()
        return version

    def _write_hash(
        self, key: str, fields: Sequence[str | bytes], records: Any, itemsize: int
    ) -> None:
        """HSET the records under their fields, WRITE_BATCH at a time, each batch renewing the
        key's expiry. To one Redis every batch is sent before any reply is read, so Redis stores
        a batch while this process packs the next (2.0M query-item records: 4.2 s to 2.1 s,
        docs/performance.md); a Redis Cluster's pipeline routes by slot, a round trip a batch."""
        raw = records.tobytes() if len(fields) else b""
        if not isinstance(self._writer, redis.Redis):
            for pairs in _hset_batches(fields, raw, itemsize):
                pipe = self._writer.pipeline(transaction=False)
                pipe.execute_command("HSET", key, *pairs)
                pipe.expire(key, UNPUBLISHED_TTL_SECONDS)
                pipe.execute()
            return
        _on_pooled_connection(
            self._writer,
            lambda connection: _send_batches(connection, key, _hset_batches(fields, raw, itemsize)),
        )

    def attribute_set_replace(self, customer_id: int, name: str, item_ids: Sequence[str]) -> None:
        key = self._attribute_key(customer_id, name)
        staging = f"{key}:staging:{secrets.token_hex(4)}"  # same hash tag: same slot as `key`
        try:
            if not item_ids:
                self._request_writer.delete(key)
                return
            for start in range(0, len(item_ids), WRITE_BATCH):
                pipe = self._request_writer.pipeline(transaction=False)
                pipe.sadd(staging, *item_ids[start : start + WRITE_BATCH])
                pipe.expire(staging, UNPUBLISHED_TTL_SECONDS)
                pipe.execute()
            self._request_writer.sadd(self._attribute_index(customer_id), "", name)
            # RENAME replaces the set atomically (cluster pipelines refuse it, hence two calls);
            # it carries the staging key's expiry over, which PERSIST then removes.
            self._request_writer.rename(staging, key)
            self._request_writer.persist(key)
        except redis.RedisError as exc:
            raise SignalStoreUnavailable(str(exc)) from exc

    def attribute_sets_update(
        self, customer_id: int, changes: dict[str, tuple[Sequence[str], Sequence[str]]]
    ) -> None:
        if not self.breaker.allow():
            raise SignalStoreUnavailable(
                "Redis failed often lately; not trying again yet", reason="signal_store_breaker"
            )
        pipe = self._request_writer.pipeline(transaction=False)
        if changes:
            pipe.sadd(self._attribute_index(customer_id), "", *changes)
        for name, (added, removed) in changes.items():
            key = self._attribute_key(customer_id, name)
            for start in range(0, len(added), WRITE_BATCH):
                pipe.sadd(key, *added[start : start + WRITE_BATCH])
            for start in range(0, len(removed), WRITE_BATCH):
                pipe.srem(key, *removed[start : start + WRITE_BATCH])
        try:
            pipe.execute()
        except redis.RedisError as exc:
            self.breaker.record(False)
            raise SignalStoreUnavailable(str(exc)) from exc
        self.breaker.record(True)

    def attribute_sets_retain(self, customer_id: int, names: Sequence[str]) -> None:
        index = self._attribute_index(customer_id)
        prefix = f"{self._prefix(customer_id)}:as:"
        try:
            known = {raw.decode() for raw in self._writer.smembers(index)}
            if not known:
                # Sets written before the index existed: found once by a scan (of every key in
                # Redis, hence only this once), then indexed.
                found = (raw.decode() for raw in self._writer.scan_iter(match=f"{prefix}*"))
                known = {key[len(prefix) :] for key in found if ":staging:" not in key}
            stale = sorted(known - set(names) - {""})
            pipe = self._writer.pipeline(transaction=False)
            for name in stale:  # one key per DELETE: cluster pipelines refuse several
                pipe.delete(self._attribute_key(customer_id, name))
            if stale:
                pipe.srem(index, *stale)
            pipe.sadd(index, "", *names)
            pipe.execute()
        except redis.RedisError as exc:
            raise SignalStoreUnavailable(str(exc)) from exc

    def record_shopper_actions(
        self, customer_id: int, actions: Sequence[ShopperAction], *, once: str = ""
    ) -> None:
        """One script call for the whole batch: a pipeline of a command per interest, recent item
        and expiry costs redis-py more to pack and parse than Redis takes to run the script.
        Behind the breaker, with the profile writer's short timeout."""
        by_shopper: dict[str, list[ShopperAction]] = defaultdict(list)
        for action in sorted(actions, key=lambda action: action.timestamp):
            by_shopper[action.shopper_key].append(action)
        keys: list[str] = []
        args: list[str | float | int] = [
            SHOPPER_TTL_SECONDS,
            SHOPPER_RECENT_ITEMS,
            SESSION_GAP_SECONDS,
            APPLIED_MARKER_TTL_SECONDS if once else 0,
            0.0,  # the deadline, set when the call is sent
        ]
        for shopper_key, shopper_actions in by_shopper.items():
            keys.extend(self._shopper_keys(customer_id, shopper_key))
            increments: dict[str, float] = defaultdict(float)
            viewed: dict[str, float] = {}
            purchased: dict[str, float] = {}
            session: list[str | float | int] = [len(shopper_actions)]
            for action in shopper_actions:
                weight = decayed_weight(action.action, action.timestamp)
                increments["t"] += weight
                if action.brand:
                    increments[f"b:{action.brand}"] += weight
                log_price = log_price_of(action.price)
                for category in action.categories:
                    increments[f"c:{category}"] += weight
                    if log_price is not None:
                        increments[f"p:{category}"] += weight * log_price
                        increments[f"w:{category}"] += weight
                target = purchased if action.action == "purchase" else viewed
                target[action.item_id] = max(action.timestamp, target.get(action.item_id, 0.0))
                plain = SHOPPER_ACTION_WEIGHTS[action.action]
                fields = [("t", plain)]
                if action.brand:
                    fields.append((f"b:{action.brand}", plain))
                fields += [(f"c:{category}", plain) for category in action.categories]
                session += (repr(action.timestamp), len(fields))
                for name, amount in fields:
                    session += (name, amount)
            args.append(len(increments))
            for name, amount in increments.items():
                args += (name, repr(amount))
            for recent in (viewed, purchased):
                args.append(len(recent))
                for item_id, timestamp in recent.items():
                    args += (timestamp, item_id)
            args += session
        if not keys:
            return
        if once:
            keys.append(f"{self._prefix(customer_id)}:applied:{once}")
        if not self.breaker.allow():
            raise SignalStoreUnavailable(
                "Redis failed often lately; not trying again yet", reason="signal_store_breaker"
            )
        # Half the timeout: Redis's clock may differ from ours by much less than that.
        args[4] = repr(time.time() + self.profile_timeout / 2)
        try:
            late = self._record_actions(keys=keys, args=args) == 2
        except redis.RedisError as exc:
            self.breaker.record(False)
            raise SignalStoreUnavailable(str(exc)) from exc
        self.breaker.record(not late)
        if late:
            raise SignalStoreUnavailable("Redis ran the shopper-profile update too late to apply")

    def shopper_profile(self, customer_id: int, shopper_key: str) -> ShopperProfile:
        interests, viewed, purchased, session = self._shopper_keys(customer_id, shopper_key)
        pipe = self._writer.pipeline(transaction=False)
        pipe.hgetall(interests)
        pipe.zrange(viewed, 0, -1)
        pipe.zrange(purchased, 0, -1)
        pipe.hgetall(session)
        return _profile(*pipe.execute())

    def drop_customer(self, customer_id: int) -> None:
        keys = list(self._writer.scan_iter(match=f"{self._prefix(customer_id)}:*", count=1000))
        for start in range(0, len(keys), 1000):
            self._writer.unlink(*keys[start : start + 1000])
        self._current.pop(customer_id, None)

    def ping(self) -> None:
        try:
            self._reader.ping()
        except redis.RedisError as exc:
            raise SignalStoreUnavailable(str(exc)) from exc

    def forget_cached_versions(self) -> None:
        """Drop the per-process pointer cache (tests use it to act as a fresh process)."""
        self._current.clear()
        self._metas.clear()
        self.breaker.reset()
        if self.snapshots is not None:
            self.snapshots.forget()


class _IdsCommand(tuple[Any, ...]):
    """A command whose arguments after its name and key are UTF-8 bytes, one per candidate:
    `_packed` writes it without hiredis, whose formatting of each argument's length (sprintf)
    cost 86 us for 1000 ids against 47 us here (docs/performance.md)."""

    __slots__ = ()


def _ids_command(
    name: str, key: str, ids: Sequence[str | bytes], encoded: list[bytes] | None
) -> tuple[Any, ...]:
    """(name, key, *ids): packed by `_packed` from `encoded` (the ids as UTF-8 bytes) when
    given and not empty, else an ordinary command."""
    if not encoded:
        return (name, key, *ids)
    return _IdsCommand((name, key, *encoded))


# "$<length>" of an argument of 0..1024 bytes (an id is at most 256 characters).
_LENGTH_LINES = tuple(b"$%d" % length for length in range(1025))


def _packed(command: tuple[Any, ...]) -> bytes:
    """The command in Redis's protocol, as hiredis.pack_command writes it."""
    if type(command) is not _IdsCommand:
        return hiredis.pack_command(command)
    values = command[2:]
    try:
        lines = [_LENGTH_LINES[len(value)] for value in values]
    except IndexError:  # a value longer than the table: hiredis writes it
        return hiredis.pack_command(tuple(command))
    parts: list[bytes] = [b""] * (2 * len(values))
    parts[0::2] = lines
    parts[1::2] = values
    head = hiredis.pack_command(command[:2])  # "*2\r\n" and the name and key
    return b"*%d" % len(command) + head[2:] + b"\r\n".join(parts) + b"\r\n"


def _on_pooled_connection(client: redis.Redis, work: Callable[[Any], Any]) -> Any:
    """`work(connection)` on a connection of the client's pool, with the connection's own retry
    (a connection error disconnects it and tries again). Handed back to the pool in step: after
    an error reply every reply was read (`_replies`); after anything else, replies may be left
    unread, so it is disconnected first."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        return connection.retry.call_with_retry(
            lambda: work(connection), lambda _: connection.disconnect()
        )
    except redis.ResponseError:
        raise
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def _replies(connection: Any, names: Sequence[str]) -> list[Any]:
    """A reply for each command sent (`names`: theirs, in order). Every reply is read, so the
    connection stays in step; the first error reply is raised then, naming its command as
    redis-py's pipeline does."""
    replies: list[Any] = []
    error: redis.ResponseError | None = None
    for name in names:
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as exc:
            if error is None:
                error = exc
                number = len(replies) + 1
                exc.args = (f"Command # {number} ({name}) of pipeline caused error: {exc}",)
            replies.append(exc)
    if error is not None:
        raise error
    return replies


def _exchange(connection: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    connection.send_packed_command([b"".join(map(_packed, commands))])
    return _replies(connection, [command[0] for command in commands])


def _hset_batches(
    fields: Sequence[str | bytes], raw: bytes, itemsize: int
) -> Iterator[list[str | bytes]]:
    """The fields and their records (`itemsize` bytes each in `raw`) as HSET's alternating
    arguments, WRITE_BATCH pairs at a time (made as they are sent: memory for one batch)."""
    for start in range(0, len(fields), WRITE_BATCH):
        stop = min(start + WRITE_BATCH, len(fields))
        pairs: list[str | bytes] = [b""] * (2 * (stop - start))
        pairs[0::2] = fields[start:stop]
        pairs[1::2] = [
            raw[offset : offset + itemsize]
            for offset in range(start * itemsize, stop * itemsize, itemsize)
        ]
        yield pairs


def _send_batches(connection: Any, key: str, batches: Iterable[list[str | bytes]]) -> None:
    """HSET each batch of (field, value) pairs into `key` with the unpublished version's expiry,
    every batch sent before any reply is read."""
    expire: tuple[Any, ...] = ("EXPIRE", key, UNPUBLISHED_TTL_SECONDS)
    names: list[str] = []
    for pairs in batches:
        command: tuple[Any, ...] = ("HSET", key, *pairs)
        connection.send_packed_command(
            [hiredis.pack_command(command), hiredis.pack_command(expire)]
        )
        names += ("HSET", "EXPIRE")
    _replies(connection, names)


def _as_dict(reply: Any) -> dict[bytes, bytes]:
    """HGETALL's reply as a dict: a flat list of names and values under RESP2."""
    if isinstance(reply, dict):
        return reply
    pairs = iter(reply)
    return dict(zip(pairs, pairs, strict=True))


def _profile(
    interests: dict[bytes, bytes],
    viewed: list[bytes],
    purchased: list[bytes],
    session: dict[bytes, bytes],
) -> ShopperProfile:
    if not interests and not viewed and not purchased and not session:
        return EMPTY_PROFILE
    weights: dict[str, dict[str, float]] = {"b": {}, "c": {}, "p": {}, "w": {}}
    total = 0.0
    for raw_name, raw_value in interests.items():
        name, value = raw_name.decode(), float(raw_value)
        if name == "t":
            total = value
        elif name[1:2] == ":" and name[0] in weights:
            weights[name[0]][name[2:]] = value
    session_weights: dict[str, dict[str, float]] = {"b": {}, "c": {}}
    session_total = session_last = 0.0
    for raw_name, raw_value in session.items():
        name, value = raw_name.decode(), float(raw_value)
        if name == "t":
            session_total = value
        elif name == "last":
            session_last = value
        elif name[1:2] == ":" and name[0] in session_weights:
            session_weights[name[0]][name[2:]] = value
    return ShopperProfile(
        brand_weights=weights["b"],
        category_weights=weights["c"],
        total_weight=total,
        price_sums=weights["p"],
        price_weights=weights["w"],
        session_brands=session_weights["b"],
        session_categories=session_weights["c"],
        session_total=session_total,
        session_last=session_last,
        recently_viewed=frozenset(item.decode() for item in viewed),
        purchased=frozenset(item.decode() for item in purchased),
    )
