"""Shopper profiles: what a shopper's clicks, carts and purchases say about their tastes.

One definition serves three places: the in-process store folds actions with `ProfileBuilder`,
the Redis store's script does the same arithmetic in Redis (tested equal), and training rebuilds
the profile a shopper had at any past moment by folding the event log's actions up to it
(ranking/learning/replay.py). docs/signals.md describes each signal.

- Long-term interests: each action adds its weight (click 1, add-to-cart 3, purchase 5) to the
  item's brand and to each of its categories, decayed with a 30-day half-life. The decay is
  "forward" (Cormode et al., 2009): an action at time t adds weight x 2^((t - epoch) / half-life),
  so older actions count less without ever rewriting what is stored, and a share (brand weight /
  total weight) is the decayed share.
- Price band: per category, the same decayed weights times the item's log price; their ratio is
  the shopper's usual (log) price in that category.
- Session: the actions since the last gap of more than 30 minutes, undecayed; a request more than
  30 minutes after the last action has no session.
- Recently viewed and purchased: the last 50 items clicked or carted, and the last 50 bought.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ranking.signals.schema import SHOPPER_FEATURES

# How many recently viewed / purchased items a shopper profile keeps.
SHOPPER_RECENT_ITEMS = 50
# A shopper profile with no activity for this long is forgotten.
SHOPPER_TTL_SECONDS = 90 * 24 * 3600
# Interest an action shows in the item's brand and categories.
SHOPPER_ACTION_WEIGHTS = {"click": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
AFFINITY_HALF_LIFE_SECONDS = 30 * 24 * 3600.0
# Forward decay's reference time (2024-01-01 UTC): weights grow 2x per half-life after it, which
# a double holds for some 80 years.
DECAY_EPOCH = 1_704_067_200.0
# A pause longer than this between actions starts a new session.
SESSION_GAP_SECONDS = 30 * 60.0


def decayed_weight(action: str, timestamp: float) -> float:
    """The action's weight scaled for forward decay at its time."""
    return SHOPPER_ACTION_WEIGHTS[action] * 2.0 ** (
        (timestamp - DECAY_EPOCH) / AFFINITY_HALF_LIFE_SECONDS
    )


@dataclass(frozen=True, slots=True)
class ShopperAction:
    """One click, add-to-cart or purchase, with what ingest knows of the item."""

    shopper_key: str
    item_id: str
    action: str
    timestamp: float
    brand: str
    categories: tuple[str, ...]
    price: float | None = None


@dataclass(frozen=True)
class ShopperProfile:
    """A shopper's interests (decayed weights per brand and category, with the price band's
    sums), the current session's weights, and recent items."""

    brand_weights: Mapping[str, float] = field(default_factory=dict)
    category_weights: Mapping[str, float] = field(default_factory=dict)
    total_weight: float = 0.0
    # per category: sum of decayed weight x log1p(price), over the actions with a price
    price_sums: Mapping[str, float] = field(default_factory=dict)
    # per category: the decayed weight of those actions
    price_weights: Mapping[str, float] = field(default_factory=dict)
    session_brands: Mapping[str, float] = field(default_factory=dict)
    session_categories: Mapping[str, float] = field(default_factory=dict)
    session_total: float = 0.0
    session_last: float = 0.0  # the session's latest action, epoch seconds
    recently_viewed: frozenset[str] = frozenset()
    purchased: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return self.total_weight <= 0 and not self.recently_viewed and not self.purchased

    def session_active(self, now: float) -> bool:
        return self.session_total > 0 and now - self.session_last <= SESSION_GAP_SECONDS


EMPTY_PROFILE = ShopperProfile()


class ProfileBuilder:
    """Folds actions into a profile, in the order they happened (the session depends on it)."""

    def __init__(self) -> None:
        self.brands: dict[str, float] = {}
        self.categories: dict[str, float] = {}
        self.total = 0.0
        self.price_sums: dict[str, float] = {}
        self.price_weights: dict[str, float] = {}
        self.session_brands: dict[str, float] = {}
        self.session_categories: dict[str, float] = {}
        self.session_total = 0.0
        self.session_last = 0.0
        self.viewed: dict[str, float] = {}
        self.purchased: dict[str, float] = {}

    def add(self, action: ShopperAction) -> None:
        weight = decayed_weight(action.action, action.timestamp)
        self.total += weight
        if action.brand:
            self.brands[action.brand] = self.brands.get(action.brand, 0.0) + weight
        log_price = log_price_of(action.price)
        for category in action.categories:
            self.categories[category] = self.categories.get(category, 0.0) + weight
            if log_price is not None:
                self.price_sums[category] = self.price_sums.get(category, 0.0) + weight * log_price
                self.price_weights[category] = self.price_weights.get(category, 0.0) + weight
        self._add_to_session(action)
        recent = self.purchased if action.action == "purchase" else self.viewed
        recent[action.item_id] = max(action.timestamp, recent.get(action.item_id, 0.0))
        if len(recent) > SHOPPER_RECENT_ITEMS:
            oldest = sorted(recent.items(), key=lambda pair: (pair[1], pair[0]))
            for item_id, _ in oldest[: len(recent) - SHOPPER_RECENT_ITEMS]:
                del recent[item_id]

    def _add_to_session(self, action: ShopperAction) -> None:
        if self.session_total > 0:
            if action.timestamp - self.session_last > SESSION_GAP_SECONDS:
                self.session_brands, self.session_categories = {}, {}
                self.session_total = 0.0
            elif self.session_last - action.timestamp > SESSION_GAP_SECONDS:
                return  # a late action of an earlier session
        weight = SHOPPER_ACTION_WEIGHTS[action.action]
        self.session_total += weight
        if action.brand:
            self.session_brands[action.brand] = self.session_brands.get(action.brand, 0.0) + weight
        for category in action.categories:
            self.session_categories[category] = self.session_categories.get(category, 0.0) + weight
        self.session_last = max(self.session_last, action.timestamp)

    def profile(self) -> ShopperProfile:
        return ShopperProfile(
            brand_weights=dict(self.brands),
            category_weights=dict(self.categories),
            total_weight=self.total,
            price_sums=dict(self.price_sums),
            price_weights=dict(self.price_weights),
            session_brands=dict(self.session_brands),
            session_categories=dict(self.session_categories),
            session_total=self.session_total,
            session_last=self.session_last,
            recently_viewed=frozenset(self.viewed),
            purchased=frozenset(self.purchased),
        )


def log_price_of(price: float | None) -> float | None:
    """The log price the price band averages (None for no price)."""
    return math.log1p(price) if price is not None and price >= 0 else None


@dataclass(frozen=True)
class ItemCodes:
    """What the shopper signals need of the candidates: their brand and category codes (indexes
    into `brands` and `categories`, -1 for none), their log price and ids."""

    item_ids: tuple[str, ...]
    brand: np.ndarray  # K, int
    categories: np.ndarray  # K x MAX_ITEM_CATEGORIES, int, the most specific first
    log_price: np.ndarray  # K, float
    brand_index: Mapping[str, int]
    category_index: Mapping[str, int]


def _per_code(values: Mapping[str, float], index: Mapping[str, int], total: float) -> np.ndarray:
    """value / total per dictionary code, with one extra 0 slot that code -1 (none) lands on."""
    result = np.zeros(len(index) + 1)
    for name, value in values.items():
        code = index.get(name)
        if code is not None:
            result[code] = value / total
    return result


# The shopper block's columns (the feature registry's shopper and session entries).
_COLUMN = {name: column for column, name in enumerate(SHOPPER_FEATURES)}
_CATEGORY, _BRAND = _COLUMN["user_category_affinity"], _COLUMN["user_brand_affinity"]
_PRICE_GAP = _COLUMN["user_price_gap"]
_VIEWED, _PURCHASED = _COLUMN["user_recently_viewed"], _COLUMN["user_purchased"]
_SESSION_CATEGORY = _COLUMN["session_category_affinity"]
_SESSION_BRAND = _COLUMN["session_brand_affinity"]


def shopper_columns(profile: ShopperProfile, items: ItemCodes, now: float) -> np.ndarray:
    """The K x len(SHOPPER_FEATURES) block of the feature matrix, in schema order."""
    k = len(items.item_ids)
    columns = np.zeros((k, len(SHOPPER_FEATURES)))
    if profile.total_weight > 0:
        total = profile.total_weight
        columns[:, _CATEGORY] = _per_code(profile.category_weights, items.category_index, total)[
            items.categories
        ].max(axis=1)
        columns[:, _BRAND] = _per_code(profile.brand_weights, items.brand_index, total)[items.brand]
        columns[:, _PRICE_GAP] = _price_gap(profile, items)
    if not profile.recently_viewed.isdisjoint(items.item_ids):
        columns[:, _VIEWED] = _members(profile.recently_viewed, items.item_ids)
    if not profile.purchased.isdisjoint(items.item_ids):
        columns[:, _PURCHASED] = _members(profile.purchased, items.item_ids)
    if profile.session_active(now):
        total = profile.session_total
        columns[:, _SESSION_CATEGORY] = _per_code(
            profile.session_categories, items.category_index, total
        )[items.categories].max(axis=1)
        columns[:, _SESSION_BRAND] = _per_code(profile.session_brands, items.brand_index, total)[
            items.brand
        ]
    return columns


_LARGEST = np.finfo(np.float64).max


def _members(recent: frozenset[str], item_ids: tuple[str, ...]) -> np.ndarray:
    return np.fromiter(map(recent.__contains__, item_ids), dtype=bool, count=len(item_ids))


def _price_gap(profile: ShopperProfile, items: ItemCodes) -> np.ndarray:
    """Item log price minus the shopper's usual log price in the item's most specific category
    they have bought or looked at with a price; 0 where there is none."""
    if not profile.price_weights:
        return np.zeros(len(items.item_ids))
    usual = np.full(len(items.category_index) + 1, np.nan)
    for name, weight in profile.price_weights.items():
        code = items.category_index.get(name)
        if code is not None and weight > 0:
            usual[code] = profile.price_sums.get(name, 0.0) / weight
    per_slot = usual[items.categories]  # K x slots, NaN where the shopper has no usual price
    known = ~np.isnan(per_slot)
    first = known.argmax(axis=1)
    chosen = per_slot[np.arange(len(first)), first]  # NaN where no slot is known (first is 0)
    # Where chosen, an infinite usual price (a weight too small to divide by) counts as the
    # largest float, as np.nan_to_num takes it (two ufuncs: nan_to_num is a Python function).
    finite = np.minimum(np.maximum(chosen, -_LARGEST), _LARGEST)
    return np.where(np.isnan(chosen), 0.0, items.log_price - finite)
