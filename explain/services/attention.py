"""Queries that need attention: the shop's queries by traffic over a period, with their rates,
flagged when shoppers rarely or never click what they are shown.

The counts come from one GROUP BY over the event log (explain.selectors.query_traffic); the rates,
the shop's median and the flags are worked out here on one row per query.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from explain import selectors

PERIODS = (7, 28, 90)  # days, the choices of the period selector
DEFAULT_PERIOD = 28
# A query is judged only with at least this many searches in the period: fewer say too little.
MIN_SEARCHES = 20
# Low click-through: below this share of the shop's median click-through (judged queries).
LOW_CTR_SHARE = 0.5
MAX_ROWS = 200

ZERO_CLICK = "zero-click"
LOW_CTR = "low-ctr"


@dataclass(frozen=True)
class QueryRow:
    """One query's numbers over the period, its flag ("" when it looks fine) and where to look."""

    traffic: selectors.QueryTraffic
    flag: str
    logged_request: str  # the latest logged request id for the query, "" when none

    @property
    def query(self) -> str:
        return self.traffic.query

    @property
    def ctr(self) -> float:
        """Share of searches with at least one click."""
        return _share(self.traffic.clicked_searches, self.traffic.searches)

    @property
    def cart_rate(self) -> float:
        return _share(self.traffic.carted_searches, self.traffic.searches)

    @property
    def conversion(self) -> float:
        return _share(self.traffic.bought_searches, self.traffic.searches)

    @property
    def revenue_per_search(self) -> float:
        return self.traffic.revenue / self.traffic.searches if self.traffic.searches else 0.0


@dataclass(frozen=True)
class QueriesReport:
    days: int
    since: datetime
    until: datetime
    rows: tuple[QueryRow, ...]  # the shown rows, most searched first
    total_queries: int
    judged_queries: int  # with at least MIN_SEARCHES searches
    flagged: int
    median_ctr: float | None  # over the judged queries that had a click
    searches: int
    revenue: float

    @property
    def low_ctr_below(self) -> float | None:
        return None if self.median_ctr is None else self.median_ctr * LOW_CTR_SHARE


def _share(part: int, whole: int) -> float:
    """part / whole, at most 1 (a click may follow a search made just before the period)."""
    return min(1.0, part / whole) if whole else 0.0


def queries_report(
    *, customer_id: int, days: int, now: datetime, only_flagged: bool = False
) -> QueriesReport:
    """The search queries of the last `days` days by traffic, each with its rates and flag."""
    since, until = now - timedelta(days=days), now
    traffic = selectors.query_traffic(
        customer_id=customer_id, surface="search", since=since, until=until
    )
    judged = [row for row in traffic if row.searches >= MIN_SEARCHES]
    clicked_rates = [_share(row.clicked_searches, row.searches) for row in judged if row.clicks > 0]
    median_ctr = statistics.median(clicked_rates) if clicked_rates else None

    def flag(row: selectors.QueryTraffic) -> str:
        if row.searches < MIN_SEARCHES:
            return ""
        if row.clicks == 0:
            return ZERO_CLICK
        if median_ctr is not None and _share(row.clicked_searches, row.searches) < (
            median_ctr * LOW_CTR_SHARE
        ):
            return LOW_CTR
        return ""

    flags = {row.query: flag(row) for row in traffic}
    shown = [row for row in traffic if flags[row.query] or not only_flagged][:MAX_ROWS]
    logged = selectors.latest_logged_requests(
        customer_id=customer_id,
        surface="search",
        queries=[row.query for row in shown],
        since=since,
    )
    return QueriesReport(
        days=days,
        since=since,
        until=until,
        rows=tuple(QueryRow(row, flags[row.query], logged.get(row.query, "")) for row in shown),
        total_queries=len(traffic),
        judged_queries=len(judged),
        flagged=sum(1 for value in flags.values() if value),
        median_ctr=median_ctr,
        searches=sum(row.searches for row in traffic),
        revenue=sum(row.revenue for row in traffic),
    )
