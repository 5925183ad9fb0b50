"""A/B test against interleaving on the shopper simulator (demo/simulation.py), in process: how
many sessions each needs to tell two rankers apart. Used by bench/interleaving.py and
tests/ranking/test_interleaving.py.

Each session's pages (A's, B's, and A and B team-drafted) are laid out once with the
simulator's click and purchase probabilities per position (the model `shopper_events` samples
from); a simulated experiment then draws who clicks and buys for a subset of shoppers, vectorised
over all their sessions, and reads it with the readout's own statistics
(ranking.experiment_stats: `ratio_estimate`/`relative_lift` for A/B, `preference` for
interleaving).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from demo.simulation import (
    BUY_RATE,
    CART_RATE,
    PAGE_SIZE,
    POSITION_BIAS_ETA,
    Ranker,
    Session,
    ShopWorld,
    item_revenue_per_look,
    simulated_sessions,
)
from ranking.engine.interleaving import interleaving_seed, team_draft
from ranking.experiment_stats import (
    CONFIDENCE,
    Lift,
    Preference,
    preference,
    ratio_estimate,
    relative_lift,
)


def popularity_ranker(world: ShopWorld) -> Ranker:
    """Each item's true revenue per look, averaged over the shoppers who come to its category:
    the best order that knows the items but not the shopper."""
    score = item_revenue_per_look(world)
    return lambda session: session.candidates[np.argsort(-score[session.candidates], kind="stable")]


def noisy_ranker(world: ShopWorld, noise: float, seed: int = 3) -> Ranker:
    """Popularity misjudged: each item's score times a fixed log-normal error of sigma `noise`."""
    rng = np.random.default_rng(seed)
    score = item_revenue_per_look(world) * np.exp(rng.normal(0.0, noise, len(world.item_ids)))
    return lambda session: session.candidates[np.argsort(-score[session.candidates], kind="stable")]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Pages:
    """One page layout per session (rows): per position the chance of a click, of a purchase
    once clicked, and the price; `team_b` for the interleaved page."""

    click: np.ndarray  # sessions x PAGE_SIZE, float32
    buy: np.ndarray
    price: np.ndarray
    team_b: np.ndarray | None = None  # bool, interleaved pages only


@dataclass(frozen=True)
class Traffic:
    """A pool of simulated sessions with A's, B's and the interleaved page of each."""

    shopper: np.ndarray  # per session, the shopper's index
    a: Pages
    b: Pages
    interleaved: Pages

    @property
    def sessions(self) -> int:
        return len(self.shopper)


def _page(
    world: ShopWorld, session: Session, shown: np.ndarray, price_z: np.ndarray
) -> tuple[np.ndarray, ...]:
    """ShopWorld.utility with the price term computed once per world, not per page."""
    utility = (
        world.item_quality[shown]
        + 1.5 * world.pref_category[session.shopper, world.item_category[shown]]
        + 1.0 * world.pref_brand[session.shopper, world.item_brand[shown]]
        - world.price_sensitivity[session.shopper] * price_z[shown]
    )
    seen = 1.0 / np.arange(1, len(shown) + 1) ** POSITION_BIAS_ETA
    click = seen * _sigmoid(utility - 2.0)
    buy = world.item_in_stock[shown] * CART_RATE * _sigmoid(utility - 1.0) * BUY_RATE
    return click, buy, np.round(world.item_price[shown], 2)


def traffic(
    world: ShopWorld, ranker_a: Ranker, ranker_b: Ranker, *, sessions: int, seed: int = 11
) -> Traffic:
    """Lay out `sessions` simulated sessions (a day of the shop's traffic) three ways."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    size = (sessions, PAGE_SIZE)
    layouts = {name: [np.zeros(size, np.float32) for _ in range(3)] for name in ("a", "b", "i")}
    team_b = np.zeros(size, dtype=bool)
    shopper = np.zeros(sessions, dtype=np.int64)
    log_price = np.log(world.item_price)
    price_z = (log_price - log_price.mean()) / log_price.std()
    generated = simulated_sessions(
        world, sessions=sessions, start=start, end=start + timedelta(days=1), seed=seed
    )
    for row, (request_id, session, _) in enumerate(generated):
        shopper[row] = session.shopper
        order_a, order_b = ranker_a(session), ranker_b(session)
        index = {int(item): n for n, item in enumerate(session.candidates)}
        merged, picked_by_b = team_draft(
            np.array([index[int(item)] for item in order_a]),
            np.array([index[int(item)] for item in order_b]),
            interleaving_seed("simulation", request_id),
        )
        pages = {
            "a": order_a[:PAGE_SIZE],
            "b": order_b[:PAGE_SIZE],
            "i": session.candidates[merged[:PAGE_SIZE]],
        }
        for name, shown in pages.items():
            for array, values in zip(
                layouts[name], _page(world, session, shown, price_z), strict=True
            ):
                array[row, : len(shown)] = values
        team_b[row, : len(merged[:PAGE_SIZE])] = picked_by_b[:PAGE_SIZE]
    return Traffic(
        shopper=shopper,
        a=Pages(*layouts["a"]),
        b=Pages(*layouts["b"]),
        interleaved=Pages(
            click=layouts["i"][0], buy=layouts["i"][1], price=layouts["i"][2], team_b=team_b
        ),
    )


def _draw(pages: Pages, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Clicks and purchase revenue per position of the given sessions, drawn."""
    clicked = rng.random((len(rows), PAGE_SIZE), dtype=np.float32) < pages.click[rows]
    bought = clicked & (rng.random((len(rows), PAGE_SIZE), dtype=np.float32) < pages.buy[rows])
    return clicked, np.where(bought, pages.price[rows], 0.0)


def shopper_subset(pool: Traffic, sessions: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of the pool: whole shoppers, in a random order, until `sessions` sessions."""
    shoppers = rng.permutation(np.unique(pool.shopper))
    per_shopper = np.bincount(pool.shopper)
    cumulative = np.cumsum(per_shopper[shoppers])
    chosen = shoppers[: int(np.searchsorted(cumulative, sessions)) + 1]
    return np.flatnonzero(np.isin(pool.shopper, chosen))


@dataclass(frozen=True)
class AbReading:
    revenue: Lift | None  # revenue per session, B against A
    clicks: Lift | None  # clicks per session


def ab_test(
    pool: Traffic, rows: np.ndarray, rng: np.random.Generator, confidence: float = CONFIDENCE
) -> AbReading:
    """Half the shoppers (at random) see A, half B; per-shopper sums, the readout's lifts."""
    shoppers, unit = np.unique(pool.shopper[rows], return_inverse=True)
    in_b = rng.random(len(shoppers)) < 0.5
    session_b = in_b[unit]
    clicks = np.zeros(len(rows))
    revenue = np.zeros(len(rows))
    for pages, mask in ((pool.a, ~session_b), (pool.b, session_b)):
        clicked, earned = _draw(pages, rows[mask], rng)
        clicks[mask] = clicked.sum(axis=1)
        revenue[mask] = earned.sum(axis=1)
    lifts = {}
    for name, outcome in (("revenue", revenue), ("clicks", clicks)):
        per_arm = []
        for arm in (~in_b, in_b):
            sums = np.bincount(unit, weights=outcome, minlength=len(shoppers))[arm]
            searches = np.bincount(unit, minlength=len(shoppers))[arm].astype(np.float64)
            per_arm.append(ratio_estimate(sums, searches))
        lifts[name] = relative_lift(per_arm[0], per_arm[1], confidence)
    return AbReading(revenue=lifts["revenue"], clicks=lifts["clicks"])


@dataclass(frozen=True)
class InterleavingReading:
    revenue: Preference
    clicks: Preference
    wins: dict[str, tuple[np.ndarray, np.ndarray]]  # per credit: per-shopper wins of A, of B


def interleaving_test(
    pool: Traffic, rows: np.ndarray, rng: np.random.Generator, confidence: float = CONFIDENCE
) -> InterleavingReading:
    """Every session interleaved; each is won by the team whose items got more clicks (or
    purchase revenue); per-shopper wins, the readout's preference."""
    shoppers, unit = np.unique(pool.shopper[rows], return_inverse=True)
    clicked, earned = _draw(pool.interleaved, rows, rng)
    team_b = pool.interleaved.team_b[rows]  # type: ignore[index]
    found = {}
    wins = {}
    for name, credit in (("clicks", clicked.astype(np.float64)), ("revenue", earned)):
        for_b = (credit * team_b).sum(axis=1)
        for_a = (credit * ~team_b).sum(axis=1)
        won_a = np.bincount(unit, weights=for_a > for_b, minlength=len(shoppers))
        won_b = np.bincount(unit, weights=for_b > for_a, minlength=len(shoppers))
        wins[name] = (won_a, won_b)
        found[name] = preference(won_a, won_b, confidence)
    return InterleavingReading(revenue=found["revenue"], clicks=found["clicks"], wins=wins)


def true_outcomes(pool: Traffic) -> dict[str, dict[str, float]]:
    """Expected clicks and revenue per session of A's and B's pages (no sampling noise)."""
    return {
        name: {
            "clicks": float(pages.click.sum(axis=1).mean()),
            "revenue": float((pages.click * pages.buy * pages.price).sum(axis=1).mean()),
        }
        for name, pages in (("A", pool.a), ("B", pool.b))
    }


def sessions_for(shoppers_needed: float, pool: Traffic) -> int:
    """Shoppers needed as sessions, at the pool's sessions per shopper."""
    per_shopper = pool.sessions / len(np.unique(pool.shopper))
    return math.ceil(shoppers_needed * per_shopper)
