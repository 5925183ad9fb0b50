"""`GET /v1/experiments`: the calling customer's experiments, and
`GET /v1/experiments/{id}/results`: the readout of one of them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import BaseModel, Field
from rest_framework.request import Request

from core.errors import FieldError, NotFound, invalid_request
from core.schema import PROBLEM_RESPONSES, RESPONSE
from customers.api import CustomerApi, json_response
from customers.models import Scope
from ranking.engine.experiments import INTERLEAVED
from ranking.engine.interleaving import TEAM_A, TEAM_B
from ranking.experiment_stats import (
    ALPHA,
    CONFIDENCE,
    MINIMUM_LIFT,
    POWER,
    SAMPLE_RATIO_P,
    SEQUENTIAL_TUNED_SHOPPERS,
    Lift,
)
from ranking.experiments import (
    ATTRIBUTION_WINDOW,
    HORIZON_METRIC,
    METRICS,
    STATUS_OF_END,
    ExperimentResult,
    Readout,
    always_valid_verdict,
    experiment_result,
    experiment_status,
    horizon_verdict,
)
from ranking.interleaving import InterleavingResult, interleaving_result, preference_words
from ranking.models import Experiment, ExperimentMethod, Surface

# Ids PostgreSQL's bigint can hold; a larger one names no experiment.
MAX_ID = 2**63 - 1
STATUSES = ("running", "scheduled", "not_running", *STATUS_OF_END.values())
# The list's length: the newest experiments (running ones are few: one per slice of a layer).
MAX_LISTED = 500
Status = Literal[
    "running", "scheduled", "not_running", "stopped", "stopped_by_guardrail", "promoted", "ended"
]


class ExperimentOut(BaseModel):
    model_config = RESPONSE

    id: int
    name: str
    surface: str
    treatment_model: str = Field(
        description='what B is: a model\'s label, "config:<name>" or "rules tagged to B"'
    )
    kind: Literal["model", "config", "rules"] = Field(
        description="what B changes: the model, the ranking config, or adds the tagged rules"
    )
    treatment_percent: int = Field(description="the share of the experiment's shoppers in B")
    layer: str = Field(
        description="experiments of one layer never share a shopper; those of different layers "
        "can (docs/experiments.md, Layers)"
    )
    traffic_percent: int = Field(description="the share of the layer's shoppers it holds")
    layer_slice: list[int] | None = Field(
        description="the part of the layer's hash it holds, [from, to) in percent; null until "
        "it first runs"
    )
    method: Literal["ab", "interleave"] = Field(
        description="ab: each shopper sees A or B; interleave: the shoppers in the share see "
        "A's and B's orders merged in one list"
    )
    enabled: bool
    status: Status
    started_at: datetime
    starts_at: datetime | None = Field(description="when shoppers are split from (null: at once)")
    ends_at: datetime | None = Field(description="when it ends as scheduled (null: when stopped)")
    ended_at: datetime | None
    ended_by: str
    end_summary: str


class VariantOut(BaseModel):
    model_config = RESPONSE

    variant: str
    shoppers: int
    searches: int
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: float
    ctr: float | None
    add_to_cart_rate: float | None
    conversion_rate: float | None
    revenue_per_search: float | None
    revenue_per_shopper: float | None
    average_order_value: float | None


class AlwaysValidOut(BaseModel):
    """The lift's always-valid interval: it covers the true lift at every look at once, so it
    may be read at any time (docs/experiments.md, section 5)."""

    model_config = RESPONSE

    low: float
    high: float
    p_value: float = Field(
        description="the mixture SPRT's p-value: below alpha when the interval excludes 0"
    )
    significant: bool = Field(description="whether the always-valid interval excludes 0")


class LiftOut(BaseModel):
    model_config = RESPONSE

    metric: str
    lift: float | None
    low: float | None
    high: float | None
    p_value: float | None
    significant: bool
    always_valid: AlwaysValidOut | None = Field(
        description="the always-valid interval (null while it cannot be estimated)"
    )


class DayVariantOut(BaseModel):
    model_config = RESPONSE

    variant: str
    shoppers: int
    searches: int
    revenue: float
    revenue_per_search: float | None


class DayLiftOut(BaseModel):
    model_config = RESPONSE

    lift: float
    low: float
    high: float
    p_value: float
    significant: bool
    always_valid: AlwaysValidOut | None


class DayOut(BaseModel):
    """The readout as it stood at the end of one day: every figure up to then."""

    model_config = RESPONSE

    day: date = Field(description="a day of the shop (its time zone), from the first request's")
    variants: list[DayVariantOut]
    revenue_per_search_lift: DayLiftOut | None = Field(
        description="the cumulative lift of revenue per search with its interval (null while it "
        "cannot be estimated)"
    )
    may_be_read: bool = Field(description="whether the fixed horizon was reached by then")


class SampleRatioOut(BaseModel):
    model_config = RESPONSE

    expected_share_b: float
    observed_share_b: float
    chi_square: float
    p_value: float
    mismatch: bool


class HorizonOut(BaseModel):
    model_config = RESPONSE

    metric: str
    minimum_lift: float
    alpha: float
    power: float
    shoppers_needed_a: int | None
    shoppers_needed_b: int | None
    more_shoppers: int | None
    may_be_read: bool
    verdict: str
    reached_on: date | None = Field(
        description="the first day (the shop's time zone) at whose end it was reached"
    )
    expected_on: date | None = Field(
        description="not reached yet: the day it will be if each group keeps gaining shoppers "
        "at the rate of the last 7 days (null when that cannot be said)"
    )


class SequentialOut(BaseModel):
    """Whether the readout may be read now, at any look: the always-valid interval of revenue
    per search."""

    model_config = RESPONSE

    metric: Literal["revenue_per_search"]
    alpha: float
    tuned_shoppers: int = Field(
        description="the shoppers (both variants) at which the always-valid interval is narrowest"
    )
    excludes_zero: bool = Field(description="whether B differs from A, read at any time")
    verdict: str = Field(description="in words, as the admin page says it")


class PreferenceOut(BaseModel):
    model_config = RESPONSE

    metric: Literal["clicks", "revenue"] = Field(
        description="what a search is won on: the clicks, or the purchase revenue, credited to "
        "each team's items"
    )
    credited_a: float = Field(description="clicks (or revenue) on the items A picked")
    credited_b: float = Field(description="clicks (or revenue) on the items B picked")
    wins_a: int = Field(description="searches in which A's items got more")
    wins_b: int = Field(description="searches in which B's items got more")
    ties: int = Field(description="searches neither won: equal credit, most often none")
    preference: float | None = Field(
        description="(wins_b - wins_a) / (wins_a + wins_b), from -1 to 1; above 0: B preferred"
    )
    low: float | None
    high: float | None
    p_value: float | None
    significant: bool
    verdict: str = Field(description="the preference in words, as the admin page shows it")


class DayPreferenceOut(BaseModel):
    model_config = RESPONSE

    metric: Literal["clicks", "revenue"]
    wins_a: int
    wins_b: int
    preference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    significant: bool


class InterleavingDayOut(BaseModel):
    """The preferences as they stood at the end of one day: every search and event up to then."""

    model_config = RESPONSE

    day: date = Field(description="a day of the shop (its time zone), from the first search's")
    shoppers: int
    searches: int
    preferences: list[DayPreferenceOut]


class InterleavingOut(BaseModel):
    model_config = RESPONSE

    shoppers: int = Field(description="shoppers with an interleaved search")
    searches: int = Field(description="interleaved searches of those shoppers")
    clicks_a: int
    clicks_b: int
    purchases_a: int
    purchases_b: int
    revenue_a: float
    revenue_b: float
    preferences: list[PreferenceOut]
    daily: list[InterleavingDayOut] = Field(
        description="cumulative, day by day; a day without traffic repeats the day before"
    )


class ExperimentResultsOut(BaseModel):
    model_config = RESPONSE

    experiment: ExperimentOut
    first_request_at: datetime | None
    last_request_at: datetime | None
    attribution_window_hours: float
    confidence: float
    variants: list[VariantOut] = Field(description="A/B tests only (empty for interleaving)")
    lifts: list[LiftOut] = Field(description="A/B tests only (empty for interleaving)")
    sample_ratio: SampleRatioOut | None
    horizon: HorizonOut | None = Field(
        description="A/B tests only (null for interleaving): the fixed horizon, how long to run"
    )
    sequential: SequentialOut | None = Field(
        description="A/B tests only (null for interleaving): whether it may be read now"
    )
    daily: list[DayOut] = Field(
        description="A/B tests only (empty for interleaving): cumulative, day by day; a day "
        "without traffic repeats the day before"
    )
    interleaving: InterleavingOut | None = Field(
        default=None, description="interleaving experiments only: the credit per team"
    )


class VariantPlanOut(BaseModel):
    model_config = RESPONSE

    variant: Literal["A", "B", "interleaved"]
    share: float
    ranker: str


class HeadlineOut(BaseModel):
    model_config = RESPONSE

    metric: Literal["revenue_per_search"]
    lift: float | None
    low: float | None
    high: float | None
    significant: bool
    shoppers_a: int
    shoppers_b: int
    sample_ratio_mismatch: bool
    may_be_read: bool
    checked_at: datetime


class ExperimentListItemOut(ExperimentOut):
    variants: list[VariantPlanOut]
    headline: HeadlineOut | None


class ExperimentsOut(BaseModel):
    model_config = RESPONSE

    experiments: list[ExperimentListItemOut]


def headline_as_dict(experiment: Experiment) -> dict[str, Any] | None:
    """The latest periodic check's revenue-per-search lift (Experiment.last_check); None before
    the first check."""
    check = experiment.last_check or {}
    if experiment.checked_at is None or "shoppers" not in check:
        return None
    lift = check.get("revenue_per_search") or {}
    p_value = check.get("sample_ratio_p_value")
    return {
        "metric": HORIZON_METRIC,
        "lift": lift.get("lift"),
        "low": lift.get("low"),
        "high": lift.get("high"),
        "significant": bool(lift.get("significant")),
        "shoppers_a": check["shoppers"].get("A", 0),
        "shoppers_b": check["shoppers"].get("B", 0),
        "sample_ratio_mismatch": p_value is not None and p_value < SAMPLE_RATIO_P,
        "may_be_read": bool(check.get("may_be_read")),
        "checked_at": experiment.checked_at,
    }


def experiment_as_dict(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "surface": experiment.surface,
        "treatment_model": experiment.treatment_label,
        "kind": experiment.kind,
        "treatment_percent": experiment.treatment_percent,
        "layer": experiment.layer,
        "traffic_percent": experiment.traffic_percent,
        "layer_slice": None
        if experiment.layer_slot is None
        else [experiment.layer_slot, experiment.layer_slot + experiment.traffic_percent],
        "method": experiment.method,
        "enabled": experiment.enabled,
        "status": experiment_status(experiment),
        "started_at": experiment.starts_at or experiment.created_at,
        "starts_at": experiment.starts_at,
        "ends_at": experiment.ends_at,
        "ended_at": experiment.ended_at,
        "ended_by": experiment.ended_by,
        "end_summary": experiment.end_summary,
    }


def always_valid_as_dict(lift: Lift | None) -> dict[str, Any] | None:
    if lift is None:
        return None
    return {
        "low": lift.low,
        "high": lift.high,
        "p_value": lift.p_value,
        "significant": lift.significant,
    }


def readout_as_dict(readout: Readout) -> dict[str, Any]:
    """What every readout's API shows: its span, its groups' figures, the lifts and the horizon
    (an experiment's groups are its variants, a rule holdout's "held_out" and "exposed")."""
    horizon = readout.horizon
    return {
        "first_request_at": readout.first_request_at,
        "last_request_at": readout.last_request_at,
        "attribution_window_hours": ATTRIBUTION_WINDOW.total_seconds() / 3600,
        "confidence": CONFIDENCE,
        "variants": [
            {
                "variant": variant.variant,
                "shoppers": variant.shoppers,
                **{
                    name: int(total) if name != "revenue" else total
                    for name, total in variant.totals.items()
                },
                **{metric.key: variant.value(metric.key) for metric in METRICS},
            }
            for variant in readout.variants.values()
        ],
        "lifts": [
            {
                "metric": key,
                "lift": lift.lift if lift else None,
                "low": lift.low if lift else None,
                "high": lift.high if lift else None,
                "p_value": lift.p_value if lift else None,
                "significant": bool(lift and lift.significant),
                "always_valid": always_valid_as_dict(readout.always_valid.get(key)),
            }
            for key, lift in readout.lifts.items()
        ],
        "horizon": {
            "metric": HORIZON_METRIC,
            "minimum_lift": MINIMUM_LIFT,
            "alpha": ALPHA,
            "power": POWER,
            "shoppers_needed_a": horizon.control_needed if horizon else None,
            "shoppers_needed_b": horizon.treatment_needed if horizon else None,
            "more_shoppers": horizon.more_shoppers if horizon else None,
            "may_be_read": bool(horizon and horizon.reached),
            "verdict": horizon_verdict(readout),
            "reached_on": readout.horizon_reached_on,
            "expected_on": readout.horizon_expected_on,
        },
        "daily": [
            {
                "day": day.day,
                "variants": [
                    {
                        "variant": name,
                        "shoppers": group.shoppers,
                        "searches": int(group.searches),
                        "revenue": group.revenue,
                        "revenue_per_search": group.revenue_per_search,
                    }
                    for name, group in day.groups.items()
                ],
                "revenue_per_search_lift": None
                if day.lift is None
                else {
                    "lift": day.lift.lift,
                    "low": day.lift.low,
                    "high": day.lift.high,
                    "p_value": day.lift.p_value,
                    "significant": day.lift.significant,
                    "always_valid": always_valid_as_dict(day.always_valid),
                },
                "may_be_read": bool(day.horizon and day.horizon.reached),
            }
            for day in readout.daily
        ],
    }


def result_as_dict(result: ExperimentResult) -> dict[str, Any]:
    ratio = result.sample_ratio
    always_valid = result.always_valid.get(HORIZON_METRIC)
    return {
        "experiment": experiment_as_dict(result.experiment),
        **readout_as_dict(result),
        "sequential": {
            "metric": HORIZON_METRIC,
            "alpha": ALPHA,
            "tuned_shoppers": SEQUENTIAL_TUNED_SHOPPERS,
            "excludes_zero": always_valid is not None and always_valid.significant,
            "verdict": always_valid_verdict(result),
        },
        "sample_ratio": None
        if ratio is None
        else {
            "expected_share_b": ratio.expected_share,
            "observed_share_b": ratio.observed_share,
            "chi_square": ratio.chi_square,
            "p_value": ratio.p_value,
            "mismatch": ratio.mismatch,
        },
    }


def interleaving_as_dict(result: InterleavingResult) -> dict[str, Any]:
    a, b = result.totals[TEAM_A], result.totals[TEAM_B]
    return {
        "experiment": experiment_as_dict(result.experiment),
        "first_request_at": result.first_request_at,
        "last_request_at": result.last_request_at,
        "attribution_window_hours": ATTRIBUTION_WINDOW.total_seconds() / 3600,
        "confidence": CONFIDENCE,
        "variants": [],
        "lifts": [],
        "sample_ratio": None,
        "horizon": None,
        "sequential": None,
        "daily": [],
        "interleaving": {
            "shoppers": result.shoppers,
            "searches": result.searches,
            "clicks_a": int(a["clicks"]),
            "clicks_b": int(b["clicks"]),
            "purchases_a": int(a["purchases"]),
            "purchases_b": int(b["purchases"]),
            "revenue_a": a["revenue"],
            "revenue_b": b["revenue"],
            "preferences": [
                {
                    "metric": key,
                    "credited_a": credit.credited_a,
                    "credited_b": credit.credited_b,
                    "wins_a": credit.preference.wins_a,
                    "wins_b": credit.preference.wins_b,
                    "ties": credit.ties,
                    "preference": credit.preference.delta,
                    "low": credit.preference.low,
                    "high": credit.preference.high,
                    "p_value": credit.preference.p_value,
                    "significant": credit.preference.significant,
                    "verdict": preference_words(credit),
                }
                for key, credit in result.preferences.items()
            ],
            "daily": [
                {
                    "day": day.day,
                    "shoppers": day.shoppers,
                    "searches": day.searches,
                    "preferences": [
                        {
                            "metric": key,
                            "wins_a": found.wins_a,
                            "wins_b": found.wins_b,
                            "preference": found.delta,
                            "low": found.low,
                            "high": found.high,
                            "p_value": found.p_value,
                            "significant": found.significant,
                        }
                        for key, found in day.preferences.items()
                    ],
                }
                for day in result.daily
            ],
        },
    }


class ExperimentResultsApi(CustomerApi):
    required_scope = Scope.RANK
    model = Experiment

    @extend_schema(
        operation_id="experiment_results",
        summary="Read an experiment's result: per variant and B against A, or for an "
        "interleaving experiment the credit per team and the preference",
        parameters=[OpenApiParameter("experiment_id", int, OpenApiParameter.PATH)],
        responses={200: ExperimentResultsOut, **PROBLEM_RESPONSES},
        tags=["experiments"],
    )
    def get(self, request: Request, experiment_id: int) -> HttpResponse:
        experiment = None
        if experiment_id <= MAX_ID:
            experiment = (
                self.get_queryset()
                .select_related("treatment_model", "treatment_config")
                .filter(pk=experiment_id)
                .first()
            )
        if experiment is None:
            raise NotFound(f"No experiment with id {experiment_id}.")
        if experiment.method == ExperimentMethod.INTERLEAVE:
            return json_response(interleaving_as_dict(interleaving_result(experiment=experiment)))
        return json_response(result_as_dict(experiment_result(experiment=experiment)))


def variant_plan(experiment: Experiment) -> list[dict[str, Any]]:
    """Who gets what: A and B's shares, or for interleaving the share that sees both merged."""
    share = experiment.treatment_percent / 100
    label = experiment.treatment_label
    if experiment.method == ExperimentMethod.INTERLEAVE:
        return [{"variant": INTERLEAVED, "share": share, "ranker": f"live + {label}"}]
    return [
        {"variant": "A", "share": (100 - experiment.treatment_percent) / 100, "ranker": "live"},
        {"variant": "B", "share": share, "ranker": label},
    ]


def _choice(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    """The query parameter `name`, one of `choices`, or None when absent; else a 400 naming it."""
    value = request.query_params.get(name)
    if value is not None and value not in choices:
        raise invalid_request(
            [FieldError((name,), "enum", f"{name} must be one of {', '.join(choices)}.")]
        )
    return value


class ExperimentListApi(CustomerApi):
    required_scope = Scope.RANK
    model = Experiment

    @extend_schema(
        operation_id="experiments_list",
        summary="List the experiments, newest first, with their latest revenue-per-search lift",
        parameters=[
            OpenApiParameter("surface", str, enum=Surface.values, description="only this surface"),
            OpenApiParameter("status", str, enum=STATUSES, description="only this status"),
        ],
        responses={200: ExperimentsOut, **PROBLEM_RESPONSES},
        tags=["experiments"],
    )
    def get(self, request: Request) -> HttpResponse:
        experiments = self.get_queryset().select_related("treatment_model", "treatment_config")
        surface = _choice(request, "surface", tuple(Surface.values))
        status = _choice(request, "status", STATUSES)
        if surface is not None:
            experiments = experiments.filter(surface=surface)
        now = timezone.now()
        started = Q(starts_at__isnull=True) | Q(starts_at__lte=now)
        if status == "running":
            experiments = experiments.filter(started, enabled=True)
        elif status == "scheduled":
            experiments = experiments.filter(enabled=True, starts_at__gt=now)
        elif status is not None:
            end = {word: reason for reason, word in STATUS_OF_END.items()}.get(status, "")
            experiments = experiments.filter(enabled=False, end_reason=end)
        listed = experiments.order_by("-created_at", "-id")[:MAX_LISTED]
        return json_response(
            {
                "experiments": [
                    {
                        **experiment_as_dict(experiment),
                        "variants": variant_plan(experiment),
                        "headline": headline_as_dict(experiment),
                    }
                    for experiment in listed
                ]
            }
        )
