"""The merchandiser's workbench for one search query or browse category: the live ranking as a
product grid, and the unpublished changes (drafts) with what they would do. The changes
themselves are written by explain.services.workbench_changes.

The candidates are those of the latest logged request for the query (or category): what the search
engine actually sent; with none logged, the category's most popular items stand in. Both sides
rank through explain_ranking, the explain pages' own engine path: "before" is the live ranker,
"after" the live ranker with the drafts added (RANKER_DRAFTS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from catalog.models import Item
from catalog.selectors import items_for_cards
from explain import selectors
from explain.services.explained import (
    MAX_CANDIDATES,
    RANKER_DRAFTS,
    RANKER_LIVE,
    SOURCE_CATEGORY,
    SOURCE_IDS,
    ExplainError,
    ExplainParams,
    explain_ranking,
)
from merchandising.conflicts import rule_warnings
from merchandising.contracts import MAX_POSITION, RuleIn
from merchandising.loading import rule_compile
from merchandising.models import Rule
from merchandising.selectors import (
    drafts_of,
    hide_rules_serving,
    rule_names,
    rules_serving_newest_first,
)
from ranking.engine.records import RankInput, RuleEffect
from ranking.learning.rank_log import logged_relevance

# How far back the rank log is searched for the query's latest request, and the queries' traffic.
LOG_DAYS = 28
# Items of a category ranked when no request is logged (its most popular ones).
CATEGORY_TOP = 50
# Cards shown in the grid; the rest of the ranking is summed up below it.
SHOWN = 24
MAX_MOVES = 12
# More one-place moves than this are counted in one sentence, not listed one by one.
COLLAPSE_STEPS = 3

STRENGTH_CHOICES = ("weak", "medium", "strong", "max")
ACTION_WORDS = {
    "pin": "pinned",
    "slot": "slotted",
    "boost": "boosted",
    "bury": "buried",
    "hide": "hidden",
    "diversity": "moved down",
}


@dataclass(frozen=True)
class WorkbenchParams:
    customer_id: int
    surface: str
    query: str  # normalised; "" on browse
    category: str
    user_id: str
    now: datetime
    days: int = LOG_DAYS
    time_zone: str = "UTC"  # the shop's, in which the page says when things happened

    @property
    def where(self) -> str:
        """The page in words: “boots”, or the category shoes/running."""
        return f"“{self.query}”" if self.query else f"the category {self.category}"


@dataclass(frozen=True)
class Badge:
    """One rule's effect on one item, in words."""

    rule_id: int
    name: str
    action: str
    words: str
    draft: bool


@dataclass(frozen=True)
class Card:
    """One item of the grid, after the drafts, with where it was before them."""

    position: int
    item_id: str
    title: str
    brand: str
    category: str  # its most specific category ("" when none)
    price: Decimal | None
    in_stock: bool | None  # None: not in the catalog
    image_url: str
    badges: tuple[Badge, ...]
    was: int | None  # the position without the drafts; None: it was hidden

    @property
    def category_leaf(self) -> str:
        """The last part of the category's path ("running" of "shoes/running")."""
        return self.category.rsplit("/", 1)[-1]

    @property
    def changed(self) -> bool:
        """Touched by an unpublished change."""
        return any(badge.draft for badge in self.badges)

    @property
    def moved(self) -> int:
        """Places up (positive) or down (negative) against the live ranking."""
        return 0 if self.was is None else self.was - self.position

    @property
    def move_words(self) -> str:
        if self.was is None:
            return "back on the page"
        if self.moved > 0:
            return f"up {self.moved}"
        if self.moved < 0:
            return f"down {-self.moved}"
        return ""


@dataclass(frozen=True)
class HiddenCard:
    item_id: str
    title: str
    rule_id: int
    rule_name: str
    draft: bool
    was: int | None  # its position before the drafts; None when already hidden


@dataclass(frozen=True)
class DraftChange:
    """One unpublished change: the draft rule, in words, with what the conflict checks say."""

    rule_id: int
    name: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Workbench:
    params: WorkbenchParams
    source: str  # SOURCE_IDS (the logged request) or SOURCE_CATEGORY
    source_note: str
    cards: tuple[Card, ...]  # the whole ranking after the drafts
    hidden: tuple[HiddenCard, ...]
    drafts: tuple[DraftChange, ...]
    moves: tuple[str, ...]
    notes: tuple[str, ...]
    degraded: bool
    ranker: str
    # (rule id, name) of the serving rules made for this page: each can be turned off here.
    published: tuple[tuple[int, str], ...] = ()

    @property
    def shown(self) -> tuple[Card, ...]:
        return self.cards[:SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.cards) - SHOWN)


# --- the candidates -----------------------------------------------------------------------------


def _logged_candidates(
    params: WorkbenchParams,
) -> tuple[tuple[tuple[str, float | None], ...], str] | None:
    """The items of the latest logged request for the query (or category), with their logged
    relevance; None when none was logged in the period."""
    pages = selectors.logged_pages(
        customer_id=params.customer_id,
        surface=params.surface,
        query=params.query,
        category=params.category,
        since=params.now - timedelta(days=params.days),
        limit=1,
    )
    logged = (
        selectors.rank_log_of(customer_id=params.customer_id, request_id=pages[0].request_id)
        if pages
        else None
    )
    if logged is None:
        return None
    relevance = logged_relevance(bytes(logged.features), len(logged.item_ids))
    ids = tuple(
        (item_id, None if np.isnan(value) else float(value))
        for item_id, value in zip(logged.item_ids, relevance.tolist(), strict=False)
    )[:MAX_CANDIDATES]
    note = (
        f"The {len(ids)} items the search engine sent for {params.where} in its latest logged "
        f"request ({logged.created_at.astimezone(ZoneInfo(params.time_zone)):%-d %b %Y, %H:%M} "
        f"{params.time_zone})"
    )
    sent = {item_id for item_id, _ in ids}
    hidden = [item_id for item_id in _hidden_by_name(params) if item_id not in sent]
    hidden = hidden[: MAX_CANDIDATES - len(ids)]
    if hidden:
        ids = (*ids, *((item_id, None) for item_id in hidden))
        count = len(hidden)
        note += (
            f", and {count} item{'s' if count != 1 else ''} that rules hide here by name (the "
            "log keeps only what shoppers were shown)"
        )
    return ids, note


def _hidden_by_name(params: WorkbenchParams) -> list[str]:
    """The items the serving hide rules of this page name by id: the rank log never holds them
    (it keeps what was returned), yet the merchandiser should see them hidden."""
    request = _request(params)
    hidden: list[str] = []
    for rule in hide_rules_serving(customer_id=params.customer_id):
        compiled = rule_compile(rule_id=rule.pk, document=RuleIn.stored(rule.document()))
        if compiled.applies(request, params.now):
            hidden += [
                item_id for item_id in rule.selector.get("item_ids", []) if item_id not in hidden
            ]
    return hidden


def _explain_params(params: WorkbenchParams) -> tuple[ExplainParams, str]:
    logged = _logged_candidates(params)
    common: dict[str, Any] = {
        "customer_id": params.customer_id,
        "surface": params.surface,
        "query": params.query,
        "category": params.category,
        "user_id": params.user_id,
        "at": params.now,
        "ranker": RANKER_LIVE,
    }
    if logged is not None:
        ids, note = logged
        return ExplainParams(**common, source=SOURCE_IDS, ids=ids), note
    if not params.category:
        raise ExplainError(
            "query",
            f"No search for {params.where} was logged in the last {params.days} days, so what "
            "the search engine sends for it is unknown: pick a category to work on its items.",
        )
    note = (
        f"No request for {params.where} was logged in the last {params.days} days: the "
        f"{CATEGORY_TOP} most popular items of the category {params.category} stand in"
    )
    return (
        ExplainParams(
            **common, source=SOURCE_CATEGORY, from_category=params.category, top_n=CATEGORY_TOP
        ),
        note,
    )


# --- the drafts of this page --------------------------------------------------------------------


def _request(params: WorkbenchParams) -> RankInput:
    return RankInput(
        surface=params.surface,
        query=params.query,
        category=params.category,
        shopper_key="",
        item_ids=(),
        relevance=np.empty(0),
        context={},
        at=params.now,
    )


def page_drafts(params: WorkbenchParams) -> list[Rule]:
    """The customer's drafts that would apply to this page, oldest first."""
    request = _request(params)
    drafts = []
    for rule in drafts_of(customer_id=params.customer_id):
        compiled = rule_compile(rule_id=rule.pk, document=RuleIn.stored(rule.document()))
        if rule.enabled and compiled.applies(request, params.now):
            drafts.append(rule)
    return drafts


def page_conditions(params: WorkbenchParams) -> dict[str, Any]:
    """A workbench rule applies to this page only: its surface and exact query, or its category
    (and the categories under it)."""
    if params.query:
        return {
            "surfaces": [params.surface],
            "query": {"match": "exact", "patterns": [params.query]},
        }
    return {"surfaces": [params.surface], "page_categories": [params.category]}


def same_page(rule: Rule, params: WorkbenchParams) -> bool:
    conditions = page_conditions(params)
    document = rule.document()
    return (
        document["surfaces"] == conditions["surfaces"]
        and document["query"] == conditions.get("query", {"match": "any", "patterns": []})
        and document["page_categories"] == conditions.get("page_categories", [])
    )


def page_published(params: WorkbenchParams) -> list[Rule]:
    """The serving rules made for exactly this page (as the workbench writes them), newest
    first: what "Turn off" offers to undo."""
    serving = rules_serving_newest_first(customer_id=params.customer_id)
    return [rule for rule in serving if same_page(rule, params)]


def _draft_warnings(params: WorkbenchParams, drafts: list[Rule]) -> list[DraftChange]:
    """Each draft with what the conflict checks say against the serving rules, and a pin on an
    item another draft hides."""
    hidden = {
        item_id
        for rule in drafts
        if rule.action_type == "hide"
        for item_id in rule.selector.get("item_ids", [])
    }
    changes = []
    for rule in drafts:
        document = RuleIn.stored(rule.document())
        found = rule_warnings(
            customer_id=params.customer_id, document=document, rule_id=rule.pk, at=params.now
        )
        words = [warning.detail for warning in found]
        if rule.action_type == "pin":
            clash = sorted({pin["item_id"] for pin in rule.action["pins"]} & hidden)
            if clash:
                words.append(
                    f"{', '.join(clash)} is also hidden by another change: a hidden item is never "
                    "shown, so its pin does nothing. Discard one of the two."
                )
        changes.append(DraftChange(rule.pk, rule.name, tuple(words)))
    return changes


# --- the workbench ------------------------------------------------------------------------------


def _badges(effects: tuple[RuleEffect, ...], drafts: set[int]) -> tuple[Badge, ...]:
    return tuple(
        Badge(
            effect.rule_id,
            effect.name,
            effect.action,
            _effect_words(effect),
            effect.rule_id in drafts,
        )
        for effect in effects
    )


def _effect_words(effect: RuleEffect) -> str:
    if effect.action in ("boost", "bury") and effect.effect.startswith("score x"):
        factor = effect.effect.removeprefix("score x")
        return f"{ACTION_WORDS[effect.action]} ×{factor}"  # noqa: RUF001 (the sign is meant)
    if effect.action in ("pin", "slot"):
        return effect.effect.replace("at position ", "at #")
    return ACTION_WORDS.get(effect.action, effect.action)


def most_specific_category(item: Item | None) -> str:
    """The deepest of the item's categories ("shoes/running" over "shoes"); "" when none."""
    paths = [path for path in (item.categories or []) if isinstance(path, str)] if item else []
    return max(paths, key=lambda path: (path.count("/"), len(path)), default="")


def _image_url(item: Item | None) -> str:
    """The item's `image_url` attribute when it is a web address (https, or a path of the app)."""
    url = (item.attributes or {}).get("image_url") if item is not None else None
    if isinstance(url, str) and (url.startswith("https://") or url.startswith("/")):
        return url
    return ""


def workbench(params: WorkbenchParams) -> Workbench:
    """The page's live ranking as cards, after the drafts that apply to it, with every move."""
    explain_params, source_note = _explain_params(params)
    drafts = page_drafts(params)
    draft_ids = {rule.pk for rule in drafts}
    before = explain_ranking(explain_params)
    after = explain_ranking(explain_params, ranker_key=RANKER_DRAFTS) if drafts else before
    notes = tuple(dict.fromkeys([*before.notes, *after.notes]))
    degraded = before.degraded or after.degraded
    shopper = f", as shopper {params.user_id} sees it" if params.user_id else ""
    source_note += f", ranked now by the live ranker with its rules{shopper}."
    source = explain_params.source
    changes = tuple(_draft_warnings(params, drafts))
    published = tuple((rule.pk, rule.name) for rule in page_published(params))
    if degraded:
        return Workbench(
            params,
            source,
            source_note,
            (),
            (),
            changes,
            (),
            notes,
            True,
            after.ranker.label,
            published,
        )
    was = {item.item_id: item.position for item in before.items}
    catalog = items_for_cards(
        customer_id=params.customer_id,
        item_ids=[item.item_id for item in after.items]
        + [removed.item_id for removed in after.removed],
    )
    cards = tuple(
        Card(
            position=item.position,
            item_id=item.item_id,
            title=item.title,
            brand=item.brand,
            category=most_specific_category(catalog.get(item.item_id)),
            price=item.price,
            in_stock=catalog[item.item_id].in_stock if item.item_id in catalog else None,
            image_url=_image_url(catalog.get(item.item_id)),
            badges=_badges(item.rules, draft_ids),
            was=was.get(item.item_id),
        )
        for item in after.items
    )
    names = rule_names(
        customer_id=params.customer_id, rule_ids={removed.rule_id for removed in after.removed}
    )
    hidden = tuple(
        HiddenCard(
            item_id=removed.item_id,
            title=removed.title or removed.item_id,
            rule_id=removed.rule_id,
            rule_name=names.get(removed.rule_id, f"rule {removed.rule_id}"),
            draft=removed.rule_id in draft_ids,
            was=was.get(removed.item_id),
        )
        for removed in after.removed
    )
    return Workbench(
        params,
        source,
        source_note,
        cards,
        hidden,
        changes,
        _moves(cards, hidden),
        notes,
        False,
        after.ranker.label,
        published,
    )


def _moves(cards: tuple[Card, ...], hidden: tuple[HiddenCard, ...]) -> tuple[str, ...]:
    """What the drafts change, in sentences: the biggest moves first; when many items move one
    place only, they are counted instead of listed."""
    moved = [card for card in cards if card.was != card.position]
    steps = [card for card in moved if abs(card.moved) == 1]
    if len(steps) <= COLLAPSE_STEPS:
        steps = []
    moves = [
        (abs(card.moved) if card.was is not None else MAX_POSITION, card.position, _move(card))
        for card in moved
        if card not in steps
    ]
    moves += [
        (MAX_POSITION + 1, 0, f"“{h.title}” is hidden (it was #{h.was}).")
        for h in hidden
        if h.was is not None
    ]
    moves.sort(key=lambda move: (-move[0], move[1]))
    sentences = [sentence for _, _, sentence in moves[:MAX_MOVES]]
    for direction, count in (
        ("down", sum(c.moved < 0 for c in steps)),
        ("up", sum(c.moved > 0 for c in steps)),
    ):
        if count:
            items = "item moves" if count == 1 else "items move"
            sentences.append(f"{count} other {items} {direction} one place.")
    return tuple(sentences)


def _move(card: Card) -> str:
    if card.was is None:
        return f"“{card.title}” comes back at #{card.position}."
    return f"“{card.title}” {card.move_words} (from #{card.was} to #{card.position})."
