"""The public JSON contract of `POST /v1/rank`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from catalog.contracts import ItemId
from customers.models import MAX_CANDIDATES_LIMIT

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]
ContextKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ContextValue = Annotated[str, StringConstraints(max_length=256)]


class CandidateIn(BaseModel):
    model_config = STRICT

    id: ItemId
    relevance: float | None = Field(default=None, description="The retriever's score")


class RankIn(BaseModel):
    model_config = STRICT

    surface: Literal["search", "browse", "autocomplete"]
    query: ShortText | None = Field(
        default=None, description="Required for search and autocomplete"
    )
    category: ShortText | None = Field(default=None, description="The page's category, for browse")
    user_id: ShortText | None = None
    session_id: ShortText | None = None
    items: list[CandidateIn] = Field(
        min_length=1,
        max_length=MAX_CANDIDATES_LIMIT,
        description="Candidates, unique ids; at most the customer's max_candidates (default 1000)",
    )
    context: dict[ContextKey, ContextValue] = Field(default_factory=dict, max_length=32)
    limit: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES_LIMIT)
    explain: bool = False


class RankerOut(BaseModel):
    config: str
    model: str | None
    variant: str | None


class ContributionOut(BaseModel):
    feature: str
    value: float
    contribution: float


class RuleEffectOut(BaseModel):
    rule_id: int
    name: str
    action: str
    effect: str


class ExplanationOut(BaseModel):
    method: Literal["linear", "tree_shap"]
    base_value: float
    contributions: list[ContributionOut]
    model_score: float
    transform: str
    rules: list[RuleEffectOut]
    position_before_rules: int


class RankedItemOut(BaseModel):
    id: str
    position: int
    score: float
    explanation: ExplanationOut | None = Field(default=None, description="Only with explain")


class RemovedItemOut(BaseModel):
    id: str
    rule_id: int
    reason: str


class RankOut(BaseModel):
    request_id: str
    surface: str
    degraded: bool
    ranker: RankerOut
    items: list[RankedItemOut]
    removed: list[RemovedItemOut] | None = Field(default=None, description="Only with explain")
