"""The rule document: one JSON shape for `/v1/rules`, the admin form and the stored rule.

A rule is conditions (when it applies) + a selector (which items) + one action. Validation is
strict and every error names its field; the admin form validates through the same contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from catalog.contracts import CategoryPath, ItemId
from core.schema import NON_BLANK, WHOLE_NUMBER
from events.queries import normalise_query

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
RESPONSE = ConfigDict(extra="forbid")

SURFACES = ("search", "browse", "autocomplete")
MAX_POSITION = 1000
# A rule's holdout: at most half its shoppers, so most of them always see the rule.
MAX_HOLDOUT_PERCENT = 50

# Named strengths of boost and bury: the factor the rank score is multiplied by.
BOOST_STRENGTHS = {"weak": 1.25, "medium": 1.5, "strong": 2.0, "max": 4.0}
BURY_STRENGTHS = {"weak": 0.8, "medium": 0.5, "strong": 0.25, "max": 0.05}

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NON_BLANK
]
Position = Annotated[int, Field(ge=1, le=MAX_POSITION), WHOLE_NUMBER]


def _normalised_pattern(pattern: str) -> str:
    normalised = normalise_query(pattern)
    if not normalised:
        raise ValueError("a query pattern needs at least one letter or digit")
    return normalised


QueryPattern = Annotated[
    str, StringConstraints(max_length=200), AfterValidator(_normalised_pattern)
]


class Window(BaseModel):
    """When a rule is on: [start, end), either side open when null. Timezone-aware."""

    model_config = STRICT

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("the window ends before it starts")
        return self

    def contains(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


class QueryCondition(BaseModel):
    """`any` matches every request (with or without a query); the others need a pattern."""

    model_config = STRICT

    match: Literal["any", "exact", "contains", "starts_with"] = "any"
    patterns: list[QueryPattern] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _patterns_fit_match(self) -> QueryCondition:
        if self.match == "any" and self.patterns:
            raise ValueError("match 'any' takes no patterns; choose exact, contains or starts_with")
        if self.match != "any" and not self.patterns:
            raise ValueError(f"match {self.match!r} needs at least one pattern")
        return self


AttributeValueText = Annotated[str, StringConstraints(max_length=500)]


class Selector(BaseModel):
    """Which items an action targets. Clauses combine with AND, values within one with OR;
    an empty selector selects every candidate."""

    model_config = STRICT

    brands: list[Text] = Field(default_factory=list, max_length=100)
    categories: list[CategoryPath] = Field(default_factory=list, max_length=100)
    price_min: float | None = Field(default=None, ge=0, le=1e9)
    price_max: float | None = Field(default=None, ge=0, le=1e9)
    in_stock: bool | None = None
    attributes: dict[Text, Annotated[list[AttributeValueText], Field(min_length=1)]] = Field(
        default_factory=dict, max_length=20
    )
    item_ids: list[ItemId] = Field(default_factory=list, max_length=1000)

    @property
    def is_empty(self) -> bool:
        return self == Selector()


# Exactly one of factor and strength (JSON Schema states it; the validators enforce it).
ONE_OF_FACTOR_OR_STRENGTH: dict[str, Any] = {
    "anyOf": [
        {"required": ["factor"], "properties": {"factor": {"type": "number"}}},
        {"required": ["strength"], "properties": {"strength": {"type": "string"}}},
    ],
    "not": {
        "required": ["factor", "strength"],
        "properties": {"factor": {"type": "number"}, "strength": {"type": "string"}},
    },
}


class BoostAction(BaseModel):
    model_config = ConfigDict(**STRICT, json_schema_extra=ONE_OF_FACTOR_OR_STRENGTH)

    type: Literal["boost"]
    factor: float | None = Field(default=None, gt=1.0, le=100.0)
    strength: Literal["weak", "medium", "strong", "max"] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> BoostAction:
        if (self.factor is None) == (self.strength is None):
            raise ValueError("give either a factor (above 1) or a strength")
        return self

    @property
    def multiplier(self) -> float:
        return self.factor if self.factor is not None else BOOST_STRENGTHS[self.strength or ""]


class BuryAction(BaseModel):
    model_config = ConfigDict(**STRICT, json_schema_extra=ONE_OF_FACTOR_OR_STRENGTH)

    type: Literal["bury"]
    factor: float | None = Field(default=None, gt=0.0, lt=1.0)
    strength: Literal["weak", "medium", "strong", "max"] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> BuryAction:
        if (self.factor is None) == (self.strength is None):
            raise ValueError("give either a factor (between 0 and 1) or a strength")
        return self

    @property
    def multiplier(self) -> float:
        return self.factor if self.factor is not None else BURY_STRENGTHS[self.strength or ""]


class Pin(BaseModel):
    model_config = STRICT

    item_id: ItemId
    position: Position


class PinAction(BaseModel):
    """Put given items at given positions (1-based). The selector is not used."""

    model_config = STRICT

    type: Literal["pin"]
    pins: list[Pin] = Field(min_length=1, max_length=100)


class SlotAction(BaseModel):
    """Fill given positions with the best-scored candidates matching the selector."""

    model_config = STRICT

    type: Literal["slot"]
    positions: list[Position] = Field(
        min_length=1, max_length=100, json_schema_extra={"uniqueItems": True}
    )

    @model_validator(mode="after")
    def _distinct(self) -> SlotAction:
        if len(set(self.positions)) != len(self.positions):
            raise ValueError("a position is listed twice")
        return self


class HideAction(BaseModel):
    model_config = STRICT

    type: Literal["hide"]


class SinkAction(BaseModel):
    """Move the items the selector matches to the end of the order, keeping their order among
    themselves (for example items out of stock). Pins and slots still place them."""

    model_config = STRICT

    type: Literal["sink"]


class DiversityAction(BaseModel):
    """At most `max_items` items per brand (or per top-level category) in the top `top_k`."""

    model_config = STRICT

    type: Literal["diversity"]
    field: Literal["brand", "category"]
    max_items: Position
    top_k: Position


Action = Annotated[
    BoostAction | BuryAction | PinAction | SlotAction | HideAction | SinkAction | DiversityAction,
    Field(discriminator="type"),
]
ACTION_TYPES = ("boost", "bury", "pin", "slot", "hide", "sink", "diversity")


class RuleIn(BaseModel):
    """The whole rule, as created or replaced."""

    model_config = STRICT

    name: Text
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    enabled: bool = True
    priority: Annotated[int, Field(ge=-1000, le=1000), WHOLE_NUMBER] = 0
    surfaces: list[Literal["search", "browse", "autocomplete"]] = Field(
        default_factory=list, max_length=3, json_schema_extra={"uniqueItems": True}
    )
    windows: list[Window] = Field(default_factory=list, max_length=20)
    query: QueryCondition = Field(default_factory=QueryCondition)
    page_categories: list[CategoryPath] = Field(default_factory=list, max_length=100)
    context: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=100)],
        Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(min_length=1)],
    ] = Field(default_factory=dict, max_length=20)
    selector: Selector = Field(default_factory=Selector)
    action: Action
    holdout_percent: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_HOLDOUT_PERCENT,
            description="Percent of shoppers (0-50) served as if the rule did not exist, to "
            "measure its effect (GET /v1/rules/{id}/holdout); 0: everyone sees it.",
        ),
        WHOLE_NUMBER,
    ] = 0

    @classmethod
    def stored(cls, document: dict[str, object]) -> RuleIn:
        """A document read back from the database (validated when written; JSON types)."""
        return cls.model_validate(document, strict=False)

    @model_validator(mode="after")
    def _consistent(self) -> RuleIn:
        if len(set(self.surfaces)) != len(self.surfaces):
            raise ValueError("a surface is listed twice")
        for key, values in self.context.items():
            if not values:
                raise ValueError(f"context key {key!r} lists no value")
        if isinstance(self.action, PinAction) and not self.selector.is_empty:
            raise ValueError("a pin names its items; leave the selector empty")
        return self


class RuleWarningOut(BaseModel):
    model_config = RESPONSE

    code: str
    field: str
    detail: str
    blocking: bool


class RuleOut(RuleIn):
    model_config = RESPONSE

    id: int
    revision: int
    draft: bool = Field(
        default=False,
        description="A draft never serves until it is published in the workbench (read-only).",
    )
    created_at: datetime
    updated_at: datetime
    warnings: list[RuleWarningOut]


class RuleListOut(BaseModel):
    model_config = RESPONSE

    rules: list[RuleOut]
