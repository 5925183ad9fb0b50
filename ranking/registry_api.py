"""`GET /v1/models`: the calling customer's trained ranking models, read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import BaseModel
from rest_framework.request import Request

from core.errors import FieldError, invalid_request
from core.schema import PROBLEM_RESPONSES
from customers.api import CustomerApi, json_response
from customers.models import Scope
from ranking.contracts import RESPONSE
from ranking.models import RankingModel, Surface


class TrainingWindowOut(BaseModel):
    model_config = RESPONSE

    start: datetime
    end: datetime
    holdout_from: datetime


class ModelOut(BaseModel):
    model_config = RESPONSE

    id: int
    surface: str
    algorithm: str
    version: int
    label: str
    status: str
    feature_schema: str
    params: dict[str, Any]
    training_window: TrainingWindowOut
    row_counts: dict[str, Any]
    metrics: dict[str, Any]
    position_bias: dict[str, Any]
    artifact_sha256: str
    created_at: datetime
    created_by: str
    activated_at: datetime | None
    activated_by: str
    override_reason: str


class ModelsOut(BaseModel):
    model_config = RESPONSE

    models: list[ModelOut]


def model_as_dict(model: RankingModel) -> dict[str, Any]:
    return {
        "id": model.pk,
        "surface": model.surface,
        "algorithm": model.algorithm,
        "version": model.version,
        "label": model.label,
        "status": model.status,
        "feature_schema": model.schema_hash,
        "params": model.params,
        "training_window": {
            "start": model.train_from,
            "end": model.train_until,
            "holdout_from": model.holdout_from,
        },
        "row_counts": model.row_counts,
        "metrics": model.metrics,
        "position_bias": model.propensity,
        "artifact_sha256": model.artifact_sha256,
        "created_at": model.created_at,
        "created_by": model.created_by,
        "activated_at": model.activated_at,
        "activated_by": model.activated_by,
        "override_reason": model.override_reason,
    }


class ModelListApi(CustomerApi):
    required_scope = Scope.RANK
    model = RankingModel

    @extend_schema(
        operation_id="models_list",
        summary="List the trained ranking models, newest first",
        parameters=[
            OpenApiParameter("surface", str, enum=Surface.values, description="only this surface")
        ],
        responses={200: ModelsOut, **PROBLEM_RESPONSES},
        tags=["models"],
    )
    def get(self, request: Request) -> HttpResponse:
        models = self.get_queryset().order_by("-created_at", "-id")
        surface = request.query_params.get("surface")
        if surface is not None:
            if surface not in Surface.values:
                raise invalid_request(
                    [
                        FieldError(
                            ("surface",),
                            "enum",
                            f"surface must be one of {', '.join(Surface.values)}.",
                        )
                    ]
                )
            models = models.filter(surface=surface)
        return json_response({"models": [model_as_dict(model) for model in models[:500]]})
