"""The explain UI's logic, by page: one explained ranking (explained), one item (item), why A is
above B (why), two rankers side by side (compare), and the exports (export). Views call these
plain functions; what each page shows and how reasons are worded: docs/explain.md."""

from explain.services.compare import CompareRow, Comparison, compare
from explain.services.explained import (
    MAX_CANDIDATES,
    RANKER_BLEND,
    RANKER_LIVE,
    RANKER_NO_RULES,
    SOURCE_CATEGORY,
    SOURCE_IDS,
    SOURCE_LOG,
    Explained,
    ExplainedItem,
    ExplainError,
    ExplainParams,
    Ranker,
    explain_ranking,
    explained_items,
    neighbours,
    parse_candidates,
    ranker_build,
    ranker_choices,
)
from explain.services.export import export_dict, export_rows
from explain.services.item import ItemDetail, item_detail
from explain.services.why import Why, why_above

__all__ = [
    "MAX_CANDIDATES",
    "RANKER_BLEND",
    "RANKER_LIVE",
    "RANKER_NO_RULES",
    "SOURCE_CATEGORY",
    "SOURCE_IDS",
    "SOURCE_LOG",
    "CompareRow",
    "Comparison",
    "ExplainError",
    "ExplainParams",
    "Explained",
    "ExplainedItem",
    "ItemDetail",
    "Ranker",
    "Why",
    "compare",
    "explain_ranking",
    "explained_items",
    "export_dict",
    "export_rows",
    "item_detail",
    "neighbours",
    "parse_candidates",
    "ranker_build",
    "ranker_choices",
    "why_above",
]
