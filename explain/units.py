"""Features as a merchandiser reads them: a name in the shop's words and the value in its own
unit (the price in money, rates in %, counts as counts), undoing the transform the signals store
(log1p of counts and prices, freshness as a decay). Each feature's name and unit are its entry in
the feature registry (ranking/signals/features.py); this module formats each unit. The exact
stored values stay one click away on the pages that use this."""

from __future__ import annotations

import math
from collections.abc import Callable

from ranking.signals.features import BY_NAME, FRESHNESS_DAYS, Unit


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _count(value: float) -> str:
    count = math.expm1(value)
    return f"{count:,.0f}" if count >= 10 else f"{count:.1f}"


def _money(value: float) -> str:
    return f"{math.expm1(value):,.2f}"


def _plain_money(value: float) -> str:
    return f"{value:,.2f}"


def _score(value: float) -> str:
    return f"{value:.2f}"


def _flag(value: float) -> str:
    return "yes" if value >= 0.5 else "no"


def _age(value: float) -> str:
    """freshness = exp(-age in days / FRESHNESS_DAYS)."""
    if value <= 0:
        return "long ago"
    days = -FRESHNESS_DAYS * math.log(min(value, 1.0))
    return "today" if days < 1 else f"{days:,.0f} days ago"


def _change(value: float) -> str:
    """A log ratio as a relative change."""
    return f"{math.expm1(value) * 100:+.0f}%"


# How a stored value reads, per unit (the registry, ranking/signals/features.py, gives each
# feature's unit and its name in the shop's words).
FORMATS: dict[Unit, Callable[[float], str]] = {
    Unit.RATE: _percent,
    Unit.MONEY: _plain_money,
    Unit.LOG_MONEY: _money,
    Unit.LOG_COUNT: _count,
    Unit.LOG_CHANGE: _change,
    Unit.AGE: _age,
    Unit.FLAG: _flag,
    Unit.SCORE: _score,
}
assert set(FORMATS) == set(Unit), "every unit needs its format"


def feature_name(feature: str) -> str:
    """The feature's name in the shop's words (its registry label)."""
    return BY_NAME[feature].label


def shown_value(feature: str, value: float | None) -> str:
    """The stored value in the feature's own unit ("—" when unknown)."""
    if value is None or not math.isfinite(value):
        return "—"
    return FORMATS[BY_NAME[feature].unit](value)
