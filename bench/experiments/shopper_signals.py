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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.experiments.simulated import Ranker, pages, report, score, standard
from demo.simulation import Session, build_world, item_revenue_per_look

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

    for page in pages(world, seed, click_rate):
        shown, shopper = page.shown, page.session.shopper
        looks[shown] += page.look
        expected = page.look * page.served[shown]
        np.add.at(brand_expected[shopper], world.item_brand[shown], expected)
        for event in page.events:
            if event["type"] not in WEIGHT:
                continue
            item = code[event["item_id"]]
            brand = world.item_brand[item]
            brand_weight[shopper, brand] += WEIGHT[event["type"]]
            engagement[item] += {"click": 1, "add_to_cart": 3, "purchase": 10}[event["type"]]
            if event["type"] == "click":
                clicks[item] += 1
                brand_clicks[shopper, brand] += 1

    rate = standard(click_rate())
    price = standard(np.log1p(world.item_price))
    popularity = standard(np.log1p(engagement))
    share = brand_weight / np.maximum(brand_weight.sum(axis=1, keepdims=True), 1e-9)
    lift = np.log((brand_clicks + 1.0) / (brand_expected + 1.0))

    def blend(price_w: float = 0.0, pop_w: float = 0.0, share_w: float = 0.0, lift_w: float = 0.0):
        def scores(session: Session) -> np.ndarray:
            brands = world.item_brand
            return (
                4.0 * rate
                + price_w * price
                + pop_w * popularity
                + share_w * share[session.shopper, brands]
                + lift_w * lift[session.shopper, brands]
            )

        return scores

    item_value = item_revenue_per_look(world)
    rankers: dict[str, Ranker] = {
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
    print(f"seed {seed}: revenue per session and NDCG@10, and their ratio to popularity")
    report(score(world, seed, rankers), width=34)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
