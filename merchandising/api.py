"""`/v1/rules`: list, create, read, replace and delete merchandising rules (scope `rules`).

Create and replace answer with the rule and its authoring warnings; a contradictory rule is
refused with 409 and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request

from core.errors import Conflict, FieldError, NotFound
from core.schema import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from customers.api import CustomerApi, json_response
from customers.models import Customer, Scope
from merchandising import services
from merchandising.conflicts import RuleWarning
from merchandising.contracts import ACTION_TYPES, RuleIn, RuleListOut, RuleOut
from merchandising.history import rule_revisions
from merchandising.models import Rule

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
    model = Rule

    @extend_schema(
        operation_id="rules_list",
        summary="List the customer's rules, highest priority first",
        responses={200: RuleListOut, **PROBLEM_RESPONSES},
        tags=["rules"],
    )
    def get(self, request: Request) -> HttpResponse:
        return json_response({"rules": [rule_as_dict(rule) for rule in self.get_queryset()]})

    @extend_schema(
        operation_id="rules_create",
        summary="Create a rule",
        request=RuleIn,
        responses={201: RuleOut, **PROBLEM_RESPONSES, **CONFLICT_RESPONSES},
        tags=["rules"],
    )
    def post(self, request: Request) -> HttpResponse:
        document = self.read_json(request, RuleIn, union_tags=ACTION_TAGS)
        customer = Customer.objects.get(pk=self.customer_id)
        try:
            rule, warnings = services.rule_create(customer=customer, document=document)
        except services.RuleRejected as exc:
            raise _conflict(exc) from exc
        return json_response(rule_as_dict(rule, warnings), status=201)


class RuleDetailApi(CustomerApi):
    required_scope = Scope.RULES
    model = Rule

    def get_rule(self, rule_id: int) -> Rule:
        rule = self.get_queryset().filter(pk=rule_id).first()
        if rule is None:
            raise NotFound(f"No rule with id {rule_id}.")
        return rule

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
        revisions = rule_revisions(customer_id=self.customer_id, rule_id=rule_id)
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
