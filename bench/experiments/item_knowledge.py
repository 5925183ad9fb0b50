"""Where is the steady state's missing revenue: in knowing the items, or the shopper's price
sensitivity? An experiment on the simulator alone (no service, no API; about 7 s a seed), for
docs/quality.md ("Tried and not kept").

20,000 sessions are shown pages ordered by a smoothed click rate (refreshed every 2,000 sessions,
as in shopper_signals.py); with `--explore C` the served rate gets an upper-confidence bonus
C * sqrt(rate / (looks + 1)) while the traffic runs (the scored orders below use none). The run
counts, per item, clicks over looks (position 1/k) and, per shopper, the log price of what they
clicked against what an average shopper's clicks on the same pages would have cost (a "price
lift": positive for a shopper less put off by price). Then 2,000 fresh sessions are scored
(NDCG@10 against the true click probabilities, expected revenue per session, both against the
popularity order) for:

- the blend's item part (click rate 4, price 2, popularity 1, as shopper_signals.py), alone and
  with the price lift (or the shopper's true price sensitivity) times the item's price;
- orders by the click rate (5 looks of prior towards the shop's rate, or towards a per-category
  rate that falls with the price) mixed with the expected revenue per look it implies under the
  simulator's own click and purchase curves (`rev^a rate^(1-a)`);
- "items known, shopper average": the expected revenue per look from each item's true quality,
  price and stock for a shopper of average tastes and price sensitivity; the same with the
  shopper's true price sensitivity; the item revenue oracle and the revenue oracle.

    .venv/bin/python bench/experiments/item_knowledge.py [seed] [--explore C]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.experiments.simulated import Ranker, pages, report, score, standard
from demo.simulation import (
    BUY_RATE,
    CART_RATE,
    Session,
    _sigmoid,
    build_world,
    item_revenue_per_look,
)

SERVED_PRIOR = 20.0  # looks of prior for the rate that orders the traffic
PRIOR = 5.0  # looks of prior for the scored click-rate orders
LIFT_PRIOR = 5.0  # clicks of prior for the price lift


def main(seed: int, explore: float) -> None:
    world = build_world(n_items=2000, n_shoppers=1500, seed=seed)
    n_items, n_shoppers = len(world.item_ids), len(world.shopper_ids)
    code = {item_id: index for index, item_id in enumerate(world.item_ids)}
    looks, clicks, engagement = np.zeros(n_items), np.zeros(n_items), np.zeros(n_items)
    log_price = np.log(world.item_price)
    price_z = (log_price - log_price.mean()) / log_price.std()
    clicked_price, expected_price = np.zeros(n_shoppers), np.zeros(n_shoppers)
    shopper_clicks, shopper_expected = np.zeros(n_shoppers), np.zeros(n_shoppers)

    def smoothed(prior_looks: float, prior: np.ndarray | float | None = None) -> np.ndarray:
        shop = clicks.sum() / max(looks.sum(), 1.0) if prior is None else prior
        return (clicks + shop * prior_looks) / (looks + prior_looks)

    def served() -> np.ndarray:
        rate = smoothed(SERVED_PRIOR)
        return rate + explore * np.sqrt(rate / (looks + 1.0))

    for page in pages(world, seed, served):
        shown, shopper = page.shown, page.session.shopper
        looks[shown] += page.look
        expected = page.look * page.served[shown]
        expected_price[shopper] += (expected * price_z[shown]).sum()
        shopper_expected[shopper] += expected.sum()
        for event in page.events:
            kind = event["type"]
            if kind not in ("click", "add_to_cart", "purchase"):
                continue
            item = code[event["item_id"]]
            engagement[item] += {"click": 1, "add_to_cart": 3, "purchase": 10}[kind]
            if kind == "click":
                clicks[item] += 1
                clicked_price[shopper] += price_z[item]
                shopper_clicks[shopper] += 1

    rate, price = standard(smoothed(SERVED_PRIOR)), standard(np.log1p(world.item_price))
    popularity = standard(np.log1p(engagement))
    # The mean clicked price (z) against the mean an average shopper's clicks would have had.
    average_clicked = expected_price / np.maximum(shopper_expected, 1e-9)
    lift = (clicked_price - average_clicked * shopper_clicks) / (shopper_clicks + LIFT_PRIOR)
    has_clicks = shopper_clicks > 0
    agreement = np.corrcoef(lift[has_clicks], -world.price_sensitivity[has_clicks])[0, 1]

    def blend(personal: np.ndarray | None = None, weight: float = 0.0) -> Ranker:
        def scores(session: Session) -> np.ndarray:
            base = 4.0 * rate + 2.0 * price + 1.0 * popularity
            return base if personal is None else base + weight * personal[session.shopper] * price_z

        return scores

    def per_look(utility: np.ndarray) -> np.ndarray:
        bought = _sigmoid(utility - 2.0) * CART_RATE * _sigmoid(utility - 1.0) * BUY_RATE
        return bought * world.item_in_stock * world.item_price

    # A per-category prior falling with the price: logit(rate) ~ category + b * price_z, fitted
    # on the items' raw rates weighted by their looks.
    n_categories = int(world.item_category.max()) + 1
    design = np.zeros((n_items, n_categories + 1))
    design[np.arange(n_items), world.item_category] = 1.0
    design[:, -1] = price_z
    raw = np.clip((clicks + 0.5) / (looks + 1.0), 1e-4, 1 - 1e-4)
    root = np.sqrt(looks)[:, None]
    beta = np.linalg.lstsq(design * root, np.log(raw / (1 - raw)) * root[:, 0], rcond=None)[0]
    priors = {"shop prior": None, "price prior": _sigmoid(design @ beta)}

    mean_category = world.pref_category.mean(axis=0)[world.item_category]
    mean_brand = world.pref_brand.mean(axis=0)[world.item_brand]
    average_shopper = world.item_quality + 1.5 * mean_category + mean_brand
    sensitivity = world.price_sensitivity
    rankers: dict[str, Ranker] = {
        "popularity": lambda session: engagement,
        "blend (rate 4, price 2, popularity 1)": blend(),
        "+ 2 x price lift x price": blend(lift, 2.0),
        "+ 4 x true (0.4 - sensitivity) x price": blend(0.4 - sensitivity, 4.0),
    }
    for name, prior in priors.items():
        estimate = smoothed(PRIOR, prior)
        log_rate = np.log(estimate)
        log_value = np.log(per_look(np.log(estimate / (1 - estimate)) + 2.0) + 1e-12)
        for share in (0.0, 0.3, 0.5, 1.0):
            rankers[f"rev^{share} rate^{1 - share:.1f} ({name})"] = (
                lambda session, v=share * log_value + (1 - share) * log_rate: v
            )
    known = per_look(average_shopper - sensitivity.mean() * price_z)
    rankers["items known, shopper average"] = lambda session: known
    rankers["items known + true sensitivity"] = lambda session: per_look(
        average_shopper - sensitivity[session.shopper] * price_z
    )
    item_value = item_revenue_per_look(world)
    rankers["item revenue oracle"] = lambda session: item_value

    scored = score(world, seed, rankers)
    print(
        f"seed {seed}, explore {explore}: the price lift against the true sensitivity, "
        f"correlation {agreement:.2f} (median clicks a shopper {np.median(shopper_clicks):.0f})"
    )
    print("  revenue per session and NDCG@10, and their ratio to popularity")
    report(scored)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("seed", type=int, nargs="?", default=1)
    parser.add_argument("--explore", type=float, default=0.0)
    args = parser.parse_args()
    main(args.seed, args.explore)
