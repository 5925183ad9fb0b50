"""`GET /v1/experiments/{id}/results`: the readout of one of the calling customer's experiments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import BaseModel
from rest_framework.request import Request

from config.problems import NotFound
from config.schema import PROBLEM_RESPONSES, RESPONSE
from customers.api import CustomerApi, json_response
from customers.models import Scope
from ranking.experiment_stats import ALPHA, CONFIDENCE, MINIMUM_LIFT, POWER
from ranking.experiments import (
    ATTRIBUTION_WINDOW,
    HORIZON_METRIC,
    METRICS,
    ExperimentResult,
    experiment_result,
    experiment_status,
    horizon_verdict,
)
from ranking.models import Experiment

# Ids PostgreSQL's bigint can hold; a larger one names no experiment.
MAX_ID = 2**63 - 1


class ExperimentOut(BaseModel):
    model_config = RESPONSE

    id: int
    name: str
    surface: str
    treatment_model: str
    treatment_percent: int
    enabled: bool
    status: Literal["running", "not_running", "stopped", "stopped_by_guardrail", "promoted"]
    started_at: datetime
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


class LiftOut(BaseModel):
    model_config = RESPONSE

    metric: str
    lift: float | None
    low: float | None
    high: float | None
    p_value: float | None
    significant: bool


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


class ExperimentResultsOut(BaseModel):
    model_config = RESPONSE

    experiment: ExperimentOut
    first_request_at: datetime | None
    last_request_at: datetime | None
    attribution_window_hours: float
    confidence: float
    variants: list[VariantOut]
    lifts: list[LiftOut]
    sample_ratio: SampleRatioOut | None
    horizon: HorizonOut


def experiment_as_dict(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "surface": experiment.surface,
        "treatment_model": experiment.treatment_model.label,
        "treatment_percent": experiment.treatment_percent,
        "enabled": experiment.enabled,
        "status": experiment_status(experiment),
        "started_at": experiment.created_at,
        "ended_at": experiment.ended_at,
        "ended_by": experiment.ended_by,
        "end_summary": experiment.end_summary,
    }


def result_as_dict(result: ExperimentResult) -> dict[str, Any]:
    horizon = result.horizon
    ratio = result.sample_ratio
    return {
        "experiment": experiment_as_dict(result.experiment),
        "first_request_at": result.first_request_at,
        "last_request_at": result.last_request_at,
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
            for variant in result.variants.values()
        ],
        "lifts": [
            {
                "metric": key,
                "lift": lift.lift if lift else None,
                "low": lift.low if lift else None,
                "high": lift.high if lift else None,
                "p_value": lift.p_value if lift else None,
                "significant": bool(lift and lift.significant),
            }
            for key, lift in result.lifts.items()
        ],
        "sample_ratio": None
        if ratio is None
        else {
            "expected_share_b": ratio.expected_share,
            "observed_share_b": ratio.observed_share,
            "chi_square": ratio.chi_square,
            "p_value": ratio.p_value,
            "mismatch": ratio.mismatch,
        },
        "horizon": {
            "metric": HORIZON_METRIC,
            "minimum_lift": MINIMUM_LIFT,
            "alpha": ALPHA,
            "power": POWER,
            "shoppers_needed_a": horizon.control_needed if horizon else None,
            "shoppers_needed_b": horizon.treatment_needed if horizon else None,
            "more_shoppers": horizon.more_shoppers if horizon else None,
            "may_be_read": bool(horizon and horizon.reached),
            "verdict": horizon_verdict(result),
        },
    }


class ExperimentResultsApi(CustomerApi):
    required_scope = Scope.RANK
    model = Experiment

    @extend_schema(
        operation_id="experiment_results",
        summary="Read an experiment's result: per variant, and B against A",
        parameters=[OpenApiParameter("experiment_id", int, OpenApiParameter.PATH)],
        responses={200: ExperimentResultsOut, **PROBLEM_RESPONSES},
        tags=["experiments"],
    )
    def get(self, request: Request, experiment_id: int) -> HttpResponse:
        experiment = None
        if experiment_id <= MAX_ID:
            experiment = (
                self.get_queryset()
                .select_related("treatment_model")
                .filter(pk=experiment_id)
                .first()
            )
        if experiment is None:
            raise NotFound(f"No experiment with id {experiment_id}.")
        return json_response(result_as_dict(experiment_result(experiment=experiment)))
