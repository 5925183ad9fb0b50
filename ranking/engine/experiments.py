"""Experiment assignment: which variants a shopper sees, decided without any shared state.

A surface's running experiments are grouped in layers (docs/experiments.md "Layers"). Within a
layer each experiment holds a slice of the layer's hash (`slot` to `slot + traffic_percent`, in
percent), so two experiments of one layer never share a shopper; the layers hash shoppers
independently, so an experiment of one layer meets every variant of the others in proportion.
Within its slice, an experiment's own salt splits its shoppers between A and B.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from ranking.engine.records import RankerConfig, RuleStage

CONTROL, TREATMENT = "A", "B"
# The variant of an interleaving experiment's requests: A and B merged in one list.
INTERLEAVED = "interleaved"
BUCKETS = 10_000


def shopper_bucket(salt: str, shopper_key: str) -> int:
    """A stable bucket in [0, BUCKETS) for the shopper, independent across experiments."""
    digest = hashlib.blake2b(f"{salt}:{shopper_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def layer_salt(customer_id: int, surface: str, layer: str) -> str:
    """The salt of a layer's hash: the same in every process, different per layer."""
    return f"layer:{customer_id}:{surface}:{layer}"


@dataclass(frozen=True)
class SurfaceExperiment:
    """A running experiment: A is the live ranker, B the treatment's. `control` and
    `treatment` are the whole ranker when the shopper is in no other experiment; in several,
    the scorer comes from the one that changes it and the rules of every B are added
    (`rules_b`: its B adds rules, as an experiment of rules does, instead of scoring)."""

    name: str
    salt: str
    treatment_percent: int
    control: RankerConfig
    treatment: RankerConfig
    # Its window in epoch seconds (None: open); outside it, `live` serves with no variant.
    starts: float | None = None
    ends: float | None = None
    live: RankerConfig | None = None
    experiment_id: int | None = None
    slot: int = 0  # the first percent of the layer's hash it holds
    traffic_percent: int = 100
    rules_b: bool = False

    def running_at(self, now: float) -> bool:
        return (self.starts is None or self.starts <= now) and (
            self.ends is None or now < self.ends
        )

    def holds(self, layer_bucket: int) -> bool:
        """Whether its slice of the layer holds a shopper of this layer bucket."""
        return self.slot * 100 <= layer_bucket < (self.slot + self.traffic_percent) * 100

    def ranker_for(self, shopper_key: str, now: float | None = None) -> RankerConfig:
        """A request without a shopper (no user, no session) always gets A; outside the
        experiment's window every request gets the live ranker, in no variant."""
        if now is not None and self.live is not None and not self.running_at(now):
            return self.live
        if shopper_key and shopper_bucket(self.salt, shopper_key) < self.treatment_percent * 100:
            return self.treatment
        return self.control


@dataclass(frozen=True)
class SurfaceExperiments:
    """A surface's running experiments by layer, and the live ranker of everyone outside them.

    `rules_of_b`: per set of experiments of rules whose B a shopper is in together (one per
    layer), the customer's rules plus those tagged to each, built when the runtime loads."""

    live: RankerConfig
    layers: tuple[tuple[str, tuple[SurfaceExperiment, ...]], ...]  # (layer salt, experiments)
    rules_of_b: dict[frozenset[int], RuleStage | None] = field(default_factory=dict)
    _combined: dict[tuple[tuple[int, str], ...], RankerConfig] = field(
        default_factory=dict, compare=False, repr=False
    )

    def experiments_of(self, shopper_key: str, now: float) -> list[SurfaceExperiment]:
        """The experiments the shopper is in now: at most one per layer. A request without a
        shopper is in none of them, except where one experiment holds the whole surface: it
        gets that one's A, as before there were layers."""
        met = []
        for salt, experiments in self.layers:
            if len(experiments) == 1 and experiments[0].traffic_percent == 100:
                only = experiments[0]
                if only.running_at(now) and (shopper_key or len(self.layers) == 1):
                    met.append(only)
                continue
            if not shopper_key:
                continue
            bucket = shopper_bucket(salt, shopper_key)
            for experiment in experiments:
                if experiment.holds(bucket) and experiment.running_at(now):
                    met.append(experiment)
                    break
        return met

    def ranker_for(self, shopper_key: str, now: float) -> RankerConfig:
        met = self.experiments_of(shopper_key, now)
        if not met:
            return self.live
        rankers = [experiment.ranker_for(shopper_key) for experiment in met]
        if len(met) == 1:
            return rankers[0]
        exposures = tuple(
            (experiment.experiment_id or 0, ranker.variant or "")
            for experiment, ranker in zip(met, rankers, strict=True)
        )
        combined = self._combined.get(exposures)
        if combined is None:
            combined = self._combine(met, rankers)
            self._combined[exposures] = combined
        return combined

    def _combine(self, met: list[SurfaceExperiment], rankers: list[RankerConfig]) -> RankerConfig:
        """One ranker for a shopper in several experiments: the scorer experiment's ranker (or
        the live one) with the rules of every B of rules. Its variant and experiment id are the
        scorer experiment's, else the first layer's with a variant; the others go in
        `layer_variants` (the rank log keeps them for their readouts)."""
        scoring = next((n for n, experiment in enumerate(met) if not experiment.rules_b), None)
        base = rankers[0 if scoring is None else scoring]
        labelled = [n for n, ranker in enumerate(rankers) if ranker.variant]
        if scoring is not None and rankers[scoring].variant:
            primary: int | None = scoring
        else:
            primary = labelled[0] if labelled else None
        with_rules = frozenset(
            experiment.experiment_id or 0
            for experiment, ranker in zip(met, rankers, strict=True)
            if experiment.rules_b and ranker.variant == TREATMENT
        )
        others = tuple(
            (met[n].experiment_id or 0, rankers[n].variant or "") for n in labelled if n != primary
        )
        return replace(
            base,
            rules=self.rules_of_b.get(with_rules, base.rules) if with_rules else base.rules,
            variant=None if primary is None else rankers[primary].variant,
            experiment_id=None if primary is None else met[primary].experiment_id,
            layer_variants=others or None,
        )
