"""core.metrics' `inc` and `observe` write the samples the stock Counter.inc and
Histogram.observe write: in one process, and in multiprocess mode the same samples in the same
files, as a scrape reads them, when the file grows, after a fork and from many threads at once.
And core.settings_cache follows a setting changed by a test."""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

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


@contextmanager
def multiprocess_mode(directory: Path) -> Iterator[Any]:
    """Metrics made inside write their samples to files in `directory`, as under gunicorn (each
    time a MmapedValue class of its own, so no file is shared with another test)."""
    value_class = values.MultiProcessValue()
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    stock_class, values.ValueClass = values.ValueClass, value_class
    try:
        yield value_class
    finally:
        values.ValueClass = stock_class
        if before is None:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = before
        value_class.close_all_files()


def scraped(directory: Path, prefix: str = "") -> list[tuple[str, tuple[Any, ...], float | str]]:
    """What a scrape of every process's files in `directory` reads of the metrics named with
    `prefix`, without it; NaN made comparable."""
    return sorted(
        (
            sample.name.removeprefix(prefix),
            tuple(sorted(sample.labels.items())),
            "NaN" if math.isnan(sample.value) else sample.value,
        )
        for family in MultiProcessCollector(None, path=str(directory)).collect()
        if family.name.startswith(prefix)
        for sample in family.samples
    )


def slot(metric: Any) -> Any:
    """The child's slot, in the file's current mapping; core.metrics took its fast path."""
    found = metric.__dict__.get("_rankwell_slot")
    assert found is not None, "the stock write was used: no slot in multiprocess mode"
    return found


SURFACES = ["search", "browse", "recommend"]
WRITES = st.lists(
    st.tuples(
        st.sampled_from(SURFACES),
        st.one_of(st.integers(0, 10**6), st.floats(0, 1e9)),
        AMOUNTS,
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(WRITES)
def test_multiprocess_files_hold_the_samples_of_the_stock_methods(
    writes: list[tuple[str, float, float]],
) -> None:
    with tempfile.TemporaryDirectory() as name, multiprocess_mode(Path(name)):
        directory = Path(name)
        stock_items = Counter("stock_items", "", ["surface"], registry=None)
        our_items = Counter("our_items", "", ["surface"], registry=None)
        stock_plain = Counter("stock_plain", "", registry=None)
        our_plain = Counter("our_plain", "", registry=None)
        stock_seconds = Histogram(
            "stock_seconds", "", ["surface"], buckets=RANK_BUCKETS, registry=None
        )
        our_seconds = Histogram("our_seconds", "", ["surface"], buckets=RANK_BUCKETS, registry=None)
        stock_took = Histogram("stock_took", "", buckets=RANK_BUCKETS, registry=None)
        our_took = Histogram("our_took", "", buckets=RANK_BUCKETS, registry=None)

        for surface, count, seconds in writes:
            stock_items.labels(surface).inc(count)
            inc(our_items.labels(surface), count)
            stock_plain.inc()
            inc(our_plain)
            stock_seconds.labels(surface).observe(seconds)
            observe(our_seconds.labels(surface), seconds)
            stock_took.observe(seconds)
            observe(our_took, seconds)

        assert scraped(directory, "our_") == scraped(directory, "stock_")
        if writes:
            slot(our_items.labels(writes[0][0]))
            slot(our_seconds.labels(writes[0][0]))
            slot(our_plain)
            slot(our_took)


def test_samples_written_after_the_file_grows_are_the_stock_ones(tmp_path: Path) -> None:
    with multiprocess_mode(tmp_path):
        stock = Counter("stock_items", "", ["surface", "query"], registry=None)
        ours = Counter("our_items", "", ["surface", "query"], registry=None)
        stock_took = Histogram("stock_took", "", ["query"], buckets=RANK_BUCKETS, registry=None)
        our_took = Histogram("our_took", "", ["query"], buckets=RANK_BUCKETS, registry=None)
        inc(ours.labels("search", "first"))
        observe(our_took.labels("first"), 0.004)
        stock.labels("search", "first").inc()
        stock_took.labels("first").observe(0.004)
        file = slot(ours.labels("search", "first"))[1]
        first_mapping, capacity = file._m, file._capacity

        # Each new child adds its samples' keys to the file: enough of them to grow it twice.
        query = 0
        while file._capacity < 4 * capacity:
            query += 1
            label = f"a rather long query, number {query}"
            stock.labels("search", label).inc(query)
            inc(ours.labels("search", label), query)
            stock_took.labels(label).observe(query / 1000)
            observe(our_took.labels(label), query / 1000)
            stock.labels("search", "first").inc()
            inc(ours.labels("search", "first"))
            stock_took.labels("first").observe(0.004)
            observe(our_took.labels("first"), 0.004)

        assert file._m is not first_mapping
        assert slot(ours.labels("search", "first"))[2] is file._m
        histograms = slot(our_took.labels("first"))[1]  # a file of their own, grown too
        assert histograms._capacity > capacity
        assert slot(our_took.labels("first"))[2] is histograms._m
        assert scraped(tmp_path, "our_") == scraped(tmp_path, "stock_")
        assert ("items_total", (("query", "first"), ("surface", "search")), query + 1.0) in (
            scraped(tmp_path, "our_")
        )


def test_a_forked_process_writes_its_own_file(tmp_path: Path) -> None:
    """As gunicorn's workers, forked after the metrics were made and written."""
    with multiprocess_mode(tmp_path):
        items = Counter("items", "", ["surface"], registry=None).labels("search")
        took = Histogram("took", "", ["surface"], buckets=RANK_BUCKETS, registry=None)
        seconds = took.labels("search")
        inc(items, 2)
        observe(seconds, 0.004)
        parent_slot = slot(items)

        child = os.fork()
        if child == 0:  # pragma: no cover (the child leaves without reporting to coverage)
            code = 1
            try:
                inc(items, 3)
                observe(seconds, 0.02)
                code = 0 if slot(items)[2] is not parent_slot[2] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0

        inc(items, 5)
        observe(seconds, 0.004)

        assert slot(items) is parent_slot
        assert (tmp_path / f"counter_{child}.db").exists()
        scrape = scraped(tmp_path)
        assert ("items_total", (("surface", "search"),), 10.0) in scrape
        assert ("took_count", (("surface", "search"),), 3.0) in scrape
        assert ("took_bucket", (("le", "0.005"), ("surface", "search")), 2.0) in scrape
        assert ("took_bucket", (("le", "0.02"), ("surface", "search")), 3.0) in scrape
        assert ("took_sum", (("surface", "search"),), pytest.approx(0.028)) in scrape
        child_file = str(tmp_path / f"counter_{child}.db")
        in_child = values.MmapedDict.read_all_values_from_file(child_file)
        assert [entry[1] for entry in in_child] == [3.0]  # (key, value, timestamp, offset)


def test_threads_writing_at_once_lose_no_sample(tmp_path: Path) -> None:
    """gthread workers: many threads write the same children, some through the stock methods,
    while another adds children (and so grows the file), threads switching as often as Python
    lets them: every count is in the files. (That both write under one lock is the next test's.)"""
    threads, writes = 6, 3000
    with multiprocess_mode(tmp_path):
        items = Counter("items", "", ["surface"], registry=None)
        took = Histogram("took", "", ["surface"], buckets=RANK_BUCKETS, registry=None)
        searched, seconds = items.labels("search"), took.labels("search")
        start = threading.Barrier(threads + 1)

        def write(stock_every: int) -> None:
            start.wait()
            for n in range(writes):
                if n % stock_every == 0:
                    searched.inc(2)
                    seconds.observe(0.004)
                else:
                    inc(searched, 2)
                    observe(seconds, 0.004)

        def add_children() -> None:
            start.wait()
            for n in range(writes):
                inc(items.labels(f"a new surface, number {n}"))

        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            workers = [threading.Thread(target=write, args=(3 + n,)) for n in range(threads)]
            workers.append(threading.Thread(target=add_children))
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            sys.setswitchinterval(switch_interval)

        scrape = scraped(tmp_path)
        assert ("items_total", (("surface", "search"),), 2.0 * threads * writes) in scrape
        assert ("took_count", (("surface", "search"),), 1.0 * threads * writes) in scrape
        assert ("took_bucket", (("le", "0.005"), ("surface", "search")), threads * writes) in (
            scrape
        )


def test_a_write_waits_for_a_stock_write_in_progress(tmp_path: Path) -> None:
    """Both write under prometheus_client's lock: neither can lose the other's count, whatever
    the interpreter's thread switches."""
    with multiprocess_mode(tmp_path):
        items = Counter("items", "", ["surface"], registry=None)
        searched, browsed = items.labels("search"), items.labels("browse")
        inc(browsed)
        file = slot(browsed)[1]
        stock_writing, stock_may_end = threading.Event(), threading.Event()
        write_value = file.write_value

        def held_write(*args: Any) -> None:
            stock_writing.set()
            stock_may_end.wait()
            write_value(*args)

        file.write_value = held_write
        stock = threading.Thread(target=searched.inc)
        stock.start()
        assert stock_writing.wait(timeout=60)
        ours = threading.Thread(target=inc, args=(browsed,))
        ours.start()
        ours.join(timeout=0.5)
        waited = ours.is_alive()
        stock_may_end.set()
        stock.join()
        ours.join()

        assert waited, "core.metrics wrote while a stock write held the lock"
        scrape = scraped(tmp_path)
        assert ("items_total", (("surface", "browse"),), 2.0) in scrape
        assert ("items_total", (("surface", "search"),), 1.0) in scrape


@settings_cached
def _slot_wait() -> float:
    return float(django_settings.API_SLOT_WAIT_SECONDS)


def test_a_cached_setting_follows_a_test_that_changes_it(settings: Any) -> None:
    before = _slot_wait()

    settings.API_SLOT_WAIT_SECONDS = before + 7

    assert _slot_wait() == before + 7
