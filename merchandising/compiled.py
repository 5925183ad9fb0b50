"""What rules compile into: immutable selectors and rules, and the per-request item facts their
selectors look at. Plain Python and numpy, no Django models (merchandising.loading compiles
rules from the database); the engine (merchandising/engine.py) applies them, and the actions'
stages (merchandising/actions.py) read them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ranking.engine.experiments import shopper_bucket
from ranking.signals.idsets import IdSet
from ranking.signals.schema import FEATURE_INDEX

if TYPE_CHECKING:
    from ranking.engine.records import RankInput
    from ranking.signals.store import SignalFetch, SignalMeta


@dataclass(frozen=True)
class NoParams:
    """hide, sink: the selector says everything (the compiled parameters of an action that has
    none, and a rule's default)."""


_PRICE = FEATURE_INDEX["price"]
_IN_STOCK = FEATURE_INDEX["in_stock"]


class Vocabulary:
    """The brand and category names that item facts' codes index, with memoised lookups."""

    def __init__(self, brands: Sequence[str], categories: Sequence[str]) -> None:
        self.brands = tuple(brands)
        self.categories = tuple(categories)
        self._brand_index = {name.casefold(): code for code, name in enumerate(self.brands)}
        self._folded_categories = [name.casefold() for name in self.categories]
        self._codes: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def _table(self, codes: list[int], size: int) -> np.ndarray:
        """A lookup table over codes: True for the wanted ones; the extra last slot is the
        code -1 (none), always False."""
        table = np.zeros(size + 1, dtype=bool)
        table[codes] = True
        return table

    def brand_table(self, brands: tuple[str, ...]) -> np.ndarray:
        key = ("brand", brands)
        table = self._codes.get(key)
        if table is None:
            found = [self._brand_index.get(brand.casefold()) for brand in brands]
            codes = [code for code in found if code is not None]
            table = self._codes[key] = self._table(codes, len(self.brands))
        return table

    def category_table(self, categories: tuple[str, ...]) -> np.ndarray:
        """The categories and all their descendants (`shoes` takes `shoes/running`)."""
        key = ("category", categories)
        table = self._codes.get(key)
        if table is None:
            wanted = [c.casefold() for c in categories]
            codes = [
                code
                for code, name in enumerate(self._folded_categories)
                if any(name == c or name.startswith(c + "/") for c in wanted)
            ]
            table = self._codes[key] = self._table(codes, len(self.categories))
        return table

    @cached_property
    def top_level_codes(self) -> np.ndarray:
        """Per category code, a code for its top-level category (for diversity by category)."""
        tops: dict[str, int] = {}
        codes = [
            tops.setdefault(name.split("/", 1)[0].casefold(), len(tops)) for name in self.categories
        ]
        return np.array([*codes, -1], dtype=np.int64)  # the extra slot is code -1: none


_vocabularies: dict[int, tuple[SignalMeta, Vocabulary]] = {}


def vocabulary_for(meta: SignalMeta) -> Vocabulary:
    """One vocabulary per signal version, reused by every request on that version."""
    entry = _vocabularies.get(id(meta))
    if entry is None or entry[0] is not meta:
        if len(_vocabularies) > 64:
            _vocabularies.clear()
        entry = (meta, Vocabulary(meta.brands, meta.categories))
        _vocabularies[id(meta)] = entry
    return entry[1]


def attribute_matches(value: object, wanted: Sequence[str]) -> bool:
    """Does one item attribute value match a clause's values? Lists match when any element does;
    booleans as "true"/"false"; whole floats also as integers."""
    if isinstance(value, list):
        return any(attribute_matches(v, wanted) for v in value)
    if isinstance(value, bool):
        return ("true" if value else "false") in wanted
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) in wanted or str(value) in wanted
    return str(value) in wanted


Attributes = tuple[tuple[str, tuple[str, ...]], ...]


def attribute_set_name(attributes: Attributes) -> str:
    """The name of the signal-store set of items matching these attribute clauses: a digest of
    the clauses, so equal selectors share one set and a changed selector gets a new one."""
    canonical = json.dumps(sorted((key, sorted(values)) for key, values in attributes))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class ItemFacts:
    """What selectors look at, per candidate: from the signal records, or from the catalog.

    Attribute clauses are answered by `attribute_masks` (set name -> candidates in the set, read
    from the signal store in the request's one round trip), or, for facts built from the catalog
    (previews and authoring checks), from each item's own attributes."""

    item_ids: tuple[str, ...]
    known: np.ndarray  # bool: facts come from the catalog; unknown items match no catalog clause
    brand_codes: np.ndarray  # int, -1 for none
    category_codes: np.ndarray  # K x C int, -1 for none
    price: np.ndarray  # float, NaN for none
    in_stock: np.ndarray  # bool
    vocabulary: Vocabulary
    attribute_masks: Mapping[str, np.ndarray] = field(default_factory=dict)
    item_attributes: tuple[Mapping[str, object] | None, ...] | None = None

    def used_category_codes(self) -> np.ndarray:
        """The category codes without the trailing columns no candidate uses."""
        used = self.category_codes >= 0
        if used.shape[1] % 8 == 0:
            # A row's flags read as words of eight columns: OR-ing the rows' words leaves a byte
            # per column, nonzero where a candidate uses it (one reduction, not one per row).
            flags = np.bitwise_or.reduce(used.view(np.uint64), axis=0).tobytes()
        else:
            flags = used.any(axis=0).tobytes()
        columns = [column for column, flag in enumerate(flags) if flag]
        return self.category_codes[:, : columns[-1] + 1 if columns else 1]

    def ids_mask(self, ids: IdSet) -> np.ndarray:
        """Candidates in the set."""
        return self.members_mask(ids.members)

    @cached_property
    def index(self) -> dict[str, int] | None:
        """Each candidate's position, built once a request when a rule names fewer ids than
        there are candidates; None when an id comes twice (the API refuses that; other callers
        may not), which a lookup by id could not tell."""
        index = dict(zip(self.item_ids, range(len(self.item_ids)), strict=True))
        return index if len(index) == len(self.item_ids) else None

    def members_at(self, members: frozenset[str]) -> np.ndarray:
        """The indexes of the candidates in `members`, from whichever side is smaller: each
        member looked up among the candidates (the request's index, shared by every rule), or
        each candidate in the members. A rule set with many id rules (hide lists, pins) pays for
        the index once."""
        n = len(self.item_ids)
        index = self.index if len(members) < n else None
        if index is None:
            return np.fromiter(map(members.__contains__, self.item_ids), bool, n).nonzero()[0]
        return np.fromiter((index[m] for m in members if m in index), np.intp)

    def members_mask(self, members: frozenset[str]) -> np.ndarray:
        """Candidates in `members`."""
        mask = np.zeros(len(self.item_ids), dtype=bool)
        mask[self.members_at(members)] = True
        return mask

    def positions(self, members: frozenset[str]) -> dict[str, int]:
        """The index of each candidate in `members` (the last, were an id listed twice)."""
        index = self.index
        if index is not None and len(members) < len(self.item_ids):
            return {m: index[m] for m in members if m in index}
        return {self.item_ids[i]: i for i in self.members_at(members).tolist()}

    def attribute_mask(self, attributes: Attributes, set_name: str) -> np.ndarray:
        """Candidates whose attributes match every clause. Without the set (not published, or
        the store could not say) and without catalog attributes, nothing matches."""
        mask = self.attribute_masks.get(set_name)
        if mask is not None:
            return mask
        if self.item_attributes is None:
            return np.zeros(len(self.item_ids), dtype=bool)
        return np.fromiter(
            (
                item is not None
                and all(
                    key in item and attribute_matches(item[key], values)
                    for key, values in attributes
                )
                for item in self.item_attributes
            ),
            dtype=bool,
            count=len(self.item_ids),
        )

    @classmethod
    def from_fetch(cls, item_ids: tuple[str, ...], fetch: SignalFetch | None) -> ItemFacts:
        k = len(item_ids)
        if fetch is None or fetch.meta is None:
            return cls(
                item_ids,
                np.zeros(k, bool),
                np.full(k, -1),
                np.full((k, 1), -1),
                np.full(k, np.nan),
                np.zeros(k, bool),
                Vocabulary((), ()),
                attribute_masks=fetch.attribute_masks if fetch is not None else {},
            )
        records = fetch.item_records
        signals = records["signals"]
        return cls(
            item_ids=item_ids,
            known=np.asarray(fetch.item_found, dtype=bool),
            brand_codes=records["brand"].astype(np.int64),
            category_codes=records["categories"].astype(np.int64),
            # Stored as log1p(price), in float32: back to the price, to the cent (computed in
            # float64 from the column as read, without a float64 copy of it first).
            price=np.expm1(signals[:, _PRICE], dtype=np.float64).round(2),
            in_stock=signals[:, _IN_STOCK] > 0.5,
            vocabulary=vocabulary_for(fetch.meta),
            attribute_masks=fetch.attribute_masks,
        )

    @classmethod
    def from_catalog(
        cls,
        item_ids: tuple[str, ...],
        catalog: Mapping[str, tuple[str, Sequence[str], float | None, bool]],
        attributes: Mapping[str, Mapping[str, object]] | None = None,
    ) -> ItemFacts:
        """Facts from (brand, categories, price, in_stock) per id, and the items' attributes when
        given: authoring checks and tests."""
        brands = sorted({entry[0] for entry in catalog.values() if entry[0]})
        categories = sorted({c for entry in catalog.values() for c in entry[1]})
        brand_index = {name: code for code, name in enumerate(brands)}
        category_index = {name: code for code, name in enumerate(categories)}
        width = max([len(entry[1]) for entry in catalog.values()] + [1])
        k = len(item_ids)
        known = np.zeros(k, bool)
        brand_codes = np.full(k, -1)
        category_codes = np.full((k, width), -1)
        price = np.full(k, np.nan)
        in_stock = np.zeros(k, bool)
        for row, item_id in enumerate(item_ids):
            entry = catalog.get(item_id)
            if entry is None:
                continue
            brand, item_categories, item_price, item_in_stock = entry
            known[row] = True
            brand_codes[row] = brand_index.get(brand, -1)
            for column, category in enumerate(item_categories):
                category_codes[row, column] = category_index[category]
            price[row] = np.nan if item_price is None else item_price
            in_stock[row] = item_in_stock
        item_attributes = (
            None if attributes is None else tuple(attributes.get(item_id) for item_id in item_ids)
        )
        return cls(
            item_ids,
            known,
            brand_codes,
            category_codes,
            price,
            in_stock,
            Vocabulary(brands, categories),
            item_attributes=item_attributes,
        )


@dataclass(frozen=True)
class CompiledSelector:
    """Clauses AND-ed, values within a clause OR-ed. Attribute clauses are not resolved in the
    process: the items they match are a set in the signal store (named by `attribute_set`), kept
    by merchandising.attribute_sets and read with the request's signals, so no API process holds
    anything per catalog item."""

    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    item_ids: IdSet | None = None
    attributes: Attributes = ()

    @cached_property
    def attribute_set(self) -> str:
        return attribute_set_name(self.attributes) if self.attributes else ""

    @property
    def needs_catalog_facts(self) -> bool:
        return bool(self.brands or self.categories) or (
            self.price_min is not None or self.price_max is not None or self.in_stock is not None
        )

    def mask(self, facts: ItemFacts) -> np.ndarray:
        mask = np.ones(len(facts.item_ids), dtype=bool)
        if self.needs_catalog_facts:
            mask &= facts.known
        if self.brands:
            mask &= facts.vocabulary.brand_table(self.brands)[facts.brand_codes]
        if self.categories:
            table = facts.vocabulary.category_table(self.categories)
            mask &= table[facts.category_codes].any(axis=1)
        with np.errstate(invalid="ignore"):
            if self.price_min is not None:
                mask &= facts.price >= self.price_min
            if self.price_max is not None:
                mask &= facts.price <= self.price_max
        if self.in_stock is not None:
            mask &= facts.in_stock == self.in_stock
        if self.item_ids is not None:
            mask &= facts.ids_mask(self.item_ids)
        if self.attributes:
            mask &= facts.attribute_mask(self.attributes, self.attribute_set)
        return mask


WORD_BITS = 64  # selectors per bank word (numpy's widest unsigned integer)


class SelectorBank:
    """The selectors of several rules stacked, so that one request computes all their masks in
    a handful of array operations instead of a handful per rule. Built per (rules, vocabulary)
    and reused; `CompiledSelector.mask` is the one-selector reference it agrees with.

    A candidate's answers are the bits of one word, a bit per selector. Each clause kind has a
    table of words by code (brand, category, in stock), the selectors without that clause
    always passing, so one lookup answers every selector's clause at once; more than
    WORD_BITS selectors are a stack of banks."""

    def __init__(self, selectors: Sequence[CompiledSelector], vocabulary: Vocabulary) -> None:
        self.selectors = tuple(selectors)
        self.vocabulary = vocabulary
        self.size = len(self.selectors)
        self.parts = [
            SelectorBank(self.selectors[start : start + WORD_BITS], vocabulary)
            for start in range(0, self.size, WORD_BITS)
            if self.size > WORD_BITS
        ]
        if self.parts:
            return
        self.bits = np.left_shift(np.uint64(1), np.arange(self.size, dtype=np.uint64))
        self.everyone = np.bitwise_or.reduce(self.bits)
        self.column_bits = self.bits[:, None]

        def rows(has: Callable[[CompiledSelector], object]) -> list[int]:
            return [row for row, selector in enumerate(self.selectors) if has(selector)]

        def words(rows: list[int], tables: list[np.ndarray]) -> np.ndarray | None:
            """Per code the word of the selectors passing: those of `rows` where their table
            (one per row, by code) says so, the others always."""
            if not rows:
                return None
            passing = np.where(np.array(tables).T, self.bits[rows], np.uint64(0))
            return np.bitwise_or.reduce(passing, axis=1) | self.without(rows)

        brand_rows = rows(lambda s: s.brands)
        self.brand_words = words(
            brand_rows, [vocabulary.brand_table(self.selectors[i].brands) for i in brand_rows]
        )
        category_rows = rows(lambda s: s.categories)
        self.category_words = words(
            category_rows,
            [vocabulary.category_table(self.selectors[i].categories) for i in category_rows],
        )
        stock_rows = rows(lambda s: s.in_stock is not None)
        stock_wanted = np.array([self.selectors[i].in_stock for i in stock_rows], dtype=bool)
        self.stock_words = words(
            stock_rows, [np.array([not wanted, wanted]) for wanted in stock_wanted]
        )
        self.unknown_word = self.without(rows(lambda s: s.needs_catalog_facts))
        price_rows = rows(lambda s: s.price_min is not None or s.price_max is not None)
        self.price_bounds, self.price_words = self._price_words(price_rows)
        self.id_rows = [
            (self.without([row]), selector.item_ids)
            for row, selector in enumerate(self.selectors)
            if selector.item_ids is not None
        ]
        self.attribute_rows = [
            (np.asarray(self.without([i])), self.selectors[i]) for i in rows(lambda s: s.attributes)
        ]
        # The words np.where picks from, as 0-d arrays: numpy scalars cost each call a failed
        # lookup of __array_function__ (an exception raised and cleared), arrays do not.
        self.everyone_array = np.asarray(self.everyone)
        self.unknown_array = np.asarray(self.unknown_word)
        self.stock_arrays = (
            None
            if self.stock_words is None
            else (np.asarray(self.stock_words[0]), np.asarray(self.stock_words[1]))
        )

    def _price_words(self, rows: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """The price bounds of `rows` sorted (+inf last), and per price code the word of the
        selectors passing. A price's code is the number of bounds below it plus the number of
        bounds up to it: even between two bounds, odd on one, the last code for no price (NaN
        sorts after +inf). So one lookup answers every selector's minimum and maximum."""
        if not rows:
            return np.zeros(0), None

        def bound(value: float | None) -> float | None:
            return None if value is None or np.isnan(value) else float(value)

        limits = [
            (bound(self.selectors[r].price_min), bound(self.selectors[r].price_max)) for r in rows
        ]
        bounds = sorted({b for pair in limits for b in pair if b is not None} | {np.inf})
        place = {b: i for i, b in enumerate(bounds)}
        words = []
        for code in range(2 * len(bounds) + 1):
            below, up_to = code // 2, (code + 1) // 2  # bounds < price, bounds <= price
            failing = [
                row
                for row, (low, high) in zip(rows, limits, strict=True)
                if code == 2 * len(bounds)
                or (low is not None and place[low] >= up_to)
                or (high is not None and place[high] < below)
            ]
            words.append(self.without(failing))
        return np.array(bounds), np.array(words, dtype=np.uint64)

    def without(self, rows: list[int]) -> np.uint64:
        """The word of every selector but those of `rows`."""
        return self.everyone & ~np.bitwise_or.reduce(self.bits[rows])

    def masks(self, facts: ItemFacts) -> np.ndarray:
        """One row of booleans per selector, one column per candidate."""
        if self.parts:
            return np.concatenate([part.masks(facts) for part in self.parts])
        if self.brand_words is None:
            words = np.full(len(facts.item_ids), self.everyone)
        else:
            words = self.brand_words[facts.brand_codes]
        if self.category_words is not None:
            codes = facts.used_category_codes()
            found = self.category_words[codes[:, 0]]
            for column in range(1, codes.shape[1]):
                found |= self.category_words[codes[:, column]]
            words &= found
        if self.price_words is not None:
            code = self.price_bounds.searchsorted(facts.price, "left")
            code += self.price_bounds.searchsorted(facts.price, "right")
            words &= self.price_words[code]
        if self.stock_arrays is not None:
            out_of_stock, in_stock = self.stock_arrays
            words &= np.where(facts.in_stock, in_stock, out_of_stock)
        if self.unknown_word != self.everyone:
            words &= np.where(facts.known, self.everyone_array, self.unknown_array)
        for failed, id_set in self.id_rows:
            members = facts.members_at(id_set.members)
            kept = words[members]
            words &= failed
            words[members] = kept
        for failing, selector in self.attribute_rows:
            mask = facts.attribute_mask(selector.attributes, selector.attribute_set)
            words &= np.where(mask, self.everyone_array, failing)
        return (words & self.column_bits) != 0


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    priority: int
    action: str  # a key of merchandising.actions.ACTIONS
    surfaces: frozenset[str] = frozenset()
    windows: tuple[tuple[datetime | None, datetime | None], ...] = ()
    query_match: str = "any"
    patterns: tuple[str, ...] = ()
    page_categories: tuple[str, ...] = ()
    context: tuple[tuple[str, frozenset[str]], ...] = ()
    selector: CompiledSelector = field(default_factory=CompiledSelector)
    params: object = NoParams()  # the action's compiled parameters (merchandising.actions)
    # Percent of shoppers (0-50) served as if the rule did not exist, hashed with its own salt.
    holdout_percent: int = 0
    holdout_salt: str = ""
    # Whether anything of a request but its surface can keep the rule from applying.
    conditional: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditional = self.windows or self.query_match != "any" or self.page_categories
        object.__setattr__(self, "conditional", bool(conditional or self.context))

    def holds_out(self, shopper_key: str) -> bool:
        """Is this shopper in the rule's holdout? Never without a shopper: they see the rule."""
        return bool(shopper_key) and (
            shopper_bucket(self.holdout_salt, shopper_key) < self.holdout_percent * 100
        )

    def is_on(self, at: datetime) -> bool:
        return not self.windows or any(
            (start is None or start <= at) and (end is None or at < end)
            for start, end in self.windows
        )

    def query_matches(self, query: str) -> bool:
        if self.query_match == "any":
            return True
        if not query:
            return False
        if self.query_match == "exact":
            return query in self.patterns
        if self.query_match == "contains":  # whole words, in order
            padded = f" {query} "
            return any(f" {pattern} " in padded for pattern in self.patterns)
        return any(query.startswith(pattern) for pattern in self.patterns)

    def applies(self, request: RankInput, at: datetime) -> bool:
        if self.surfaces and request.surface not in self.surfaces:
            return False
        if not self.conditional:
            return True
        if not self.is_on(at) or not self.query_matches(request.query):
            return False
        if self.page_categories:
            page = request.category.casefold()
            if not any(page == c or page.startswith(c + "/") for c in self.page_categories):
                return False
        return all(request.context.get(key) in values for key, values in self.context)
