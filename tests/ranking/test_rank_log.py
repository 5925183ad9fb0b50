"""The rank log: each ranked request is kept with the exact features it was scored on, off the
request path, in bounded memory, written in batches, and purged after the retention period; the
training set joins it with what shoppers did."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from celery import current_app
from django.db import connection
from django.utils import timezone

from core.metrics import RANK_LOG_DROPPED
from ranking.learning import rank_log
from ranking.learning.dataset import (
    LoggedRequest,
    Outcome,
    Source,
    logged_requests,
    training_set_build,
)
from ranking.models import RankLog, RankLogItemSignals
from ranking.services import signals_refresh
from ranking.signals.schema import FEATURES, N_ITEM, SCHEMA_HASH
from ranking.tasks import flush_rank_log, flush_rank_log_split, purge_rank_log
from tests.conftest import ApiCaller
from tests.factories import CustomerFactory, SignalVersionFactory
from tests.ranking.helpers import put_items, rank

pytestmark = pytest.mark.django_db


def test_a_ranked_request_is_logged_with_its_features_after_the_request(
    api: ApiCaller, django_assert_num_queries: Any
) -> None:
    put_items(
        api,
        [
            {"id": f"sku-{i}", "title": f"Item {i}", "categories": ["shoes"], "price": 10.0 * i}
            for i in range(1, 5)
        ],
    )
    signals_refresh(customer_id=api.customer.pk)
    body = {
        "surface": "search",
        "query": "Running  SHOES",
        "user_id": "u-1",
        "items": [{"id": f"sku-{i}", "relevance": float(i % 3)} for i in range(1, 5)],
        "limit": 3,
        "explain": True,
    }

    response = rank(api, body)

    assert RankLog.objects.count() == 0  # nothing written by the request itself
    rank_log.flush()
    logged = RankLog.objects.get()
    assert logged.customer_id == api.customer.pk
    assert logged.request_id == response["request_id"]
    assert (logged.surface, logged.query, logged.shopper_key) == (
        "search",
        "running shoes",
        "u:u-1",
    )
    assert logged.model == "config:default"
    assert logged.schema_hash == SCHEMA_HASH
    assert logged.item_ids == [item["id"] for item in response["items"]]
    assert logged.items_by_reference  # read from a signal version
    features = rank_log.logged_features(logged)
    served = np.array(
        [[c["value"] for c in item["explanation"]["contributions"]] for item in response["items"]]
    )
    assert features is not None
    assert features.shape == (3, len(FEATURES))
    np.testing.assert_array_equal(features, served.astype(np.float32))


def test_the_buffer_is_bounded_drops_the_oldest_and_counts_them() -> None:
    buffer = rank_log.RankLogBuffer(capacity=3)
    dropped_before = RANK_LOG_DROPPED._value.get()
    for n in range(5):
        buffer.append(entry(f"r{n}"))

    assert [e.request_id for e in buffer.drain(10)] == ["r2", "r3", "r4"]
    assert buffer.dropped == 2
    assert RANK_LOG_DROPPED._value.get() - dropped_before == 2


def entry(request_id: str, customer_id: int = 1, days_ago: float = 0) -> rank_log.RankLogEntry:
    return rank_log.RankLogEntry(
        customer_id=customer_id,
        request_id=request_id,
        surface="browse",
        query="",
        shopper_key="",
        model="config:default",
        item_ids=("a", "b"),
        features=np.zeros((2, len(FEATURES)), dtype=np.float32).tobytes(),
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def test_flushing_writes_batches_once_and_the_purge_keeps_the_retention(
    api: ApiCaller, settings: Any
) -> None:
    settings.RANK_LOG_FLUSH_BATCH = 2
    settings.RANK_LOG_RETENTION_DAYS = 30
    customer_id = api.customer.pk
    for n, days_ago in enumerate([1, 2, 40, 50, 29]):
        rank_log.buffer.append(entry(f"r{n}", customer_id, days_ago))
    rank_log.buffer.append(entry("r0", customer_id))  # a retried request id is kept once

    assert rank_log.flush() == 6
    assert RankLog.objects.filter(customer_id=customer_id).count() == 5

    assert purge_rank_log.delay().get() == 2
    assert sorted(RankLog.objects.values_list("request_id", flat=True)) == ["r0", "r1", "r4"]


def test_labels_are_graded_by_request_and_item_with_purchase_value() -> None:
    features = np.arange(3 * len(FEATURES), dtype=np.float32).reshape(3, -1)
    requests = [
        LoggedRequest("r1", timezone.now(), ("a", "b", "c"), features),
        LoggedRequest("r2", timezone.now(), ("a", "b"), features[:2]),
    ]
    outcomes = {
        ("r1", "a"): Outcome(1, 0.0),
        ("r1", "c"): Outcome(3, 59.9),
        ("r2", "b"): Outcome(2, 0.0),
    }

    data = training_set_build(requests, outcomes)

    assert data.labels.tolist() == [1, 0, 3, 0, 2]
    assert data.revenue.tolist() == [0.0, 0.0, 59.9, 0.0, 0.0]
    assert data.positions.tolist() == [1, 2, 3, 1, 2]
    assert data.group_starts.tolist() == [0, 3]
    np.testing.assert_array_equal(data.features[3:], features[:2])
    assert data.row_counts()["labelled_requests"] == 2


def test_with_a_broker_batches_go_to_the_flush_task_which_writes_them(
    api: ApiCaller, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, **options: sent.append((name, options))
    )
    rank_log.buffer.append(entry("r1", api.customer.pk))
    rank_log.buffer.append(entry("r2", api.customer.pk))

    assert rank_log.flush() == 2
    assert RankLog.objects.count() == 0
    ((task, message),) = sent
    assert task == flush_rank_log_split.name
    # No features or shoppers in logs.
    assert message["argsrepr"] == "[<2 rank-log entries>]"

    assert flush_rank_log_split(*message["args"]) == 2  # what the worker runs
    logged = RankLog.objects.get(request_id="r2")
    assert logged.item_ids == ["a", "b"]
    assert rank_log.feature_matrix(bytes(logged.features)).shape == (2, len(FEATURES))

    # A message of a process from before the split, to the task it was sent to.
    assert flush_rank_log([entry("r3", api.customer.pk).to_payload()]) == 1
    assert RankLog.objects.filter(request_id="r3").exists()


def test_item_ids_are_written_as_the_json_they_were_and_an_unwritable_one_costs_only_its_entry(
    api: ApiCaller,
) -> None:
    customer_id = api.customer.pk
    written = replace(entry("r1", customer_id), item_ids=('ä "b"', "c\\d", "😀"))
    unwritable = replace(entry("r2", customer_id), item_ids=("a", "\ud800"))

    assert rank_log.rank_log_write([written, unwritable]) == 1
    assert RankLog.objects.get(request_id="r1").item_ids == ['ä "b"', "c\\d", "😀"]
    assert not RankLog.objects.filter(request_id="r2").exists()


def test_a_full_page_of_features_is_stored_compressed_with_lz4_and_reads_back_exact(
    api: ApiCaller,
) -> None:
    """Compressing each request's matrix with pglz cost PostgreSQL about 0.7 ms of CPU a row,
    with LZ4 0.13 ms (migration 0015): the rows a served request writes use LZ4."""
    positions = 100  # settings.RANK_LOG_MAX_POSITIONS: an 11 KB matrix, stored compressed
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 50, (positions, len(FEATURES))).astype(np.float32) / 4
    page = replace(
        entry("full", api.customer.pk),
        item_ids=tuple(f"sku-{n}" for n in range(positions)),
        features=matrix.tobytes(),
    )

    assert rank_log.rank_log_write([page]) == 1

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(features), pg_column_size(features), length(features)"
            " FROM ranking_ranklog WHERE request_id = 'full'"
        )
        method, stored, length = cursor.fetchone()
    assert (method, length) == ("lz4", matrix.nbytes)
    assert stored < length
    logged = RankLog.objects.get(request_id="full")
    np.testing.assert_array_equal(rank_log.feature_matrix(bytes(logged.features)), matrix)


class Version:
    """A signal version's item columns: the same for an item in every request served from it."""

    def __init__(self, number: int, seed: int) -> None:
        self.number = number
        self.rng = np.random.default_rng(seed)
        self.items: dict[str, np.ndarray] = {}

    def page(self, request_id: str, customer_id: int, item_ids: str) -> rank_log.RankLogEntry:
        """A logged request of these items (one letter each), read from this version."""
        matrix = self.rng.random((len(item_ids), len(FEATURES))).astype(np.float32)
        for position, item_id in enumerate(item_ids):
            columns = self.items.setdefault(item_id, self.rng.random(N_ITEM).astype(np.float32))
            matrix[position, :N_ITEM] = columns
        return replace(
            entry(request_id, customer_id),
            item_ids=tuple(item_ids),
            features=matrix.tobytes(),
            signals_version=self.number,
            signals_at=timezone.now().isoformat(),
        )


def test_item_columns_are_stored_once_per_signal_version_and_item_and_read_back_exact(
    api: ApiCaller,
) -> None:
    """A request's item columns are a function of its signal version and the item: they are
    stored once per pair (in one transaction with the rows), and each row puts its matrix back
    together bit for bit, whichever process stored the pair and whatever other tenants store."""
    shop = api.customer.pk
    other = CustomerFactory().pk
    v1, v2, other_v1 = Version(1, seed=1), Version(2, seed=2), Version(1, seed=3)
    pages = [
        v1.page("r1", shop, "abc"),
        v1.page("r2", shop, "bcd"),
        other_v1.page("o1", other, "ab"),
    ]

    assert rank_log.rank_log_write(pages) == 3
    stored = RankLogItemSignals.objects.for_customer(shop)
    assert sorted(stored.values_list("signals_version", "item_id")) == [(1, i) for i in "abcd"]
    rows = {row.request_id: row for row in RankLog.objects.all()}
    assert all(row.items_by_reference for row in rows.values())
    # 10 of the 28 columns stay in the row; 18 are stored once a version and item.
    assert len(rows["r1"].features) == 3 * (len(FEATURES) - N_ITEM) * 4
    for page in pages:
        logged = rank_log.logged_features(rows[page.request_id])
        assert logged is not None
        np.testing.assert_array_equal(logged, rank_log.feature_matrix(page.features))

    rank_log.reset()  # another process, which has stored nothing yet: the pairs are kept once
    later = [v1.page("r3", shop, "ad"), v2.page("r4", shop, "a")]
    assert rank_log.rank_log_write(later) == 2
    assert stored.count() == 5
    for page in later:
        logged = rank_log.logged_features(RankLog.objects.get(request_id=page.request_id))
        np.testing.assert_array_equal(logged, rank_log.feature_matrix(page.features))  # type: ignore[arg-type]

    # Without a version (no refresh yet) or degraded, the row keeps its features whole.
    whole = [entry("r5", shop), replace(v2.page("r6", shop, "b"), degraded=True)]
    assert rank_log.rank_log_write(whole) == 2
    for page in whole:
        row = RankLog.objects.get(request_id=page.request_id)
        assert not row.items_by_reference
        assert bytes(row.features) == page.features
    assert stored.count() == 5


def test_a_request_whose_item_columns_are_gone_is_rebuilt_for_training(api: ApiCaller) -> None:
    """A row can refer to item columns that are gone (purged while a process still counted them
    stored): training never reads it with a wrong feature; it rebuilds it and says so."""
    shop = api.customer.pk
    version = Version(1, seed=1)
    pages = [version.page("r1", shop, "abc"), version.page("r2", shop, "de")]
    assert rank_log.rank_log_write(pages) == 2
    RankLogItemSignals.objects.filter(item_id="b").delete()

    requests = {
        request.request_id: request
        for request in logged_requests(
            customer_id=shop,
            surface="browse",
            start=timezone.now() - timedelta(hours=1),
            end=timezone.now() + timedelta(hours=1),
        )
    }

    assert requests["r1"].source == Source.ITEMS_GONE
    assert requests["r1"].features is None  # rebuilt from the events before training
    np.testing.assert_array_equal(
        requests["r1"].relevance, rank_log.feature_matrix(pages[0].features)[:, -1]
    )
    assert requests["r2"].source == Source.LOGGED
    np.testing.assert_array_equal(
        requests["r2"].features,  # type: ignore[arg-type]
        rank_log.feature_matrix(pages[1].features),
    )


def test_the_purge_keeps_the_item_columns_of_every_version_a_kept_row_can_refer_to(
    api: ApiCaller, settings: Any
) -> None:
    settings.RANK_LOG_RETENTION_DAYS = 30
    shop = api.customer.pk
    now = timezone.now()
    for number, days_ago in [(1, 50), (2, 35), (3, 20)]:
        SignalVersionFactory(
            customer=api.customer, version=number, created_at=now - timedelta(days=days_ago)
        )
    pages = [
        replace(Version(1, seed=1).page("r1", shop, "ab"), created_at=now - timedelta(days=40)),
        replace(Version(2, seed=2).page("r2", shop, "ab"), created_at=now - timedelta(days=25)),
        replace(Version(3, seed=3).page("r3", shop, "ab"), created_at=now - timedelta(days=1)),
    ]
    assert rank_log.rank_log_write(pages) == 3

    assert purge_rank_log.delay().get() == 1  # r1

    stored = RankLogItemSignals.objects.for_customer(shop)
    assert sorted(set(stored.values_list("signals_version", flat=True))) == [2, 3]
    for page in pages[1:]:
        logged = rank_log.logged_features(RankLog.objects.get(request_id=page.request_id))
        np.testing.assert_array_equal(logged, rank_log.feature_matrix(page.features))  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_processes_storing_the_same_new_items_at_once_never_deadlock() -> None:
    """Right after a refresh every writing process stores the new version's items; two that
    stored overlapping pages in different orders deadlocked (one batch lost). Sorted, one waits."""
    shop = CustomerFactory().pk
    items = "".join(chr(0x4E00 + n) for n in range(3000))  # 3,000 one-letter item ids
    versions = [Version(number, seed=number) for number in (7, 8, 9)]  # three refreshes
    pages = [
        [version.page(f"p{n}", shop, items[n * 100 : n * 100 + 100]) for n in range(30)]
        for version in versions
    ]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(tag: str, backwards: bool) -> None:
        try:
            start.wait()
            for round_, version_pages in enumerate(pages):
                own = version_pages[::-1] if backwards else version_pages
                rank_log.rank_log_write(
                    [replace(page, request_id=f"{tag}{round_}{page.request_id}") for page in own]
                )
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=write, args=("a", False)),
        threading.Thread(target=write, args=("b", True)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert RankLog.objects.filter(customer_id=shop).count() == 2 * 3 * 30
    assert RankLogItemSignals.objects.filter(customer_id=shop).count() == 3 * 3000
    row = RankLog.objects.get(request_id="b2p3")
    np.testing.assert_array_equal(
        rank_log.logged_features(row),  # type: ignore[arg-type]
        rank_log.feature_matrix(pages[2][3].features),
    )


def record_page(page: rank_log.RankLogEntry) -> rank_log.RankLogEntry:
    """Record `page` as a served request would, and return the entry buffered for it."""
    rank_log.record(
        customer_id=page.customer_id,
        request_id=page.request_id,
        surface=page.surface,
        query=page.query,
        shopper_key=page.shopper_key,
        model=page.model,
        item_ids=page.item_ids,
        features=rank_log.feature_matrix(page.features),
        signals_version=page.signals_version,
        signals_at=page.signals_at,
        degraded=page.degraded,
    )
    return rank_log.buffer.entries[-1]


def test_a_page_whose_item_columns_are_stored_is_split_when_recorded_and_reads_back_exact(
    api: ApiCaller, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once this process has stored a version's item columns, a request showing only those items
    keeps just its other columns from the moment it is recorded (the flush then only copies it);
    a page with an item not stored yet, or a degraded one, is kept whole. Every row reads back
    bit for bit, written here or by a Celery worker."""
    shop = api.customer.pk
    version = Version(1, seed=4)
    assert rank_log.rank_log_write([version.page("r0", shop, "abcd")]) == 1

    known = version.page("r1", shop, "dba")
    new_item = version.page("r2", shop, "abe")
    degraded = replace(version.page("r3", shop, "ab"), degraded=True)
    other_version = Version(2, seed=5).page("r4", shop, "ab")
    buffered = [record_page(page) for page in (known, new_item, degraded, other_version)]

    assert [entry.items_by_reference for entry in buffered] == [True, False, False, False]
    assert len(buffered[0].features) == 3 * (len(FEATURES) - N_ITEM) * 4
    assert buffered[1].features == new_item.features

    # The broker's message carries the split entry as it is.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **options: sent.append(options))
    assert rank_log.flush() == 4
    rank_log.reset()  # the Celery worker: another process, which has stored nothing
    assert sum(flush_rank_log_split(*message["args"]) for message in sent) == 4

    for page in (known, new_item, degraded, other_version):
        row = RankLog.objects.get(request_id=page.request_id)
        assert row.items_by_reference == (not page.degraded)
        np.testing.assert_array_equal(
            rank_log.logged_features(row),  # type: ignore[arg-type]
            rank_log.feature_matrix(page.features),
        )
    assert RankLogItemSignals.objects.filter(customer_id=shop, signals_version=1).count() == 5


def test_a_flush_sends_what_was_buffered_when_it_began(
    api: ApiCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests keep arriving while a flush writes: they wait for the next flush instead of
    keeping this one going a few rows at a time."""
    shop = api.customer.pk
    for n in range(3):
        rank_log.buffer.append(entry(f"r{n}", shop))
    write = rank_log.rank_log_write
    arrivals = iter(range(100))

    def write_while_requests_arrive(entries: list[rank_log.RankLogEntry]) -> int:
        rank_log.buffer.append(entry(f"late{next(arrivals)}", shop))
        return write(entries)

    monkeypatch.setattr(rank_log, "rank_log_write", write_while_requests_arrive)

    assert rank_log.flush() == 3
    assert [e.request_id for e in rank_log.buffer.entries] == ["late0"]
    assert rank_log.flush() == 1
    assert RankLog.objects.filter(customer_id=shop).count() == 4


def test_with_a_broker_requests_showing_items_sent_before_go_split(
    api: ApiCaller, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API process that hands its batches to Celery counts the items of the rows it sent
    whole as stored: later requests showing only those items are split when recorded and go
    with their 10 columns. What the worker writes reads back bit for bit."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **options: sent.append(options))
    shop = api.customer.pk
    version = Version(1, seed=6)
    pages = [
        version.page("r1", shop, "abc"),
        version.page("r2", shop, "bcd"),
        version.page("r3", shop, "db"),
        version.page("r4", shop, "ae"),
    ]
    for page in pages[:2]:
        assert not record_page(page).items_by_reference
    assert rank_log.flush() == 2
    assert [record_page(page).items_by_reference for page in pages[2:]] == [True, False]
    assert rank_log.flush() == 2

    (first,), (later,) = [message["args"] for message in sent]
    whole = len(FEATURES) * 4
    assert [len(base64.b64decode(entry["features"])) for entry in first + later] == [
        3 * whole,
        3 * whole,
        2 * (len(FEATURES) - N_ITEM) * 4,
        2 * whole,
    ]

    rank_log.reset()  # the Celery worker: another process
    assert flush_rank_log_split(first) == 2
    assert flush_rank_log_split(later) == 2
    for page in pages:
        row = RankLog.objects.get(request_id=page.request_id)
        np.testing.assert_array_equal(
            rank_log.logged_features(row),  # type: ignore[arg-type]
            rank_log.feature_matrix(page.features),
        )
    assert RankLogItemSignals.objects.filter(customer_id=shop).count() == 5
