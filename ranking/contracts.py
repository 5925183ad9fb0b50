"""The public JSON contract of `POST /v1/rank`."""

from __future__ import annotations

from functools import cached_property
from operator import itemgetter
from typing import Annotated, Literal, cast

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, with_config
from typing_extensions import TypedDict

from catalog.contracts import ItemId
from core.schema import WHOLE_NUMBER
from customers.models import MAX_CANDIDATES_LIMIT

_CANDIDATE_ID = itemgetter("id")
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
# Responses declare every field they carry, so the OpenAPI schema describes them exactly.
RESPONSE = ConfigDict(extra="forbid")

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]
ContextKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ContextValue = Annotated[str, StringConstraints(max_length=256)]


# A plain dict once validated, not a model: a dict of a string and a float is no work for the
# garbage collector, and a request carries up to 1000 of them (docs/performance.md). No
# docstring: it would become the schema's description.
@with_config(STRICT)
class CandidateIn(TypedDict):
    id: ItemId
    # Optional in the body (it has a default): always in the validated dict.
    relevance: Annotated[float | None, Field(default=None, description="The retriever's score")]


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
        json_schema_extra={"uniqueItems": True},
    )
    context: dict[ContextKey, ContextValue] = Field(default_factory=dict, max_length=32)
    limit: Annotated[int, Field(ge=1, le=MAX_CANDIDATES_LIMIT), WHOLE_NUMBER] | None = None
    explain: bool = False

    @cached_property
    def item_ids(self) -> tuple[str, ...]:
        """The candidates' ids as sent, read from the items once (the duplicate check and the
        engine's input both need them; not a field, so not in the schema)."""
        return tuple(map(_CANDIDATE_ID, self.items))


# The direct rank path's reading of the common body (ranking/direct.py): msgspec decodes it
# against RankIn's own bounds in about half of pydantic's CPU time at 1000 candidates, and a body it
# takes becomes the RankIn pydantic would have made. Anything else (a bound broken, a float where an
# int goes, a text pydantic would strip) reads as None, and the caller hands the body to RankIn's
# validation, which decides and names the field. tests/ranking/test_rank_body_reading.py holds the
# two readings equal on generated bodies.
_Text = Annotated[str, msgspec.Meta(max_length=256)]


class _Candidate(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    relevance: float | None = None  # msgspec refuses a number beyond a double


class _RankBody(msgspec.Struct, forbid_unknown_fields=True):
    surface: Literal["search", "browse", "autocomplete"]
    items: Annotated[list[_Candidate], msgspec.Meta(min_length=1, max_length=MAX_CANDIDATES_LIMIT)]
    query: _Text | None = None
    category: _Text | None = None
    user_id: _Text | None = None
    session_id: _Text | None = None
    context: Annotated[
        dict[
            Annotated[str, msgspec.Meta(min_length=1, max_length=64)],
            Annotated[str, msgspec.Meta(max_length=256)],
        ],
        msgspec.Meta(max_length=32),
    ] = msgspec.field(default_factory=dict)
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_CANDIDATES_LIMIT)] | None = None
    explain: bool = False


_rank_body = msgspec.json.Decoder(_RankBody)
_strip = str.strip


def rank_in_from_json(body: bytes) -> RankIn | None:
    """The RankIn of a JSON body that msgspec reads within RankIn's bounds, unchanged by
    pydantic's stripping; None when pydantic must decide."""
    try:
        read = _rank_body.decode(body)
    except msgspec.DecodeError:  # a ValidationError too
        return None
    # str.strip removes every character pydantic's strip does (Unicode White_Space) and a few
    # more: a text it would change goes to pydantic.
    texts = (read.query, read.category, read.user_id, read.session_id)
    if any(text is not None and text != _strip(text) for text in texts):
        return None
    ids = tuple([candidate.id for candidate in read.items])
    if [text for text in ids if text != _strip(text)]:
        return None
    items = cast(list[CandidateIn], [{"id": c.id, "relevance": c.relevance} for c in read.items])
    request = RankIn.model_construct(
        surface=read.surface,
        query=read.query,
        category=read.category,
        user_id=read.user_id,
        session_id=read.session_id,
        items=items,
        context=read.context,
        limit=read.limit,
        explain=read.explain,
    )
    request.__dict__["item_ids"] = ids  # the cached property, already read
    return request


class RankerOut(BaseModel):
    model_config = RESPONSE

    config: str
    model: str | None
    variant: str | None = Field(
        description="the experiment variant that served: A, B, or interleaved (A's and B's "
        "orders merged; model then names both); null outside experiments"
    )


class ContributionOut(BaseModel):
    model_config = RESPONSE

    feature: str
    value: float
    contribution: float


class RuleEffectOut(BaseModel):
    model_config = RESPONSE

    rule_id: int
    name: str
    action: str
    effect: str


class ExplanationOut(BaseModel):
    model_config = RESPONSE

    method: Literal["linear", "tree_shap"]
    base_value: float
    contributions: list[ContributionOut]
    model_score: float
    transform: str
    rules: list[RuleEffectOut]
    position_before_rules: int


class RankedItemOut(BaseModel):
    model_config = RESPONSE

    id: str
    position: int
    score: float
    explanation: ExplanationOut | None = Field(default=None, description="Only with explain")


class RemovedItemOut(BaseModel):
    model_config = RESPONSE

    id: str
    rule_id: int
    reason: str


class RankOut(BaseModel):
    model_config = RESPONSE

    request_id: str
    surface: str
    degraded: bool
    degraded_reason: str | None = Field(
        default=None,
        description=(
            "Only when degraded, why: signal_store (Redis did not answer in time), "
            "signal_store_breaker (Redis failed often in the last seconds: not tried), "
            "signal_store_lost (Redis lost the shop's signals; a refresh republishes them), "
            "signal_schema (the shop's signals were computed for another feature schema; a "
            "refresh republishes them), "
            "runtime or key_store (the database was down and nothing was cached)"
        ),
    )
    ranker: RankerOut
    items: list[RankedItemOut]
    removed: list[RemovedItemOut] | None = Field(default=None, description="Only with explain")
