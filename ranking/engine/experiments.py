"""Experiment assignment: which variant a shopper sees, decided without any shared state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ranking.engine.records import RankerConfig

CONTROL, TREATMENT = "A", "B"
# The variant of an interleaving experiment's requests: A and B merged in one list.
INTERLEAVED = "interleaved"
BUCKETS = 10_000


def shopper_bucket(salt: str, shopper_key: str) -> int:
    """A stable bucket in [0, BUCKETS) for the shopper, independent across experiments."""
    digest = hashlib.blake2b(f"{salt}:{shopper_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class SurfaceExperiment:
    """A surface's running experiment: A is the live ranker, B the treatment's."""

    name: str
    salt: str
    treatment_percent: int
    control: RankerConfig
    treatment: RankerConfig
    # Its window in epoch seconds (None: open); outside it, `live` serves with no variant.
    starts: float | None = None
    ends: float | None = None
    live: RankerConfig | None = None

    def running_at(self, now: float) -> bool:
        return (self.starts is None or self.starts <= now) and (
            self.ends is None or now < self.ends
        )

    def ranker_for(self, shopper_key: str, now: float | None = None) -> RankerConfig:
        """A request without a shopper (no user, no session) always gets A; outside the
        experiment's window every request gets the live ranker, in no variant."""
        if now is not None and self.live is not None and not self.running_at(now):
            return self.live
        if shopper_key and shopper_bucket(self.salt, shopper_key) < self.treatment_percent * 100:
            return self.treatment
        return self.control
