"""Reads for merchandising rules."""

from __future__ import annotations

import difflib
import json
from typing import Any

from merchandising.models import RuleRevision


def rule_revisions(*, customer_id: int, rule_id: int) -> list[RuleRevision]:
    """A rule's history, newest first (kept after the rule is deleted)."""
    return list(
        RuleRevision.objects.for_customer(customer_id)
        .filter(rule_id_value=rule_id)
        .select_related("changed_by")
        .order_by("-number")
    )


def document_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """A unified diff of two rule documents, one JSON field per line."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines() if before else []
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(old, new, "before", "after", lineterm="", n=2))[2:]
