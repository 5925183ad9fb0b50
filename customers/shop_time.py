"""Dates a merchandiser types or picks are wall-clock times in the shop's time zone
(Customer.time_zone, UTC when unset); they are stored as UTC instants and shown back in the shop's
zone, naming it. The one place that turns one into the other: the workbench's "publish from",
the rule form's windows and the experiment form's start and end all use it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from customers.models import Customer

# What a datetime-local picker sends and shows (and what a person types: a space for the T).
WALL_FORMAT = "%Y-%m-%dT%H:%M"
TEXT_FORMAT = "%Y-%m-%d %H:%M"
INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
DATE_FORMAT = "%Y-%m-%d"
UTC_ZONE = ZoneInfo("UTC")


def shop_zone(customer: Customer | None) -> ZoneInfo:
    """The shop's time zone (UTC when none is set, or no shop)."""
    return ZoneInfo((customer.time_zone if customer is not None else "") or "UTC")


def shop_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in `zone`. A time the clocks skip (spring forward)
    or pass twice (fall back) is refused in words; an aware datetime keeps its own instant."""
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    earlier, later = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    shown = wall.strftime(TEXT_FORMAT)
    if earlier.utcoffset() != later.utcoffset():
        # fold=0 and fold=1 differ only for a skipped or a repeated wall time.
        there = earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if there != wall:
            raise ValidationError(
                f"{shown} does not exist in {zone.key}: the clocks skip it. Pick another time.",
                code="skipped_time",
            )
        raise ValidationError(
            f"{shown} happens twice in {zone.key} (the clocks go back): give its offset, e.g. "
            f"{wall.strftime(DATE_FORMAT)}T{wall:%H:%M}{_offset(earlier)} or {_offset(later)}.",
            code="repeated_time",
        )
    return earlier.astimezone(UTC)


def _offset(value: datetime) -> str:
    text = value.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def shop_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock time (naive) that an aware instant is in `zone`."""
    return instant.astimezone(zone).replace(tzinfo=None)


def shop_text(instant: datetime | None, zone: ZoneInfo) -> str:
    """An instant as the shop reads it, e.g. "2026-12-01 09:00" ("" for none)."""
    if instant is None:
        return ""
    wall = shop_wall(instant, zone)
    return wall.strftime(TEXT_FORMAT + (":%S" if wall.second else ""))


def parse_shop_time(text: str, zone: ZoneInfo) -> datetime | None:
    """Typed text to a UTC instant: a wall-clock time in `zone` ("2026-12-01 09:00", a T for the
    space, a date alone for its midnight), or ISO 8601 with an offset (that instant). None for
    blank text; ValueError for what is not a date and time."""
    text = text.strip()
    if not text:
        return None
    value: datetime | None = None
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        for fmt in (*INPUT_FORMATS, DATE_FORMAT):
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        raise ValueError(f"{text!r} is not a date and time")
    return shop_instant(value, zone)


def zone_words(zones: dict[str, ZoneInfo]) -> str:
    """Which zone a form's times are in: one zone by its name; several, per shop."""
    keys = {zone.key for zone in zones.values()}
    if len(keys) <= 1:
        return next(iter(keys), "UTC")
    return "each shop's own: " + "; ".join(f"{name}: {zone.key}" for name, zone in zones.items())


class ShopDateTimeField(forms.DateTimeField):
    """A date and time picked (a datetime-local input) or typed in the shop's zone, cleaned to a
    UTC instant and shown back in the shop's zone. The form sets `zone` once it knows the shop."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=WALL_FORMAT)
    default_error_messages = {"invalid": "Pick a date and time, e.g. from the calendar."}

    def __init__(self, *args: Any, zone: ZoneInfo | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone or UTC_ZONE

    def to_python(self, value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return shop_instant(value, self.zone)
        if value in self.empty_values:
            return None
        try:
            return parse_shop_time(str(value), self.zone)
        except ValueError as exc:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from exc

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return shop_wall(value, self.zone)
        return value
