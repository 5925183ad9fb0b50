"""Template helpers of the explain UI: permalinks that keep the whole form in the URL."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from explain.units import feature_name as _feature_name
from explain.units import shown_value

register = template.Library()


@register.simple_tag(takes_context=True)
def explain_url(context: dict[str, Any], name: str, **changes: Any) -> str:
    """The URL of an explain page with the current request's parameters, some changed (a value
    of None drops the parameter)."""
    query = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    encoded = query.urlencode()
    return reverse(name) + (f"?{encoded}" if encoded else "")


@register.filter
def signed(value: float, digits: int = 4) -> str:
    """A number with its sign, e.g. +0.1234; what rounds to zero reads 0.00, never -0.00."""
    if round(value, digits) == 0:
        return f"{0.0:.{digits}f}"
    return f"{value:+.{digits}f}"


@register.filter
def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return (
        f"{value:.{digits}g}"
        if abs(value) >= 1e4 or (value and abs(value) < 1e-3)
        else (f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0")
    )


@register.filter
def feature_name(feature: str) -> str:
    """The feature's name in the shop's words (its label in ranking/signals/features.py)."""
    return _feature_name(feature)


@register.filter
def in_units(value: float | None, feature: str) -> str:
    """The stored value in the feature's own unit: {{ value|in_units:feature }}."""
    return shown_value(feature, value)
