"""The shopper simulator draws the sessions numpy's own `Generator.choice` would: its shortcuts
(the activity and taste distributions summed once per world, the catalog's per-category and
per-department items listed once) must not change a single draw, or every recorded quality
number (docs/quality.md, seeded) would stop being reproducible."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from demo.simulation import CANDIDATES_PER_SESSION, build_world, draw_session


def test_sessions_are_the_draws_of_plain_numpy_choice() -> None:
    world = build_world(n_items=600, n_shoppers=200, seed=11)
    ours, plain = np.random.default_rng(5), np.random.default_rng(5)
    departments = np.array([c.department for c in world.categories])[world.item_category]
    at = datetime(2026, 12, 1)
    for _ in range(500):
        session = draw_session(world, ours, at)
        # What draw_session did before its shortcuts, step by step.
        shopper = int(plain.choice(len(world.shopper_ids), p=world.shopper_activity))
        taste = world.pref_category[shopper] + 0.05
        category = int(plain.choice(len(world.categories), p=taste / taste.sum()))
        same_department = np.flatnonzero(departments == world.categories[category].department)
        pool = np.union1d(
            np.flatnonzero(world.item_category == category),
            plain.choice(same_department, size=min(8, len(same_department))),
        )
        candidates = plain.choice(pool, size=min(CANDIDATES_PER_SESSION, len(pool)), replace=False)
        assert (session.shopper, session.category) == (shopper, category)
        assert np.array_equal(session.candidates, candidates)
        price_z = (np.log(world.item_price[candidates]) - np.log(world.item_price).mean()) / np.log(
            world.item_price
        ).std()
        utility = (
            world.item_quality[candidates]
            + 1.5 * world.pref_category[shopper, world.item_category[candidates]]
            + 1.0 * world.pref_brand[shopper, world.item_brand[candidates]]
            - world.price_sensitivity[shopper] * price_z
        )
        assert np.array_equal(world.utility(shopper, candidates), utility)
        # The rest of the session (relevance, surface, query) comes from the same stream.
        plain.normal(0.0, 1.5, len(candidates))
        if plain.random() < 0.7:
            plain.choice(world.categories[category].queries)
    assert ours.random() == plain.random()
