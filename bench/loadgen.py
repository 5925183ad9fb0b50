"""An open-loop, constant-rate HTTP/1.1 load generator that does not hide queueing.

Requests are due at fixed times (start + n / rate), whatever the server does. Each of a fixed
pool of keep-alive connections takes the next due request when it is free; a request's latency is
measured from its *due* time, not from when a connection got round to sending it. When the
server falls behind, the waiting shows in the latencies (the coordinated-omission correction of
wrk2), instead of the generator quietly sending less.

`closed` mode finds the maximum throughput: every connection sends its next request as soon as
the previous answer arrives. `trivial` serves a fixed tiny answer, to measure this generator's
own ceiling (a rate it cannot sustain against that server is a rate it cannot measure).

    bench/loadgen.py open --port 8000 --path /v1/rank --bodies bodies.jsonl --rate 200 \\
        --duration 20 --connections 16 --header "Authorization: Bearer ..."
    bench/loadgen.py closed --port 8000 --path /healthz --duration 5 --connections 16
    bench/loadgen.py trivial --port 8001

It prints one JSON line: sent, completed, errors, achieved rate and latency percentiles (ms).
With `--mark TEXT` it also counts the answers whose body holds TEXT (for example
`"degraded":true`), with their latency percentiles and when the first and last of them were due
(seconds from the start).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    mark: bytes = b""
    # Answers whose body holds `mark`: (seconds from the start their request was due, latency).
    marked: list[tuple[float, float]] = field(default_factory=list)
    start: float = 0.0

    def answered(self, due_at: float, latency: float, status: int, body: bytes) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if self.mark and self.mark in body:
            self.marked.append((due_at - self.start, latency))


def build_requests(
    host: str,
    port: int,
    path: str,
    headers: Sequence[str],
    bodies: Sequence[bytes],
    content_type: str = "application/json",
) -> list[bytes]:
    """The raw bytes of each request (GET without bodies, POST of each body), ready to write."""
    common = f"Host: {host}:{port}\r\nConnection: keep-alive\r\n" + "".join(
        f"{header}\r\n" for header in headers
    )
    if not bodies:
        return [f"GET {path} HTTP/1.1\r\n{common}\r\n".encode()]
    return [
        (
            f"POST {path} HTTP/1.1\r\n{common}Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response with a Content-Length: its status code, its body and whether
    the server closes the connection after it (`Connection: close`)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    closes = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip().lower() == b"close"
    body = await reader.readexactly(length) if length else b""
    return status, body, closes


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            status, body, closes = await read_response(self.reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise
        if closes:  # as any HTTP/1.1 client: the next request opens a new connection
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _worker(
    connection: Connection,
    due: asyncio.Queue[tuple[float, int] | None],
    requests: Sequence[bytes],
    tally: Tally,
) -> None:
    while True:
        item = await due.get()
        if item is None:
            return
        due_at, number = item
        try:
            status, body = await connection.call(requests[number % len(requests)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            continue
        tally.answered(due_at, time.perf_counter() - due_at, status, body)


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    duration: float,
    connections: int,
    mark: bytes = b"",
) -> tuple[Tally, float, int]:
    """Send `rate` requests per second for `duration` seconds, on schedule."""
    tally = Tally(mark=mark)
    due: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    pool = [Connection(host, port) for _ in range(connections)]
    workers = [asyncio.create_task(_worker(c, due, requests, tally)) for c in pool]
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    tally.start = start
    for number in range(total):
        due_at = start + number / rate
        delay = due_at - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        due.put_nowait((due_at, number))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    for connection in pool:
        connection.close()
    return tally, elapsed, total


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    duration: float,
    connections: int,
    mark: bytes = b"",
) -> tuple[Tally, float, int]:
    """Every connection sends back to back for `duration` seconds: the maximum throughput."""
    tally = Tally(mark=mark, start=time.perf_counter())
    sent = 0
    stop = time.perf_counter() + duration

    async def run(connection: Connection, offset: int) -> None:
        nonlocal sent
        number = offset
        while time.perf_counter() < stop:
            sent += 1
            started = time.perf_counter()
            try:
                status, body = await connection.call(requests[number % len(requests)])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                tally.errors += 1
                continue
            tally.answered(started, time.perf_counter() - started, status, body)
            number += connections
        connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(run(Connection(host, port), n) for n in range(connections)))
    return tally, time.perf_counter() - start, sent


def percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return math.nan
    rank = max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)
    return ordered[rank]


def summary(tally: Tally, elapsed: float, sent: int) -> dict[str, object]:
    ordered = sorted(tally.latencies)
    result: dict[str, object] = {
        "sent": sent,
        "completed": len(ordered),
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "seconds": round(elapsed, 3),
        "achieved_rps": round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
    }
    for pct in PERCENTILES:
        result[f"p{pct:g}_ms"] = round(percentile(ordered, pct) * 1000, 3)
    result["max_ms"] = round(ordered[-1] * 1000, 3) if ordered else math.nan
    if tally.mark:
        marked = sorted(latency for _, latency in tally.marked)
        due = sorted(at for at, _ in tally.marked)
        result["marked"] = len(marked)
        for pct in (50.0, 99.0):
            result[f"marked_p{pct:g}_ms"] = round(percentile(marked, pct) * 1000, 3)
        result["marked_first_due_s"] = round(due[0], 3) if due else None
        result["marked_last_due_s"] = round(due[-1], 3) if due else None
    return result


TRIVIAL_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: application/json\r\n\r\n"
TRIVIAL_ANSWER += b'{"status":"ok"}'


async def serve_trivial(host: str, port: int, ready: Path | None) -> None:
    """A fixed tiny answer per request read (headers only; bodies are read and dropped)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        await reader.readexactly(int(value))
                writer.write(TRIVIAL_ANSWER)
        writer.close()

    server = await asyncio.start_server(handle, host, port, backlog=1024)
    if ready is not None:
        ready.write_text("ready")
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["open", "closed", "trivial"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--bodies", type=Path, help="JSON lines: one request body per line")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--base64", action="store_true", help="the bodies file is base64 lines")
    parser.add_argument("--mark", default="", help="count answers whose body holds this text")
    args = parser.parse_args()
    if args.mode == "trivial":
        asyncio.run(serve_trivial(args.host, args.port, args.ready_file))
        return
    bodies = []
    if args.bodies:  # JSON lines; or, for binary bodies, each base64-encoded on its line
        bodies = args.bodies.read_bytes().splitlines()
        if args.base64:
            bodies = [base64.b64decode(body) for body in bodies]
    requests = build_requests(
        args.host, args.port, args.path, args.header, bodies, args.content_type
    )
    if args.mode == "open":
        outcome = asyncio.run(
            open_loop(
                args.host,
                args.port,
                requests,
                args.rate,
                args.duration,
                args.connections,
                args.mark.encode(),
            )
        )
    else:
        outcome = asyncio.run(
            closed_loop(
                args.host, args.port, requests, args.duration, args.connections, args.mark.encode()
            )
        )
    result = summary(*outcome)
    result.update(mode=args.mode, connections=args.connections)
    if args.mode == "open":
        result["target_rps"] = args.rate
    print(json.dumps(result))


if __name__ == "__main__":
    main()
