"""Loads what the engine needs for a customer (limits, configs) into immutable objects.

Cached per process and kept current by customers.runtime_sync, so rank requests make no database
query in steady state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from django.db import DatabaseError

from customers import runtime_sync
from customers.models import Customer
from merchandising.loading import load_rule_set
from ranking.configs import DEFAULT_WEIGHTS
from ranking.engine.records import RankerConfig
from ranking.engine.scoring import BlendScorer
from ranking.learning.registry import active_scorers
from ranking.models import RankingConfig, Surface
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SHOPPER_SLICE


class RuntimeUnavailable(Exception):
    """The database could not be read for a customer whose runtime is not cached."""


@dataclass(frozen=True)
class CustomerRuntime:
    customer_id: int
    max_candidates: int
    configs: dict[str, RankerConfig]

    def config_for(self, surface: str) -> RankerConfig:
        return self.configs[surface]


def ranker_config(
    *, name: str, surface: str, weights: dict[str, float], personalization_weight: float
) -> RankerConfig:
    vector = np.zeros(len(FEATURES))
    for feature, weight in weights.items():
        vector[FEATURE_INDEX[feature]] = weight
    vector[SHOPPER_SLICE] *= personalization_weight
    vector.setflags(write=False)
    return RankerConfig(name=name, surface=surface, scorer=BlendScorer(vector))


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
        )
    for surface, scorer in active_scorers(customer_id).items():
        configs[surface] = replace(configs[surface], scorer=scorer)
    assert set(configs) == set(Surface.values)
    rules = load_rule_set(customer_id)
    configs = {
        surface: replace(config, rules=rules.for_surface(surface) if rules.rules else None)
        for surface, config in configs.items()
    }
    return CustomerRuntime(customer_id, customer.max_candidates, configs)


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
