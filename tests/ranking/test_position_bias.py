"""Position bias measured, not assumed: under a personalised ranker the log alone misleads the
click model, and randomly swapped adjacent pairs (exploration) recover the simulator's curve."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from demo.simulation import PAGE_SIZE, POSITION_BIAS_ETA, build_world, click_probability
from demo.simulation import draw_session as simulator_session
from ranking.learning import rank_log
from ranking.learning.propensity import estimate_position_bias
from ranking.models import RankLog
from ranking.services import ranking_config_save
from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items, rank

SESSIONS = 50_000
EXPLORATION = 0.5


def personalised_log(surface: str, seed: int, exploration: float) -> dict[str, np.ndarray]:
    """Sessions of the simulator's shoppers on one surface, ordered by a ranker that knows the
    shopper's tastes (noisily: a personalised model at its best), with one adjacent pair of the
    top 10 swapped in an `exploration` share of them; clicks follow the simulator (examination
    1 / k)."""
    world = build_world(n_items=400, n_shoppers=500, seed=seed)
    rng = np.random.default_rng(seed)
    positions, items, clicks, swaps = [], [], [], []
    now = np.datetime64("2026-12-01T00:00:00")
    while len(swaps) < SESSIONS:
        # The simulator draws candidates alike for both surfaces; the surface names the log.
        session = replace(simulator_session(world, rng, now.astype(object)), surface=surface)
        candidates = session.candidates
        score = world.utility(session.shopper, candidates) + rng.normal(0, 0.5, len(candidates))
        order = candidates[np.argsort(-score)][:PAGE_SIZE]
        swapped = 0
        if rng.random() < exploration:
            swapped = int(rng.integers(1, 10))
            order[[swapped - 1, swapped]] = order[[swapped, swapped - 1]]
        seen = rng.random(len(order)) < 1.0 / np.arange(1, len(order) + 1) ** POSITION_BIAS_ETA
        clicked = seen & (rng.random(len(order)) < click_probability(world, session, order))
        positions.append(np.arange(1, len(order) + 1))
        items.append(order)
        clicks.append(clicked)
        swaps.append(swapped)
    sizes = np.array([len(p) for p in positions])
    return {
        "positions": np.concatenate(positions),
        "items": np.concatenate(items),
        "clicks": np.concatenate(clicks).astype(np.int8),
        "group_starts": np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        "swapped_at": np.array(swaps),
    }


@pytest.mark.parametrize("surface", ["search", "browse"])
def test_randomised_swaps_recover_the_simulators_curve_under_a_personalised_ranker(
    surface: str,
) -> None:
    seed = 21 if surface == "search" else 22
    log = personalised_log(surface, seed, exploration=EXPLORATION)
    unexplored = personalised_log(surface, seed, exploration=0.0)

    from_swaps = estimate_position_bias(
        log["positions"],
        log["items"],
        log["clicks"],
        group_starts=log["group_starts"],
        swapped_at=log["swapped_at"],
    )
    from_the_log_alone = estimate_position_bias(
        unexplored["positions"], unexplored["items"], unexplored["clicks"]
    )

    print(surface, "swaps", from_swaps.eta, "log alone", from_the_log_alone.eta)  # noqa: T201
    assert from_swaps.method.startswith("power law fitted to randomised adjacent swaps")
    assert abs(from_swaps.eta - POSITION_BIAS_ETA) < 0.05
    # The per-item click model reads the ranker's knowledge of this shopper as position bias.
    assert abs(from_the_log_alone.eta - POSITION_BIAS_ETA) > 0.05


def exploring_shop(api: ApiCaller) -> dict[str, Any]:
    """Twelve items, a browse config exploring a fifth of its requests, and a body whose natural
    order is sku-0 to sku-11 (relevance falling)."""
    put_items(api, [{"id": f"sku-{n}", "title": f"Item {n}"} for n in range(12)])
    ranking_config_save(
        customer=api.customer,
        surface="browse",
        name="exploring",
        weights={"relevance": 1.0},
        personalization_weight=1.0,
        exploration_percent=20.0,
    )
    return {"surface": "browse", "items": [{"id": f"sku-{n}", "relevance": -n} for n in range(12)]}


@pytest.mark.django_db
def test_exploration_swaps_one_adjacent_pair_of_the_top_ten_and_logs_it(
    api: ApiCaller, settings: Any
) -> None:
    body = exploring_shop(api)
    natural = [f"sku-{n}" for n in range(12)]

    swapped = 0
    for _ in range(200):
        response = rank(api, body)
        shown = [item["id"] for item in response["items"]]
        differs = [n for n, (a, b) in enumerate(zip(shown, natural, strict=True)) if a != b]
        if differs:
            k = differs[0] + 1
            assert differs == [k - 1, k]  # one adjacent pair, nothing else moved
            assert k <= 9
            assert (shown[k - 1], shown[k]) == (natural[k], natural[k - 1])
            swapped += 1
    rank_log.flush()

    logged = list(RankLog.objects.filter(customer=api.customer).exclude(swapped_at=None))
    assert len(logged) == swapped
    assert 15 <= swapped <= 70  # 20% of 200, give or take chance
    for row in logged:
        k = row.swapped_at
        assert (row.item_ids[k - 1], row.item_ids[k]) == (natural[k], natural[k - 1])


@pytest.mark.django_db
def test_exploration_never_moves_an_item_a_pin_or_slot_placed(api: ApiCaller) -> None:
    body = exploring_shop(api)
    for rule in (
        {
            "name": "pin",
            "enabled": True,
            "action": {"type": "pin", "pins": [{"item_id": "sku-7", "position": 2}]},
        },
        {
            "name": "slot",
            "enabled": True,
            "selector": {"item_ids": ["sku-9"]},
            "action": {"type": "slot", "positions": [5]},
        },
    ):
        assert api.post("/v1/rules", rule).status_code == 201, rule

    natural = [item["id"] for item in rank(api, {**body, "explain": True})["items"]]  # no exploring
    assert (natural[1], natural[4]) == ("sku-7", "sku-9")

    moved = 0
    for _ in range(300):
        shown = [item["id"] for item in rank(api, body)["items"]]
        assert (shown[1], shown[4]) == ("sku-7", "sku-9")  # the pin's position 2, the slot's 5
        moved += shown != natural
    # A fifth of the requests explore; the draws that touch neither placed item swap a pair.
    assert moved >= 15
