"""ranking's reads for its doors: the admin, the management commands and the Celery entry
points read through these (tests/test_tenancy.py checks it). Each takes its customer
explicitly; a read across customers says so in its name (`unscoped_*`).

The computations keep their own queries, since the query is the computation: a readout's
attribution (experiments.py, interleaving.py), the training data (learning/dataset.py,
learning/replay.py), the refresh's aggregates (signals/refresh.py), the runtime's loader
(runtime.py), the registry's guarded activation (learning/registry.py) and the metrics'
scrape-time collectors (metrics.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from customers.models import Customer
from events.models import Event
from ranking.models import (
    Experiment,
    ModelStatus,
    RankingConfig,
    RankingModel,
    RankLog,
    SignalVersion,
)


def live_config(*, customer_id: int, surface: str) -> RankingConfig | None:
    """The surface's live ranking config (None: the built-in default serves)."""
    return RankingConfig.objects.for_customer(customer_id).live().filter(surface=surface).first()


def active_model(*, customer_id: int, surface: str) -> RankingModel | None:
    return RankingModel.objects.active().for_customer(customer_id).filter(surface=surface).first()


def model_version(*, customer_id: int, surface: str, version: int) -> RankingModel | None:
    return (
        RankingModel.objects.for_customer(customer_id)
        .filter(surface=surface, version=version)
        .first()
    )


def models_to_try(*, customers: Iterable[int] | QuerySet[Any]) -> QuerySet[RankingModel]:
    """The models an experiment's B may be: those of these customers that do not serve."""
    return RankingModel.objects.for_customers(customers).exclude(status=ModelStatus.ACTIVE)


def configs_to_try(*, customers: Iterable[int] | QuerySet[Any]) -> QuerySet[RankingConfig]:
    """The configs an experiment's B may be: those of these customers that are not live."""
    return RankingConfig.objects.for_customers(customers).filter(live=False)


def requests_per_surface(*, customer_id: int, since: datetime) -> dict[str, int]:
    """The customer's logged rank requests since then, per surface."""
    counts = (
        RankLog.objects.for_customer(customer_id)
        .filter(created_at__gte=since)
        .values("surface")
        .annotate(requests=Count("id"))
        .order_by()
    )
    return {row["surface"]: row["requests"] for row in counts}


def unscoped_customers_without_signals() -> list[int]:
    """The active customers whose first events arrived and who have no signal version yet."""
    return list(
        Customer.objects.active()
        .filter(Exists(Event.objects.filter(customer_id=OuterRef("pk"))))
        .exclude(Exists(SignalVersion.objects.filter(customer_id=OuterRef("pk"))))
        .values_list("id", flat=True)
    )


def unscoped_experiment(*, experiment_id: int) -> Experiment | None:
    """One experiment by id, with its customer (a Celery task's argument: any customer's)."""
    return (
        Experiment.objects.unscoped_all_customers()
        .filter(pk=experiment_id)
        .select_related("customer")
        .first()
    )


def unscoped_experiments_to_check(*, ended_since: datetime) -> list[int]:
    """Every active customer's running experiments, and those that stopped since then."""
    return list(
        Experiment.objects.unscoped_all_customers()
        .filter(customer__is_active=True)
        .filter(Q(enabled=True) | Q(ended_at__gte=ended_since))
        .values_list("id", flat=True)
    )
