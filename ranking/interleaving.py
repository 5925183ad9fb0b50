"""Reads an interleaving experiment's result: which team's items the shoppers clicked and bought,
and whether they prefer B's (ranking.experiment_stats.preference). Served by
`GET /v1/experiments/{id}/results` and the experiment's admin page (docs/experiments.md,
section 13).

Credit: a click, add-to-cart or purchase whose `request_id` names a logged interleaved request of
the experiment credits the team that picked its item in that request (RankLog.teams). Items a
pin or slot placed, items past the logged positions, and events without such a request id
credit no team. Each search is won by the team with more credit (clicks, or purchase revenue);
searches are summed per shopper, the unit of randomisation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Count, Max, Min, Q, Sum

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
class InterleavingResult:
    experiment: Experiment
    first_request_at: datetime | None
    last_request_at: datetime | None
    shoppers: int
    searches: int
    totals: dict[str, dict[str, float]]  # team -> CREDITS summed
    preferences: dict[str, TeamCredit]  # per PREFERENCE_METRICS key


def interleaving_result(*, experiment: Experiment) -> InterleavingResult:
    """The readout of one interleaving experiment (the caller has scoped it to its customer)."""
    served = RankLog.objects.filter(
        customer_id=experiment.customer_id, experiment_id=experiment.pk, variant=INTERLEAVED
    ).exclude(shopper_key="")
    span = served.aggregate(first=Min("created_at"), last=Max("created_at"))
    searches = dict(
        served.values_list("shopper_key").annotate(searches=Count("id")).order_by("shopper_key")
    )
    shoppers = sorted(searches)
    row_of = {shopper: row for row, shopper in enumerate(shoppers)}
    wins = {key: np.zeros((len(shoppers), 2)) for key, _, _ in PREFERENCE_METRICS}
    totals = {team: dict.fromkeys(CREDITS, 0.0) for team in (TEAM_A, TEAM_B)}
    if span["first"] is not None:
        for shopper, credit in _credited_searches(experiment, span["first"]):
            for team in (TEAM_A, TEAM_B):
                for name in CREDITS:
                    totals[team][name] += credit[team][name]
            for key, _, credited in PREFERENCE_METRICS:
                a, b = credit[TEAM_A][credited], credit[TEAM_B][credited]
                if a != b:
                    wins[key][row_of[shopper], int(b > a)] += 1
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
    )


def _credited_searches(
    experiment: Experiment, first: datetime
) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """(shopper, team -> credited CREDITS) for each interleaved search with an event: the
    events are grouped per (request, item) in SQL; then the teams of those requests alone are
    read, a batch at a time, on the rank log's unique (customer, request_id) index."""
    customer_id = experiment.customer_id
    served = RankLog.objects.filter(
        customer_id=customer_id, experiment_id=experiment.pk, variant=INTERLEAVED
    ).exclude(shopper_key="")
    grouped = (
        Event.objects.filter(
            customer_id=customer_id,
            type__in=[EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE],
            occurred_at__gte=first - MAX_CLOCK_SKEW,
            request_id__in=served.values("request_id"),
        )
        .values("request_id", "item_id")
        .annotate(
            clicks=Count("id", filter=Q(type=EventType.CLICK)),
            add_to_carts=Count("id", filter=Q(type=EventType.ADD_TO_CART)),
            purchases=Count("id", filter=Q(type=EventType.PURCHASE)),
            revenue=Sum("revenue", filter=Q(type=EventType.PURCHASE)),
        )
        .order_by()
    )
    # request id -> (item id, CREDITS in order) of each item with an event
    by_request: dict[str, list[tuple[str, tuple[float, ...]]]] = defaultdict(list)
    for row in grouped:
        sums = tuple(float(row[name] or 0) for name in CREDITS)  # type: ignore[literal-required]
        by_request[row["request_id"]].append((row["item_id"], sums))
    request_ids = sorted(by_request)
    searches = []
    for start in range(0, len(request_ids), _BATCH):
        logged = served.filter(request_id__in=request_ids[start : start + _BATCH]).values_list(
            "request_id", "shopper_key", "item_ids", "teams"
        )
        for request_id, shopper, item_ids, teams in logged:
            team_of = dict(zip(item_ids, teams or "", strict=False))
            credit = {team: dict.fromkeys(CREDITS, 0.0) for team in (TEAM_A, TEAM_B)}
            for item_id, sums in by_request[request_id]:
                team = team_of.get(item_id)
                if team not in credit:
                    continue  # placed by a rule, or past the logged positions: no team
                for name, value in zip(CREDITS, sums, strict=True):
                    credit[team][name] += value
            searches.append((shopper, credit))
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
