"""A rule's history as people read it: the diff of two of its documents (the revisions
themselves are read by merchandising.selectors.rule_revisions)."""

from __future__ import annotations

import difflib
import json
from typing import Any


def document_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """A unified diff of two rule documents, one JSON field per line."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines() if before else []
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(old, new, "before", "after", lineterm="", n=2))[2:]
