"""Loads what the engine needs for a customer (limits, configs) into immutable objects.

Cached per process and kept current by customers.runtime_sync, so rank requests make no database
query in steady state. The sync thread reloads a runtime when its customer changes, and at start
loads those of the customers whose keys were used lately, so a PostgreSQL outage does not find
the cache emptied by the last change, or never filled in this process.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from customers import runtime_sync
from customers.models import ApiKey, Customer
from merchandising.loading import load_rule_set
from ranking.configs import DEFAULT_CONFIGS, ranker_config
from ranking.engine.experiments import (
    CONTROL,
    INTERLEAVED,
    TREATMENT,
    SurfaceExperiment,
    SurfaceExperiments,
    layer_salt,
)
from ranking.engine.records import Interleaving, RankerConfig, RuleStage
from ranking.learning.registry import active_scorers, usable_scorer
from ranking.models import (
    Experiment,
    ExperimentKind,
    ExperimentMethod,
    RankingConfig,
    SignalVersion,
    Surface,
)

logger = logging.getLogger(__name__)


# A process starting up loads the runtimes of the customers whose keys were used this recently
# (by any process): those it is about to serve.
WARM_START_RECENT = timedelta(hours=1)


class RuntimeUnavailable(Exception):
    """The database could not be read for a customer whose runtime is not cached."""


@dataclass(frozen=True)
class CustomerRuntime:
    customer_id: int
    max_candidates: int
    configs: dict[str, RankerConfig]
    experiments: dict[str, SurfaceExperiments] = field(default_factory=dict)
    # A signal version was published: the store must hold one, or it lost its data.
    signals_published: bool = False

    def config_for(self, surface: str, shopper_key: str = "") -> RankerConfig:
        """The surface's live ranker, or the shopper's variants of its running experiments."""
        experiments = self.experiments.get(surface)
        if experiments is not None:
            return experiments.ranker_for(shopper_key, time.time())
        return self.configs[surface]


def load_customer_runtime(customer_id: int) -> CustomerRuntime:
    customer = Customer.objects.only("max_candidates").get(pk=customer_id)
    configs = dict(DEFAULT_CONFIGS)
    for config in RankingConfig.objects.for_customer(customer_id).live():
        configs[config.surface] = ranker_config(
            name=config.name,
            surface=config.surface,
            weights=config.weights,
            personalization_weight=config.personalization_weight,
            exploration_percent=config.exploration_percent,
        )
    active = active_scorers(customer_id)
    for surface, scorer in active.items():
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
        load_experiments(customer_id, configs, active=set(active)),
        signals_published=SignalVersion.objects.for_customer(customer_id).exists(),
    )


def load_experiments(
    customer_id: int, configs: dict[str, RankerConfig], active: Collection[str] = ()
) -> dict[str, SurfaceExperiments]:
    """The running experiments per surface, by layer: B is the live ranker with the
    treatment's scorer (a model's, or a config's blend; same rules), or the live ranker plus the
    rules tagged to the experiment; for an interleaving experiment the live ranker merged with
    B's scorer. An experiment whose B may not serve is left out (logged): everyone gets A.
    `active`: the surfaces a model serves, where a config's blend serves nobody
    (docs/experiments.md, section 1)."""
    by_surface: dict[str, dict[str, list[SurfaceExperiment]]] = {}
    running = Experiment.objects.for_customer(customer_id).filter(enabled=True)
    for experiment in running.select_related("treatment_model", "treatment_config").order_by(
        "layer", "layer_slot", "pk"
    ):
        loaded = _surface_experiment(experiment, configs[experiment.surface], active)
        if loaded is not None:
            layers = by_surface.setdefault(experiment.surface, {})
            layers.setdefault(experiment.layer, []).append(loaded)
    return {
        surface: SurfaceExperiments(
            live=configs[surface],
            layers=tuple(
                (layer_salt(customer_id, surface, layer), tuple(experiments))
                for layer, experiments in sorted(layers.items())
            ),
            rules_of_b=_rules_of_b(customer_id, surface, layers),
        )
        for surface, layers in by_surface.items()
    }


def _surface_experiment(
    experiment: Experiment, live: RankerConfig, active: Collection[str]
) -> SurfaceExperiment | None:
    treated = _treated(experiment, live, experiment.surface in active)
    if treated is None:
        logger.error("experiment %s: its B may not serve; not running it", experiment)
        return None
    scorer = treated.scorer
    if experiment.method == ExperimentMethod.INTERLEAVE:
        # The shoppers outside the share get the live ranker in no variant; those inside,
        # the live ranker's and B's orders merged, with no exploration swap.
        control = live
        treatment = replace(
            live,
            variant=INTERLEAVED,
            experiment_id=experiment.pk,
            interleaving=Interleaving(salt=experiment.salt, treatment=scorer),
            exploration=0.0,
        )
    else:
        control = replace(live, variant=CONTROL, experiment_id=experiment.pk)
        treatment = replace(treated, variant=TREATMENT, experiment_id=experiment.pk)
    return SurfaceExperiment(
        name=experiment.name,
        salt=experiment.salt,
        treatment_percent=experiment.treatment_percent,
        control=control,
        treatment=treatment,
        starts=experiment.starts_at.timestamp() if experiment.starts_at else None,
        ends=experiment.ends_at.timestamp() if experiment.ends_at else None,
        live=live,
        experiment_id=experiment.pk,
        slot=experiment.layer_slot or 0,
        traffic_percent=experiment.traffic_percent,
        rules_b=not experiment.changes_scorer,
    )


def _rules_of_b(
    customer_id: int, surface: str, layers: dict[str, list[SurfaceExperiment]]
) -> dict[frozenset[int], RuleStage | None]:
    """The rules of every set of experiments of rules a shopper can be in the B of together
    (at most one per layer), compiled now so that no request waits on the database."""
    choices = [
        [None, *(e.experiment_id for e in experiments if e.rules_b)]
        for experiments in layers.values()
    ]
    rules_of_b: dict[frozenset[int], RuleStage | None] = {}
    for combination in itertools.product(*choices):
        ids = frozenset(pk for pk in combination if pk is not None)
        if ids:
            rules = load_rule_set(customer_id, experiment_ids=ids).for_surface(surface)
            rules_of_b[ids] = rules if rules.rules else None
    return rules_of_b


def _treated(experiment: Experiment, live: RankerConfig, model_serves: bool) -> RankerConfig | None:
    """The live ranker changed as B changes it; None when B may not serve."""
    if experiment.kind == ExperimentKind.CONFIG:
        config = experiment.treatment_config
        if config is None or model_serves:
            return None
        blend = ranker_config(
            name=config.name,
            surface=config.surface,
            weights=config.weights,
            personalization_weight=config.personalization_weight,
        )
        # Only the blend differs: B keeps the live config's exploration, so swaps weigh alike.
        return replace(live, name=blend.name, scorer=blend.scorer)
    if experiment.kind == ExperimentKind.RULES:
        rules = load_rule_set(experiment.customer_id, experiment_ids={experiment.pk})
        surface_rules = rules.for_surface(experiment.surface)
        return replace(live, rules=surface_rules if surface_rules.rules else None)
    model = experiment.treatment_model
    scorer = usable_scorer(model) if model is not None else None
    return replace(live, scorer=scorer) if scorer is not None else None


_runtimes: runtime_sync.GenerationCache[int, CustomerRuntime] = runtime_sync.GenerationCache(
    "customer_runtime"
)


def cached_customer_runtime(customer_id: int) -> CustomerRuntime | None:
    """The customer's runtime if this process holds it, without asking the database."""
    entry = _runtimes.get(customer_id)
    return None if entry is None else entry.value


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


def runtimes_load(
    customer_ids: Collection[int],
) -> list[tuple[int, runtime_sync.CacheEntry[CustomerRuntime]]]:
    """The current runtimes of these customers, for the sync thread to cache. A database error
    stops it (the thread tries again); a customer that fails otherwise is left to its next
    request, which reports the error as before."""
    loaded = []
    for customer_id in sorted(customer_ids):
        try:
            generation = runtime_sync.current_generation(customer_id)
            runtime = load_customer_runtime(customer_id)
        except Customer.DoesNotExist:
            continue
        except DatabaseError:
            raise
        except Exception:
            logger.exception("runtime of customer %s not loaded ahead", customer_id)
            continue
        loaded.append((customer_id, runtime_sync.CacheEntry(customer_id, generation, runtime)))
    return loaded


def customers_ranking_lately() -> set[int]:
    """Active customers whose keys some process used within WARM_START_RECENT."""
    since = timezone.now() - WARM_START_RECENT
    return set(
        ApiKey.objects.unscoped_all_customers()
        .usable()
        .filter(last_used_at__gte=since)
        .values_list("customer_id", flat=True)
        .distinct()
    )


runtime_sync.keep_warm(_runtimes, runtimes_load, start_with=customers_ranking_lately)
