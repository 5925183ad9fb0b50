"""Shared pieces of the OpenAPI description."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from pydantic import BaseModel


class ProblemFieldError(BaseModel):
    field: str
    pointer: str
    code: str
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldError] | None = None


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=Problem, description=description)


PROBLEM_RESPONSES = {
    400: _problem("Invalid body; `errors` names each field"),
    401: _problem("Missing or invalid API key"),
    403: _problem("The key lacks the scope"),
    404: _problem("Not found"),
    413: _problem("Body too large"),
    415: _problem("Body is not JSON"),
}
