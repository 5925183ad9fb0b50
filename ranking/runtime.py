"""Loads what the engine needs for a customer (limits, configs) into immutable objects.

Cached per process and kept current by customers.runtime_sync, so rank requests make no database
query in steady state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
from django.db import DatabaseError

from customers import runtime_sync
from customers.models import Customer
from merchandising.loading import load_rule_set
from ranking.configs import DEFAULT_WEIGHTS
from ranking.engine.experiments import CONTROL, TREATMENT, SurfaceExperiment
from ranking.engine.records import RankerConfig
from ranking.engine.scoring import BlendScorer
from ranking.learning.registry import active_scorers, usable_scorer
from ranking.models import Experiment, RankingConfig, SignalVersion, Surface
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SHOPPER_SLICE

logger = logging.getLogger(__name__)


class RuntimeUnavailable(Exception):
    """The database could not be read for a customer whose runtime is not cached."""


@dataclass(frozen=True)
class CustomerRuntime:
    customer_id: int
    max_candidates: int
    configs: dict[str, RankerConfig]
    experiments: dict[str, SurfaceExperiment] = field(default_factory=dict)
    # A signal version was published: the store must hold one, or it lost its data.
    signals_published: bool = False

    def config_for(self, surface: str, shopper_key: str = "") -> RankerConfig:
        """The surface's live ranker, or the shopper's variant of its running experiment."""
        experiment = self.experiments.get(surface)
        if experiment is not None:
            return experiment.ranker_for(shopper_key)
        return self.configs[surface]


def ranker_config(
    *,
    name: str,
    surface: str,
    weights: dict[str, float],
    personalization_weight: float,
    exploration_percent: float = 0.0,
) -> RankerConfig:
    vector = np.zeros(len(FEATURES))
    for feature, weight in weights.items():
        vector[FEATURE_INDEX[feature]] = weight
    vector[SHOPPER_SLICE] *= personalization_weight
    vector.setflags(write=False)
    return RankerConfig(
        name=name,
        surface=surface,
        scorer=BlendScorer(vector),
        exploration=exploration_percent / 100.0,
    )


DEFAULT_CONFIGS = {
    surface: ranker_config(
        name="default", surface=surface, weights=weights, personalization_weight=1.0
    )
    for surface, weights in DEFAULT_WEIGHTS.items()
}


def load_customer_runtime(customer_id: int) -> CustomerRuntime:
    customer = Customer.objects.only("max_candidates").get(pk=customer_id)
    configs = dict(DEFAULT_CONFIGS)
    for config in RankingConfig.objects.filter(customer_id=customer_id):
        configs[config.surface] = ranker_config(
            name=config.name,
            surface=config.surface,
            weights=config.weights,
            personalization_weight=config.personalization_weight,
            exploration_percent=config.exploration_percent,
        )
    for surface, scorer in active_scorers(customer_id).items():
        configs[surface] = replace(configs[surface], scorer=scorer)
    assert set(configs) == set(Surface.values)
    rules = load_rule_set(customer_id)
    configs = {
        surface: replace(config, rules=rules.for_surface(surface) if rules.rules else None)
        for surface, config in configs.items()
    }
    return CustomerRuntime(
        customer_id,
        customer.max_candidates,
        configs,
        load_experiments(customer_id, configs),
        signals_published=SignalVersion.objects.filter(customer_id=customer_id).exists(),
    )


def load_experiments(
    customer_id: int, configs: dict[str, RankerConfig]
) -> dict[str, SurfaceExperiment]:
    """The running experiments: B is the live ranker with the treatment model's scorer (same
    rules). An experiment whose model may not serve is left out (logged): everyone gets A."""
    experiments = {}
    running = Experiment.objects.filter(customer_id=customer_id, enabled=True)
    for experiment in running.select_related("treatment_model"):
        scorer = usable_scorer(experiment.treatment_model)
        if scorer is None:
            logger.error("experiment %s: its model may not serve; not running it", experiment)
            continue
        live = configs[experiment.surface]
        experiments[experiment.surface] = SurfaceExperiment(
            name=experiment.name,
            salt=experiment.salt,
            treatment_percent=experiment.treatment_percent,
            control=replace(live, variant=CONTROL),
            treatment=replace(live, scorer=scorer, variant=TREATMENT),
        )
    return experiments


_runtimes: runtime_sync.GenerationCache[int, CustomerRuntime] = runtime_sync.GenerationCache(
    "customer_runtime"
)


def customer_runtime(customer_id: int) -> CustomerRuntime:
    entry = _runtimes.get(customer_id)
    if entry is not None:
        return entry.value
    try:
        generation = runtime_sync.current_generation(customer_id)
        runtime = load_customer_runtime(customer_id)
    except DatabaseError as exc:
        raise RuntimeUnavailable(str(exc)) from exc
    _runtimes.put(customer_id, runtime_sync.CacheEntry(customer_id, generation, runtime))
    return runtime
