"""Schemathesis hooks for the positive-data run of tests/test_fuzz_api.py.

JSON Schema states what it can (types, bounds, patterns, uniqueness, a factor or a strength);
the rules below compare fields, depend on the clock or on the customer, and are stated in words
in the API's description (config/settings.py SPECTACULAR_SETTINGS). Each hook makes a generated
valid body follow them, so "a schema-valid request was refused" means a rule nobody wrote down.
The run that checks everything else (5xx, negative data, response shapes) uses no hook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis

PAST = "2026-01-01T00:00:00Z"
MAX_CANDIDATES = 1000  # the default customer's max_candidates


def _unique_by_stripped(values: list[Any], key: Any) -> list[Any]:
    """Ids are compared after stripping whitespace: keep the first of equal ones."""
    seen: set[str] = set()
    kept = []
    for value in values:
        stripped = key(value).strip()
        if stripped not in seen:
            seen.add(stripped)
            kept.append(value)
    return kept


def _category(path: Any) -> Any:
    """Category paths are segments joined by '/', none empty after stripping."""
    if isinstance(path, str) and all(part.strip() for part in path.split("/")):
        return path
    return "shoes/running"


def _rank(body: dict[str, Any]) -> None:
    if body.get("surface") in ("search", "autocomplete") and not (body.get("query") or "").strip():
        body["query"] = "shoes"
    items = _unique_by_stripped(body.get("items", []), lambda item: item["id"])
    body["items"] = items[:MAX_CANDIDATES] or [{"id": "sku-0"}]


def _out_of_range(timestamp: Any, now: datetime) -> bool:
    """Later than now, or before year 1 once in UTC."""
    try:
        moment = datetime.fromisoformat(timestamp)
        return moment > now or moment.astimezone(UTC).year < 1
    except OverflowError:
        return True
    except (TypeError, ValueError):
        return False


def _events(body: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    for event in body.get("events", []):
        if _out_of_range(event.get("timestamp"), now):
            event["timestamp"] = PAST
        if event.get("type") == "impression" and "items" in event:
            event["items"] = _unique_by_stripped(event["items"], lambda item: item)


def _catalog(body: dict[str, Any]) -> None:
    body["items"] = _unique_by_stripped(body.get("items", []), lambda item: item["id"])
    for item in body["items"]:
        if "categories" in item:
            item["categories"] = [_category(path) for path in item["categories"]]


def _pattern(pattern: Any) -> Any:
    """A query pattern needs a letter or a digit."""
    return pattern if any(char.isalnum() for char in pattern) else "shoes"


def _rule(body: dict[str, Any]) -> None:
    query = body.get("query")
    if isinstance(query, dict):
        match = query.get("match", "any")
        patterns = [_pattern(p) for p in query.get("patterns", [])]
        query["patterns"] = [] if match == "any" else patterns or ["shoes"]
    for window in body.get("windows", []):
        start, end = window.get("start"), window.get("end")
        if start and end and datetime.fromisoformat(end) <= datetime.fromisoformat(start):
            window["start"], window["end"] = None, end
    if isinstance(body.get("action"), dict) and body["action"].get("type") == "pin":
        body["selector"] = {}
    body["page_categories"] = [_category(path) for path in body.get("page_categories", [])]
    selector = body.get("selector")
    if isinstance(selector, dict) and "categories" in selector:
        selector["categories"] = [_category(path) for path in selector["categories"]]


RULES = {
    "POST /v1/rank": _rank,
    "POST /v1/events": _events,
    "PUT /v1/catalog/items": _catalog,
    "POST /v1/rules": _rule,
    "PUT /v1/rules/{rule_id}": _rule,
}


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    apply = RULES.get(context.operation.label) if context.operation else None
    if apply is not None and isinstance(body, dict):
        apply(body)
    return body
