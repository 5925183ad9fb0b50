"""The explained ranking as JSON (the shape of /v1/rank with `explain: true`) and CSV rows."""

from __future__ import annotations

from explain.services.explained import Explained, ExplainedItem


def explanation_dict(item: ExplainedItem) -> dict[str, object]:
    """One item as /v1/rank renders it with `explain: true`, plus the catalog fields."""
    return {
        "id": item.item_id,
        "position": item.position,
        "score": item.rank_score,
        "title": item.title,
        "brand": item.brand,
        "price": None if item.price is None else float(item.price),
        "reason": item.reason,
        "explanation": item.explanation.as_dict(),
    }


def export_dict(explained: Explained) -> dict[str, object]:
    return {
        "ranker": explained.ranker.label,
        "model": explained.model,
        "surface": explained.request.surface,
        "query": explained.request.query,
        "method": explained.method,
        "exact": explained.exact,
        "degraded": explained.degraded,
        "notes": list(explained.notes),
        "items": [explanation_dict(item) for item in explained.items],
        "removed": [
            {"id": r.item_id, "rule_id": r.rule_id, "reason": r.reason} for r in explained.removed
        ],
    }


EXPORT_COLUMNS = (
    "position",
    "id",
    "title",
    "brand",
    "price",
    "score",
    "model_score",
    "method",
    "base_value",
    "position_before_rules",
    "rules",
    "reason",
)


def export_rows(explained: Explained) -> list[list[object]]:
    """CSV rows: a header, then one row per item with one column per feature's contribution."""
    features = [c.feature for c in explained.items[0].contributions] if explained.items else []
    header: list[object] = [*EXPORT_COLUMNS, *(f"contribution:{name}" for name in features)]
    rows: list[list[object]] = [header]
    for item in explained.items:
        fields: dict[str, object] = {
            "position": item.position,
            "id": item.item_id,
            "title": item.title,
            "brand": item.brand,
            "price": "" if item.price is None else item.price,
            "score": item.rank_score,
            "model_score": item.model_score,
            "method": item.explanation.method,
            "base_value": item.explanation.base_value,
            "position_before_rules": item.position_before_rules,
            "rules": "; ".join(f"{r.name}: {r.effect}" for r in item.rules),
            "reason": item.reason,
        }
        rows.append([*fields.values(), *(c.contribution for c in item.contributions)])
    return rows
