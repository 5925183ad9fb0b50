"""Shared pieces of the OpenAPI description."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from pydantic import BaseModel, ConfigDict

from config.problems import PROBLEM_CONTENT_TYPE

# Responses declare every field they carry, so the OpenAPI schema describes them exactly.
RESPONSE = ConfigDict(extra="forbid")


class ProblemFieldError(BaseModel):
    model_config = RESPONSE

    field: str
    pointer: str
    code: str
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = RESPONSE

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldError] | None = None


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=Problem, description=description)


# Keyed by (status, media type): problems are served as application/problem+json.
PROBLEM_RESPONSES = {
    (400, PROBLEM_CONTENT_TYPE): _problem("Invalid body; `errors` names each field"),
    (401, PROBLEM_CONTENT_TYPE): _problem("Missing or invalid API key"),
    (403, PROBLEM_CONTENT_TYPE): _problem("The key lacks the scope"),
    (404, PROBLEM_CONTENT_TYPE): _problem("Not found"),
    (413, PROBLEM_CONTENT_TYPE): _problem("Body too large"),
    (415, PROBLEM_CONTENT_TYPE): _problem("Body is not JSON"),
}

CONFLICT_RESPONSES = {
    (409, PROBLEM_CONTENT_TYPE): _problem("Contradicts another rule; `errors` says how"),
}
