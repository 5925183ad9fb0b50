"""Slow clients cannot hold the API's workers. gunicorn runs with platform/gunicorn.conf.py and
production settings on loopback; 10 clients each send a request head one line every 2 s (and
open a new connection whenever the server drops theirs); meanwhile /healthz and /v1/rank are
asked every 0.5 s for 15 s, and each must answer within 2 s. The server must also drop every
slow connection soon after its head's deadline, so the slow clients hold threads for a bounded
time, not for as long as they like (docs/operations.md, "Rate limits and slow clients")."""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from dataclasses import dataclass, field

import orjson

from tests.operations.conftest import Server

logger = logging.getLogger(__name__)

SLOW_CLIENTS = 10
LINE_EVERY = 2.0
PROBE_EVERY = 0.5
# Long enough for every slow head to be dropped once (HEAD_DEADLINE) and its client to come back.
PROBE_SECONDS = 10.0
ANSWER_WITHIN = 2.0
# The config's head deadline (GUNICORN_HEADER_READ_SECONDS), plus a line's interval (the client
# notices the drop when it next writes) and slack for a busy machine.
HEAD_DEADLINE = 5.0
DROPPED_WITHIN = HEAD_DEADLINE + LINE_EVERY + 3.0

RANK_BODY = orjson.dumps({"surface": "browse", "items": [{"id": "sku-1"}, {"id": "sku-2"}]})


SLOW_HEAD = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: another line\r\n")


def slow_body(key: str) -> tuple[bytes, bytes]:
    """A whole head with a valid key, then a body that never ends: a request past the head's
    deadline, bounded by the body's (GUNICORN_BODY_READ_SECONDS, 30 s). It must hold its thread
    only, never one of the worker's slots for requests in work (API_CONCURRENT_REQUESTS, fewer
    than the slow clients)."""
    head = (
        f"POST /v1/rank HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    )
    return head.encode(), b" "


@dataclass
class SlowClient:
    """Sends a request a line (or byte) at a time, forever; reconnects when the server drops it."""

    port: int
    stop: threading.Event
    request: tuple[bytes, bytes] = SLOW_HEAD
    held_seconds: list[float] = field(default_factory=list)  # per connection the server dropped
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            opened = time.monotonic()
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(self.request[0])
                while not self.stop.wait(LINE_EVERY):
                    if self.dropped(sock, self.request[1]):
                        self.held_seconds.append(time.monotonic() - opened)
                        break

    @staticmethod
    def dropped(sock: socket.socket, more: bytes) -> bool:
        """Whether the server closed the connection (or answered it); else send one more line."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                sock.recv(4096)  # b"" when closed; an answer ends the attempt as well
                return True
            sock.sendall(more)
        except OSError:
            return True
        return False


def test_slow_clients_do_not_stop_health_checks_or_ranking(server: Server) -> None:
    answers, held = probe_beside_slow_clients(server, SLOW_HEAD)
    late = [answer for answer in answers if answer[1] != 200 or answer[2] > ANSWER_WITHIN]
    assert late == [], f"{len(late)} of {len(answers)} probes failed or were late: {late}"
    assert len(answers) >= 2 * int(PROBE_SECONDS / PROBE_EVERY) - 2
    assert all(held), "a slow connection was never dropped"
    assert max(max(one) for one in held) < DROPPED_WITHIN, f"slow connections held for {held} s"
    assert "Traceback" not in server.log.read_text()


def test_slow_request_bodies_do_not_take_the_slots_of_requests_in_work(server: Server) -> None:
    """10 rank requests whose bodies never finish, against 2 workers of 4 slots each: the
    bodies are read before a request takes a slot, so ranking goes on."""
    answers, _ = probe_beside_slow_clients(server, slow_body(server.key))
    late = [answer for answer in answers if answer[1] != 200 or answer[2] > ANSWER_WITHIN]
    assert late == [], f"{len(late)} of {len(answers)} probes failed or were late: {late}"
    assert len(answers) >= 2 * int(PROBE_SECONDS / PROBE_EVERY) - 2
    assert "Traceback" not in server.log.read_text()


def probe_beside_slow_clients(
    server: Server, request: tuple[bytes, bytes]
) -> tuple[list[tuple[str, int | str, float]], list[list[float]]]:
    """Probe /healthz and /v1/rank every PROBE_EVERY s for PROBE_SECONDS while SLOW_CLIENTS
    send `request` slowly; the probes' (path, status, seconds) and, per slow client, how long
    each of its connections was held before the server dropped it."""
    for _ in range(6):  # every worker loads the customer's runtime before the clock starts
        assert server.ask("POST", "/v1/rank", RANK_BODY)[0] == 200
    stop = threading.Event()
    slow = [SlowClient(server.port, stop, request) for _ in range(SLOW_CLIENTS)]
    for client in slow:
        client.start()
    time.sleep(LINE_EVERY)  # every slow client holds a connection and has sent a second line

    answers: list[tuple[str, int | str, float]] = []
    try:
        started = time.monotonic()
        tick = started
        while time.monotonic() - started < PROBE_SECONDS:
            for path, method, body in (("/healthz", "GET", None), ("/v1/rank", "POST", RANK_BODY)):
                try:
                    status, seconds = server.ask(method, path, body)
                    answers.append((path, status, seconds))
                except OSError as error:
                    answers.append((path, repr(error), time.monotonic() - tick))
            tick += PROBE_EVERY
            time.sleep(max(0.0, tick - time.monotonic()))
    finally:
        stop.set()
        for client in slow:
            assert client.thread is not None
            client.thread.join(timeout=LINE_EVERY + 6)

    held = [seconds for client in slow for seconds in client.held_seconds]
    logger.info(  # what docs/operations.md reports (pytest --log-cli-level=INFO shows it)
        "%d answers, slowest %.2f s; %d slow connections dropped after %.1f-%.1f s",
        len(answers),
        max(a[2] for a in answers),
        len(held),
        min(held, default=0),
        max(held, default=0),
    )
    return answers, [client.held_seconds for client in slow]
