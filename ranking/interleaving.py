"""Reads an interleaving experiment's result: which team's items the shoppers clicked and bought,
and whether they prefer B's (ranking.experiment_stats.preference). Served by
`GET /v1/experiments/{id}/results` and the experiment's admin page (docs/experiments.md,
section 13).

Credit: a click, add-to-cart or purchase whose `request_id` names a logged interleaved request of
the experiment credits the team that picked its item in that request (RankLog.teams). Items a
pin or slot placed, items past the logged positions, and events without such a request id
credit no team. Each search is won by the team with more credit (clicks, or purchase revenue);
searches are summed per shopper, the unit of randomisation. Day by day (the shop's days), each
search counts as won by whom it was won at the end of that day: an event counts on the later of
its own day and its request's, as in an A/B readout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate

from events.models import Event, EventType
from events.services import MAX_CLOCK_SKEW
from ranking.engine.experiments import INTERLEAVED
from ranking.engine.interleaving import TEAM_A, TEAM_B
from ranking.experiment_stats import CONFIDENCE, Preference, preference
from ranking.experiments import signed_percent
from ranking.models import Experiment, RankLog

CREDITS = ("clicks", "add_to_carts", "purchases", "revenue")
# What a search is won on: (key, label in shop words, what is credited).
PREFERENCE_METRICS = (
    ("clicks", "Clicks", "clicks"),
    ("revenue", "Purchase revenue", "revenue"),
)
# Logged requests read per query when crediting events.
_BATCH = 5000


@dataclass(frozen=True)
class TeamCredit:
    """One credit's comparison: what each team's items earned in total, and the preference."""

    key: str
    label: str
    credited_a: float
    credited_b: float
    preference: Preference
    ties: int  # searches neither won: equal credit, most often none


@dataclass(frozen=True)
class PreferenceDay:
    """The preferences as they stood at the end of one day of the shop: over the shoppers with
    an interleaved search by then, each search won by whom it was won by then."""

    day: date
    shoppers: int
    searches: int
    preferences: dict[str, Preference]  # per PREFERENCE_METRICS key


@dataclass(frozen=True)
class InterleavingResult:
    experiment: Experiment
    first_request_at: datetime | None
    last_request_at: datetime | None
    shoppers: int
    searches: int
    totals: dict[str, dict[str, float]]  # team -> CREDITS summed
    preferences: dict[str, TeamCredit]  # per PREFERENCE_METRICS key
    # Every day of the shop from the first search's to the last with a search or an event; the
    # last day's preferences are `preferences`.
    daily: tuple[PreferenceDay, ...] = ()


@dataclass(frozen=True)
class _CreditedSearch:
    """One interleaved search with an event: its shopper, its day, and each team's credit at the
    end of each day on which it changed (in order of the days; the last is the final credit)."""

    shopper: str
    by_day: list[tuple[date, dict[str, dict[str, float]]]]


def interleaving_result(*, experiment: Experiment) -> InterleavingResult:
    """The readout of one interleaving experiment (the caller has scoped it to its customer)."""
    zone = ZoneInfo(experiment.customer.time_zone or "UTC")
    served = (
        RankLog.objects.for_customer(experiment.customer_id)
        .filter(experiment_id=experiment.pk, variant=INTERLEAVED)
        .exclude(shopper_key="")
    )
    span = served.aggregate(first=Min("created_at"), last=Max("created_at"))
    searches: dict[str, int] = defaultdict(int)
    searched_on: list[tuple[str, date, int]] = []  # (shopper, day, searches)
    for shopper, day, count in (
        served.values_list("shopper_key", TruncDate("created_at", tzinfo=zone))
        .annotate(searches=Count("id"))
        .order_by()
    ):
        searches[shopper] += count
        searched_on.append((shopper, day, count))
    shoppers = sorted(searches)
    row_of = {shopper: row for row, shopper in enumerate(shoppers)}
    wins = {key: np.zeros((len(shoppers), 2)) for key, _, _ in PREFERENCE_METRICS}
    totals = {team: dict.fromkeys(CREDITS, 0.0) for team in (TEAM_A, TEAM_B)}
    # Each change of a search's winner on a day: (day ordinal, shopper row, 0 A / 1 B, +-1).
    changes: list[tuple[int, int, int, int]] = []
    credited = _credited_searches(experiment, span["first"], zone) if span["first"] else []
    for search in credited:
        row = row_of[search.shopper]
        credit = search.by_day[-1][1]
        for team in (TEAM_A, TEAM_B):
            for name in CREDITS:
                totals[team][name] += credit[team][name]
        for key, _, on in PREFERENCE_METRICS:
            winner = _winner(credit, on)
            if winner is not None:
                wins[key][row, winner] += 1
        changes.extend(_winner_changes(search, row))
    preferences = {
        key: TeamCredit(
            key=key,
            label=label,
            credited_a=totals[TEAM_A][credited],
            credited_b=totals[TEAM_B][credited],
            preference=preference(wins[key][:, 0], wins[key][:, 1], CONFIDENCE),
            ties=sum(searches.values()) - int(wins[key].sum()),
        )
        for key, label, credited in PREFERENCE_METRICS
    }
    return InterleavingResult(
        experiment=experiment,
        first_request_at=span["first"],
        last_request_at=span["last"],
        shoppers=len(shoppers),
        searches=sum(searches.values()),
        totals=totals,
        preferences=preferences,
        daily=_daily(
            [(row_of[shopper], day.toordinal(), count) for shopper, day, count in searched_on],
            changes,
            len(shoppers),
        ),
    )


def _winner(credit: dict[str, dict[str, float]], on: str) -> int | None:
    """0 when A's items got more of the credit `on`, 1 when B's did, None on a tie."""
    a, b = credit[TEAM_A][on], credit[TEAM_B][on]
    return None if a == b else int(b > a)


def _winner_changes(search: _CreditedSearch, row: int) -> list[tuple[int, int, int, int]]:
    """(day ordinal, shopper row, metric index * 2 + winner, +1 or -1) for each day on which
    this search's winner on a PREFERENCE_METRICS credit changed: the new winner gains the
    search, the old one loses it."""
    changes = []
    for index, (_, _, on) in enumerate(PREFERENCE_METRICS):
        before = None
        for day, credit in search.by_day:
            now = _winner(credit, on)
            if now == before:
                continue
            if before is not None:
                changes.append((day.toordinal(), row, index * 2 + before, -1))
            if now is not None:
                changes.append((day.toordinal(), row, index * 2 + now, 1))
            before = now
    return changes


def _daily(
    searched: list[tuple[int, int, int]],
    changes: list[tuple[int, int, int, int]],
    shoppers: int,
) -> tuple[PreferenceDay, ...]:
    """The preferences at the end of each day, from each shopper's searches per day
    (row, day ordinal, searches) and the changes of the searches' winners."""
    if not searched:
        return ()
    rows, search_days, counts = np.array(searched, dtype=np.int64).T
    change = np.array(changes, dtype=np.int64).reshape(-1, 4)
    first = min(int(search_days.min()), *(int(d) for d in change[:, 0]))
    last = max(int(search_days.max()), *(int(d) for d in change[:, 0]))
    columns = 2 * len(PREFERENCE_METRICS)
    daily = []
    for ordinal in range(first, last + 1):
        known = search_days <= ordinal
        searches = np.bincount(rows[known], weights=counts[known], minlength=shoppers)
        present = searches > 0
        done = change[change[:, 0] <= ordinal]
        won = np.bincount(
            done[:, 1] * columns + done[:, 2], weights=done[:, 3], minlength=shoppers * columns
        ).reshape(shoppers, columns)[present]
        daily.append(
            PreferenceDay(
                day=date.fromordinal(ordinal),
                shoppers=int(present.sum()),
                searches=int(searches.sum()),
                preferences={
                    key: preference(won[:, 2 * index], won[:, 2 * index + 1], CONFIDENCE)
                    for index, (key, _, _) in enumerate(PREFERENCE_METRICS)
                },
            )
        )
    return tuple(daily)


def _credited_searches(
    experiment: Experiment, first: datetime, zone: ZoneInfo
) -> list[_CreditedSearch]:
    """Each interleaved search with an event, with its teams' credit day by day: the events are
    grouped per (request, item, day) in SQL; then the teams of those requests alone are read, a
    batch at a time, on the rank log's unique (customer, request_id) index."""
    customer_id = experiment.customer_id
    served = (
        RankLog.objects.for_customer(customer_id)
        .filter(experiment_id=experiment.pk, variant=INTERLEAVED)
        .exclude(shopper_key="")
    )
    grouped = (
        Event.objects.for_customer(customer_id)
        .filter(
            type__in=[EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE],
            occurred_at__gte=first - MAX_CLOCK_SKEW,
            request_id__in=served.values("request_id"),
        )
        .values("request_id", "item_id", day=TruncDate("occurred_at", tzinfo=zone))
        .annotate(
            clicks=Count("id", filter=Q(type=EventType.CLICK)),
            add_to_carts=Count("id", filter=Q(type=EventType.ADD_TO_CART)),
            purchases=Count("id", filter=Q(type=EventType.PURCHASE)),
            revenue=Sum("revenue", filter=Q(type=EventType.PURCHASE)),
        )
        .order_by()
    )
    # request id -> (item id, day, CREDITS in order) of each item with an event that day
    by_request: dict[str, list[tuple[str, date, tuple[float, ...]]]] = defaultdict(list)
    for row in grouped:
        sums = tuple(float(row[name] or 0) for name in CREDITS)  # type: ignore[literal-required]
        by_request[row["request_id"]].append((row["item_id"], row["day"], sums))
    request_ids = sorted(by_request)
    searches = []
    for start in range(0, len(request_ids), _BATCH):
        logged = served.filter(request_id__in=request_ids[start : start + _BATCH]).values_list(
            "request_id", "shopper_key", "item_ids", "teams", "created_at"
        )
        for request_id, shopper, item_ids, teams, created_at in logged:
            requested = created_at.astimezone(zone).date()
            team_of = dict(zip(item_ids, teams or "", strict=False))
            credit = {team: dict.fromkeys(CREDITS, 0.0) for team in (TEAM_A, TEAM_B)}
            by_day: list[tuple[date, dict[str, dict[str, float]]]] = []
            # An event counts on the later of its own day and its request's.
            for item_id, day, sums in sorted(
                by_request[request_id], key=lambda entry: max(entry[1], requested)
            ):
                team = team_of.get(item_id)
                if team not in credit:
                    continue  # placed by a rule, or past the logged positions: no team
                for name, value in zip(CREDITS, sums, strict=True):
                    credit[team][name] += value
                on = max(day, requested)
                snapshot = {team: dict(sums) for team, sums in credit.items()}
                if by_day and by_day[-1][0] == on:
                    by_day[-1] = (on, snapshot)
                else:
                    by_day.append((on, snapshot))
            if not by_day:  # no event credited a team: its final credit is none
                by_day.append((requested, credit))
            searches.append(_CreditedSearch(shopper, by_day))
    return searches


def interleaving_summary(result: InterleavingResult) -> dict[str, object]:
    """What a periodic check keeps of an interleaving readout (Experiment.last_check): JSON."""
    return {
        "interleaving": {
            "shoppers": result.shoppers,
            "searches": result.searches,
            **{
                key: {
                    "delta": credit.preference.delta,
                    "low": credit.preference.low,
                    "high": credit.preference.high,
                    "significant": credit.preference.significant,
                }
                for key, credit in result.preferences.items()
            },
        }
    }


def preference_words(credit: TeamCredit) -> str:
    """The preference in shop words: who is preferred, by how much, with its interval."""
    found = credit.preference
    if found.delta is None:
        return "not enough data yet: no search was won by either ranker"
    won = f"B won {found.wins_b:,} searches, A won {found.wins_a:,}, {credit.ties:,} tied"
    if found.low is None or found.high is None:
        return f"not enough data yet: too few shoppers to tell ({won})"
    interval = f"{CONFIDENCE:.0%} interval {signed_percent(found.low)} to "
    interval += signed_percent(found.high)
    measured = f"preference {signed_percent(found.delta)}, {interval}"
    if not found.significant:
        return f"no clear preference yet ({won}; {measured})"
    winner, loser = ("B", "A") if found.delta > 0 else ("A", "B")
    share = (1 + abs(found.delta)) / 2
    return (
        f"shoppers prefer {winner}: it won {share:.1%} of the searches that had a winner, "
        f"{loser} {1 - share:.1%} ({won}; {measured})"
    )
