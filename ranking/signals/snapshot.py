"""Host-shared snapshots of published signal versions: the item and query-item records of one
version as memory-mapped files, so a rank request finds its candidates' records in this host's
page cache instead of asking Redis for them.

Redis stays the source. A published version never changes (ranking/signals/redis_store.py writes
it whole, then swaps the pointer), so a file copied from it answers exactly what Redis would for
that version. Every rank request still reads the pointer, the shopper's profile and the rules'
attribute sets from Redis in its one round trip; the snapshot only replaces the two HMGETs of
item and query-item records (at 1000 candidates, 2,000 arguments and a 108 KB reply).

The first process of a host that reads a version without its file has it built, from a
background thread and under a file lock (the other processes of the host map what was written):
the build scans the version's hash fields from Redis a slice at a time, orders them by a 64-bit
hash of each (a lookup then searches integers, not keys), then reads the records in that order a
slice at a time (HMGET) and appends them to the file, into a
temporary directory renamed into place with a manifest. It holds the version's keys (their fixed
width and a little more per item) but never more than a slice of records, and the Redis store
runs it in a short-lived process of its own (ranking/signals/snapshot_build.py), so a serving
worker's memory does not grow with the catalog at all (issue 14). Requests keep reading Redis
meanwhile. A process maps a file once per version (numpy memmap, read-only): the pages are the
page cache's, shared by every worker of the host, so memory does not grow with the number of
workers. Mapping it, the process indexes the sorted hashes by their top bits (HashDirectory, 1-2
bytes a key of the process's own memory: 128 KB for 100,000 items), so a lookup reads one entry
of that and one short run of hashes instead of binary-searching them all.

Faults fall back to Redis, never to a wrong answer: a missing file is built, a file that does not
match its manifest (shapes, dtypes, checksum) is removed and built again, a build that fails is
tried again after RETRY_SECONDS, and a request whose candidate ids a fixed-width byte key cannot
hold exactly (an id with a NUL byte) reads Redis.

Layout: <directory>/<namespace>/c<customer>-v<version>-<meta digest>/{items,records,queries,
query_records,item_hashes,query_hashes}.npy and manifest.json. The meta's digest (a hash of the
version's meta as stored) keeps a file from ever answering for another store's version of the
same number.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ranking.signals.schema import ITEM_RECORD, QUERY_RECORD

logger = logging.getLogger(__name__)

FORMAT = 2  # 2: keys in the order of their hashes, with the hashes
RETRY_SECONDS = 60.0
# A build's temporary directory untouched this long was left by a build that died.
ABANDONED_BUILD_SECONDS = 3600.0
# Records a build holds at once (and fields it asks Redis for in one call).
BUILD_SLICE = 5000
_FILES = ("items", "records", "queries", "query_records", "item_hashes", "query_hashes")

# The version's item hash (item id -> ITEM_RECORD) and query-item hash ("query\x1fitem id" ->
# QUERY_RECORD).
Table = Literal["items", "qi"]


class VersionSource(Protocol):
    """One published version as a build reads it, a slice at a time."""

    def field_slices(self, table: Table) -> Iterator[list[bytes]]:
        """The hash's fields, a slice at a time (a field may come twice, as HSCAN gives them)."""
        ...

    def records(self, table: Table, fields: list[bytes]) -> list[bytes | None]:
        """The packed records of `fields` (None where the hash has none: the version expired)."""
        ...

    def lengths(self) -> tuple[int, int] | None:
        """How many fields the item and query-item hashes hold now; None once the version is
        gone."""
        ...


# A 64-bit hash of a fixed-width key: sum(byte[i] * P**i) mod 2**64, then splitmix64's finalizer.
# Computed with numpy over many keys at once (a Python call per key would cost what the search
# saves); the padding's zero bytes add nothing, so a key hashes alike at any width.
_HASH_BASE = np.uint64(0x100000001B3)
_HASH_SLICE = 65_536  # keys hashed at once: a slice's bytes widened to 8 each, bounded memory
_SHIFT, _MIX_1, _MIX_2 = np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)


_powers: dict[int, np.ndarray] = {}


def _powers_of(width: int) -> np.ndarray:
    powers = _powers.get(width)
    if powers is None:
        powers = np.full(width, _HASH_BASE, dtype=np.uint64)
        powers[0] = 1
        powers = _powers.setdefault(width, np.cumprod(powers, dtype=np.uint64))  # P**i mod 2**64
    return powers


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """The hash of each key of a fixed-width byte-string array (uint64)."""
    if len(keys) > _HASH_SLICE:
        return np.concatenate(
            [
                key_hashes(keys[start : start + _HASH_SLICE])
                for start in range(0, len(keys), _HASH_SLICE)
            ]
        )
    width = keys.dtype.itemsize
    octets = np.ascontiguousarray(keys).view(np.uint8).reshape(len(keys), width)
    hashes = octets @ _powers_of(width)  # uint8 x uint64: a uint64 matrix product, wrapping
    hashes ^= hashes >> _SHIFT
    hashes *= _MIX_1
    hashes ^= hashes >> _SHIFT
    hashes *= _MIX_2
    hashes ^= hashes >> _SHIFT
    return hashes


def _sorted_fields(slices: Iterable[list[bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """The fields as unique fixed-width keys in the order of their hashes, and the hashes (so a
    lookup searches integers, not keys), built from one slice at a time."""
    parts = []
    for fields in slices:
        if any(b"\x00" in field for field in fields):
            raise ValueError("a key holds a NUL byte, which fixed-width keys cannot tell")
        if fields:
            parts.append(np.array(fields, dtype=bytes))
    width = max((part.dtype.itemsize for part in parts), default=1)
    keys = np.empty(sum(map(len, parts)), dtype=f"S{width}")
    stop = len(keys)
    while parts:  # each slice freed once copied
        part = parts.pop()
        keys[stop - len(part) : stop] = part
        stop -= len(part)
    keys.sort()  # in place; equal keys are equal bytes, so no order among them to keep
    if len(keys) > 1:
        repeated = keys[1:] == keys[:-1]
        if repeated.any():
            keys = keys[np.concatenate(([True], ~repeated))]
    hashes = key_hashes(keys)
    keys = keys[np.argsort(hashes, kind="stable")]
    hashes.sort()  # in place: the same values as taking them in that order
    return keys, hashes


def _write_array(path: Path, keys: np.ndarray, digest: hashlib.blake2b) -> None:
    np.save(path, keys, allow_pickle=False)
    digest.update(_bytes_of(keys))


def _write_records(
    path: Path,
    keys: np.ndarray,
    read: Callable[[list[bytes]], list[bytes | None]],
    dtype: np.dtype,
    digest: hashlib.blake2b,
) -> None:
    """The records of the `keys` in their order, read and appended to an .npy file a slice at a
    time."""
    header = np.lib.format.header_data_from_array_1_0(np.empty(0, dtype=dtype))
    header["shape"] = (len(keys),)
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        for start in range(0, len(keys), BUILD_SLICE):
            fields = keys[start : start + BUILD_SLICE].tolist()
            packed = read(fields)
            whole = len(packed) == len(fields) and all(
                record is not None and len(record) == dtype.itemsize for record in packed
            )
            if not whole:
                raise ValueError("a record is missing or of the wrong size")
            chunk = b"".join(record for record in packed if record is not None)
            file.write(chunk)
            digest.update(chunk)


# A hash directory's buckets: a power of two, one per 2-4 keys (1-2 bytes a key in each process
# that maps the version). A bucket whose run of hashes is longer than DIRECTORY_WINDOW (keys
# chosen to share their hashes' top bits) leaves the version to the binary search.
DIRECTORY_KEYS = 4
DIRECTORY_WINDOW = 64


@dataclass(frozen=True)
class HashDirectory:
    """Where the sorted hashes of each value of their top bits start, so a search reads one
    entry of it and one short run of hashes (a cache line or two) where a binary search of
    100,000 hashes reads some 17 scattered ones. Built when a process maps a version (from the
    hashes the file holds, so the file's format is unchanged)."""

    starts: np.ndarray  # per bucket its first row (int32), at most len(hashes) - width
    shift: np.uint64  # a hash's bucket is hash >> shift
    windows: np.ndarray  # (len(hashes) - width + 1) x width: a view of the hashes, no copy

    @classmethod
    def of(cls, hashes: np.ndarray) -> HashDirectory | None:
        """None when there are no hashes or a bucket holds too many."""
        if not len(hashes):
            return None
        bits = max(1, int(len(hashes) // DIRECTORY_KEYS).bit_length())
        shift = np.uint64(64 - bits)
        bounds = np.arange(1 << bits, dtype=np.uint64) << shift
        starts = np.searchsorted(hashes, bounds).astype(
            np.int32 if len(hashes) < 2**31 else np.int64
        )
        width = int(np.diff(starts, append=len(hashes)).max())
        if width > DIRECTORY_WINDOW:
            return None
        windows = np.lib.stride_tricks.sliding_window_view(hashes, width)
        return cls(np.minimum(starts, len(hashes) - width), shift, windows)

    def search(self, wanted: np.ndarray) -> np.ndarray:
        """np.searchsorted(hashes, wanted): a window starts at or before the wanted hash's
        bucket and holds all of it, every hash before it is smaller and every one after it
        larger, so the rows before the first hash not smaller are the window's start and those
        of its hashes that are smaller."""
        starts = self.starts[wanted >> self.shift]
        return starts + np.add.reduce(self.windows[starts] < wanted[:, None], axis=1)


def _search(hashes: np.ndarray, directory: HashDirectory | None, wanted: np.ndarray) -> np.ndarray:
    if directory is None:
        return np.searchsorted(hashes, wanted)
    return directory.search(wanted)


def _lookup(
    keys: np.ndarray, hashes: np.ndarray, directory: HashDirectory | None, wanted: list[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `wanted` in `keys` (in the order of their `hashes`), and which were found. Two
    stored keys with one hash (a 64-bit hash: about one pair in 10**7 versions of a million
    keys) are told apart by walking their run."""
    if not len(keys):
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    # One byte wider than the stored keys (numpy truncates to the width it is given): a key
    # longer than all of them keeps a byte none has, so it is never equal to one.
    array = np.array(wanted, dtype=_bytes_dtype(keys.dtype.itemsize + 1))
    wanted_hashes = key_hashes(array)
    rows = np.minimum(_search(hashes, directory, wanted_hashes), len(keys) - 1)
    found = keys[rows] == array
    if found.all():
        return rows, found
    for index in np.flatnonzero(~found & (hashes[rows] == wanted_hashes)).tolist():
        row = int(rows[index]) + 1
        while row < len(keys) and hashes[row] == wanted_hashes[index]:
            if keys[row] == array[index]:
                rows[index], found[index] = row, True
                break
            row += 1
    return rows, found


@dataclass(frozen=True)
class Snapshot:
    """One version's records, mapped read-only."""

    items: np.ndarray  # S<w>, in the order of item_hashes
    records: np.ndarray  # ITEM_RECORD, aligned with items
    queries: np.ndarray  # S<w> "query\\x1fitem id" fields, in the order of query_hashes
    query_records: np.ndarray  # QUERY_RECORD, aligned with queries
    item_hashes: np.ndarray  # uint64, sorted
    query_hashes: np.ndarray  # uint64, sorted
    item_directory: HashDirectory | None = None  # of item_hashes
    query_directory: HashDirectory | None = None  # of query_hashes

    def item_records(
        self, item_ids: list[bytes], default: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(records, found) as decode_items gives them for the same HMGET: the version's
        default record where the item is unknown."""
        rows, found = _lookup(self.items, self.item_hashes, self.item_directory, item_ids)
        return _gather(self.records, rows, found, default), found

    def query_item_records(self, fields: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(records, found) as decode_queries gives them: zeros where the pair is unknown."""
        rows, found = _lookup(self.queries, self.query_hashes, self.query_directory, fields)
        return _gather(self.query_records, rows, found, _NO_QUERY_RECORD), found


def _gather(
    records: np.ndarray, rows: np.ndarray, found: np.ndarray, default: np.ndarray
) -> np.ndarray:
    """The records at `rows`, `default` where not `found`. Copied as opaque bytes of the
    record's size: numpy copies a record with sub-array fields field by field, some ten times
    slower."""
    if not len(records):
        return np.full(len(rows), default, dtype=records.dtype)
    opaque = _opaque(records.dtype.itemsize)
    gathered = records.view(opaque)[rows]
    if not found.all():
        gathered[~found] = np.frombuffer(default.tobytes(), dtype=opaque)[0]
    return gathered.view(records.dtype)


_NO_QUERY_RECORD = np.zeros(1, QUERY_RECORD)[0]


# Dtypes by size, made once (parsing a dtype's name is a cost at 100 candidates).
@functools.cache
def _opaque(size: int) -> np.dtype:
    return np.dtype(f"V{size}")


@functools.cache
def _bytes_dtype(size: int) -> np.dtype:
    return np.dtype(f"S{size}")


def _bytes_of(array: np.ndarray) -> memoryview:
    """The array's bytes without a copy (a mapped file's pages are read in place)."""
    return np.ascontiguousarray(array).view(np.uint8).data


def _checksum(arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        digest.update(_bytes_of(array))
    return digest.hexdigest()


def write(directory: Path, source: VersionSource, manifest: dict[str, object]) -> None:
    """Write one version's files into `directory` (which must not exist yet), atomically: a
    temporary sibling renamed into place once the manifest is written. Holds the sorted keys of
    one hash at a time and one slice of records."""
    temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        digest = hashlib.blake2b(digest_size=16)  # the files' bytes in order, as _checksum reads
        counts = []
        tables: tuple[tuple[Table, str, str, np.dtype], ...] = (
            ("items", "items", "records", ITEM_RECORD),
            ("qi", "queries", "query_records", QUERY_RECORD),
        )
        hashes = []
        for table, keys_name, records_name, dtype in tables:
            keys, key_hashes_ = _sorted_fields(source.field_slices(table))
            _write_array(temporary / f"{keys_name}.npy", keys, digest)
            read = functools.partial(source.records, table)
            _write_records(temporary / f"{records_name}.npy", keys, read, dtype, digest)
            counts.append(len(keys))
            hashes.append(key_hashes_)
            del keys
        for name, table_hashes in zip(("item_hashes", "query_hashes"), hashes, strict=True):
            _write_array(temporary / f"{name}.npy", table_hashes, digest)
        if source.lengths() != tuple(counts):
            raise ValueError("the version changed or expired while it was read")
        full = {
            **manifest,
            "format": FORMAT,
            "items": counts[0],
            "queries": counts[1],
            "checksum": digest.hexdigest(),
        }
        (temporary / "manifest.json").write_text(json.dumps(full))
        os.rename(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


class SnapshotInvalid(Exception):
    """The files do not hold what their manifest says."""


def load(directory: Path, manifest_expected: dict[str, object]) -> Snapshot:
    """Map a version's files, checking them against the manifest (and the manifest against what
    the caller expects of this version)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        arrays = [
            np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _FILES
        ]
    except (OSError, ValueError) as exc:
        raise SnapshotInvalid(f"unreadable: {exc}") from exc
    items, records, queries, query_records, item_hashes, query_hashes = arrays
    expected = {**manifest_expected, "format": FORMAT}
    problems = [key for key, value in expected.items() if manifest.get(key) != value]
    if items.dtype.kind != "S" or queries.dtype.kind != "S":
        problems.append("key dtype")
    if records.dtype != ITEM_RECORD or query_records.dtype != QUERY_RECORD:
        problems.append("record dtype")
    if len(items) != manifest.get("items") or len(records) != len(items):
        problems.append("item count")
    if len(queries) != manifest.get("queries") or len(query_records) != len(queries):
        problems.append("query count")
    if item_hashes.dtype != np.uint64 or query_hashes.dtype != np.uint64:
        problems.append("hash dtype")
    if len(item_hashes) != len(items) or len(query_hashes) != len(queries):
        problems.append("hash count")
    if not problems and _checksum(arrays) != manifest.get("checksum"):
        problems.append("checksum")
    if problems:
        raise SnapshotInvalid(f"{directory.name}: {', '.join(problems)} do not match")
    # Plain views of the mapped pages (a memmap subclass would tag every indexing result).
    items, records, queries, query_records, item_hashes, query_hashes = map(np.asarray, arrays)
    return Snapshot(
        items,
        records,
        queries,
        query_records,
        item_hashes,
        query_hashes,
        HashDirectory.of(item_hashes),
        HashDirectory.of(query_hashes),
    )


class SnapshotCache:
    """A process's mapped snapshots, by (customer, version). `get` never blocks on a build: it
    answers None and lets a background thread map (or build, then map) the version."""

    def __init__(
        self,
        directory: Path,
        namespace: str,
        write_version: Callable[[int, int, Path, dict[str, object]], None],
        grace_seconds: float,
        count: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.root = directory / namespace
        # Writes a (customer, version)'s files into a directory with a manifest (`write`, in a
        # process of its own for the Redis store: ranking/signals/snapshot_build.py).
        self.write_version = write_version
        # Counts each outcome ("mapped", "built", "rebuilt", "failed") in the caller's metrics.
        self.count = count
        self.grace_seconds = grace_seconds
        self._mapped: dict[tuple[int, int], tuple[str, Snapshot]] = {}
        self._pending: set[tuple[int, int]] = set()
        self._failed: dict[tuple[int, int, str], float] = {}
        self._lock = threading.Lock()

    def get(self, customer_id: int, version: int, digest: str) -> Snapshot | None:
        mapped = self._mapped.get((customer_id, version))
        if mapped is not None and mapped[0] == digest:
            return mapped[1]
        key = (customer_id, version)
        with self._lock:
            if key in self._pending:
                return None
            if time.monotonic() < self._failed.get((customer_id, version, digest), 0.0):
                return None
            self._pending.add(key)
        threading.Thread(
            target=self._prepare,
            args=(customer_id, version, digest),
            name=f"signal-snapshot-c{customer_id}-v{version}",
            daemon=True,
        ).start()
        return None

    def _directory(self, customer_id: int, version: int, digest: str) -> Path:
        return self.root / f"c{customer_id}-v{version}-{digest}"

    def _prepare(self, customer_id: int, version: int, digest: str) -> None:
        key = (customer_id, version)
        directory = self._directory(customer_id, version, digest)
        expected = {"customer": customer_id, "version": version, "digest": digest}
        try:
            if not directory.exists():
                self._build(customer_id, version, digest, directory, expected)
                outcome = "built"
            else:
                outcome = "mapped"
            try:
                snapshot = load(directory, expected)
            except SnapshotInvalid:
                # Never answer from a file that does not match its manifest: rebuild it once.
                shutil.rmtree(directory, ignore_errors=True)
                self._build(customer_id, version, digest, directory, expected)
                snapshot = load(directory, expected)
                outcome = "rebuilt"
        except Exception:
            logger.warning(
                "signal snapshot of customer %s version %s not ready; reading Redis for it",
                customer_id,
                version,
                exc_info=True,
            )
            self.count("failed")
            with self._lock:
                self._failed[(customer_id, version, digest)] = time.monotonic() + RETRY_SECONDS
                self._pending.discard(key)
            return
        self.count(outcome)
        with self._lock:
            # Only the customer's newest version stays mapped in this process.
            for other in [k for k in self._mapped if k[0] == customer_id and k[1] < version]:
                del self._mapped[other]
            if all(k[1] <= version for k in self._mapped if k[0] == customer_id):
                self._mapped[key] = (digest, snapshot)
            self._pending.discard(key)

    def _build(
        self,
        customer_id: int,
        version: int,
        digest: str,
        directory: Path,
        manifest: dict[str, object],
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".c{customer_id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per customer per host
            if directory.exists():
                return
            self.write_version(customer_id, version, directory, manifest)
            self._remove_replaced(customer_id, version)

    def _remove_replaced(self, customer_id: int, version: int) -> None:
        """The customer's other copies (older versions, and any of another store's meta under the
        same number), once no reader should need them: untouched for the store's grace period.
        Unlinking a mapped file is safe: a process that still maps it keeps its pages."""
        cutoff = time.time() - self.grace_seconds
        for path in self.root.glob(f"c{customer_id}-v*"):
            try:
                other = int(path.name.split("-")[1][1:])
                stale = other <= version and path.stat().st_mtime < cutoff
            except (ValueError, IndexError, OSError):
                continue
            if stale and not path.name.startswith("."):
                shutil.rmtree(path, ignore_errors=True)
        # Temporary directories of builds that died with their process (a build that runs
        # stops long before: ranking/signals/snapshot_build.py).
        abandoned = time.time() - ABANDONED_BUILD_SECONDS
        for path in self.root.glob(f".c{customer_id}-v*"):
            try:
                if path.is_dir() and path.stat().st_mtime < abandoned:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                continue

    def drop(self, customer_id: int, version: int, digest: str) -> None:
        """Stop answering from this version's copy (it failed a lookup); try it again later."""
        with self._lock:
            self._mapped.pop((customer_id, version), None)
            self._failed[(customer_id, version, digest)] = time.monotonic() + RETRY_SECONDS

    def forget(self) -> None:
        with self._lock:
            self._mapped.clear()
            self._failed.clear()

    def wait(self, seconds: float) -> None:
        """Until no build or map is under way (tests and benchmarks)."""
        deadline = time.monotonic() + seconds
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
