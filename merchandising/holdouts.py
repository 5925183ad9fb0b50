"""A rule's holdout readout: did the shoppers who saw the rule do better than those held out of it?

The engine records, on each rank request where a rule with a holdout matched, whether the shopper
was held out of it or exposed to it (RankLog.rule_holdouts, merchandising.engine.RuleSet.hold_out).
Only those requests count, so both groups are the same kind of request and the difference is the
rule's effect. Events are attributed and the statistics computed exactly as for an experiment
(ranking.experiments.comparison_readout, docs/experiments.md "Rule holdouts"); nothing here knows
about HTTP.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from django.db.models import Q
from django.db.models.lookups import In
from django.utils.html import format_html, format_html_join

from merchandising.engine import EXPOSED, HELD_OUT
from merchandising.models import Rule
from ranking.experiment_chart import lift_chart_html
from ranking.experiment_stats import CONFIDENCE, MINIMUM_LIFT
from ranking.experiments import (
    ATTRIBUTION_WINDOW,
    HORIZON_METRIC,
    METRICS,
    Comparison,
    JsonKeyText,
    Readout,
    comparison_readout,
    horizon_verdict,
    money_text,
    rate_text,
    signed_percent,
)

GROUPS = (HELD_OUT, EXPOSED)


def rule_comparison(rule: Rule) -> Comparison:
    """The requests where the rule matched with a holdout (those where only other holdout rules
    matched have no group of this rule), grouped by the shopper's group."""
    group = JsonKeyText("rule_holdouts", str(rule.pk))
    return Comparison(
        customer_id=rule.customer_id,
        requests=Q(rule_holdouts__isnull=False) & Q(In(group, list(GROUPS))),
        group=group,
        control=HELD_OUT,
        treatment=EXPOSED,
        # The share set now. A rule whose holdout was removed since keeps its readout, sized as
        # if 1% were held out, without a split check (the share it ran with is not known).
        treatment_share=1.0 - max(rule.holdout_percent, 1) / 100.0,
        time_zone=rule.customer.time_zone,
    )


def rule_holdout_readout(*, rule: Rule) -> Readout:
    """The holdout readout of one rule (the caller has scoped it to its customer): the shoppers
    who saw it against those held out, over the requests where it matched."""
    readout = comparison_readout(rule_comparison(rule))
    return readout if rule.holdout_percent else replace(readout, sample_ratio=None)


def holdout_words(rule: Rule, readout: Readout) -> str:
    """The readout in one sentence of shop words, as the admin page and the API say it."""
    lift = readout.lifts[HORIZON_METRIC]
    held_out = f"the {rule.holdout_percent}% held out" if rule.holdout_percent else "those held out"
    if readout.first_request_at is None:
        if not rule.holdout_percent:
            return "No holdout: every shopper sees this rule."
        return f"No search has matched this rule yet: nothing to compare with {held_out}."
    if lift is None:
        return (
            f"Not enough purchases yet to compare the shoppers who saw this rule with {held_out}."
        )
    if not lift.significant:
        verdict = "no clear difference yet"
    elif lift.lift > 0:
        verdict = "the rule earns more"
    else:
        verdict = "the rule earns less"
    if round(abs(lift.lift), 3) == 0:
        change, than = "about the same", "as"
    else:
        change, than = f"{abs(lift.lift):.1%} {'more' if lift.lift > 0 else 'less'}", "than"
    return (
        f"Shoppers who saw this rule earned {change} revenue per search "
        f"({CONFIDENCE:.0%} interval {signed_percent(lift.low)} to {signed_percent(lift.high)}) "
        f"{than} {held_out}: {verdict}."
    )


def holdout_html(rule: Rule, readout: Readout) -> str:
    """The readout as the rule's admin page shows it: the sentence, then one row per figure."""
    held_out, exposed = readout.variants[HELD_OUT], readout.variants[EXPOSED]
    rows: list[tuple[str, str, str, str]] = [
        ("Shoppers", f"{held_out.shoppers:,}", f"{exposed.shoppers:,}", ""),
        (
            "Searches",
            f"{int(held_out.totals['searches']):,}",
            f"{int(exposed.totals['searches']):,}",
            "",
        ),
    ]
    currency = rule.customer.currency
    for metric in METRICS:
        shown = rate_text if metric.unit == "rate" else partial(money_text, currency=currency)
        lift = readout.lifts[metric.key]
        rows.append(
            (
                metric.label,
                shown(held_out.value(metric.key)),
                shown(exposed.value(metric.key)),
                "not enough data yet"
                if lift is None
                else f"{signed_percent(lift.lift)} ({CONFIDENCE:.0%} interval "
                f"{signed_percent(lift.low)} to {signed_percent(lift.high)})"
                + (": a clear difference" if lift.significant else ""),
            )
        )
    table = format_html(
        "<table><thead><tr><th></th><th>Held out (did not see it)</th><th>Saw the rule</th>"
        "<th>Saw it against held out</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )
    notes = []
    ratio = readout.sample_ratio
    if ratio is not None and ratio.mismatch and rule.holdout_percent:
        notes.append(
            (
                "Warning: the shoppers are not split as set. "
                f"{1 - ratio.observed_share:.1%} are held out where {rule.holdout_percent}% "
                "should be, and chance alone splits them this unevenly less than once in 1,000 "
                "holdouts. Do not trust the numbers above until the cause is found (was the "
                "share changed while the rule ran?).",
            )
        )
    if readout.first_request_at is not None and readout.last_request_at is not None:
        notes.append(
            (
                f"Searches where the rule applied, from {readout.first_request_at:%Y-%m-%d %H:%M} "
                f"to {readout.last_request_at:%Y-%m-%d %H:%M} UTC.",
            )
        )
    notes.append(
        (
            f"Can it be read? {horizon_verdict(readout)} (to see a {MINIMUM_LIFT:.0%} change in "
            "revenue per search 8 times in 10, at 95% confidence).",
        )
    )
    notes.append(
        (
            "Only searches where the rule applied count (its query, category, surface and "
            "dates). A shopper's clicks, carts and purchases count for the search they came "
            "from, or else for their last such search within the "
            f"{ATTRIBUTION_WINDOW.total_seconds() / 3600:.0f} hours before. Held-out shoppers "
            "still see the other rules.",
        )
    )
    chart = lift_chart_html(
        readout,
        groups=("held out", "saw the rule"),
        versus="saw the rule against held out",
        running=rule.enabled and not rule.draft and bool(rule.holdout_percent),
    )
    return format_html(
        '<div id="holdout-readout"><p class="holdout-summary"><strong>{}</strong></p>{}'
        "<ul>{}</ul>{}</div>",
        holdout_words(rule, readout),
        table,
        format_html_join("", "<li>{}</li>", notes),
        chart,
    )
