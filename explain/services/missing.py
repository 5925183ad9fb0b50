"""Why isn't X here: for one item and one query (or category), whether it was served in the
logged requests and where, where the live ranker puts it now and which rules touch it, how much
score it misses the page by, and what would lift it, in words.

The ranking now is the explain UI's own (explain_ranking): the candidates of the latest logged
request for the query (the one that served the item, if any), with the item added when it is not
among them, ranked now by the live ranker with rules, for no particular shopper.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from catalog.models import Item
from catalog.selectors import item_of
from explain import selectors
from explain.reasons import NEGLIGIBLE, phrase
from explain.services.explained import (
    MAX_CANDIDATES,
    RANKER_LIVE,
    SOURCE_IDS,
    Explained,
    ExplainedItem,
    ExplainError,
    ExplainParams,
    explain_ranking,
)
from merchandising.actions import ACTIONS, Phase
from merchandising.contracts import BOOST_STRENGTHS
from merchandising.preview import preview_candidates
from merchandising.selectors import rule_name
from ranking.learning.rank_log import logged_relevance
from ranking.signals.schema import FEATURE_INDEX

# How many of the latest logged requests for the query are looked at.
LOG_SCAN = 500
PLACED_BY = ("pin", "slot")
# Rank scores closer than this read as equal (they are shown to 3 decimals).
TIE = 5e-4


@dataclass(frozen=True)
class WhyNotParams:
    customer_id: int
    surface: str
    query: str  # normalised; "" on browse
    category: str
    item_id: str
    page_size: int
    days: int
    now: datetime


@dataclass(frozen=True)
class Served:
    """The item in the logged requests of the period."""

    requests: int  # logged requests for the query (or category), newest LOG_SCAN at most
    served: int  # of them, those that returned the item
    positions: tuple[int, ...]
    on_page: int  # of them, those with the item within the page

    @property
    def best(self) -> int | None:
        return min(self.positions) if self.positions else None

    @property
    def worst(self) -> int | None:
        return max(self.positions) if self.positions else None

    @property
    def usual(self) -> int | None:
        return round(statistics.median(self.positions)) if self.positions else None


@dataclass(frozen=True)
class RuleMention:
    rule_id: int
    name: str
    action: str
    effect: str


@dataclass(frozen=True)
class WhyNot:
    params: WhyNotParams
    item: Item
    served: Served
    candidates_note: str
    explained: Explained | None  # None when there was nothing to rank it against
    position: int | None  # now; None when hidden or not ranked
    hidden_by: RuleMention | None
    rules: tuple[RuleMention, ...]  # every rule that touched it now
    last_on_page: ExplainedItem | None  # the lowest-scored item on the page a pin did not place
    ranked: ExplainedItem | None
    verdict: str
    causes: tuple[str, ...]
    lifts: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def score_gap(self) -> float | None:
        """How much rank score the item misses the last place on the page by."""
        if self.ranked is None or self.last_on_page is None:
            return None
        return self.last_on_page.rank_score - self.ranked.rank_score


def _placed(item: ExplainedItem) -> bool:
    return any(
        effect.action in PLACED_BY and effect.effect.startswith(("pinned", "slotted"))
        for effect in item.rules
    )


def _served(pages: list[selectors.LoggedPage], item_id: str, page_size: int) -> Served:
    positions = [page.item_ids.index(item_id) + 1 for page in pages if item_id in page.item_ids]
    return Served(
        requests=len(pages),
        served=len(positions),
        positions=tuple(positions),
        on_page=sum(1 for position in positions if position <= page_size),
    )


def _where(params: WhyNotParams) -> str:
    return f"“{params.query}”" if params.query else f"the category {params.category}"


def _candidates(
    params: WhyNotParams, pages: list[selectors.LoggedPage], item: Item
) -> tuple[tuple[tuple[str, float | None], ...], str]:
    """The candidates to rank now (id, relevance), and a sentence saying where they come from."""
    chosen = next((page for page in pages if params.item_id in page.item_ids), None)
    chosen = chosen or (pages[0] if pages else None)
    logged = (
        selectors.rank_log_of(customer_id=params.customer_id, request_id=chosen.request_id)
        if chosen is not None
        else None
    )
    if chosen is not None and logged is not None:  # (None: purged since it was listed)
        relevance = logged_relevance(bytes(logged.features), len(logged.item_ids))
        ids = [
            (item_id, None if np.isnan(value) else float(value))
            for item_id, value in zip(logged.item_ids, relevance.tolist(), strict=False)
        ][:MAX_CANDIDATES]
        note = (
            f"Ranked now: the {len(ids)} items of the latest logged request for {_where(params)} "
            f"({chosen.created_at:%Y-%m-%d %H:%M} UTC)"
        )
        if params.item_id not in logged.item_ids:
            ids = [*ids[: MAX_CANDIDATES - 1], (params.item_id, None)]
            note += ", with this item added as if the search engine had sent it"
        return tuple(ids), note + ", by the live ranker with its rules, for no particular shopper."
    category = max(item.categories, key=len) if item.categories else ""
    if not category:
        return (), ""
    ids_in_category = preview_candidates(
        customer_id=params.customer_id,
        query="",
        category=category,
        count=MAX_CANDIDATES,
        first=(params.item_id,),
    )
    note = (
        f"No request for {_where(params)} was logged in the period, so what the search engine "
        f"sends is unknown. Ranked now instead: the {len(ids_in_category)} items of the item's "
        f"category {category}, by the live ranker with its rules, for no particular shopper."
    )
    return tuple((item_id, None) for item_id in ids_in_category), note


def _boost_words(factor: float) -> str:
    if factor < 1 + TIE:
        weakest = min(BOOST_STRENGTHS.items(), key=lambda entry: entry[1])
        return f"Any boost lifts it onto the page (a {weakest[0]} boost, x{weakest[1]:g}, does)."
    fitting = [(m, name) for name, m in BOOST_STRENGTHS.items() if m > factor]
    if not fitting:
        strongest = max(BOOST_STRENGTHS.values())
        return (
            f"A boost would need to multiply its score by more than {factor:.2f}: more than "
            f"even the strongest boost (x{strongest:g})."
        )
    multiplier, name = min(fitting)
    return (
        f"A boost of more than x{factor:.2f} would lift it onto the page "
        f"(a {name} boost, x{multiplier:g}, is enough)."
    )


def _low_reasons(ranked: ExplainedItem, typical: np.ndarray | None) -> list[str]:
    """The two features that lower it most, in words."""
    lowering = sorted(
        (c for c in ranked.contributions if c.contribution < -NEGLIGIBLE),
        key=lambda c: c.contribution,
    )
    return [
        phrase(
            c.feature,
            c.contribution,
            c.value,
            None if typical is None else float(typical[FEATURE_INDEX[c.feature]]),
        )
        for c in lowering[:2]
    ]


def why_not_here(params: WhyNotParams) -> WhyNot:
    """Where the item was served, where it lands now and why, and what would lift it."""
    item = item_of(customer_id=params.customer_id, item_id=params.item_id)
    if item is None:
        raise ExplainError("item", "No item of this shop's catalog has this id.")
    pages = selectors.logged_pages(
        customer_id=params.customer_id,
        surface=params.surface,
        query=params.query,
        category=params.category,
        since=params.now - timedelta(days=params.days),
        limit=LOG_SCAN,
    )
    served = _served(pages, params.item_id, params.page_size)
    ids, note = _candidates(params, pages, item)
    causes: list[str] = []
    lifts: list[str] = []
    if not item.in_stock:
        causes.append("It is out of stock, which counts against it.")
        lifts.append("Restocking it lifts it once the signals refresh (every few minutes).")
    if pages and not served.served:
        causes.append(
            f"It was not among the items served in the {served.requests} logged request(s) for "
            f"{_where(params)}: either the search engine did not send it, a rule hid it, or it "
            "ranked below the positions the log keeps."
        )
    if not ids:
        return WhyNot(
            params,
            item,
            served,
            note,
            None,
            None,
            None,
            (),
            None,
            None,
            f"No request for {_where(params)} was logged in the period and the item has no "
            "category: there is nothing to rank it against.",
            tuple(causes),
            tuple(lifts),
        )
    explained = explain_ranking(
        ExplainParams(
            customer_id=params.customer_id,
            surface=params.surface,
            query=params.query,
            category=params.category,
            source=SOURCE_IDS,
            ids=ids,
            at=params.now,
            ranker=RANKER_LIVE,
        )
    )
    if explained.degraded:
        return WhyNot(
            params,
            item,
            served,
            note,
            explained,
            None,
            None,
            (),
            None,
            None,
            "The signal store did not answer: where the item lands now cannot be worked out.",
            tuple(causes),
            tuple(lifts),
            explained.notes,
        )
    removed = next((r for r in explained.removed if r.item_id == params.item_id), None)
    if removed is not None:
        name = rule_name(customer_id=params.customer_id, rule_id=removed.rule_id)
        hidden_by = RuleMention(removed.rule_id, name, "hide", "hidden")
        lifts.insert(
            0,
            f"Take it out of the rule “{hidden_by.name}” (its selection), or switch that rule "
            "off: nothing else lifts a hidden item, a pin on it is ignored.",
        )
        return WhyNot(
            params,
            item,
            served,
            note,
            explained,
            None,
            hidden_by,
            (hidden_by,),
            None,
            None,
            f"It is hidden by the rule “{hidden_by.name}”.",
            tuple(causes),
            tuple(lifts),
            explained.notes,
        )
    ranked = explained.item(params.item_id)
    assert ranked is not None  # every candidate is returned (no limit) unless hidden
    mentions = tuple(RuleMention(r.rule_id, r.name, r.action, r.effect) for r in ranked.rules)
    for mention in mentions:
        if mention.action == "bury":
            causes.append(f"The rule “{mention.name}” buries it ({mention.effect}).")
        elif mention.action in ACTIONS and ACTIONS[mention.action].phase == Phase.REORDER:
            moved = mention.effect.replace("moved", "moved it", 1)  # "moved down from 3: ..."
            causes.append(f"The rule “{mention.name}” {moved}.")
    page = explained.items[: params.page_size]
    if ranked.position <= params.page_size:
        verdict = f"It is on the page now, at position {ranked.position} of {params.page_size}."
        return WhyNot(
            params,
            item,
            served,
            note,
            explained,
            ranked.position,
            None,
            mentions,
            None,
            ranked,
            verdict,
            tuple(causes),
            tuple(lifts),
            explained.notes,
        )
    unplaced = [other for other in page if not _placed(other)]
    # The lowest score on the page (the lowest place among equal ones) is the one to beat.
    last = min(unplaced, key=lambda other: (other.rank_score, -other.position), default=None)
    verdict = (
        f"It lands at position {ranked.position}, below the page (the first {params.page_size})."
    )
    lowering = _low_reasons(ranked, explained.typical)
    if lowering:
        causes.append("What holds its score down most: " + "; ".join(lowering) + ".")
    lifts.append(
        f"A pin at position {params.page_size} or higher puts it on the page whatever its score."
    )
    if last is not None:
        gap = last.rank_score - ranked.rank_score
        if gap <= -TIE:
            verdict += (
                f" Its score is above the last place on the page (#{last.position}): a rule "
                "moved it down, not its score."
            )
        elif gap < TIE:
            verdict += (
                f" Its score equals that of the last place on the page (#{last.position}): "
                "it comes after it by item id only."
            )
        else:
            share = (
                f" ({gap / ranked.rank_score:.0%} of its score)" if ranked.rank_score > 0 else ""
            )
            verdict += (
                f" Its score misses the last place on the page (#{last.position}) by "
                f"{gap:.3f}{share}."
            )
        capped_by = [m.name for m in mentions if m.action == "diversity"]
        if capped_by:
            lifts.append(
                f"A boost alone does not get it past the rule “{capped_by[0]}”: a pin does, or "
                "loosening that rule."
            )
        elif ranked.rank_score > 0 and gap > -TIE:
            lifts.append(_boost_words(last.rank_score / ranked.rank_score))
        if ranked.rank_score_before_rules > last.rank_score and any(
            m.action == "bury" for m in mentions
        ):
            lifts.append("Without the rules that bury it, it would be on the page.")
    else:
        verdict += " Every place on the page is taken by a pin or slot."
    return WhyNot(
        params,
        item,
        served,
        note,
        explained,
        ranked.position,
        None,
        mentions,
        last,
        ranked,
        verdict,
        tuple(causes),
        tuple(lifts),
        explained.notes,
    )
