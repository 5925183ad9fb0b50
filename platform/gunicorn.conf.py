"""gunicorn's configuration for the API: `gunicorn --config platform/gunicorn.conf.py config.wsgi`.

Every value can be overridden from the environment (the names below). Metrics run in
prometheus_client's multiprocess mode: the master clears PROMETHEUS_MULTIPROC_DIR on start, each
worker writes its samples there, and a dead worker's live gauges are dropped.
"""

import mmap
import multiprocessing
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

_env = os.environ.get

bind = f"0.0.0.0:{_env('PORT', '8000')}"
# The rank path is CPU bound (numpy, the model): about one process per core, with threads for
# the time spent waiting on Redis and PostgreSQL, and on clients. A gthread thread serves one
# connection from its request's first byte to its response: a client that sends its request
# slowly holds it meanwhile (docs/operations.md, "Rate limits and slow clients"). 16 threads let
# a dozen such clients sit on a worker while it goes on serving; a waiting thread costs no CPU.
workers = int(_env("GUNICORN_WORKERS", str(multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", "16"))
# gunicorn bounds no read: a client sending a header line every few seconds holds its thread for
# as long as it likes (`timeout` only restarts a worker whose main loop stalls, and a gthread
# worker's never does). So a request's head must arrive within GUNICORN_HEADER_READ_SECONDS of
# its first byte, and its body within GUNICORN_BODY_READ_SECONDS of the head; then the connection
# is closed. Behind the ALB both arrive at once; these bound a client that reaches a task directly.
_header_read_seconds = float(_env("GUNICORN_HEADER_READ_SECONDS", "5"))
# How long a thread may hold the GIL while another wants it (Python's default: 0.005 s). A
# request that waits on Redis or a socket must get the GIL back from a thread that computes;
# each such wait can cost up to the interval. Empty: Python's default.
_switch_interval = _env("PYTHON_SWITCH_INTERVAL_SECONDS", "")
_body_read_seconds = float(_env("GUNICORN_BODY_READ_SECONDS", "30"))
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new connections
# across them. With one shared socket the first worker awake accepted them: keep-alive then tied
# a client's every connection to that worker, and the other sat idle (docs/performance.md).
reuse_port = _env("GUNICORN_REUSE_PORT", "true").lower() == "true"
# The kernel spreads connections by a hash of their addresses, not by load: with a few kept-alive
# connections one worker often got three of four, or all of them, and carried the load on one core
# while the other sat idle (half the throughput in one round of `make bench` in three). So each
# worker publishes how many connections it holds, and one holding more than its fair share of the
# host's answers a request with `Connection: close`: the client's next connection lands anew.
_balance_connections = _env("GUNICORN_BALANCE_CONNECTIONS", "true").lower() == "true"
# Above the load balancer's idle timeout (60 s), so the ALB never reuses a connection we closed.
# An idle kept-alive connection waits in the worker's poller, not on a thread.
keepalive = int(_env("GUNICORN_KEEPALIVE", "75"))
# A worker whose main loop is stuck this long is restarted (a busy request thread is not).
timeout = int(_env("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Recycle workers now and then so a slow leak can never reach the 250 MB budget. Not often: a
# worker serves hundreds of requests a second, and each restart costs a core a few seconds of
# imports and cache loading while the other workers take its share (at 20,000 requests, a worker
# serving 300 requests a second would restart about once a minute).
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "1000000"))
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER", "100000"))
# Docker's /dev/shm is in memory; the default (/tmp) may be a slow overlay.
_shm = "/dev/shm"  # noqa: S108 (gunicorn's heartbeat files, not data)
worker_tmp_dir = _env("GUNICORN_WORKER_TMP_DIR", _shm if Path(_shm).is_dir() else "") or None
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "*")
proxy_allow_ips = forwarded_allow_ips

# Access log as JSON lines, with the request id the app put in X-Request-ID.
accesslog = _env("GUNICORN_ACCESS_LOG", "-") or None
# Only fields that cannot hold a double quote, so every line stays valid JSON (the user agent is
# in the load balancer's access log).
access_log_format = (
    '{"time": "%(t)s", "logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", '
    '"path": "%(U)s", "status": %(s)s, "bytes": %(B)s, "duration_ms": %(M)s, '
    '"request_id": "%({x-request-id}o)s"}'
)
errorlog = "-"
loglevel = _env("LOG_LEVEL", "info").lower()

_multiproc_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/prometheus")  # noqa: S108


def on_starting(server: Any) -> None:
    """Start each deployment with an empty metrics directory: old workers' files are stale."""
    shutil.rmtree(_multiproc_dir, ignore_errors=True)
    Path(_multiproc_dir).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    _free_slot(worker)


# Per worker slot: its pid (0: free, -1: forked, not started yet) and the connections it holds.
# An anonymous shared mapping made in the master, so every worker forked from it sees the same
# pages; each slot is written by its own worker (the counts) or by the master (the pids). The
# first slot's pid field holds how many slots were ever used (a request reads only those).
_SLOTS = 256
_slots = memoryview(mmap.mmap(-1, (_SLOTS + 1) * 16)).cast("q")
# In a worker: the connections it has served, and those of them it is closing.
_served: set[Any] = set()
_closing: set[Any] = set()
_balance_lock = threading.Lock()


def pre_fork(server: Any, worker: Any) -> None:
    """Give the worker about to be forked a free slot (the master runs this, one at a time)."""
    for slot in range(1, _SLOTS + 1):
        if _slots[2 * slot] == 0:
            _slots[2 * slot], _slots[2 * slot + 1] = -1, 0
            _slots[0] = max(_slots[0], slot)
            worker.balance_slot = slot
            return


def _free_slot(worker: Any) -> None:
    """The exited worker's slot, if it is still its own (after a reload, whose new config maps a
    new page, an old worker's slot number may be a new worker's)."""
    slot = getattr(worker, "balance_slot", None)
    if slot is not None and _slots[2 * slot] in (worker.pid, -1):
        _slots[2 * slot], _slots[2 * slot + 1] = 0, 0


def _fair_share_exceeded(worker: Any, sock: Any) -> bool:
    """Whether this worker holds more than its share of the host's connections (a quarter over
    the even share, at least one); if so `sock`, this request's connection, is to close. Each
    call publishes the worker's count: the connections it has served that are still open, less
    those it has answered with `Connection: close` (gunicorn's own count, `nr_conns`, lagged
    behind the closes and left a worker holding three of four)."""
    slot = getattr(worker, "balance_slot", None)
    if slot is None or sock is None or not worker.cfg.keepalive:
        return False
    raw = sock._sock  # the socket itself: its fileno() is -1 once gunicorn has closed it
    with _balance_lock:
        _served.add(raw)
        closed = [s for s in _served if s.fileno() == -1]  # some 40 ns a connection
        _served.difference_update(closed)
        _closing.difference_update(closed)
        held = len(_served) - len(_closing)
        _slots[2 * slot + 1] = held
        total = live = 0
        for other in range(1, _slots[0] + 1):
            if _slots[2 * other] != 0:
                live += 1
                total += _slots[2 * other + 1]
        even = -(-total // max(live, 1))
        if held <= even + even // 4:
            return False
        _closing.add(raw)
        _slots[2 * slot + 1] = held - 1
        return True


def post_worker_init(worker: Any) -> None:
    """Load the URLconf (and with it the ranking engine, NumPy, LightGBM) now, then move every
    object that exists into the garbage collector's permanent generation. Otherwise each full
    collection walks the whole imported code base, about 100 ms on this machine, and lands on
    one request in fifty: that was /v1/rank's p99 (docs/performance.md)."""
    import gc

    from django.apps import apps

    if apps.ready:  # the service; bench/floor.py, served with this file too, is no Django app
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 (imports every view module)
    gc.collect()
    gc.freeze()
    _bound_request_reads(worker)
    slot = getattr(worker, "balance_slot", None)
    if slot is not None and _balance_connections:
        _slots[2 * slot], _slots[2 * slot + 1] = os.getpid(), 0
    else:
        worker.balance_slot = None
    if _switch_interval:
        sys.setswitchinterval(float(_switch_interval))


class _ReadDeadlineSocket:
    """A client socket whose reads end at a deadline: _header_read_seconds after a request's
    first read, moved to _body_read_seconds after its head (pre_request). At the deadline a read
    returns no data, as if the client had closed: gunicorn then drops the connection quietly (an
    unfinished head) or the application sees a short body (a 400). Everything else is the
    socket's own."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._deadline: float | None = None

    def start_request(self) -> None:
        self._deadline = None

    def head_read(self) -> None:
        self._deadline = time.monotonic() + _body_read_seconds

    def recv(self, size: int, *flags: int) -> bytes:
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + _header_read_seconds
        remaining = self._deadline - now
        if remaining <= 0:
            return b""
        prior = self._sock.gettimeout()
        self._sock.settimeout(remaining if prior is None else min(prior, remaining))
        try:
            data: bytes = self._sock.recv(size, *flags)
            return data
        except TimeoutError:
            return b""
        finally:
            self._sock.settimeout(prior)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


_reading = threading.local()


def _bound_request_reads(worker: Any) -> None:
    """Give each of the gthread worker's connections a _ReadDeadlineSocket; every request it
    serves starts a new deadline (gthread calls `handle` once per request). TLS ends at the ALB:
    a worker serving TLS itself (or another worker class) is left as gunicorn made it."""
    from gunicorn.workers.gthread import ThreadWorker

    if not isinstance(worker, ThreadWorker) or worker.cfg.is_ssl:
        return
    handle = worker.handle

    def bounded_handle(conn: Any) -> Any:
        if not isinstance(conn.sock, _ReadDeadlineSocket):
            conn.sock = _ReadDeadlineSocket(conn.sock)
        conn.sock.start_request()
        _reading.sock = conn.sock
        try:
            return handle(conn)
        finally:
            _reading.sock = None

    worker.handle = bounded_handle


def pre_request(worker: Any, req: Any) -> None:
    """The head is in: the body's own deadline starts. A worker over its share of the host's
    connections closes this one after answering."""
    sock = getattr(_reading, "sock", None)
    if sock is not None:
        sock.head_read()
    if _fair_share_exceeded(worker, sock):
        req.must_close = True
