"""Merchandising rules and their revision history.

A rule stores the parts of its document (merchandising.contracts.RuleIn) as columns: scalar
fields as they are, conditions, selector and action as validated JSON. Writes go through
merchandising.services, which validates, records a revision and tells every API process.

A draft is a rule that never serves, whatever its other fields say: the workbench's changes wait
as drafts until a merchandiser publishes them (merchandising.services.rule_publish).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from customers.models import Customer, TenantQuerySet


class RuleQuerySet(TenantQuerySet["Rule"]):
    def enabled(self) -> RuleQuerySet:
        return self.filter(enabled=True)

    def serving(self) -> RuleQuerySet:
        """The rules the engine applies to everyone: enabled, published (never a draft), and
        tagged to no experiment."""
        return self.filter(enabled=True, draft=False, experiment__isnull=True)

    def serving_in(self, experiment_ids: Collection[int]) -> RuleQuerySet:
        """The rules that serve only to B's shoppers of these experiments."""
        return self.filter(enabled=True, draft=False, experiment_id__in=experiment_ids)

    def drafts(self) -> RuleQuerySet:
        return self.filter(draft=True)


def holdout_salt() -> str:
    return secrets.token_hex(8)


def untag_and_disable(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    """on_delete of a rule's experiment: the rule stays, switched off and untagged, so a rule
    meant for a few shoppers never starts serving everyone because its experiment went away."""
    collector.add_field_update(field, None, sub_objs)
    collector.add_field_update(Rule._meta.get_field("enabled"), False, sub_objs)


class Rule(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    # A draft never serves (RuleQuerySet.serving); publishing makes it a rule like any other.
    draft = models.BooleanField(default=False, editable=False)
    # Higher first: a higher-priority rule wins a contested position; equal priorities by id.
    priority = models.IntegerField(default=0)
    surfaces = models.JSONField(default=list, blank=True)  # empty: every surface
    windows = models.JSONField(default=list, blank=True)  # empty: always on
    query = models.JSONField(default=dict, blank=True)
    page_categories = models.JSONField(default=list, blank=True)
    context = models.JSONField(default=dict, blank=True)
    selector = models.JSONField(default=dict, blank=True)
    action = models.JSONField()
    action_type = models.CharField(max_length=16, editable=False)
    # Shoppers hashed (with the rule's own salt) below this percent are served as if the rule did
    # not exist: its holdout, against which its lift is read (merchandising.holdouts).
    holdout_percent = models.PositiveSmallIntegerField(default=0)
    holdout_salt = models.CharField(max_length=32, default=holdout_salt, editable=False)
    # Tagged to an experiment: the rule serves only to the shoppers in its B (docs/rules.md,
    # "Rules of an experiment"); blank: to everyone it matches.
    experiment = models.ForeignKey(
        "ranking.Experiment",
        on_delete=untag_and_disable,
        null=True,
        blank=True,
        related_name="rules",
        verbose_name="serves only to B of experiment",
        db_index=False,
    )
    revision = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    objects = RuleQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "id"]
        indexes = [
            models.Index(fields=["customer", "enabled"], name="rule_customer_enabled"),
            models.Index(
                fields=["customer", "experiment"],
                name="rule_customer_experiment",
                condition=models.Q(experiment__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def document(self) -> dict[str, Any]:
        """The rule as the API and the revision history show it (merchandising.contracts)."""
        return {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "priority": self.priority,
            "surfaces": self.surfaces,
            "windows": self.windows,
            "query": self.query or {"match": "any", "patterns": []},
            "page_categories": self.page_categories,
            "context": self.context,
            "selector": self.selector,
            "action": self.action,
            "holdout_percent": self.holdout_percent,
        }


class RevisionKind(models.TextChoices):
    CREATED = "created", "created"
    UPDATED = "updated", "updated"
    DELETED = "deleted", "deleted"
    REVERTED = "reverted", "reverted"
    PUBLISHED = "published", "published"


class RuleRevision(models.Model):
    """One change to a rule: who, when, what (the whole document after the change)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    # Kept when the rule is deleted, so its history stays reviewable and revertible.
    rule_id_value = models.PositiveIntegerField("rule id")
    rule = models.ForeignKey(
        Rule, on_delete=models.SET_NULL, null=True, blank=True, related_name="revisions"
    )
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=RevisionKind.choices)
    document = models.JSONField()
    # Whether the rule was a draft after this change (the document has no such field): a revert
    # brings a draft back as a draft, never serving.
    draft = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    changed_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet["RuleRevision"].as_manager()

    class Meta:
        ordering = ["-changed_at", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "rule_id_value", "number"], name="rulerevision_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id_value} r{self.number} ({self.kind})"
