"""What the simulator-only experiments beside this file share: the traffic they learn from and
the scoring of their orders on fresh sessions (docs/quality.md, "Tried and not kept").

- `pages`: 20,000 sessions over five days (30% followed by another request of the visit), each
  shown the page of its candidates ordered by the scores `served()` gives, asked again every
  2,000 sessions (like the steady scenario's refreshes); with the page, the looks it gets
  (position 1/k) and the shopper's events on it.
- `score`: 2,000 fresh sessions ordered by each ranker (ties by item) and by the revenue oracle;
  per ranker the mean expected revenue per session of its page and its NDCG@10 against the true
  click probabilities, and both as ratios to the popularity order's (the ranker "popularity").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from demo.quality import _ndcg10
from demo.simulation import (
    PAGE_SIZE,
    Session,
    ShopWorld,
    click_probability,
    expected_outcomes,
    expected_revenue_per_look,
    shopper_events,
    simulated_sessions,
)

SESSIONS = 20_000
REFRESH_EVERY = 2000
Ranker = Callable[[Session], np.ndarray]


@dataclass(frozen=True)
class Page:
    session: Session
    shown: np.ndarray  # item indexes, best first
    look: np.ndarray  # how likely each position is looked at (1/k)
    served: np.ndarray  # the scores the page was ordered by (every item)
    events: list[dict[str, Any]]


def pages(world: ShopWorld, seed: int, served: Callable[[], np.ndarray]) -> Iterator[Page]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    stream = simulated_sessions(
        world,
        sessions=SESSIONS,
        start=start,
        end=start + timedelta(days=5),
        seed=seed + 10,
        follow_ups=0.3,
    )
    for number, (request_id, session, rng) in enumerate(stream):
        if number % REFRESH_EVERY == 0:
            scores = served()
        candidates = session.candidates
        shown = candidates[np.lexsort((candidates, -scores[candidates]))][:PAGE_SIZE]
        events = shopper_events(world, session, shown, rng, request_id)
        yield Page(session, shown, 1.0 / np.arange(1, len(shown) + 1), scores, events)


def standard(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-12)


def score(world: ShopWorld, seed: int, rankers: dict[str, Ranker]) -> dict[str, dict[str, float]]:
    """Per ranker (and "revenue oracle"): revenue and ndcg, means over the fresh sessions, and
    revenue_ratio and ndcg_ratio to the "popularity" ranker's."""
    revenue: dict[str, list[float]] = {name: [] for name in [*rankers, "revenue oracle"]}
    ndcg: dict[str, list[float]] = {name: [] for name in revenue}
    later = datetime(2026, 12, 1, tzinfo=UTC)
    fresh = simulated_sessions(
        world, sessions=2000, start=later, end=later + timedelta(seconds=1), seed=seed + 999
    )
    for _, session, _ in fresh:
        candidates = session.candidates
        gains = click_probability(world, session, candidates)
        gain_of = dict(zip(candidates.tolist(), gains.tolist(), strict=True))
        orders = {
            name: candidates[np.lexsort((candidates, -ranker(session)[candidates]))]
            for name, ranker in rankers.items()
        }
        best = expected_revenue_per_look(world, session, candidates)
        orders["revenue oracle"] = candidates[np.argsort(-best, kind="stable")]
        for name, order in orders.items():
            revenue[name].append(expected_outcomes(world, session, order[:PAGE_SIZE])["revenue"])
            ndcg[name].append(_ndcg10(gains, np.array([gain_of[i] for i in order])))
    base_revenue, base_ndcg = np.mean(revenue["popularity"]), np.mean(ndcg["popularity"])
    return {
        name: {
            "revenue": float(np.mean(revenue[name])),
            "ndcg": float(np.mean(ndcg[name])),
            "revenue_ratio": float(np.mean(revenue[name]) / base_revenue),
            "ndcg_ratio": float(np.mean(ndcg[name]) / base_ndcg),
        }
        for name in revenue
    }


def report(scored: dict[str, dict[str, float]], width: int = 40) -> None:
    """A line per ranker: revenue per session and NDCG@10, each with its ratio to popularity's."""
    for name, s in scored.items():
        print(
            f"  {name:{width}s} {s['revenue']:7.3f} {s['revenue_ratio']:.3f}x   "
            f"{s['ndcg']:.3f} {s['ndcg_ratio']:.3f}x"
        )
