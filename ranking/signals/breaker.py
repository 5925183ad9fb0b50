"""A circuit breaker on the signal store's reads that opens on a failure rate, not on one failure.

A read that times out under a CPU spike fails that one request (degraded), and nothing more. The
breaker opens only when, over the last `window_seconds`, at least `min_calls` reads were tried and
at least `failure_rate` of them failed: Redis is really down or frozen. While open, reads are not
tried (requests answer degraded at once instead of each waiting for the timeout); after
`open_seconds` one read is let through, and its result closes the breaker or opens it again.

The window is short (1 s by default): after a busy spell its successes would otherwise outweigh
a freeze's failures for many seconds, while each request waits its timeout in one of a few
work slots (core.middleware) and the queue behind them grows (`make bench`, bench/faults.py,
measured with a 10 s window: a 5 s freeze at 138 req/s never opened it; answers waited up to 4 s).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# Calls are counted in buckets of this many seconds; the window is a whole number of them.
BUCKET_SECONDS = 0.1


class Breaker:
    def __init__(
        self,
        *,
        open_seconds: float,
        window_seconds: float = 1.0,
        min_calls: int = 20,
        failure_rate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.open_seconds = open_seconds
        self.window_seconds = window_seconds
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self._now = clock
        self._lock = threading.Lock()
        # One bucket per whole second: [second, calls, failures]
        self._buckets: deque[list[int]] = deque()
        self._open_until = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._now() < self._open_until

    def allow(self) -> bool:
        """Whether to try a read now. Closed: yes. Open: no, until the open period ends, then
        one read (the probe) at a time."""
        now = self._now()
        if self._open_until == 0.0:
            return True
        with self._lock:
            if now < self._open_until or self._probing:
                return False
            self._probing = True
            return True

    def record(self, ok: bool) -> None:
        now = self._now()
        slot = int(now / BUCKET_SECONDS)
        with self._lock:
            if self._probing:
                self._probing = False
                if ok:
                    self._open_until = 0.0
                    self._buckets.clear()
                else:
                    self._open_until = now + self.open_seconds
                return
            if self._buckets and self._buckets[-1][0] == slot:
                bucket = self._buckets[-1]
            else:
                bucket = [slot, 0, 0]
                self._buckets.append(bucket)
            bucket[1] += 1
            bucket[2] += 0 if ok else 1
            if ok:
                return
            oldest = slot - round(self.window_seconds / BUCKET_SECONDS)
            while self._buckets and self._buckets[0][0] <= oldest:
                self._buckets.popleft()
            calls = sum(b[1] for b in self._buckets)
            failures = sum(b[2] for b in self._buckets)
            if calls >= self.min_calls and failures >= self.failure_rate * calls:
                self._open_until = now + self.open_seconds
                self._buckets.clear()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._open_until = 0.0
            self._probing = False
