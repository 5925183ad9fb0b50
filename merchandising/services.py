"""Writes for merchandising rules: every change validated, checked, recorded and propagated.

A draft (Rule.draft) is written, checked and recorded like any rule but never serves; publishing
it (rule_publish) is one more recorded change, discarding it (rule_discard) a recorded delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from customers import runtime_sync
from customers.models import Customer
from merchandising.attribute_sets import attribute_set_publish, attribute_sets_items_changed
from merchandising.conflicts import RuleWarning, rule_warnings
from merchandising.contracts import RuleIn, Window
from merchandising.models import RevisionKind, Rule, RuleRevision
from merchandising.selectors import rule_of, rules_of_experiment
from ranking.models import Experiment, ExperimentKind


class NotADraft(Exception):
    """Publishing or discarding asks for a draft; the rule already serves. Nothing changed."""


class RuleRejected(Exception):
    """The rule contradicts another (blocking warnings); nothing was stored."""

    def __init__(self, warnings: list[RuleWarning]) -> None:
        super().__init__("; ".join(w.detail for w in warnings if w.blocking))
        self.warnings = warnings


def _user(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _apply(rule: Rule, document: RuleIn) -> None:
    stored = document.model_dump(mode="json")
    rule.name = stored["name"]
    rule.description = stored["description"]
    rule.enabled = stored["enabled"]
    rule.priority = stored["priority"]
    rule.surfaces = stored["surfaces"]
    rule.windows = stored["windows"]
    rule.query = stored["query"]
    rule.page_categories = stored["page_categories"]
    rule.context = stored["context"]
    rule.selector = stored["selector"]
    rule.action = stored["action"]
    rule.action_type = stored["action"]["type"]
    rule.holdout_percent = stored["holdout_percent"]


def _record(rule: Rule, kind: str, user: Any, note: str = "") -> RuleRevision:
    last = (
        RuleRevision.objects.for_customer(rule.customer_id)
        .filter(rule_id_value=rule.pk)
        .aggregate(number=Max("number"))["number"]
    )
    revision = RuleRevision.objects.create(
        customer_id=rule.customer_id,
        rule_id_value=rule.pk,
        rule=rule if kind != RevisionKind.DELETED else None,
        number=(last or 0) + 1,
        kind=kind,
        document=rule.document(),
        draft=rule.draft,
        note=note,
        changed_by=_user(user),
    )
    if kind != RevisionKind.DELETED:
        Rule.objects.filter(pk=rule.pk).update(revision=revision.number)
        rule.revision = revision.number
    return revision


def _checked(customer_id: int, document: RuleIn, rule_id: int | None) -> list[RuleWarning]:
    warnings = rule_warnings(
        customer_id=customer_id, document=document, rule_id=rule_id, at=timezone.now()
    )
    if any(w.blocking for w in warnings):
        raise RuleRejected(warnings)
    return warnings


def _propagate(customer_id: int, document: RuleIn | None = None) -> None:
    """Write the rule's attribute set (if it has attribute clauses), then bump the customer's
    generation in the same transaction: other processes see the new generation and the new
    rules together, when it commits, and the set is there by then."""
    if document is not None:
        attribute_set_publish(customer_id, document.selector)
    runtime_sync.bump_generation(customer_id)


@transaction.atomic
def rule_create(
    *,
    customer: Customer,
    document: RuleIn,
    user: Any = None,
    draft: bool = False,
    note: str = "",
) -> tuple[Rule, list[RuleWarning]]:
    """A new rule; with `draft` it is stored, checked and recorded but serves nothing."""
    warnings = _checked(customer.pk, document, None)
    rule = Rule(customer=customer, updated_by=_user(user), draft=draft)
    _apply(rule, document)
    rule.save()
    _record(rule, RevisionKind.CREATED, user, note)
    _propagate(customer.pk, document)
    return rule, warnings


def rule_unchanged(*, rule: Rule, document: RuleIn) -> bool:
    """Would saving `document` leave the stored rule as it is? A window's instants count, not
    the offset they were written with (the admin writes UTC what the API may have sent as
    +01:00)."""
    stored = RuleIn.stored(rule.document())
    if [(w.start, w.end) for w in document.windows] != [(w.start, w.end) for w in stored.windows]:
        return False
    same: dict[str, Any] = {"windows": []}
    return bool(
        document.model_copy(update=same).model_dump(mode="json")
        == stored.model_copy(update=same).model_dump(mode="json")
    )


@transaction.atomic
def rule_update(
    *,
    rule: Rule,
    document: RuleIn,
    user: Any = None,
    kind: str = RevisionKind.UPDATED,
    note: str = "",
) -> tuple[Rule, list[RuleWarning]]:
    warnings = _checked(rule.customer_id, document, rule.pk)
    if kind == RevisionKind.UPDATED and rule_unchanged(rule=rule, document=document):
        return rule, warnings  # nothing to record or propagate
    _apply(rule, document)
    rule.updated_at = timezone.now()
    rule.updated_by = _user(user)
    rule.save()
    _record(rule, kind, user, note)
    _propagate(rule.customer_id, document)
    return rule, warnings


@transaction.atomic
def rule_delete(*, rule: Rule, user: Any = None, note: str = "") -> None:
    customer_id = rule.customer_id
    _record(rule, RevisionKind.DELETED, user, note)
    rule.delete()
    _propagate(customer_id)


@transaction.atomic
def rule_publish(
    *, rule: Rule, user: Any = None, start: datetime | None = None
) -> tuple[Rule, list[RuleWarning]]:
    """Make a draft serve: now, or from `start` on (its windows become one window opening then).
    Checked against the serving rules first: a contradiction refuses it and nothing changes."""
    locked = Rule.objects.select_for_update().get(pk=rule.pk)
    if not locked.draft:
        raise NotADraft(f"“{locked.name}” is already published.")
    document = RuleIn.stored(locked.document())
    if start is not None:
        document = document.model_copy(update={"windows": [Window(start=start)]})
    warnings = _checked(locked.customer_id, document, locked.pk)
    _apply(locked, document)
    locked.draft = False
    locked.updated_at = timezone.now()
    locked.updated_by = _user(user)
    locked.save()
    note = "published" if start is None else f"published, serving from {start.isoformat()}"
    _record(locked, RevisionKind.PUBLISHED, user, note)
    _propagate(locked.customer_id, document)
    return locked, warnings


@transaction.atomic
def rule_discard(*, rule: Rule, user: Any = None) -> None:
    """Throw a draft away (recorded: its history stays, and a revert brings it back a draft)."""
    locked = Rule.objects.select_for_update().get(pk=rule.pk)
    if not locked.draft:
        raise NotADraft(f"“{locked.name}” is published: delete it in the rules list instead.")
    rule_delete(rule=locked, user=user, note="draft discarded")


@transaction.atomic
def rule_revert(*, revision: RuleRevision, user: Any = None) -> tuple[Rule, list[RuleWarning]]:
    """Make the rule what it was at `revision` (recreating it if it was deleted since)."""
    document = RuleIn.stored(revision.document)
    note = f"reverted to revision {revision.number}"
    rule = rule_of(customer_id=revision.customer_id, rule_id=revision.rule_id_value)
    if rule is not None:
        rule.draft = revision.draft
        return rule_update(
            rule=rule, document=document, user=user, kind=RevisionKind.REVERTED, note=note
        )
    warnings = _checked(revision.customer_id, document, revision.rule_id_value)
    rule = Rule(
        pk=revision.rule_id_value,
        customer_id=revision.customer_id,
        updated_by=_user(user),
        draft=revision.draft,
    )
    _apply(rule, document)
    rule.save(force_insert=True)
    RuleRevision.objects.for_customer(revision.customer_id).filter(
        rule_id_value=revision.rule_id_value
    ).update(rule=rule)
    _record(rule, RevisionKind.REVERTED, user, note)
    _propagate(revision.customer_id, document)
    return rule, warnings


def rule_experiment_errors(*, rule: Rule, experiment: Experiment | None) -> dict[str, list[str]]:
    """Why the rule cannot be tagged to this experiment, by field (empty when it can)."""
    if experiment is None or experiment.pk == rule.experiment_id:
        return {}  # untagging, or keeping the tag it has (also after the experiment stopped)
    if experiment.customer_id != rule.customer_id:
        return {"experiment": ["Choose an experiment of this rule's customer."]}
    if experiment.kind != ExperimentKind.RULES:
        return {"experiment": ["Choose an experiment whose B is the rules tagged to it."]}
    if not experiment.enabled:
        return {"experiment": ["This experiment does not run: tag rules to a running one."]}
    return {}


@transaction.atomic
def rule_tag(
    *, rule: Rule, experiment: Experiment | None, user: Any = None, note: str = ""
) -> Rule:
    """Tag the rule to an experiment (it then serves only to the shoppers in its B), or untag it
    (it serves everyone it matches). Recorded as a revision with the note."""
    errors = rule_experiment_errors(rule=rule, experiment=experiment)
    if errors:
        raise ValidationError(errors)
    locked = Rule.objects.select_for_update().get(pk=rule.pk)
    new_id = experiment.pk if experiment is not None else None
    if locked.experiment_id == new_id:
        return locked
    locked.experiment_id = new_id
    locked.updated_at = timezone.now()
    locked.updated_by = _user(user)
    locked.save(update_fields=["experiment", "updated_at", "updated_by"])
    default = f"serves only to B of experiment {new_id}" if new_id else "serves everyone"
    _record(locked, RevisionKind.UPDATED, user, note or default)
    _propagate(locked.customer_id)
    rule.experiment_id = new_id
    return locked


@transaction.atomic
def rules_untag(*, experiment: Experiment, user: Any = None, note: str = "") -> list[Rule]:
    """Untag every rule tagged to the experiment: they serve everyone they match (its B's
    promotion)."""
    return [
        rule_tag(rule=rule, experiment=None, user=user, note=note)
        for rule in rules_of_experiment(experiment=experiment)
    ]


def catalog_changed(
    customer_id: int, items: Sequence[tuple[str, Mapping[str, object] | None]]
) -> None:
    """At the end of a catalog write, move the written items (id, attributes; None when deleted)
    into or out of the rules' attribute sets. Nothing compiled in API processes depends on the
    catalog, so nothing is recompiled. (Were the write's commit to fail after this, the sets
    would be ahead of the catalog until the next signal refresh recomputes them.)"""
    attribute_sets_items_changed(customer_id, items)
