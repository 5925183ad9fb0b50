"""Properties of the rule engine over random candidate lists and rule sets (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from merchandising.actions import ACTIONS, Cap, Factor, Pins, Slots
from merchandising.compiled import (
    CompiledRule,
    CompiledSelector,
    ItemFacts,
    NoParams,
    SelectorBank,
    Vocabulary,
)
from merchandising.engine import RuleSet, apply_rules
from ranking.engine.records import RankInput
from ranking.signals.idsets import IdSet
from ranking.signals.schema import FEATURE_INDEX, ITEM_RECORD

BRANDS = ["Nike", "Puma", "Asics", ""]
CATEGORIES = ["shoes", "shoes/running", "shoes/trail", "bags", "bags/city"]


@st.composite
def candidates(draw: st.DrawFn) -> tuple[ItemFacts, np.ndarray]:
    k = draw(st.integers(1, 40))
    ids = tuple(f"i{n}" for n in range(k))
    catalog = {}
    for item_id in ids:
        if draw(st.integers(0, 9)):  # now and then an item unknown to the catalog
            catalog[item_id] = (
                draw(st.sampled_from(BRANDS)),
                tuple(draw(st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True))),
                draw(st.none() | st.floats(1, 500)),
                draw(st.booleans()),
            )
    scores = np.array(
        draw(st.lists(st.floats(0.01, 0.99), min_size=k, max_size=k)), dtype=np.float64
    )
    return ItemFacts.from_catalog(ids, catalog), scores


@st.composite
def selectors(draw: st.DrawFn, k: int) -> CompiledSelector:
    low = draw(st.none() | st.floats(1, 300))
    return CompiledSelector(
        brands=tuple(draw(st.lists(st.sampled_from(BRANDS[:3]), max_size=2, unique=True))),
        categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES), max_size=1))),
        price_min=low,
        price_max=draw(st.none() | st.floats(low or 1, 600)),
        in_stock=draw(st.none() | st.booleans()),
        item_ids=draw(
            st.none()
            | st.frozensets(st.sampled_from([f"i{n}" for n in range(k + 3)]), max_size=5).map(IdSet)
        ),
    )


@st.composite
def rules(draw: st.DrawFn, k: int, actions: tuple[str, ...] = tuple(ACTIONS)) -> list[CompiledRule]:
    result = []
    for rule_id in range(1, draw(st.integers(0, 6)) + 1):
        action = draw(st.sampled_from(actions))
        params: object = NoParams()
        selector = draw(selectors(k))
        if action == "boost":
            params = Factor(draw(st.floats(1.01, 10)))
        elif action == "bury":
            params = Factor(draw(st.floats(0.01, 0.99)))
        elif action == "pin":
            positions = draw(st.lists(st.integers(1, k + 2), min_size=1, max_size=3, unique=True))
            pool = st.sampled_from([f"i{n}" for n in range(k + 2)])
            size = len(positions)
            items = draw(st.lists(pool, min_size=size, max_size=size, unique=True))
            params = Pins(tuple(sorted(zip(items, positions, strict=True), key=lambda p: p[1])))
            selector = CompiledSelector()
        elif action == "slot":
            params = Slots(
                tuple(
                    sorted(
                        draw(st.lists(st.integers(1, k + 2), min_size=1, max_size=3, unique=True))
                    )
                )
            )
        elif action == "diversity":
            top_k = draw(st.integers(2, k + 2))
            params = Cap(
                field=draw(st.sampled_from(["brand", "category"])),
                max_items=draw(st.integers(1, top_k - 1)),
                top_k=top_k,
            )
        result.append(
            CompiledRule(
                id=rule_id,
                name=f"rule {rule_id}",
                priority=draw(st.integers(-2, 2)),
                action=action,
                selector=selector,
                params=params,
            )
        )
    return sorted(result, key=lambda rule: (-rule.priority, rule.id))


@st.composite
def cases(
    draw: st.DrawFn,
    actions: tuple[str, ...] = tuple(ACTIONS),
) -> tuple[ItemFacts, np.ndarray, list[CompiledRule]]:
    facts, scores = draw(candidates())
    return facts, scores, draw(rules(len(facts.item_ids), actions))


def hidden_indexes(facts: ItemFacts, rule_list: list[CompiledRule]) -> set[int]:
    hidden: set[int] = set()
    for rule in rule_list:
        if rule.action == "hide":
            hidden |= set(np.flatnonzero(rule.selector.mask(facts)).tolist())
    return hidden


@settings(max_examples=150, deadline=None)
@given(cases())
def test_the_output_is_a_permutation_of_the_input_minus_hidden_items(case: tuple) -> None:
    facts, scores, rule_list = case

    applied = apply_rules(rule_list, facts, scores, explain=True)

    order = applied.order.tolist()
    hidden = hidden_indexes(facts, rule_list)
    assert len(order) == len(set(order))
    assert set(order) == set(range(len(facts.item_ids))) - hidden
    assert {removal.index for removal in applied.removed} == hidden


@settings(max_examples=150, deadline=None)
@given(cases())
def test_hidden_items_never_appear_even_when_pinned(case: tuple) -> None:
    facts, scores, rule_list = case
    pinned = [
        pin for rule in rule_list if isinstance(rule.params, Pins) for pin in rule.params.pins
    ]

    applied = apply_rules(rule_list, facts, scores)

    returned = {facts.item_ids[i] for i in applied.order.tolist()}
    hidden = {facts.item_ids[i] for i in hidden_indexes(facts, rule_list)}
    assert not returned & hidden
    assert not {item for item, _ in pinned} & hidden & returned


@settings(max_examples=150, deadline=None)
@given(cases())
def test_pins_land_at_their_positions(case: tuple) -> None:
    facts, scores, rule_list = case
    hidden = {facts.item_ids[i] for i in hidden_indexes(facts, rule_list)}

    applied = apply_rules(rule_list, facts, scores)

    returned = [facts.item_ids[i] for i in applied.order.tolist()]
    claimed_positions: set[int] = set()
    claimed_items: set[str] = set()
    for rule in rule_list:  # priority order: the first claim of a position or item wins
        if not isinstance(rule.params, Pins):
            continue
        for item, position in rule.params.pins:
            eligible = item in facts.item_ids and item not in hidden and position <= len(returned)
            if eligible and position not in claimed_positions and item not in claimed_items:
                assert returned[position - 1] == item
                claimed_positions.add(position)
                claimed_items.add(item)


@settings(max_examples=150, deadline=None)
@given(cases(actions=("hide", "boost", "bury")), st.data())
def test_a_boost_never_lowers_an_item_and_a_bury_never_raises_it(
    case: tuple, data: st.DataObject
) -> None:
    facts, scores, rule_list = case
    k = len(facts.item_ids)
    action = data.draw(st.sampled_from(["boost", "bury"]))
    extra = CompiledRule(
        id=99,
        name="extra",
        priority=data.draw(st.integers(-3, 3)),
        action=action,
        selector=data.draw(selectors(k)),
        params=Factor(
            data.draw(st.floats(1.01, 10) if action == "boost" else st.floats(0.01, 0.99))
        ),
    )
    with_extra = sorted([*rule_list, extra], key=lambda rule: (-rule.priority, rule.id))

    before = apply_rules(rule_list, facts, scores).order.tolist()
    after = apply_rules(with_extra, facts, scores).order.tolist()

    targeted = set(np.flatnonzero(extra.selector.mask(facts)).tolist())
    for index in before:
        moved = after.index(index) - before.index(index)
        if (index in targeted) == (action == "boost"):
            assert moved <= 0, (index, before, after)
        else:
            assert moved >= 0, (index, before, after)


@settings(max_examples=150, deadline=None)
@given(cases(actions=("hide", "boost", "bury", "sink")))
def test_sunk_items_follow_every_other_item_in_their_own_order(case: tuple) -> None:
    facts, scores, rule_list = case
    sunk = np.zeros(len(facts.item_ids), dtype=bool)
    for rule in rule_list:
        if rule.action == "sink":
            sunk |= rule.selector.mask(facts)
    without_sinks = [rule for rule in rule_list if rule.action != "sink"]

    order = apply_rules(rule_list, facts, scores).order.tolist()
    before = apply_rules(without_sinks, facts, scores).order.tolist()

    flags = [bool(sunk[index]) for index in order]
    assert flags == sorted(flags), "a sunk item came before an item no sink rule matched"
    assert [i for i in order if sunk[i]] == [i for i in before if sunk[i]]
    assert [i for i in order if not sunk[i]] == [i for i in before if not sunk[i]]


def test_out_of_stock_items_sink_to_the_end_unless_pinned() -> None:
    ids = ("a", "b", "c", "d", "e")
    stock = {"a": False, "b": True, "c": False, "d": True, "e": True}
    catalog = {i: ("Nike", ("shoes",), 10.0, stock[i]) for i in ids}
    facts = ItemFacts.from_catalog(ids, catalog)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    sold_out = CompiledRule(
        1, "sold out last", 0, "sink", selector=CompiledSelector(in_stock=False)
    )
    pin_c = CompiledRule(2, "c first", 0, "pin", params=Pins((("c", 1),)))

    applied = apply_rules([sold_out], facts, scores, explain=True)
    pinned = apply_rules([sold_out, pin_c], facts, scores)

    assert [ids[i] for i in applied.order] == ["b", "d", "e", "a", "c"]
    assert [e.effect for e in applied.effects[0]] == ["moved to the end from 1"]
    assert [e.effect for e in applied.effects[2]] == ["moved to the end from 3"]
    assert [ids[i] for i in pinned.order] == ["c", "b", "d", "e", "a"]


@settings(max_examples=150, deadline=None)
@given(cases(actions=("diversity",)))
def test_a_diversity_cap_holds_in_the_top_k_while_other_items_are_left(case: tuple) -> None:
    facts, scores, rule_list = case
    if len(rule_list) != 1:
        return
    (rule,) = rule_list
    cap = rule.params
    assert isinstance(cap, Cap)

    order = apply_rules(rule_list, facts, scores).order

    if cap.field == "brand":
        keys = facts.brand_codes[order]
    else:
        keys = facts.vocabulary.top_level_codes[facts.category_codes[order, 0]]
    top = keys[: cap.top_k]
    counts = {key: int((top == key).sum()) for key in set(top.tolist()) if key >= 0}
    if any(count > cap.max_items for count in counts.values()):
        # Over the cap only when nothing below the top K could have taken the place.
        below = keys[cap.top_k :].tolist()
        assert all(key >= 0 and counts.get(key, 0) >= cap.max_items for key in below)
    assert sorted(order.tolist()) == list(range(len(facts.item_ids)))


def test_a_pin_beats_a_slot_beats_a_boost() -> None:
    ids = ("a", "b", "c", "d")
    catalog = {i: ("Nike" if i in "cd" else "Puma", ("shoes",), 10.0, True) for i in ids}
    facts = ItemFacts.from_catalog(ids, catalog)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    only_b = CompiledSelector(item_ids=IdSet(frozenset("b")))
    boost_b = CompiledRule(1, "boost b", 9, "boost", selector=only_b, params=Factor(10.0))
    nike = CompiledSelector(brands=("nike",))
    slot_nike = CompiledRule(2, "nike first", 0, "slot", selector=nike, params=Slots((1, 2)))
    pin_a = CompiledRule(3, "pin a", -5, "pin", params=Pins((("a", 1),)))

    applied = apply_rules([boost_b, slot_nike, pin_a], facts, scores, explain=True)

    assert [ids[i] for i in applied.order] == ["a", "c", "b", "d"]
    assert [e.effect for e in applied.effects[0]] == ["pinned at position 1"]
    assert [e.effect for e in applied.effects[2]] == ["slotted at position 2"]


def test_rules_match_on_surface_window_query_category_and_context() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    rule = CompiledRule(
        1,
        "r",
        0,
        "hide",
        surfaces=frozenset({"search"}),
        windows=((now, now + timedelta(hours=1)),),
        query_match="starts_with",
        patterns=("run",),
        context=(("device", frozenset({"mobile"})),),
    )

    def request(**changes: object) -> RankInput:
        fields: dict[str, object] = {
            "surface": "search",
            "query": "running shoes",
            "category": "",
            "shopper_key": "",
            "item_ids": ("a",),
            "relevance": np.array([np.nan]),
            "context": {"device": "mobile"},
            "at": now,
        }
        return RankInput(**(fields | changes))  # type: ignore[arg-type]

    ruleset = RuleSet((rule,))
    assert ruleset.matching(request()) == [rule]
    assert ruleset.matching(request(surface="browse")) == []
    assert ruleset.matching(request(query="trail running")) == []
    assert ruleset.matching(request(context={})) == []
    assert ruleset.matching(request(at=now - timedelta(microseconds=1))) == []
    assert ruleset.matching(request(at=now + timedelta(hours=1))) == []
    assert ruleset.matching(request(at=now + timedelta(minutes=59))) == [rule]


@settings(max_examples=150, deadline=None)
@given(cases(actions=("hide", "boost", "bury", "slot")))
def test_stacked_selector_masks_equal_each_selectors_own_mask(case: tuple) -> None:
    facts, _, rule_list = case
    selectors = [rule.selector for rule in rule_list]

    stacked = SelectorBank(selectors, facts.vocabulary).masks(facts)

    for row, selector in enumerate(selectors):
        assert stacked[row].tolist() == selector.mask(facts).tolist()


def test_large_id_sets_are_matched_exactly() -> None:
    ids = tuple(f"sku-{n}" for n in range(5000))
    facts = ItemFacts.from_catalog(ids, {})
    members = frozenset(f"sku-{n}" for n in range(0, 20000, 7))

    mask = facts.ids_mask(IdSet(members))

    assert [ids[i] for i in np.flatnonzero(mask)] == [i for i in ids if i in members]


@settings(max_examples=30, deadline=None)
@given(candidates(), st.data())
def test_a_bank_of_more_selectors_than_a_word_has_bits_agrees_with_each_selector(
    case: tuple, data: st.DataObject
) -> None:
    facts, _ = case
    k = len(facts.item_ids)
    drawn = [data.draw(selectors(k)) for _ in range(data.draw(st.integers(60, 140)))]

    stacked = SelectorBank(drawn, facts.vocabulary).masks(facts)

    assert stacked.shape == (len(drawn), k)
    for row, selector in enumerate(drawn):
        assert stacked[row].tolist() == selector.mask(facts).tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([f"sku-{n}" for n in range(30)]), max_size=60),
    st.frozensets(st.sampled_from([f"sku-{n}" for n in range(40)])),
)
def test_members_are_found_wherever_listed_however_many(ids: list[str], members: frozenset) -> None:
    # Duplicated ids (which the API refuses, other callers might not) and found sets on both
    # sides of the index (fewer members than candidates, or more), with strings equal to the
    # candidates' but other objects.
    facts = ItemFacts.from_catalog(tuple(ids), {})
    members = frozenset("".join(member) for member in members)

    mask = facts.members_mask(members)
    positions = facts.positions(members)

    assert mask.tolist() == [item_id in members for item_id in ids]
    assert positions == {item_id: i for i, item_id in enumerate(ids) if item_id in members}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.none() | st.sampled_from([0.0, 9.99, 10.0, 25.5, 50.0, 500.0]), max_size=30),
    st.lists(
        st.tuples(
            st.none() | st.sampled_from([0.0, 10.0, 25.5, 50.0, float("inf")]),
            st.none() | st.sampled_from([9.99, 10.0, 25.5, 50.0, 499.99]),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_price_bounds_stacked_agree_with_each_selector_on_the_bounds_and_without_a_price(
    prices: list[float | None], bounds: list[tuple[float | None, float | None]]
) -> None:
    # Prices on the bounds themselves, bounds shared by several selectors, items without a
    # price and items unknown to the catalog.
    ids = tuple(f"i{n}" for n in range(len(prices)))
    catalog = {i: ("Nike", (), price, True) for i, price in zip(ids, prices, strict=True)}
    catalog.pop("i0", None)
    facts = ItemFacts.from_catalog(ids, catalog)
    drawn = [CompiledSelector(price_min=low, price_max=high) for low, high in bounds]

    stacked = SelectorBank(drawn, facts.vocabulary).masks(facts)

    for row, selector in enumerate(drawn):
        assert stacked[row].tolist() == selector.mask(facts).tolist()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e6, width=32), min_size=1, max_size=40))
def test_prices_read_from_the_signal_records_are_back_in_float64_to_the_cent(
    prices: list[float],
) -> None:
    records = np.zeros(len(prices), dtype=ITEM_RECORD)
    records["signals"][:, FEATURE_INDEX["price"]] = np.log1p(np.array(prices, dtype=np.float32))
    meta = SimpleNamespace(brands=(), categories=())
    fetch = SimpleNamespace(
        meta=meta, item_records=records, item_found=np.ones(len(prices), bool), attribute_masks={}
    )
    ids = tuple(f"i{n}" for n in range(len(prices)))

    facts = ItemFacts.from_fetch(ids, fetch)  # type: ignore[arg-type]

    stored = records["signals"][:, FEATURE_INDEX["price"]].tolist()  # float32 values, as floats
    assert facts.price.dtype == np.float64
    assert facts.price.tolist() == [float(np.round(np.expm1(np.float64(v)), 2)) for v in stored]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 3, 8, 16]), st.data())
def test_the_used_category_columns_end_at_the_last_column_a_candidate_uses(
    width: int, data: st.DataObject
) -> None:
    # Signal records have eight columns, catalog facts as many as the most categories of an
    # item; a column may be unused between used ones.
    k = data.draw(st.integers(0, 30))
    codes = np.full((k, width), -1, dtype=np.int64)
    for row, column in data.draw(st.lists(st.tuples(st.integers(0, k), st.integers(0, width - 1)))):
        if row < k:
            codes[row, column] = data.draw(st.integers(0, 4))
    facts = ItemFacts(
        tuple(f"i{n}" for n in range(k)),
        np.ones(k, bool),
        np.full(k, -1),
        codes,
        np.full(k, np.nan),
        np.ones(k, bool),
        Vocabulary((), tuple(CATEGORIES)),
    )

    used = facts.used_category_codes()

    columns = [column for column in range(width) if (codes[:, column] >= 0).any()]
    assert used.tolist() == codes[:, : columns[-1] + 1 if columns else 1].tolist()
