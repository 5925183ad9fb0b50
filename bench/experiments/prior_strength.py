"""How strongly should an item's click rate be pulled towards the shop's? An experiment on the
shopper simulator alone (no service; about 10 s a seed), for docs/quality.md ("Tried and not
kept").

20,000 sessions are shown pages ordered by a smoothed click rate (refreshed every 2,000 sessions,
like the steady scenario); per item the run counts looks (position 1/k, the refresh's "examined"
impressions), clicks and engagement. Then 2,000 fresh sessions are scored (expected revenue per
session and NDCG@10 against the true click probabilities, both against the popularity order) for
the blend's item part (4 x click rate + 2 x log price + 2 x in stock + 1 x popularity, each
standardised) with the click rate smoothed by 1 to 50 looks of prior (the refresh uses
`PRIOR_STRENGTH`, 50), and for an order by estimated revenue per look (click rate x the
conversion it implies x price), which the simulator's purchase model makes exact.

    .venv/bin/python bench/experiments/prior_strength.py [seed]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.experiments.simulated import pages, report, score, standard
from demo.simulation import build_world, item_revenue_per_look

WEIGHT = {"click": 1, "add_to_cart": 3, "purchase": 10}  # the refresh's engagement weights


def main(seed: int) -> None:
    world = build_world(n_items=2000, n_shoppers=1500, seed=seed)
    n_items = len(world.item_ids)
    code = {item_id: index for index, item_id in enumerate(world.item_ids)}
    looks, clicks, engagement = np.zeros(n_items), np.zeros(n_items), np.zeros(n_items)

    def click_rate(prior: float) -> np.ndarray:
        shop = clicks.sum() / max(looks.sum(), 1.0)
        return (clicks + shop * prior) / (looks + prior)

    for page in pages(world, seed, lambda: click_rate(20.0)):
        looks[page.shown] += page.look
        for event in page.events:
            if event["type"] in WEIGHT:
                item = code[event["item_id"]]
                engagement[item] += WEIGHT[event["type"]]
                clicks[item] += event["type"] == "click"

    price, in_stock = world.item_price, world.item_in_stock.astype(float)

    def blend(prior: float) -> np.ndarray:
        return (
            4 * standard(click_rate(prior))
            + 2 * standard(np.log1p(price))
            + 2 * in_stock
            + standard(np.log1p(engagement))
        )

    def revenue_per_look(prior: float) -> np.ndarray:
        rate = np.clip(click_rate(prior), 1e-4, 1 - 1e-4)
        converts = 1.0 / (1.0 + np.exp(-(np.log(rate / (1 - rate)) + 1.0)))
        return rate * converts * price * (0.02 + in_stock)

    orders = {"popularity": engagement}
    orders |= {f"blend, prior {prior:g}": blend(prior) for prior in (1, 3, 5, 10, 20, 50)}
    orders |= {f"revenue per look, prior {p:g}": revenue_per_look(p) for p in (5, 20, 50)}
    orders["item revenue oracle"] = item_revenue_per_look(world)
    rankers = {name: (lambda session, by=by: by) for name, by in orders.items()}
    print(f"seed {seed}: revenue per session and NDCG@10, and their ratio to popularity")
    report(score(world, seed, rankers), width=30)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
