"""Simulated traffic through the real engine: each simulated session is ranked by the customer's
current ranker, logged like an API request, and answered by the simulated shopper.

This is how the demo and the learning tests get a rank log whose features are exactly those the
engine served, with clicks that follow the simulator's latent tastes and position bias.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from demo.simulation import (
    PAGE_SIZE,
    POSITION_BIAS_ETA,
    ShopWorld,
    shopper_events,
    simulated_sessions,
)
from events.contracts import EventsIngestIn
from events.queries import normalise_query, shopper_key
from events.services import events_ingest
from ranking.engine.pipeline import rank
from ranking.engine.records import RankInput
from ranking.learning import rank_log
from ranking.runtime import customer_runtime
from ranking.signals.backend import signal_store

EVENT_BATCH = 1000


def events_send(customer_id: int, events: list[dict[str, Any]]) -> None:
    """Ingest raw events as the events API would, in API-sized batches."""
    for start in range(0, len(events), EVENT_BATCH):
        body = EventsIngestIn.model_validate_json(
            orjson.dumps({"events": events[start : start + EVENT_BATCH]})
        )
        events_ingest(customer_id=customer_id, events=body.events)


def simulate_ranked_traffic(
    *,
    customer_id: int,
    world: ShopWorld,
    sessions: int,
    start: datetime,
    end: datetime,
    seed: int,
    eta: float = POSITION_BIAS_ETA,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Rank `sessions` simulated sessions with the engine, log them, ingest what shoppers did.
    Returns event counts by type."""
    store = signal_store()
    counts = {"impression": 0, "click": 0, "add_to_cart": 0, "purchase": 0}
    batch: list[dict[str, Any]] = []
    simulated = simulated_sessions(world, sessions=sessions, start=start, end=end, seed=seed)
    for done, (request_id, session, rng) in enumerate(simulated, 1):
        request = RankInput(
            surface=session.surface,
            query=normalise_query(session.query),
            category=world.categories[session.category].path if session.surface == "browse" else "",
            shopper_key=shopper_key(world.shopper_ids[session.shopper], None),
            item_ids=tuple(world.item_ids[i] for i in session.candidates),
            relevance=np.round(session.relevance, 4),
            limit=PAGE_SIZE,
            at=session.at,
        )
        config = customer_runtime(customer_id).config_for(session.surface)
        outcome = rank(request, config, store, customer_id)
        rank_log.record_outcome(
            customer_id=customer_id,
            request_id=request_id,
            request=request,
            outcome=outcome,
            at=session.at,
        )
        events = shopper_events(
            world, session, session.candidates[outcome.order], rng, request_id, eta=eta
        )
        for event in events:
            counts[event["type"]] += 1
        batch.extend(events)
        if len(batch) >= EVENT_BATCH:
            rank_log.flush()
            events_send(customer_id, batch)
            batch = []
            if on_batch is not None:
                on_batch(done)
    rank_log.flush()
    if batch:
        events_send(customer_id, batch)
    return counts
