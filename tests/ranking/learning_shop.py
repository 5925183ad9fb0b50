"""A simulated shop whose traffic went through the engine: the rank log and outcomes the learning
tests train on, with the simulator's latent truth for every logged row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.test import override_settings
from django.utils import timezone

from catalog.contracts import CatalogItemIn
from catalog.services import items_upsert
from customers.models import Customer
from customers.services import customer_create
from demo.simulation import ShopWorld, build_world, simulate
from demo.traffic import events_send, simulate_ranked_traffic
from ranking.learning.artifacts import artifact_save
from ranking.learning.dataset import TrainingSet, logged_requests, outcomes_load, training_set_build
from ranking.learning.propensity import PositionBias
from ranking.learning.training import TrainingParams, fit_lambdamart, fit_linear
from ranking.models import RankingModel, RankLog
from ranking.services import signals_refresh
from ranking.signals import backend as store_backend
from ranking.signals.schema import FEATURE_INDEX, FEATURES, SCHEMA_HASH


@dataclass(frozen=True)
class SimulatedLog:
    world: ShopWorld
    data: TrainingSet
    true_utility: np.ndarray  # per row of data: the shopper's latent utility of the item
    surfaces: np.ndarray  # per request of data

    def surface_data(self, surface: str) -> TrainingSet:
        """The requests of one surface only."""
        from ranking.learning.training import _select_groups

        return _select_groups(self.data, self.surfaces == surface)


def build_shop(
    customer: Customer,
    world: ShopWorld,
    *,
    history_sessions: int,
    ranked_sessions: int,
    days: int = 20,
    seed: int = 3,
) -> None:
    """History shown in the retriever's order, signals, then traffic ranked by the engine."""
    catalog = [CatalogItemIn.model_validate(row, strict=False) for row in world.catalog()]
    items_upsert(customer_id=customer.pk, items=catalog)
    end = timezone.now() - timedelta(hours=1)
    middle = end - timedelta(days=days // 2)
    history: list[dict[str, Any]] = []
    for events in simulate(
        world, sessions=history_sessions, start=end - timedelta(days=days), end=middle, seed=seed
    ):
        history.extend(events)
    events_send(customer.pk, history)
    signals_refresh(customer_id=customer.pk)
    simulate_ranked_traffic(
        customer_id=customer.pk,
        world=world,
        sessions=ranked_sessions,
        start=middle,
        end=end,
        seed=seed + 1000,
    )


def simulated_log(
    *, items: int, shoppers: int, history_sessions: int, ranked_sessions: int
) -> SimulatedLog:
    """Build a shop on the in-process signal store, read back its log, delete the shop."""
    with override_settings(SIGNAL_STORE={"BACKEND": "memory", "URL": "", "NAMESPACE": "ltr"}):
        store_backend.reset_signal_store()
        customer = customer_create(name="Learning shop", slug="learning-shop")
        try:
            world = build_world(n_items=items, n_shoppers=shoppers, seed=5)
            build_shop(
                customer,
                world,
                history_sessions=history_sessions,
                ranked_sessions=ranked_sessions,
            )
            start, end = timezone.now() - timedelta(days=60), timezone.now()
            requests = list(
                logged_requests(customer_id=customer.pk, surface="search", start=start, end=end)
            )
            requests += list(
                logged_requests(customer_id=customer.pk, surface="browse", start=start, end=end)
            )
            requests.sort(key=lambda request: request.created_at)
            data = training_set_build(
                requests, outcomes_load(customer_id=customer.pk, start=start, end=end)
            )
            shoppers_by_key = {f"u:{s}": n for n, s in enumerate(world.shopper_ids)}
            item_index = {item_id: n for n, item_id in enumerate(world.item_ids)}
            keys = dict(
                RankLog.objects.filter(customer=customer).values_list("request_id", "shopper_key")
            )
            utility = np.concatenate(
                [
                    world.utility(
                        shoppers_by_key[keys[request.request_id]],
                        np.array([item_index[i] for i in request.item_ids]),
                    )
                    for request in requests
                ]
            )
        finally:
            customer.delete()
            store_backend.reset_signal_store()
    surfaces = np.array([request.surface for request in requests])
    return SimulatedLog(world, data, utility, surfaces)


GOOD = {
    "model": {"ndcg@10": 0.40, "revenue_ndcg@10": 0.40},
    "baseline": {"ndcg@10": 0.30, "revenue_ndcg@10": 0.30},
    "active": None,
    "active_model_id": None,
}


def synthetic_set(seed: int = 0) -> TrainingSet:
    """40 requests of 10 items whose label follows relevance: enough to fit a small model."""
    rng = np.random.default_rng(seed)
    rows = 400
    features = rng.normal(size=(rows, len(FEATURES))).astype(np.float32)
    labels = (features[:, FEATURE_INDEX["relevance"]] > 0.8).astype(np.int32)
    return TrainingSet(
        features=features,
        labels=labels,
        revenue=labels * 20.0,
        positions=np.tile(np.arange(1, 11), 40).astype(np.int32),
        item_codes=np.arange(rows),
        group_starts=np.arange(0, rows, 10),
        request_times=np.arange(40).astype("datetime64[s]").astype("datetime64[us]"),
    )


def register(
    customer: Customer,
    *,
    surface: str = "search",
    algorithm: str = "lambdamart",
    metrics: dict[str, Any] | None = None,
    schema_hash: str = SCHEMA_HASH,
) -> RankingModel:
    """A trained candidate in the registry, as training leaves it."""
    data = synthetic_set()
    params = TrainingParams(algorithm=algorithm, rounds=5, min_data_in_leaf=5)
    bias = PositionBias(np.ones(10), 0.0, 0)
    if algorithm == "lambdamart":
        fitted = fit_lambdamart(data, bias, params)
    else:
        fitted = fit_linear(data, bias, params, customer.pk)
    version = RankingModel.objects.filter(customer=customer, surface=surface).count() + 1
    path, digest = artifact_save(
        customer_id=customer.pk,
        surface=surface,
        algorithm=algorithm,
        version=version,
        content=fitted.artifact,
    )
    window = "2026-11-01T00:00:00Z"
    return RankingModel.objects.create(
        customer=customer,
        surface=surface,
        algorithm=algorithm,
        version=version,
        schema_hash=schema_hash,
        train_from=window,
        train_until=window,
        holdout_from=window,
        metrics=metrics or GOOD,
        artifact_path=path,
        artifact_sha256=digest,
    )
