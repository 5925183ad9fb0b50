"""Reads an experiment's result: what each variant's shoppers searched, clicked, carted and bought,
and B against A (ranking.experiment_stats). Served by `GET /v1/experiments/{id}/results` and the
experiment's admin page; nothing here knows about HTTP.

Attribution (docs/experiments.md): the experiment's requests are the rank log's rows that name
it, of known shoppers (a request without user or session is served A but is in no variant). A
click, add-to-cart or purchase counts for the variant of the request it came from: its
`request_id` (sent, or filled at ingest from the shopper's click on the item). An event without
one, or whose request id names no logged request, counts for the variant of the shopper's last
request of the experiment within ATTRIBUTION_WINDOW before it; after that, for none. An event
that came from a request outside the experiment counts for none.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Expression,
    ExpressionWrapper,
    F,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Concat, TruncDate
from django.db.models.lookups import In
from django.utils import timezone

from events.models import Event, EventType
from events.services import MAX_CLOCK_SKEW
from ranking.engine.experiments import CONTROL, TREATMENT
from ranking.experiment_stats import (
    CONFIDENCE,
    Horizon,
    Lift,
    RatioEstimate,
    SampleRatio,
    always_valid_lift,
    fixed_horizon,
    ratio_estimate,
    relative_lift,
    sample_ratio,
)
from ranking.models import Experiment, ExperimentEnd, RankLog

ATTRIBUTION_WINDOW = timedelta(hours=24)
VARIANTS = (CONTROL, TREATMENT)
# The per-shopper sums every metric is a ratio of.
COUNTS = ("searches", "clicks", "add_to_carts", "purchases", "revenue")
HORIZON_METRIC = "revenue_per_search"
# The estimate of the day the horizon will be reached extrapolates the new shoppers per day of
# the readout's last days.
HORIZON_RATE_DAYS = 7


@dataclass(frozen=True)
class Metric:
    """One readout metric: a ratio of two per-shopper sums ("shoppers": 1 per shopper)."""

    key: str
    label: str  # in shop words, for the admin page
    numerator: str
    denominator: str
    unit: str  # "rate" (shown as %) or "money"


METRICS = (
    Metric("ctr", "Click-through rate (clicks per search)", "clicks", "searches", "rate"),
    Metric("add_to_cart_rate", "Add-to-cart rate (per search)", "add_to_carts", "searches", "rate"),
    Metric("conversion_rate", "Conversion (purchases per search)", "purchases", "searches", "rate"),
    Metric("revenue_per_search", "Revenue per search", "revenue", "searches", "money"),
    Metric("revenue_per_shopper", "Revenue per shopper", "revenue", "shoppers", "money"),
    Metric("average_order_value", "Average order value", "revenue", "purchases", "money"),
)


@dataclass(frozen=True)
class ShopperSums:
    """One variant's shoppers: per-shopper arrays aligned by position."""

    searches: np.ndarray
    clicks: np.ndarray
    add_to_carts: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray

    @property
    def shoppers(self) -> int:
        return len(self.searches)

    def column(self, name: str) -> np.ndarray:
        if name == "shoppers":
            return np.ones(self.shoppers)
        values: np.ndarray = getattr(self, name)
        return values

    def total(self, name: str) -> float:
        return float(self.column(name).sum())


@dataclass(frozen=True)
class VariantResult:
    variant: str
    shoppers: int
    totals: dict[str, float]  # COUNTS summed over the variant's shoppers
    estimates: dict[str, RatioEstimate]  # per METRICS key

    def value(self, metric: str) -> float | None:
        return self.estimates[metric].value


class JsonKeyText(Func):
    """The text under one key of a JSON object column, null without it. Django's own key
    transforms read a key of digits (a rule id) as an array index, which finds nothing."""

    output_field = CharField()

    def __init__(self, column: str, key: str) -> None:
        super().__init__(F(column), Value(key))
        self.key = key

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="jsonb_extract_path_text", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, _ = self.get_source_expressions()
        path = Value('$."' + self.key.replace('"', "") + '"')
        return Func(column, path, function="json_extract", output_field=CharField()).as_sql(
            compiler, connection, **extra
        )


@dataclass(frozen=True)
class Comparison:
    """Two groups of shoppers a readout compares: which rank-log rows are its requests, and each
    row's group, in SQL. An experiment's are its rows and their variant (A against B); a rule
    holdout's the rows where the rule matched and whether the shopper was held out
    (merchandising.holdouts). Attribution (docs/experiments.md section 3) is the same for both."""

    customer_id: int
    requests: Q  # the rank-log rows of the comparison, of the customer; each has a group
    group: Expression | F  # a rank-log row's group, one of `groups` on the comparison's rows
    control: str
    treatment: str
    treatment_share: float  # the configured share of shoppers in the treatment, in (0, 1)
    time_zone: str = "UTC"  # the shop's (Customer.time_zone): its days are the chart's days

    @property
    def groups(self) -> tuple[str, str]:
        return (self.control, self.treatment)

    def rows(self) -> QuerySet[RankLog]:
        """The comparison's requests of known shoppers (`group` says which group each is in)."""
        return (
            RankLog.objects.for_customer(self.customer_id)
            .filter(self.requests)
            .exclude(shopper_key="")
        )


@dataclass(frozen=True)
class DayGroup:
    """One group's shoppers up to the end of a day: how many, their searches and revenue."""

    shoppers: int
    searches: float
    revenue: float
    revenue_per_search: float | None


@dataclass(frozen=True)
class Day:
    """The readout as it stood at the end of one day of the shop (its time zone): per group, and
    the treatment's revenue-per-search lift with its fixed and always-valid intervals and the
    fixed horizon, on the data up to then."""

    day: date
    groups: dict[str, DayGroup]
    lift: Lift | None
    horizon: Horizon | None
    always_valid: Lift | None = None


@dataclass(frozen=True)
class Readout:
    """Per group, what its shoppers did, and the treatment against the control."""

    first_request_at: datetime | None
    last_request_at: datetime | None
    variants: dict[str, VariantResult]
    lifts: dict[str, Lift | None]  # the treatment against the control, per METRICS key
    sample_ratio: SampleRatio | None
    horizon: Horizon | None
    # The same lifts with always-valid intervals (experiment_stats.always_valid_lift): these may
    # be read at any look, not only at the horizon.
    always_valid: dict[str, Lift | None] = field(default_factory=dict, kw_only=True)
    # Day by day, cumulative: every day of the shop from the first request's to the last with
    # data (a day without any repeats the day before), and the day the horizon was reached, or
    # else when it will be at the shoppers per day of the last HORIZON_RATE_DAYS days.
    daily: tuple[Day, ...] = field(default=(), kw_only=True)
    horizon_reached_on: date | None = field(default=None, kw_only=True)
    horizon_expected_on: date | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ExperimentResult(Readout):
    experiment: Experiment


def _event_shopper_key() -> Case:
    """events.queries.shopper_key in SQL: "u:<user_id>", else "s:<session_id>", else ""."""
    return Case(
        When(~Q(user_id=""), then=Concat(Value("u:"), "user_id")),
        When(~Q(session_id=""), then=Concat(Value("s:"), "session_id")),
        default=Value(""),
        output_field=CharField(),
    )


# (group, shopper) -> day -> that day's searches, clicks, add-to-carts, purchases and revenue.
ShopperDays = dict[tuple[str, str], dict[date, dict[str, float]]]


def shopper_days(comparison: Comparison) -> tuple[ShopperDays, datetime | None, datetime | None]:
    """Per group and shopper, per day of the shop, the shopper's searches (rank requests) and the
    clicks, add-to-carts, purchases and revenue attributed to them; and the comparison's first
    and last request. An event counts on the later of its own day and its request's, so a day's
    sums are what was known at its end."""
    zone = ZoneInfo(comparison.time_zone or "UTC")
    served = comparison.rows().annotate(group=comparison.group)
    span = served.aggregate(first=Min("created_at"), last=Max("created_at"))
    rows: ShopperDays = defaultdict(dict)
    for request in (
        served.values("group", "shopper_key", day=TruncDate("created_at", tzinfo=zone))
        .annotate(searches=Count("id"))
        .order_by()
    ):
        unit = (request["group"], request["shopper_key"])
        rows[unit][request["day"]] = {"searches": request["searches"]}
    if span["first"] is not None:
        for (unit, day), outcomes in _attributed_events(comparison, span["first"], zone).items():
            if unit in rows:  # always: an attributed event's shopper was ranked in its group
                counts = rows[unit].setdefault(day, {})
                for name, value in outcomes.items():
                    counts[name] = counts.get(name, 0.0) + value
    return rows, span["first"], span["last"]


def shopper_sums(
    comparison: Comparison,
) -> tuple[dict[str, ShopperSums], datetime | None, datetime | None]:
    """Per group, each shopper's searches (rank requests) and the clicks, add-to-carts,
    purchases and revenue attributed to them; and the comparison's first and last request."""
    days, first, last = shopper_days(comparison)
    return _sums_of(_group_days(comparison, days)), first, last


@dataclass(frozen=True)
class _GroupDays:
    """One group's ShopperDays as flat arrays: one entry per (shopper, day) with data, the
    shopper's index (shoppers in key order) and the day's ordinal."""

    shoppers: int
    who: np.ndarray
    day: np.ndarray
    values: dict[str, np.ndarray]  # per COUNTS name

    def sums(self, name: str, until: int | None = None) -> np.ndarray:
        """Per shopper, the COUNTS `name` summed over the days (up to the ordinal `until`)."""
        if until is None:
            return np.bincount(self.who, weights=self.values[name], minlength=self.shoppers)
        known = self.day <= until
        return np.bincount(
            self.who[known], weights=self.values[name][known], minlength=self.shoppers
        )


def _group_days(comparison: Comparison, days: ShopperDays) -> dict[str, _GroupDays]:
    flat = {}
    for group in comparison.groups:
        who: list[int] = []
        ordinals: list[int] = []
        values: dict[str, list[float]] = {name: [] for name in COUNTS}
        units = sorted(unit for unit in days if unit[0] == group)
        for index, unit in enumerate(units):
            for day, counts in days[unit].items():
                who.append(index)
                ordinals.append(day.toordinal())
                for name in COUNTS:
                    values[name].append(counts.get(name, 0.0))
        flat[group] = _GroupDays(
            shoppers=len(units),
            who=np.array(who, dtype=np.int64),
            day=np.array(ordinals, dtype=np.int64),
            values={name: np.array(column, dtype=np.float64) for name, column in values.items()},
        )
    return flat


def _sums_of(flat: dict[str, _GroupDays]) -> dict[str, ShopperSums]:
    return {
        group: ShopperSums(**{name: days.sums(name) for name in COUNTS})
        for group, days in flat.items()
    }


def _attributed_events(
    comparison: Comparison, first: datetime, zone: ZoneInfo
) -> dict[tuple[tuple[str, str], date], Counter[str]]:
    """((group, shopper), day) -> clicks, add-to-carts, purchases and revenue attributed to them,
    on the later of the event's day and its request's (the shop's days, `zone`).

    One pass over the customer's clicks, carts and purchases since the comparison's first
    request (less MAX_CLOCK_SKEW: clocks differ): each looks up its request on the rank log's
    unique (customer, request_id) index; one without a logged request looks up the shopper's
    last request of the comparison on a (customer, ..., shopper, time) index. Grouped in SQL by
    request and shopper, summed per (group, shopper) here."""
    customer_id = comparison.customer_id
    # "<group>:<day>:<shopper key>" of the event's request, "" when that request is not one of
    # the comparison's; null when none is logged. (A group or a day holds no colon.)
    origin = (
        RankLog.objects.for_customer(customer_id)
        .filter(request_id=OuterRef("request_id"))
        .annotate(
            origin=Case(
                When(
                    comparison.requests,
                    then=Concat(
                        comparison.group,
                        Value(":"),
                        TruncDate("created_at", tzinfo=zone),
                        Value(":"),
                        "shopper_key",
                        output_field=CharField(),
                    ),
                ),
                default=Value(""),
                output_field=CharField(),
            )
        )
    )
    window_start = ExpressionWrapper(
        OuterRef("occurred_at") - Value(ATTRIBUTION_WINDOW), output_field=DateTimeField()
    )
    last_request = (
        comparison.rows()
        .annotate(group=comparison.group)
        .filter(
            shopper_key=OuterRef("shopper"),
            created_at__lte=OuterRef("occurred_at"),
            created_at__gte=window_start,
        )
        .order_by("-created_at", "-id")
    )
    grouped = (
        Event.objects.for_customer(customer_id)
        .filter(
            type__in=[EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE],
            occurred_at__gte=first - MAX_CLOCK_SKEW,
        )
        .annotate(
            shopper=_event_shopper_key(),
            origin=Subquery(origin.values("origin")[:1], output_field=CharField()),
        )
        .annotate(
            fallback=Case(
                When(origin__isnull=True, then=Subquery(last_request.values("group")[:1])),
                default=None,
                output_field=CharField(),
            )
        )
        .values("origin", "fallback", "shopper", day=TruncDate("occurred_at", tzinfo=zone))
        .annotate(
            clicks=Count("id", filter=Q(type=EventType.CLICK)),
            add_to_carts=Count("id", filter=Q(type=EventType.ADD_TO_CART)),
            purchases=Count("id", filter=Q(type=EventType.PURCHASE)),
            revenue=Sum("revenue", filter=Q(type=EventType.PURCHASE)),
        )
        .order_by()
    )
    units: dict[tuple[tuple[str, str], date], Counter[str]] = defaultdict(Counter)
    for row in grouped:
        day: date = row["day"]
        if row["origin"] is not None:
            group, _, rest = row["origin"].partition(":")
            requested, _, shopper = rest.partition(":")
            if group not in comparison.groups or not shopper:
                continue  # it came from a request outside the comparison
            day = max(day, date.fromisoformat(requested))
        elif row["fallback"] is not None:
            group, shopper = row["fallback"], row["shopper"]  # its request came before it
        else:
            continue
        units[((group, shopper), day)].update(
            {name: row[name] or 0 for name in ("clicks", "add_to_carts", "purchases", "revenue")}
        )
    return units


def comparison_readout(comparison: Comparison) -> Readout:
    """The readout of a comparison: per group its shoppers' figures, and the treatment's lifts
    over the control (fixed and always-valid intervals), the split check and the fixed horizon
    (ranking.experiment_stats)."""
    days, first, last = shopper_days(comparison)
    flat = _group_days(comparison, days)
    sums = _sums_of(flat)
    variants = {
        group: VariantResult(
            variant=group,
            shoppers=shoppers.shoppers,
            totals={name: shoppers.total(name) for name in COUNTS},
            estimates={
                metric.key: ratio_estimate(
                    shoppers.column(metric.numerator), shoppers.column(metric.denominator)
                )
                for metric in METRICS
            },
        )
        for group, shoppers in sums.items()
    }
    control, treatment = variants[comparison.control], variants[comparison.treatment]
    share = comparison.treatment_share
    return Readout(
        first_request_at=first,
        last_request_at=last,
        variants=variants,
        lifts={
            metric.key: relative_lift(
                control.estimates[metric.key], treatment.estimates[metric.key]
            )
            for metric in METRICS
        },
        always_valid={
            metric.key: always_valid_lift(
                control.estimates[metric.key], treatment.estimates[metric.key]
            )
            for metric in METRICS
        },
        sample_ratio=sample_ratio(control.shoppers, treatment.shoppers, share),
        horizon=fixed_horizon(
            control.estimates[HORIZON_METRIC], treatment.estimates[HORIZON_METRIC], share
        ),
        **_daily(comparison, flat),
    )


def _daily(comparison: Comparison, flat: dict[str, _GroupDays]) -> dict[str, Any]:
    """Readout.daily and the horizon's days: per day of the shop, each group's shoppers,
    searches and revenue up to its end, and the revenue-per-search lift and horizon on them
    (the statistics of the final readout, on the per-shopper sums known then)."""
    dated = [group.day for group in flat.values() if len(group.day)]
    if not dated:
        return {}
    first_day, last_day = min(int(d.min()) for d in dated), max(int(d.max()) for d in dated)
    daily = []
    for ordinal in range(first_day, last_day + 1):
        groups, estimates = {}, {}
        for name, group in flat.items():
            searches, revenue = group.sums("searches", ordinal), group.sums("revenue", ordinal)
            ranked = searches > 0
            estimate = ratio_estimate(revenue[ranked], searches[ranked])
            estimates[name] = estimate
            groups[name] = DayGroup(
                shoppers=int(ranked.sum()),
                searches=float(searches.sum()),
                revenue=float(revenue.sum()),
                revenue_per_search=estimate.value,
            )
        control, treatment = estimates[comparison.control], estimates[comparison.treatment]
        daily.append(
            Day(
                day=date.fromordinal(ordinal),
                groups=groups,
                lift=relative_lift(control, treatment),
                horizon=fixed_horizon(control, treatment, comparison.treatment_share),
                always_valid=always_valid_lift(control, treatment),
            )
        )
    reached = next((d.day for d in daily if d.horizon is not None and d.horizon.reached), None)
    return {
        "daily": tuple(daily),
        "horizon_reached_on": reached,
        "horizon_expected_on": None if reached else _horizon_expected(comparison, daily),
    }


def _horizon_expected(comparison: Comparison, daily: list[Day]) -> date | None:
    """When the horizon will be reached if each group keeps gaining shoppers at the rate of the
    last HORIZON_RATE_DAYS days; None when it cannot be sized yet or a group gains none."""
    last = daily[-1]
    if last.horizon is None:
        return None
    before = daily[-HORIZON_RATE_DAYS - 1] if len(daily) > HORIZON_RATE_DAYS else None
    span = min(len(daily), HORIZON_RATE_DAYS)
    needed = {
        comparison.control: last.horizon.control_needed,
        comparison.treatment: last.horizon.treatment_needed,
    }
    wait = 0
    for group, shoppers_needed in needed.items():
        shoppers = last.groups[group].shoppers
        if shoppers >= shoppers_needed:
            continue
        gained = shoppers - (before.groups[group].shoppers if before else 0)
        if gained <= 0:
            return None
        wait = max(wait, math.ceil((shoppers_needed - shoppers) * span / gained))
    return last.day + timedelta(days=wait)


def experiment_comparison(experiment: Experiment) -> Comparison:
    """The experiment's requests and their variant: the rows that name it, and those that
    name another layer's experiment with its variant among their `layer_variants`."""
    in_layer = JsonKeyText("layer_variants", str(experiment.pk))
    return Comparison(
        customer_id=experiment.customer_id,
        requests=Q(experiment_id=experiment.pk, variant__in=VARIANTS)
        | (Q(layer_variants__isnull=False) & Q(In(in_layer, list(VARIANTS)))),
        group=Case(
            When(experiment_id=experiment.pk, then=F("variant")),
            default=in_layer,
            output_field=CharField(),
        ),
        control=CONTROL,
        treatment=TREATMENT,
        treatment_share=experiment.treatment_percent / 100.0,
        time_zone=experiment.customer.time_zone,
    )


def experiment_result(*, experiment: Experiment) -> ExperimentResult:
    """The readout of one experiment (the caller has scoped it to its customer)."""
    readout = comparison_readout(experiment_comparison(experiment))
    return ExperimentResult(**vars(readout), experiment=experiment)


def horizon_verdict(result: Readout) -> str:
    """Whether the readout may be read, in words: "may be read" once both groups have the
    shoppers the fixed horizon needs, else how many more it needs."""
    horizon = result.horizon
    if result.first_request_at is None:
        return "not yet: no shopper has been ranked in it"
    if horizon is None:
        return "not yet: both variants need shoppers who bought something to size it"
    if horizon.reached:
        return "may be read"
    return f"not yet: {horizon.more_shoppers:,} more shoppers"


def always_valid_verdict(result: Readout) -> str:
    """What the always-valid interval of revenue per search says now, in words: it may be read
    at any time, and a difference it shows is one to act on."""
    lift = result.always_valid.get(HORIZON_METRIC)
    if lift is None:
        return "not enough data yet: both variants need shoppers who bought something"
    if lift.high < 0:
        return "B is lower (its always-valid interval is below 0)"
    if lift.low > 0:
        return "B is higher (its always-valid interval is above 0)"
    return "no clear difference yet (its always-valid interval holds 0)"


# --- the guardrail ------------------------------------------------------------------------------
# B is stopped when it earns significantly less revenue per search than A: the always-valid 95%
# interval of the lift (a confidence sequence, valid at every hourly look at once) lies entirely
# below 0. It is judged once the fixed horizon is reached, or earlier once each variant has
# GUARDRAIL_MIN_SHOPPERS shoppers and GUARDRAIL_MIN_PURCHASES purchases: enough for the delta
# method's normal approximation, on which the interval rests (docs/experiments.md, section 7,
# says what a check every hour costs in false stops).
GUARDRAIL_METRIC = "revenue_per_search"
GUARDRAIL_MIN_SHOPPERS = 1000
GUARDRAIL_MIN_PURCHASES = 50


def guardrail_may_judge(result: ExperimentResult) -> bool:
    """Whether the experiment has the sample the guardrail needs: its horizon, or the floor."""
    if result.horizon is not None and result.horizon.reached:
        return True
    return all(
        variant.shoppers >= GUARDRAIL_MIN_SHOPPERS
        and variant.totals["purchases"] >= GUARDRAIL_MIN_PURCHASES
        for variant in result.variants.values()
    )


def guardrail_breach(result: ExperimentResult) -> Lift | None:
    """B's revenue-per-search lift, with its always-valid interval, when that interval is below
    0 and the experiment may be judged, else None."""
    lift = result.always_valid.get(GUARDRAIL_METRIC)
    if lift is None or lift.high >= 0 or not guardrail_may_judge(result):
        return None
    return lift


def rate_text(value: float | None) -> str:
    """A rate as the readout shows it: 12.3%, or 0.45% below 1%; "-" for none."""
    if value is None:
        return "-"
    return f"{value:.2%}" if value < 0.01 else f"{value:.1%}"


def money_text(value: float | None, currency: str = "") -> str:
    """Money as the readout shows it: 1,234.50, after the shop's currency code when it has one
    (EUR 1,234.50); "-" for none."""
    if value is None:
        return "-"
    return f"{currency} {value:,.2f}" if currency else f"{value:,.2f}"


def signed_percent(value: float) -> str:
    """+4.2%, or -4.2% with a true minus sign: a lift as the readout shows it."""
    return f"{value:+.1%}".replace("-", "\u2212")


def guardrail_words(lift: Lift) -> str:
    """What the guardrail says when it stops an experiment, in shop words."""
    return (
        f"stopped by the guardrail: B earned {-lift.lift:.1%} less revenue per search "
        f"(always-valid {CONFIDENCE:.0%} interval {signed_percent(lift.low)} to "
        f"{signed_percent(lift.high)})"
    )


def check_summary(result: ExperimentResult) -> dict[str, object]:
    """What a periodic check keeps of the readout (Experiment.last_check): JSON."""
    lift = result.lifts[HORIZON_METRIC]
    always_valid = result.always_valid.get(HORIZON_METRIC)
    ratio = result.sample_ratio
    return {
        "shoppers": {name: variant.shoppers for name, variant in result.variants.items()},
        "revenue_per_search": None
        if lift is None
        else {
            "lift": lift.lift,
            "low": lift.low,
            "high": lift.high,
            "significant": lift.significant,
        },
        "always_valid": None
        if always_valid is None
        else {
            "low": always_valid.low,
            "high": always_valid.high,
            "significant": always_valid.significant,
        },
        "sample_ratio_p_value": None if ratio is None else ratio.p_value,
        "may_be_read": bool(result.horizon and result.horizon.reached),
    }


# The `status` of the API: running, or how it stopped ("not_running": created stopped).
STATUS_OF_END: dict[str, str] = {
    ExperimentEnd.STOPPED: "stopped",
    ExperimentEnd.GUARDRAIL: "stopped_by_guardrail",
    ExperimentEnd.PROMOTED: "promoted",
    ExperimentEnd.SCHEDULED: "ended",
}


def experiment_status(experiment: Experiment) -> str:
    """ "running", "scheduled" (its start is ahead), "not_running", or STATUS_OF_END's word for
    how it stopped."""
    if experiment.enabled:
        ahead = experiment.starts_at is not None and experiment.starts_at > timezone.now()
        return "scheduled" if ahead else "running"
    return STATUS_OF_END.get(experiment.end_reason, "not_running")
