"""A few kept-alive connections end up spread over gunicorn's workers, not tied to one of them.

The kernel hands each new connection to a worker by a hash of its addresses (SO_REUSEPORT), so
four connections land three-and-one or four-and-none more often than two-and-two; kept alive,
they stayed there, and one worker carried the load on one core while the other was idle (half the
throughput in one round of `make bench` in three). platform/gunicorn.conf.py has a worker that
holds more than its share of the host's connections close one after answering it, so the
client's next connection lands anew. Here: four kept-alive clients, as a load balancer's or a
benchmark's, against gunicorn as production runs it (two workers), in three rounds of new
connections; each round must end with two connections on each worker (by chance alone, three
rounds in a row would come out so once in twenty).
"""

from __future__ import annotations

import http.client
from pathlib import Path

from tests.operations.conftest import Server

CLIENTS = 4
ROUNDS = 3
REQUESTS = 200  # at most, per client and round


def test_kept_alive_connections_spread_over_the_workers(server: Server) -> None:
    workers = _children(server.pid)
    assert len(workers) == 2
    for _ in range(ROUNDS):
        clients = [
            http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(CLIENTS)
        ]
        try:
            closed = settled = 0
            for _ in range(REQUESTS):
                # http.client opens a new connection for the request after a `Connection: close`.
                kept = 0
                for client in clients:
                    client.request("GET", "/healthz")
                    response = client.getresponse()
                    response.read()
                    assert response.status == 200
                    if response.will_close:
                        closed += 1
                    else:
                        kept += 1
                # Settled: every worker has answered on what it holds now, and closed nothing.
                settled = settled + 1 if kept == CLIENTS else 0
                if settled == 3:
                    break
            assert settled == 3, "the workers went on closing connections"
            held = _connections_by_worker(server.port, workers, clients)
            assert sorted(held.values()) == [2, 2], (held, f"{closed} connections closed")
        finally:
            for client in clients:
                client.close()


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _connections_by_worker(
    port: int, workers: list[int], clients: list[http.client.HTTPConnection]
) -> dict[int, int]:
    """How many of the clients' connections each worker holds: the server side of each (local
    port `port`, remote port the client's) found in /proc/net/tcp, its socket among a worker's
    open files."""
    client_ports = set()
    for client in clients:
        assert client.sock is not None
        client_ports.add(client.sock.getsockname()[1])
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and int(local.split(":")[1], 16) == port:
            remote_port = int(remote.split(":")[1], 16)
            if remote_port in client_ports:
                inodes[f"socket:[{inode}]"] = remote_port
    assert len(inodes) == CLIENTS, inodes
    held = {}
    for worker in workers:
        links = set()
        for fd in Path(f"/proc/{worker}/fd").iterdir():
            try:
                links.add(str(fd.readlink()))
            except OSError:  # closed meanwhile
                continue
        held[worker] = len(links & inodes.keys())
    assert sum(held.values()) == CLIENTS
    return held
