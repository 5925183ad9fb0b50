"""The readout over time, drawn for the admin pages: the treatment's cumulative revenue-per-search
lift at the end of each day with its interval as a band, its always-valid interval as dashed
lines, the zero line and the day the horizon was reached, as inline SVG (no script, nothing
downloaded: the pages' CSP allows it), and the days in a table under <details>. The experiment
page and the rule's holdout section use it; an interleaving experiment's page draws its
preferences day by day the same way."""

from __future__ import annotations

import math
from datetime import date

from django.utils.html import format_html, format_html_join

from ranking.experiment_stats import CONFIDENCE, Lift, Preference
from ranking.experiments import Readout, money_text, signed_percent
from ranking.interleaving import PREFERENCE_METRICS, InterleavingResult

WIDTH, HEIGHT = 600, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 96, 22, 30  # room for the lift labels, the zero line's name, days
MOST_DAY_LABELS = 8
# The band is drawn within these bounds (an early interval can span -90% to +900%); a lift
# outside them widens them.
LIFT_BOUNDS = (-0.5, 0.5)
STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0)
LINE, BAND, ZERO, HORIZON = "#417690", "#417690", "#666666", "#2e7d32"


def day_text(day: date) -> str:
    """A day as the pages say it: "6 Dec"."""
    return f"{day.day} {day:%b}"


def _percent(value: float) -> str:
    return "0%" if round(value * 100) == 0 else f"{value * 100:+.0f}%".replace("-", "\u2212")


def _lift_text(lift: Lift | None) -> str:
    if lift is None:
        return "not enough data yet"
    return (
        f"{signed_percent(lift.lift)} ({CONFIDENCE:.0%} interval {signed_percent(lift.low)} to "
        f"{signed_percent(lift.high)})"
    )


def chart_svg(
    days: list[date],
    lifts: list[Lift | None],
    *,
    label: str,
    always_valid: list[Lift | None] | None = None,
    reached: date | None = None,
) -> str:
    """One line over the days with its interval as a band (a lift, or an interleaving
    preference: both are fractions around 0), the always-valid interval as dashed lines when
    given, the zero line, and the day `reached` as a green line "may be read from here"."""
    known = [lift for lift in lifts if lift is not None]
    outer = [lift for lift in always_valid or () if lift is not None]
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    low = min([0.0, *(lift.low for lift in known + outer)])
    high = max([0.0, *(lift.high for lift in known + outer)])
    low = max(low, min([LIFT_BOUNDS[0], *(lift.lift for lift in known)]))
    high = min(high, max([LIFT_BOUNDS[1], *(lift.lift for lift in known)]))
    if high - low < 0.02:
        low, high = low - 0.01, high + 0.01

    def x(index: int) -> float:
        if len(days) == 1:
            return LEFT + plot_width / 2
        return round(LEFT + index * plot_width / (len(days) - 1), 1)

    def y(value: float) -> float:
        value = min(max(value, low), high)
        return round(TOP + (high - value) / (high - low) * plot_height, 1)

    parts: list[str] = []
    step = next((s for s in STEPS if (high - low) / s <= 6), STEPS[-1])
    # The axis ends on labelled ticks, so the highest and lowest points sit within the labels.
    low, high = math.floor(low / step - 1e-9) * step, math.ceil(high / step - 1e-9) * step
    for n in range(math.ceil(low / step), math.floor(high / step) + 1):
        tick = n * step
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e5e5e5"/>'
                '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>',
                LEFT,
                y(tick),
                LEFT + plot_width,
                y(tick),
                LEFT - 6,
                y(tick) + 4,
                _percent(tick),
            )
        )
    # The band and the line, over each run of consecutive days with a lift.
    runs: list[list[int]] = []
    for index, lift in enumerate(lifts):
        if lift is None:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    for run in runs:
        edge = [(x(i), y(lifts[i].high)) for i in run] + [  # type: ignore[union-attr]
            (x(i), y(lifts[i].low))  # type: ignore[union-attr]
            for i in reversed(run)
        ]
        parts.append(
            format_html(
                '<polygon points="{}" fill="{}" fill-opacity="0.18" stroke="none"/>'
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>',
                " ".join(f"{px},{py}" for px, py in edge),
                BAND,
                " ".join(f"{x(i)},{y(lifts[i].lift)}" for i in run),  # type: ignore[union-attr]
                LINE,
            )
        )
    # The always-valid interval: dashed lines over each run of days that has one.
    dashed: list[list[tuple[int, Lift]]] = []
    for index, bound in enumerate(always_valid or []):
        if bound is None:
            continue
        if dashed and dashed[-1][-1][0] == index - 1:
            dashed[-1].append((index, bound))
        else:
            dashed.append([(index, bound)])
    for stretch in dashed:
        for ends in ([bound.low for _, bound in stretch], [bound.high for _, bound in stretch]):
            parts.append(
                format_html(
                    '<polyline class="always-valid" points="{}" fill="none" stroke="{}" '
                    'stroke-width="1.5" stroke-dasharray="6 3"/>',
                    " ".join(
                        f"{x(i)},{y(value)}" for (i, _), value in zip(stretch, ends, strict=True)
                    ),
                    LINE,
                )
            )
    for index, (day, lift) in enumerate(zip(days, lifts, strict=True)):
        if lift is not None:
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}: {}</title></circle>',
                    x(index),
                    y(lift.lift),
                    LINE,
                    day_text(day),
                    _lift_text(lift),
                )
            )
    parts.append(
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="4 3"/>'
            '<text x="{}" y="{}" font-size="11" fill="{}">0: no difference</text>',
            LEFT,
            y(0.0),
            LEFT + plot_width,
            y(0.0),
            ZERO,
            LEFT + plot_width + 6,
            y(0.0) + 4,
            ZERO,
        )
    )
    every = math.ceil(len(days) / MOST_DAY_LABELS)
    parts.extend(
        format_html(
            '<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>',
            x(index),
            HEIGHT - 10,
            day_text(day),
        )
        for index, day in enumerate(days)
        # the last day too, unless it would crowd the label before it
        if index % every == 0 or (index == len(days) - 1 and index % every * 2 >= every)
    )
    if reached is not None and days[0] <= reached <= days[-1]:
        at = x((reached - days[0]).days)
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"/>'
                '<text x="{}" y="{}" font-size="11" fill="{}" text-anchor="middle">'
                "may be read from here</text>",
                at,
                TOP,
                at,
                TOP + plot_height,
                HORIZON,
                at,
                TOP - 8,
                HORIZON,
            )
        )
    return format_html(
        '<svg class="lift-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}">{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        format_html_join("", "{}", ((part,) for part in parts)),
    )


def lift_chart_html(
    readout: Readout, *, groups: tuple[str, str], versus: str, running: bool
) -> str:
    """The chart and the day table of `readout.daily`; "" without days. `groups` names the
    control and the treatment as the page does, `versus` the lift ("B against A"); `running`:
    whether more shoppers are coming (only then is the horizon's expected day said)."""
    days = readout.daily
    if not days:
        return ""
    reached = readout.horizon_reached_on
    svg = chart_svg(
        [day.day for day in days],
        [day.lift for day in days],
        label=f"Revenue per search, {versus}, day by day",
        always_valid=[day.always_valid for day in days],
        reached=reached,
    )
    if reached is not None:
        horizon = f"It reached the size it needs on {day_text(reached)} (the green line)."
    elif not running:
        horizon = "It did not reach the size it needs."
    elif readout.horizon_expected_on is not None:
        horizon = (
            f"Not read yet: at the shoppers per day of the last week it reaches the size it "
            f"needs around {day_text(readout.horizon_expected_on)}."
        )
    else:
        horizon = "Not read yet: the size it needs cannot be estimated yet."
    control, treatment = groups
    control_key, treatment_key = tuple(days[0].groups)  # in the comparison's order
    caption = format_html(
        "<strong>Revenue per search over time, {}</strong>: the line is the lift counting "
        "everything up to the end of each day (the shop's time zone), the band its {} interval, "
        "the dashed lines its always-valid interval. Early on it wanders; read the band once, "
        "at the horizon, not when it first leaves the zero line. The dashed lines may be read "
        "any day: once both are on one side of zero, the difference is real. {}",
        versus,
        f"{CONFIDENCE:.0%}",
        horizon,
    )
    rows = [
        (
            day_text(day.day),
            f"{day.groups[control_key].shoppers:,}",
            f"{day.groups[treatment_key].shoppers:,}",
            f"{int(day.groups[control_key].searches):,}",
            f"{int(day.groups[treatment_key].searches):,}",
            money_text(day.groups[control_key].revenue_per_search),
            money_text(day.groups[treatment_key].revenue_per_search),
            _lift_text(day.lift),
            "yes" if day.horizon is not None and day.horizon.reached else "not yet",
        )
        for day in days
    ]
    table = format_html(
        "<details><summary>Day by day</summary><table><thead><tr><th>Up to the end of</th>"
        "<th>Shoppers: {}</th><th>Shoppers: {}</th><th>Searches: {}</th><th>Searches: {}</th>"
        "<th>Revenue per search: {}</th><th>Revenue per search: {}</th><th>{}</th>"
        "<th>Can it be read?</th></tr></thead><tbody>{}</tbody></table></details>",
        control,
        treatment,
        control,
        treatment,
        control,
        treatment,
        versus[:1].upper() + versus[1:],
        format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            rows,
        ),
    )
    return format_html(
        '<figure class="lift-over-time"><figcaption>{}</figcaption>{}</figure>{}',
        caption,
        svg,
        table,
    )


def _as_lift(found: Preference) -> Lift | None:
    """A preference as the chart draws a lift: its value and interval, None while unknown."""
    if found.delta is None or found.low is None or found.high is None or found.p_value is None:
        return None
    return Lift(lift=found.delta, low=found.low, high=found.high, p_value=found.p_value)


def preference_chart_html(result: InterleavingResult) -> str:
    """An interleaving experiment's preferences over time: per credit (clicks, revenue) a chart
    of B's preference counting everything up to the end of each day with its interval, and the
    days in a table; "" without days."""
    days = result.daily
    if not days:
        return ""
    labels = {key: label for key, label, _ in PREFERENCE_METRICS}
    figures = []
    for key, label in labels.items():
        svg = chart_svg(
            [day.day for day in days],
            [_as_lift(day.preferences[key]) for day in days],
            label=f"Preference for B on {label.lower()}, day by day",
        )
        caption = format_html(
            "<strong>Preference for B over time, on {}</strong>: the line is B's share of the "
            "searches won minus A's, counting everything up to the end of each day (the shop's "
            "time zone), the band its {} interval; above 0, shoppers prefer B. Early on it "
            "wanders; read it once, after the searches you planned for, not when the band first "
            "leaves the zero line.",
            label.lower(),
            f"{CONFIDENCE:.0%}",
        )
        figures.append(
            format_html(
                '<figure class="preference-over-time"><figcaption>{}</figcaption>{}</figure>',
                caption,
                svg,
            )
        )
    rows = []
    for day in days:
        cells = [f"{day.shoppers:,}", f"{day.searches:,}"]
        for key in labels:
            found = day.preferences[key]
            cells.append(f"B {found.wins_b:,}, A {found.wins_a:,}: {_lift_text(_as_lift(found))}")
        rows.append(
            format_html(
                "<tr><th>{}</th>{}</tr>",
                day_text(day.day),
                format_html_join("", "<td>{}</td>", ((cell,) for cell in cells)),
            )
        )
    table = format_html(
        "<details><summary>Day by day</summary><table><thead><tr><th>Up to the end of</th>"
        "<th>Shoppers</th><th>Interleaved searches</th>{}</tr></thead><tbody>{}</tbody></table>"
        "</details>",
        format_html_join(
            "",
            "<th>Searches won on {}, and the preference</th>",
            ((label.lower(),) for label in labels.values()),
        ),
        format_html_join("", "{}", ((row,) for row in rows)),
    )
    return format_html("{}{}", format_html_join("", "{}", ((f,) for f in figures)), table)
