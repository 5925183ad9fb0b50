"""How much could a shopper's own history add on the shopper simulator, at best? An experiment on
the simulator alone (no service, no API; seconds instead of `make quality`'s minutes), for
docs/quality.md ("Tried and not kept").

20,000 sessions are shown pages ordered by a smoothed click rate (refreshed every 2,000 sessions,
like the steady scenario); the run counts, per item, clicks over looks (position 1/k) and, per
shopper and brand, the shopper's clicks against the clicks the items they were shown would have
got from an average shopper (their "brand lift", an exposure-corrected affinity the service does
not have). Then 2,000 fresh sessions are scored (NDCG@10 against the true click probabilities,
expected revenue per session, both against the popularity order) for: the click rate alone; with
the log price (the blend's price weight); with the service's kind of brand affinity (the brand's
share of the shopper's action weight); with the brand lift; and the oracles.

    .venv/bin/python bench/experiments/shopper_signals.py [seed]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from demo.quality import _ndcg10
from demo.simulation import (
    PAGE_SIZE,
    Session,
    build_world,
    click_probability,
    expected_outcomes,
    expected_revenue_per_look,
    item_revenue_per_look,
    shopper_events,
    simulated_sessions,
)

PRIOR = 20.0  # looks of prior for the click rate
WEIGHT = {"click": 1.0, "add_to_cart": 3.0, "purchase": 5.0}  # the profile's action weights


def main(seed: int) -> None:
    world = build_world(n_items=2000, n_shoppers=1500, seed=seed)
    n_items, n_shoppers = len(world.item_ids), len(world.shopper_ids)
    n_brands = int(world.item_brand.max()) + 1
    code = {item_id: index for index, item_id in enumerate(world.item_ids)}
    looks, clicks, engagement = np.zeros(n_items), np.zeros(n_items), np.zeros(n_items)
    brand_weight = np.zeros((n_shoppers, n_brands))
    brand_clicks = np.zeros((n_shoppers, n_brands))
    brand_expected = np.zeros((n_shoppers, n_brands))

    def click_rate() -> np.ndarray:
        prior = clicks.sum() / max(looks.sum(), 1.0)
        return (clicks + prior * PRIOR) / (looks + PRIOR)

    start = datetime(2026, 11, 1, tzinfo=UTC)
    stream = simulated_sessions(
        world,
        sessions=20_000,
        start=start,
        end=start + timedelta(days=5),
        seed=seed + 10,
        follow_ups=0.3,
    )
    for number, (request_id, session, rng) in enumerate(stream):
        if number % 2000 == 0:
            served_rate = click_rate()
        candidates = session.candidates
        shown = candidates[np.lexsort((candidates, -served_rate[candidates]))][:PAGE_SIZE]
        look = 1.0 / np.arange(1, len(shown) + 1)
        looks[shown] += look
        expected = look * served_rate[shown]
        np.add.at(brand_expected[session.shopper], world.item_brand[shown], expected)
        for event in shopper_events(world, session, shown, rng, request_id):
            if event["type"] not in WEIGHT:
                continue
            item = code[event["item_id"]]
            brand = world.item_brand[item]
            brand_weight[session.shopper, brand] += WEIGHT[event["type"]]
            engagement[item] += {"click": 1, "add_to_cart": 3, "purchase": 10}[event["type"]]
            if event["type"] == "click":
                clicks[item] += 1
                brand_clicks[session.shopper, brand] += 1

    def standard(values: np.ndarray) -> np.ndarray:
        return (values - values.mean()) / (values.std() + 1e-12)

    rate = standard(click_rate())
    price = standard(np.log1p(world.item_price))
    popularity = standard(np.log1p(engagement))
    share = brand_weight / np.maximum(brand_weight.sum(axis=1, keepdims=True), 1e-9)
    lift = np.log((brand_clicks + 1.0) / (brand_expected + 1.0))

    def blend(price_w: float = 0.0, pop_w: float = 0.0, share_w: float = 0.0, lift_w: float = 0.0):
        def score(session: Session) -> np.ndarray:
            brands = world.item_brand
            return (
                4.0 * rate
                + price_w * price
                + pop_w * popularity
                + share_w * share[session.shopper, brands]
                + lift_w * lift[session.shopper, brands]
            )

        return score

    item_value = item_revenue_per_look(world)
    rankers: dict[str, Callable[[Session], np.ndarray]] = {
        "popularity": lambda session: engagement,
        "click rate": blend(),
        "+ brand share 3 (the blend's)": blend(share_w=3.0),
        "+ brand lift 2": blend(lift_w=2.0),
        "+ brand lift 4": blend(lift_w=4.0),
        "click rate + price 2": blend(price_w=2.0),
        "+ popularity 1 + brand share 3": blend(price_w=2.0, pop_w=1.0, share_w=3.0),
        "+ popularity 1 + brand lift 2": blend(price_w=2.0, pop_w=1.0, lift_w=2.0),
        "item revenue oracle": lambda session: item_value,
    }
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
    print(f"seed {seed}: revenue per session and NDCG@10, and their ratio to popularity")
    for name in revenue:
        r, g = np.mean(revenue[name]), np.mean(ndcg[name])
        print(f"  {name:34s} {r:7.3f} {r / base_revenue:.3f}x   {g:.3f} {g / base_ndcg:.3f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
