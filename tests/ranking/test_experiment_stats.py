"""The readout's statistics on simulated shoppers (numpy only, no database): the interval of a
known lift covers it with the right sign, A/A experiments come out significant about 5% of the
time, the always-valid interval keeps that promise when looked at every hour while the fixed one
does not, the sample-ratio check fires on a skewed split only, and the fixed horizon adds up."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ranking.experiment_stats import (
    ALPHA,
    Lift,
    RatioEstimate,
    always_valid_lift,
    fixed_horizon,
    ratio_estimate,
    relative_lift,
    sample_ratio,
)


def shoppers(
    rng: np.random.Generator, n: int, *, click_rate: float = 0.3, price_factor: float = 1.0
) -> dict[str, np.ndarray]:
    """Per-shopper sums of n simulated shoppers: 1 + Poisson(2) searches, each click at
    `click_rate`, each click bought at 30%, order values log-normal around 40."""
    searches = 1 + rng.poisson(2.0, n)
    clicks = rng.binomial(searches, click_rate)
    purchases = rng.binomial(clicks, 0.3)
    prices = rng.lognormal(3.5, 0.8, int(purchases.sum())) * price_factor
    revenue = np.bincount(np.repeat(np.arange(n), purchases), weights=prices, minlength=n)
    return {"searches": searches, "clicks": clicks, "purchases": purchases, "revenue": revenue}


def revenue_per_search(data: dict[str, np.ndarray]) -> RatioEstimate:
    return ratio_estimate(data["revenue"], data["searches"])


def ctr(data: dict[str, np.ndarray]) -> RatioEstimate:
    return ratio_estimate(data["clicks"], data["searches"])


def test_the_ratio_is_of_the_sums_and_its_variance_matches_the_spread_of_repeated_samples() -> None:
    rng = np.random.default_rng(0)
    estimates = [revenue_per_search(shoppers(rng, 400)) for _ in range(300)]
    data = shoppers(np.random.default_rng(1), 400)

    one = revenue_per_search(data)
    assert one.value == pytest.approx(data["revenue"].sum() / data["searches"].sum())
    observed = np.var([math.log(e.value) for e in estimates if e.value], ddof=1)
    predicted = np.mean([e.log_variance for e in estimates if e.log_variance is not None])
    assert predicted == pytest.approx(observed, rel=0.2)


def test_a_known_lift_is_covered_by_the_interval_with_the_right_sign() -> None:
    rng = np.random.default_rng(7)
    control = shoppers(rng, 20_000)
    treatment = shoppers(rng, 20_000, price_factor=1.2)  # revenue per search 20% higher

    lift = relative_lift(revenue_per_search(control), revenue_per_search(treatment))
    clicks = relative_lift(ctr(control), ctr(treatment))

    assert lift is not None
    assert lift.low <= 0.2 <= lift.high
    assert lift.low > 0  # significant, and positive
    assert lift.significant
    assert lift.p_value < 0.05
    assert clicks is not None
    assert clicks.low <= 0.0 <= clicks.high  # the click rate did not change, and says so


def test_a_worse_treatment_has_a_negative_significant_lift() -> None:
    rng = np.random.default_rng(8)
    control = shoppers(rng, 20_000)
    treatment = shoppers(rng, 20_000, click_rate=0.27)  # 10% fewer clicks

    lift = relative_lift(ctr(control), ctr(treatment))

    assert lift is not None
    assert lift.low <= -0.1 <= lift.high
    assert lift.high < 0


def test_intervals_cover_the_true_lift_in_about_95_percent_of_experiments() -> None:
    covered = 0
    for seed in range(200):
        rng = np.random.default_rng(10_000 + seed)
        control, treatment = shoppers(rng, 1_000), shoppers(rng, 1_000, price_factor=1.1)
        lift = relative_lift(revenue_per_search(control), revenue_per_search(treatment))
        assert lift is not None
        covered += lift.low <= 0.1 <= lift.high

    # 200 experiments of 1,000 shoppers a side: 187 intervals (93.5%) covered it.
    assert 180 <= covered <= 198


def test_a_a_experiments_are_significant_in_about_5_percent_of_seeds() -> None:
    significant = {"revenue per search": 0, "click-through rate": 0}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = shoppers(rng, 500), shoppers(rng, 500)  # the same shop on both sides
        for name, metric in (
            ("revenue per search", revenue_per_search),
            ("click-through rate", ctr),
        ):
            lift = relative_lift(metric(a), metric(b))
            assert lift is not None
            significant[name] += lift.significant

    # 200 A/A experiments of 500 shoppers a side: 8 (4%) on revenue per search and 10 (5%) on
    # the click-through rate came out significant.
    for name, count in significant.items():
        assert 2 <= count <= 20, (name, count)


# Peeking: a growing experiment looked at every 100 shoppers a side, from 100 to 5,000 (50 looks,
# as hourly checks would), in each of 400 simulated experiments.
PEEK_SEEDS = 400
PEEKS = range(100, 5_001, 100)


def peeked(price_factor: float, seed: int) -> tuple[list[Lift], list[Lift]]:
    """The fixed and the always-valid revenue-per-search lifts of one growing experiment at each
    peek (B's order values scaled by `price_factor`)."""
    rng = np.random.default_rng(seed)
    control, treatment = (
        shoppers(rng, PEEKS[-1]),
        shoppers(rng, PEEKS[-1], price_factor=price_factor),
    )
    fixed, always_valid = [], []
    for n in PEEKS:
        a = ratio_estimate(control["revenue"][:n], control["searches"][:n])
        b = ratio_estimate(treatment["revenue"][:n], treatment["searches"][:n])
        short, long = relative_lift(a, b), always_valid_lift(a, b)
        assert short is not None
        assert long is not None
        fixed.append(short)
        always_valid.append(long)
    return fixed, always_valid


def test_peeking_every_hour_at_a_a_experiments_the_always_valid_interval_rarely_excludes_0() -> (
    None
):
    """The point of sequential testing: stopping at the first look whose interval excludes 0.
    Measured on these 400 seeds: the always-valid interval did at some look in 6 (1.5%), the
    fixed 95% interval in 147 (36.8%)."""
    by_sequence = by_fixed = 0
    for seed in range(PEEK_SEEDS):
        fixed, always_valid = peeked(1.0, seed)
        by_fixed += any(lift.significant for lift in fixed)
        by_sequence += any(lift.significant for lift in always_valid)

    # At most 5% of 400 is 20; the binomial's 99th percentile at 5% is 30.
    assert by_sequence <= 30, by_sequence
    # Peeked the same way, the fixed interval finds a false difference far more often.
    assert by_fixed >= 80, by_fixed
    assert by_fixed >= 4 * max(by_sequence, 1), (by_fixed, by_sequence)


def test_the_always_valid_interval_covers_the_true_lift_at_every_look_at_once() -> None:
    """B 10% better: in at least 95% of experiments the always-valid interval holds +10% at all
    50 looks (measured: 396 of 400), and it is wider than the fixed interval at every look, with
    the same point estimate."""
    covered = 0
    for seed in range(PEEK_SEEDS):
        fixed, always_valid = peeked(1.1, 20_000 + seed)
        covered += all(lift.low <= 0.1 <= lift.high for lift in always_valid)
        for short, long in zip(fixed, always_valid, strict=True):
            assert long.lift == pytest.approx(short.lift)
            assert long.low < short.low
            assert long.high > short.high

    assert covered >= 0.95 * PEEK_SEEDS - 2 * math.sqrt(PEEK_SEEDS * 0.05 * 0.95), covered


def test_a_truly_different_b_leaves_the_always_valid_interval_with_the_right_sign() -> None:
    rng = np.random.default_rng(9)
    control = shoppers(rng, 5_000)
    worse = always_valid_lift(
        revenue_per_search(control), revenue_per_search(shoppers(rng, 5_000, price_factor=0.7))
    )
    better = always_valid_lift(
        revenue_per_search(control), revenue_per_search(shoppers(rng, 5_000, price_factor=1.3))
    )

    assert worse is not None
    assert better is not None
    assert worse.high < 0
    assert worse.low <= -0.3 <= worse.high
    assert better.low > 0
    assert better.low <= 0.3 <= better.high
    # Its p-value (the mixture SPRT's) is below alpha exactly when the interval excludes 0.
    assert worse.p_value < ALPHA
    assert better.p_value < ALPHA


def test_the_always_valid_p_value_agrees_with_its_interval() -> None:
    for seed in range(50):
        rng = np.random.default_rng(seed)
        lift = always_valid_lift(
            revenue_per_search(shoppers(rng, 2_000)),
            revenue_per_search(shoppers(rng, 2_000, price_factor=0.9)),
        )
        assert lift is not None
        assert (lift.p_value < ALPHA) == lift.significant


def test_sample_ratio_mismatch_fires_on_a_55_45_split_of_a_50_50_experiment() -> None:
    skewed = sample_ratio(5_500, 4_500, 0.5)
    balanced = sample_ratio(5_030, 4_970, 0.5)
    small_skew = sample_ratio(55, 45, 0.5)
    uneven_but_as_configured = sample_ratio(9_000, 1_000, 0.1)

    assert skewed is not None
    assert skewed.mismatch
    assert skewed.chi_square == pytest.approx(100.0)
    assert skewed.observed_share == pytest.approx(0.45)
    assert balanced is not None
    assert not balanced.mismatch
    assert balanced.p_value == pytest.approx(math.erfc(math.sqrt(0.36 / 2)))
    assert small_skew is not None
    assert not small_skew.mismatch
    assert uneven_but_as_configured is not None
    assert not uneven_but_as_configured.mismatch
    assert sample_ratio(0, 0, 0.5) is None


def test_the_fixed_horizon_detects_its_lift_with_the_stated_power() -> None:
    rng = np.random.default_rng(3)
    pilot = fixed_horizon(
        revenue_per_search(shoppers(rng, 2_000)), revenue_per_search(shoppers(rng, 2_000)), 0.5
    )
    assert pilot is not None
    assert pilot.control_needed == pilot.treatment_needed
    assert not pilot.reached
    assert pilot.more_shoppers == pilot.control_needed + pilot.treatment_needed - 4_000

    # The 10% lift needs about a quarter of the shoppers of 5%: run 40 experiments at that size
    # and about 80% of them find it.
    ten = fixed_horizon(
        revenue_per_search(shoppers(rng, 2_000)),
        revenue_per_search(shoppers(rng, 2_000)),
        0.5,
        minimum_lift=0.10,
    )
    assert ten is not None
    n = ten.control_needed
    assert n == pytest.approx(
        pilot.control_needed * (math.log(1.05) / math.log(1.10)) ** 2, rel=0.3
    )
    found = 0
    for seed in range(40):
        trial = np.random.default_rng(500 + seed)
        control, treatment = shoppers(trial, n), shoppers(trial, n, price_factor=1.10)
        lift = relative_lift(revenue_per_search(control), revenue_per_search(treatment))
        assert lift is not None
        found += lift.low > 0
    assert 24 <= found <= 39  # 80% of 40 is 32; 28 found it here


def test_the_horizon_is_reached_once_both_variants_have_their_shoppers() -> None:
    rng = np.random.default_rng(4)
    small = fixed_horizon(
        revenue_per_search(shoppers(rng, 1_000)),
        revenue_per_search(shoppers(rng, 1_000)),
        0.5,
        minimum_lift=0.5,
    )

    assert small is not None
    assert small.control_needed < 1_000
    assert small.reached
    assert small.more_shoppers == 0


def test_no_estimate_without_data() -> None:
    empty = ratio_estimate(np.array([]), np.array([]))
    no_revenue = ratio_estimate(np.zeros(10), np.ones(10))

    assert empty.value is None
    assert no_revenue.value == 0.0
    assert no_revenue.log_variance is None
    assert relative_lift(empty, no_revenue) is None
    assert always_valid_lift(empty, no_revenue) is None
    assert fixed_horizon(no_revenue, no_revenue, 0.5) is None
