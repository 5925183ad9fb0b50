"""Inline SVG geometry for the explain UI: diverging bars of contributions, computed here and
drawn by the templates as <rect>s (no JavaScript, nothing downloaded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ranking.engine.records import Contribution

BAR_WIDTH = 240
BAR_HEIGHT = 16
# Segments narrower than this many pixels are drawn at this width, so none vanishes.
MIN_SEGMENT = 0.75


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    positive: bool
    shade: int  # 0 or 1: alternating shades tell neighbouring segments apart
    title: str


@dataclass(frozen=True)
class DivergingBar:
    """Negative contributions stacked left of the centre line, positive ones right of it."""

    width: int
    height: int
    center: float
    segments: tuple[Segment, ...]


def bar_scale(rows: Sequence[Sequence[Contribution]]) -> float:
    """One scale for a table: the largest one-sided sum of any row (at least a tiny epsilon)."""
    largest = 0.0
    for contributions in rows:
        positive = sum(c.contribution for c in contributions if c.contribution > 0)
        negative = -sum(c.contribution for c in contributions if c.contribution < 0)
        largest = max(largest, positive, negative)
    return largest or 1e-12


def diverging_bar(
    contributions: Sequence[Contribution],
    scale: float,
    *,
    width: int = BAR_WIDTH,
    height: int = BAR_HEIGHT,
) -> DivergingBar:
    """The bar of one breakdown; the largest contributions sit next to the centre line."""
    center = width / 2
    pixels_per_unit = (center - 1) / scale
    segments = []
    for positive in (True, False):
        side = [c for c in contributions if (c.contribution > 0) == positive and c.contribution]
        side.sort(key=lambda c: -abs(c.contribution))
        offset = 0.0
        for shade, c in enumerate(side):
            length = max(abs(c.contribution) * pixels_per_unit, MIN_SEGMENT)
            x = center + offset if positive else center - offset - length
            segments.append(
                Segment(
                    x=round(x, 2),
                    width=round(length, 2),
                    positive=positive,
                    shade=shade % 2,
                    title=f"{c.feature}: {c.contribution:+.4f}",
                )
            )
            offset += length
    return DivergingBar(width, height, center, tuple(segments))
