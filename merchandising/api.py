"""`/v1/rules`: list, create, read, replace and delete merchandising rules (scope `rules`).

Create and replace answer with the rule and its authoring warnings; a contradictory rule is
refused with 409 and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from pydantic import BaseModel, Field
from rest_framework.request import Request

from core.errors import Conflict, FieldError, NotFound
from core.schema import CONFLICT_RESPONSES, PROBLEM_RESPONSES, RESPONSE
from customers.api import CustomerApi, json_response
from customers.models import Scope
from customers.selectors import customer_of
from merchandising import selectors, services
from merchandising.conflicts import RuleWarning
from merchandising.contracts import ACTION_TYPES, RuleIn, RuleListOut, RuleOut
from merchandising.holdouts import holdout_words, rule_holdout_readout
from merchandising.models import Rule
from ranking.experiments_api import DayOut, LiftOut, VariantOut, readout_as_dict

ACTION_TAGS = frozenset(ACTION_TYPES)


def rule_as_dict(rule: Rule, warnings: Sequence[RuleWarning] = ()) -> dict[str, Any]:
    return {
        "id": rule.pk,
        **rule.document(),
        "revision": rule.revision,
        "draft": rule.draft,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
        "warnings": [w.as_dict() for w in warnings],
    }


def _conflict(exc: services.RuleRejected) -> Conflict:
    errors = [
        FieldError(tuple(w.field.replace("]", "").replace("[", ".").split(".")), w.code, w.detail)
        for w in exc.warnings
        if w.blocking
    ]
    return Conflict(str(exc), errors)


class RuleListApi(CustomerApi):
    required_scope = Scope.RULES

    @extend_schema(
        operation_id="rules_list",
        summary="List the customer's rules, highest priority first",
        responses={200: RuleListOut, **PROBLEM_RESPONSES},
        tags=["rules"],
    )
    def get(self, request: Request) -> HttpResponse:
        rules = selectors.rules_of(customer_id=self.customer_id)
        return json_response({"rules": [rule_as_dict(rule) for rule in rules]})

    @extend_schema(
        operation_id="rules_create",
        summary="Create a rule",
        request=RuleIn,
        responses={201: RuleOut, **PROBLEM_RESPONSES, **CONFLICT_RESPONSES},
        tags=["rules"],
    )
    def post(self, request: Request) -> HttpResponse:
        document = self.read_json(request, RuleIn, union_tags=ACTION_TAGS)
        customer = customer_of(customer_id=self.customer_id)
        try:
            rule, warnings = services.rule_create(customer=customer, document=document)
        except services.RuleRejected as exc:
            raise _conflict(exc) from exc
        return json_response(rule_as_dict(rule, warnings), status=201)


class RuleApi(CustomerApi):
    """One rule of the calling customer, by id (another customer's is a 404)."""

    required_scope = Scope.RULES

    def get_rule(self, rule_id: int) -> Rule:
        rule = selectors.rule_of(customer_id=self.customer_id, rule_id=rule_id)
        if rule is None:
            raise NotFound(f"No rule with id {rule_id}.")
        return rule


class RuleDetailApi(RuleApi):
    @extend_schema(
        operation_id="rules_read",
        summary="Read a rule",
        responses={200: RuleOut, **PROBLEM_RESPONSES},
        tags=["rules"],
    )
    def get(self, request: Request, rule_id: int) -> HttpResponse:
        return json_response(rule_as_dict(self.get_rule(rule_id)))

    @extend_schema(
        operation_id="rules_replace",
        summary="Replace a rule",
        request=RuleIn,
        responses={200: RuleOut, **PROBLEM_RESPONSES, **CONFLICT_RESPONSES},
        tags=["rules"],
    )
    def put(self, request: Request, rule_id: int) -> HttpResponse:
        rule = self.get_rule(rule_id)
        document = self.read_json(request, RuleIn, union_tags=ACTION_TAGS)
        try:
            rule, warnings = services.rule_update(rule=rule, document=document)
        except services.RuleRejected as exc:
            raise _conflict(exc) from exc
        return json_response(rule_as_dict(rule, warnings))

    @extend_schema(
        operation_id="rules_delete",
        summary="Delete a rule (its history is kept)",
        responses={204: OpenApiResponse(description="Deleted"), **PROBLEM_RESPONSES},
        tags=["rules"],
    )
    def delete(self, request: Request, rule_id: int) -> HttpResponse:
        services.rule_delete(rule=self.get_rule(rule_id))
        return HttpResponse(status=204)


class RuleRevisionsApi(CustomerApi):
    required_scope = Scope.RULES

    @extend_schema(
        operation_id="rules_history",
        summary="A rule's change history, newest first (kept after deletion)",
        responses={200: OpenApiResponse(description="Revisions"), **PROBLEM_RESPONSES},
        tags=["rules"],
    )
    def get(self, request: Request, rule_id: int) -> HttpResponse:
        revisions = selectors.rule_revisions(customer_id=self.customer_id, rule_id=rule_id)
        if not revisions:
            raise NotFound(f"No rule with id {rule_id}.")
        return json_response(
            {
                "revisions": [
                    {
                        "number": r.number,
                        "kind": r.kind,
                        "note": r.note,
                        "changed_by": r.changed_by.get_username() if r.changed_by else None,
                        "changed_at": r.changed_at,
                        "document": r.document,
                    }
                    for r in revisions
                ]
            }
        )


class HoldoutRuleOut(BaseModel):
    model_config = RESPONSE

    id: int
    name: str
    enabled: bool
    draft: bool
    holdout_percent: int


class HoldoutSampleRatioOut(BaseModel):
    model_config = RESPONSE

    expected_share_held_out: float
    observed_share_held_out: float
    chi_square: float
    p_value: float
    mismatch: bool


class HoldoutHorizonOut(BaseModel):
    model_config = RESPONSE

    metric: str
    minimum_lift: float
    alpha: float
    power: float
    shoppers_needed_held_out: int | None
    shoppers_needed_exposed: int | None
    more_shoppers: int | None
    may_be_read: bool
    verdict: str
    reached_on: date | None
    expected_on: date | None


class RuleHoldoutOut(BaseModel):
    """Shoppers who saw the rule ("exposed") against those held out of it ("held_out"), over the
    requests where it matched; each lift is exposed over held out."""

    model_config = RESPONSE

    rule: HoldoutRuleOut
    summary: str
    first_request_at: datetime | None
    last_request_at: datetime | None
    attribution_window_hours: float
    confidence: float
    variants: list[VariantOut]
    lifts: list[LiftOut]
    sample_ratio: HoldoutSampleRatioOut | None
    horizon: HoldoutHorizonOut
    daily: list[DayOut] = Field(
        description="cumulative, day by day (held_out and exposed as in `variants`)"
    )


def holdout_as_dict(rule: Rule) -> dict[str, Any]:
    readout = rule_holdout_readout(rule=rule)
    shown = readout_as_dict(readout)
    horizon = shown["horizon"]
    ratio = readout.sample_ratio
    return {
        "rule": {
            "id": rule.pk,
            "name": rule.name,
            "enabled": rule.enabled,
            "draft": rule.draft,
            "holdout_percent": rule.holdout_percent,
        },
        "summary": holdout_words(rule, readout),
        **shown,
        "sample_ratio": None
        if ratio is None
        else {
            # The readout's treatment is the exposed group: the held-out share is the rest.
            "expected_share_held_out": 1.0 - ratio.expected_share,
            "observed_share_held_out": 1.0 - ratio.observed_share,
            "chi_square": ratio.chi_square,
            "p_value": ratio.p_value,
            "mismatch": ratio.mismatch,
        },
        "horizon": {
            **{key: value for key, value in horizon.items() if not key.startswith("shoppers_")},
            "shoppers_needed_held_out": horizon["shoppers_needed_a"],
            "shoppers_needed_exposed": horizon["shoppers_needed_b"],
        },
    }


class RuleHoldoutApi(RuleApi):
    @extend_schema(
        operation_id="rules_holdout",
        summary="Read a rule's holdout: shoppers who saw it against those held out",
        responses={200: RuleHoldoutOut, **PROBLEM_RESPONSES},
        tags=["rules"],
    )
    def get(self, request: Request, rule_id: int) -> HttpResponse:
        return json_response(holdout_as_dict(self.get_rule(rule_id)))
