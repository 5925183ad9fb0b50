"""Numbers as a merchandiser reads them: rates as percentages, amounts in the shop's currency."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(share: float | None) -> str:
    """0.1234 -> "12.3%"; whole-looking rates keep one decimal so columns line up."""
    if share is None:
        return "—"
    return f"{share * 100:.1f}%"


@register.filter
def money(amount: float | None, currency: str = "") -> str:
    """2 decimals with thousands separators, after the currency code when the shop has one."""
    if amount is None:
        return "—"
    text = f"{amount:,.2f}"
    return f"{currency} {text}" if currency else text
