"""Shared pieces of the OpenAPI description."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from core.problems import PROBLEM_CONTENT_TYPE

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
    (429, PROBLEM_CONTENT_TYPE): _problem(
        "Over the API key's rate limit for this endpoint, or too many invalid keys from this "
        "address; the `Retry-After` header says after how many seconds to try again"
    ),
}

CONFLICT_RESPONSES = {
    (409, PROBLEM_CONTENT_TYPE): _problem("Contradicts another rule; `errors` says how"),
}


NO_NUL_PATTERN = "^[^\\u0000]*$"
# Unicode White_Space: what the contracts' strip_whitespace removes (pydantic-core's trim).
_SPACE = "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NON_BLANK_PATTERN = f"^[^\\u0000]*[^{_SPACE}\\u0000][^\\u0000]*$"


def _whole_float_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer as JSON Schema means it: 2.0 is the integer 2 (strict contracts refuse it
# otherwise); a string or 2.5 is still refused. Put it after the bounds:
# Annotated[int, Field(ge=1), WHOLE_NUMBER], so the schema keeps them.
WHOLE_NUMBER = BeforeValidator(_whole_float_to_int)

# On a stripped text of at least one character: the schema says it must hold a non-space.
NON_BLANK = Field(json_schema_extra={"pattern": NON_BLANK_PATTERN})


def state_text_rules(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular post-processing: every request string refuses NUL (PostgreSQL cannot
    store it; customers.api refuses it with 400 naming the field), so the schema says so."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and not (
                {"pattern", "format", "enum", "const"} & node.keys()
            ):
                node["pattern"] = NO_NUL_PATTERN
            if isinstance(node.get("additionalProperties"), dict):
                node.setdefault("propertyNames", {}).setdefault("pattern", NO_NUL_PATTERN)
            if "patternProperties" in node and "additionalProperties" not in node:
                # Keys are typed (pydantic writes the key's pattern as patternProperties): a key
                # that matches none of them is refused, so the schema says so.
                node["additionalProperties"] = False
                node.setdefault("propertyNames", {}).setdefault("pattern", NO_NUL_PATTERN)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") or not _is_response(result, name):
            walk(component)
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                walk(operation.get("parameters", []))
    return result


def _is_response(result: dict[str, Any], name: str) -> bool:
    return name.endswith("Out") or name in ("Problem", "ProblemFieldError")
