"""The statistics of an experiment's readout, on per-shopper sums: plain numpy and the standard
library, no Django, so they are tested on simulated shoppers by the thousand.

The shopper is the unit (the randomisation is by shopper): a metric such as revenue per search
is a ratio of two per-shopper sums, R = sum(y) / sum(x). Its variance comes from the delta
method, and B against A is compared on the log of the ratio of the two R's (docs/experiments.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
# The fixed horizon: the smallest relative lift of revenue per search worth detecting, at this
# significance and power.
MINIMUM_LIFT = 0.05
ALPHA = 0.05
POWER = 0.8
# The always-valid interval's mixture is tuned to be narrowest at this many shoppers in all
# (both variants): about the guardrail's range of hourly looks (docs/experiments.md, section 5).
SEQUENTIAL_TUNED_SHOPPERS = 20_000
# A sample-ratio mismatch is reported below this p-value: at 0.001 a healthy experiment read
# every day for three years warns about once.
SAMPLE_RATIO_P = 0.001

_NORMAL = NormalDist()


@dataclass(frozen=True)
class RatioEstimate:
    """R = sum(numerator) / sum(denominator) over shoppers, and Var(log R) by the delta method
    (None where it cannot be estimated: fewer than two shoppers, or a zero sum)."""

    value: float | None
    log_variance: float | None
    shoppers: int


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> RatioEstimate:
    """The ratio of per-shopper sums and the delta-method variance of its logarithm:
    Var(log R) ~ (s_yy / my^2 - 2 s_xy / (mx my) + s_xx / mx^2) / n."""
    y = np.asarray(numerator, dtype=np.float64)
    x = np.asarray(denominator, dtype=np.float64)
    n = len(y)
    mean_x = float(x.mean()) if n else 0.0
    mean_y = float(y.mean()) if n else 0.0
    if mean_x <= 0:
        return RatioEstimate(None, None, n)
    value = mean_y / mean_x
    if n < 2 or mean_y <= 0:
        return RatioEstimate(value, None, n)
    covariance = np.cov(y, x, ddof=1)
    relative = (
        covariance[0, 0] / mean_y**2
        - 2.0 * covariance[0, 1] / (mean_x * mean_y)
        + covariance[1, 1] / mean_x**2
    )
    return RatioEstimate(value, max(float(relative), 0.0) / n, n)


@dataclass(frozen=True)
class Lift:
    """B's relative lift over A (0.05: B is 5% higher) with its confidence interval."""

    lift: float
    low: float
    high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def _log_ratio(control: RatioEstimate, treatment: RatioEstimate) -> tuple[float, float] | None:
    """d = log R_B - log R_A and its standard error sqrt(Var log R_A + Var log R_B); None
    without enough data."""
    if (
        control.value is None
        or treatment.value is None
        or control.log_variance is None
        or treatment.log_variance is None
        or control.value <= 0
        or treatment.value <= 0
    ):
        return None
    error = math.sqrt(control.log_variance + treatment.log_variance)
    if error == 0:
        return None
    return math.log(treatment.value) - math.log(control.value), error


def relative_lift(
    control: RatioEstimate, treatment: RatioEstimate, confidence: float = CONFIDENCE
) -> Lift | None:
    """R_B / R_A - 1 with the interval of log(R_B / R_A) +- z * sqrt(Var log R_A + Var log R_B),
    mapped back (so it is not symmetric and never below -100%). None without enough data."""
    compared = _log_ratio(control, treatment)
    if compared is None:
        return None
    difference, error = compared
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    return Lift(
        lift=math.expm1(difference),
        low=math.expm1(difference - z * error),
        high=math.expm1(difference + z * error),
        p_value=math.erfc(abs(difference / error) / math.sqrt(2)),
    )


def mixture_rho_squared(tuned_shoppers: int, alpha: float = ALPHA) -> float:
    """The mixture's rho^2 that makes the always-valid interval narrowest at `tuned_shoppers`
    (Howard, Ramdas, McAuliffe & Sekhon 2021, the tuning of the normal mixture to a planned
    sample size t*): rho^2 = (-2 log alpha + log(1 - 2 log alpha)) / t*."""
    return (-2 * math.log(alpha) + math.log1p(-2 * math.log(alpha))) / tuned_shoppers


def always_valid_lift(
    control: RatioEstimate,
    treatment: RatioEstimate,
    *,
    alpha: float = ALPHA,
    tuned_shoppers: int = SEQUENTIAL_TUNED_SHOPPERS,
) -> Lift | None:
    """R_B / R_A - 1 with an always-valid (1 - alpha) interval: a confidence sequence, which
    covers the true lift at every look at once, so it may be read after each look and acted on
    the first time it excludes 0 (the fixed interval of `relative_lift` may not: looked at every
    hour, it excludes 0 by chance far more often than alpha).

    The asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023,
    "Time-uniform central limit theory and asymptotic confidence sequences"), on the normal
    mixture boundary of Howard, Ramdas, McAuliffe & Sekhon (2021, "Time-uniform,
    nonparametric, nonasymptotic confidence sequences"): after t units with standard
    deviation sigma each, the estimate +- sigma * sqrt((t rho^2 + 1) / (t^2 rho^2)
    * log((t rho^2 + 1) / alpha^2)). Here the estimate is d = log R_B - log R_A, the unit the
    shopper (t = shoppers of both variants) and sigma^2 = t (Var log R_A + Var log R_B) by the
    delta method, so the half-width is se * sqrt((x + 1) / x * log((x + 1) / alpha^2)) with
    x = t rho^2 (rho from `mixture_rho_squared`), mapped back as in `relative_lift`. Its p-value
    is the mixture SPRT's, min(1, sqrt(x + 1) exp(-x z^2 / (2 (x + 1)))) with z = d / se: below
    alpha exactly when the interval excludes 0. None without enough data."""
    compared = _log_ratio(control, treatment)
    if compared is None:
        return None
    difference, error = compared
    x = (control.shoppers + treatment.shoppers) * mixture_rho_squared(tuned_shoppers, alpha)
    half_width = error * math.sqrt((x + 1) / x * math.log((x + 1) / alpha**2))
    z = difference / error
    return Lift(
        lift=math.expm1(difference),
        low=math.expm1(difference - half_width),
        high=math.expm1(difference + half_width),
        p_value=min(1.0, math.sqrt(x + 1) * math.exp(-x * z * z / (2 * (x + 1)))),
    )


@dataclass(frozen=True)
class SampleRatio:
    """Shoppers per variant against the configured split: chi-square with one degree of
    freedom; `mismatch` when its p-value is below SAMPLE_RATIO_P."""

    expected_share: float  # of shoppers in B
    observed_share: float
    chi_square: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SAMPLE_RATIO_P


def sample_ratio(control: int, treatment: int, treatment_share: float) -> SampleRatio | None:
    """None before any shopper; `treatment_share` in (0, 1)."""
    total = control + treatment
    if total == 0:
        return None
    expected = (total * (1.0 - treatment_share), total * treatment_share)
    chi_square = sum(
        (observed - wanted) ** 2 / wanted
        for observed, wanted in zip((control, treatment), expected, strict=True)
    )
    return SampleRatio(
        expected_share=treatment_share,
        observed_share=treatment / total,
        chi_square=chi_square,
        p_value=math.erfc(math.sqrt(chi_square / 2.0)),
    )


@dataclass(frozen=True)
class Horizon:
    """Shoppers each variant needs to detect `minimum_lift` at `alpha` with `power`, and how many
    more are missing (0: the experiment may be read)."""

    minimum_lift: float
    alpha: float
    power: float
    control_needed: int
    treatment_needed: int
    more_shoppers: int

    @property
    def reached(self) -> bool:
        return self.more_shoppers == 0


def fixed_horizon(
    control: RatioEstimate,
    treatment: RatioEstimate,
    treatment_share: float,
    *,
    minimum_lift: float = MINIMUM_LIFT,
    alpha: float = ALPHA,
    power: float = POWER,
) -> Horizon | None:
    """From the observed per-shopper variance of each variant (n Var(log R)): N shoppers in all
    with N = (z_{1-alpha/2} + z_power)^2 / log(1 + lift)^2 * (v_A / (1 - p) + v_B / p), split as
    configured (p in B). None while a variance cannot be estimated."""
    if control.log_variance is None or treatment.log_variance is None:
        return None
    unit_control = control.log_variance * control.shoppers
    unit_treatment = treatment.log_variance * treatment.shoppers
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    effect = math.log1p(minimum_lift)
    total = (z / effect) ** 2 * (
        unit_control / (1 - treatment_share) + unit_treatment / treatment_share
    )
    control_needed = math.ceil(total * (1 - treatment_share))
    treatment_needed = math.ceil(total * treatment_share)
    more = max(0, control_needed - control.shoppers) + max(0, treatment_needed - treatment.shoppers)
    return Horizon(minimum_lift, alpha, power, control_needed, treatment_needed, more)


# --- interleaving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preference:
    """An interleaving experiment's preference for B over A on one credit (clicks, revenue):
    delta = (wins of B - wins of A) / (searches with a winner), in [-1, 1], with its interval
    treating each shopper's searches as one cluster (None without enough data)."""

    wins_a: int
    wins_b: int
    shoppers: int
    delta: float | None
    low: float | None
    high: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def preference(
    wins_a: np.ndarray, wins_b: np.ndarray, confidence: float = CONFIDENCE
) -> Preference:
    """delta = sum(b - a) / sum(a + b) over shoppers (per-shopper counts of searches won), and
    its variance by the delta method for a ratio of per-shopper sums: with the residuals
    r_i = (b_i - a_i) - delta (a_i + b_i), Var(delta) ~ s_r^2 / (n mean(a + b)^2)."""
    a = np.asarray(wins_a, dtype=np.float64)
    b = np.asarray(wins_b, dtype=np.float64)
    n = len(a)
    decided = a + b
    total = float(decided.sum())
    counts = (int(a.sum()), int(b.sum()), n)
    if total <= 0:
        return Preference(*counts, None, None, None, None)
    delta = float((b - a).sum()) / total
    if n < 2:
        return Preference(*counts, delta, None, None, None)
    residuals = (b - a) - delta * decided
    error = math.sqrt(float(residuals.var(ddof=1)) / n) / (total / n)
    if error == 0:
        return Preference(*counts, delta, None, None, None)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    return Preference(
        *counts,
        delta=delta,
        low=max(-1.0, delta - z * error),
        high=min(1.0, delta + z * error),
        p_value=math.erfc(abs(delta / error) / math.sqrt(2)),
    )


def preference_horizon(
    wins_a: np.ndarray,
    wins_b: np.ndarray,
    *,
    delta: float,
    alpha: float = ALPHA,
    power: float = POWER,
) -> int | None:
    """Shoppers an interleaving experiment needs to detect a preference of `delta` at `alpha`
    with `power`: (z_{1-alpha/2} + z_power)^2 v / delta^2, v the per-shopper variance of the
    residuals scaled as in `preference` (None while it cannot be estimated)."""
    a = np.asarray(wins_a, dtype=np.float64)
    b = np.asarray(wins_b, dtype=np.float64)
    if len(a) < 2 or (a + b).sum() <= 0 or delta == 0:
        return None
    observed = float((b - a).sum() / (a + b).sum())
    residuals = (b - a) - observed * (a + b)
    per_shopper = float(residuals.var(ddof=1)) / float((a + b).mean()) ** 2
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    return math.ceil((z / delta) ** 2 * per_shopper)
