"""The direct rank path reads a body with msgspec (`rank_in_from_json`) and hands anything it does
not take to pydantic (RankIn): a body it takes must become exactly the RankIn pydantic makes, and
the bodies merchants send must be taken."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pydantic
from hypothesis import given, settings
from hypothesis import strategies as st

from ranking.contracts import RankIn, rank_in_from_json

# Texts near the bounds and around pydantic's stripping: Unicode spaces at either end, the
# characters str.strip removes that pydantic's trim keeps, blanks, and lengths about 256.
EDGE_TEXTS = [
    "",
    " ",
    "a",
    " a",
    "a ",
    "\u00a0a",
    "a\u3000",
    "\x1ca",
    "a\x1f",
    "\u200ba",
    "x" * 256,
    "x" * 257,
    " " + "x" * 256,
    "é" * 256,
]
# Most of a generated body is what a merchant sends; each part is now and then odd (one draw in
# eight), so that both readings take many of the bodies and refuse many others.
usual_texts = st.text(max_size=12).map(str.strip)
odd_texts = st.one_of(st.sampled_from(EDGE_TEXTS), st.text(max_size=12))
usual_ids = st.from_regex(r"sku-[0-9]{1,6}", fullmatch=True)
usual_relevances = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-1000, 1000), st.none()
)
odd_relevances = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.text(max_size=3)
)
MISSING = object()


def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    return draw(odd) if draw(st.integers(0, 7)) == 0 else draw(usual)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    items = []
    count = mostly(draw, st.integers(1, 6), st.sampled_from([0, 1001]))
    for _ in range(min(count, 6)):
        item: dict[str, Any] = {"id": mostly(draw, usual_ids, st.sampled_from(EDGE_TEXTS))}
        relevance = mostly(draw, st.one_of(st.just(MISSING), usual_relevances), odd_relevances)
        if relevance is not MISSING:
            item["relevance"] = relevance
        if draw(st.integers(0, 40)) == 0:
            item["extra"] = 1
        items.append(item)
    if count > len(items):  # past the bound, without drawing each
        items = (items * count)[:count]
    body: dict[str, Any] = {
        "surface": mostly(
            draw, st.sampled_from(["search", "browse", "autocomplete"]), st.sampled_from(["", 1])
        ),
        "items": items,
    }
    for name in ("query", "category", "user_id", "session_id"):
        value = mostly(
            draw,
            st.one_of(st.just(MISSING), st.none(), usual_texts),
            st.one_of(odd_texts, st.just(3)),
        )
        if value is not MISSING:
            body[name] = value
    if draw(st.booleans()):
        body["context"] = mostly(
            draw,
            st.dictionaries(usual_texts.filter(bool), usual_texts, max_size=3),
            st.dictionaries(st.one_of(odd_texts, st.just("k" * 65)), odd_texts, max_size=33),
        )
    limit = mostly(
        draw,
        st.one_of(st.just(MISSING), st.none(), st.integers(1, 1000)),
        st.sampled_from([0, -1, 1001, 2.0, 2.5, True, "3", 2**70]),
    )
    if limit is not MISSING:
        body["limit"] = limit
    explain = mostly(
        draw, st.one_of(st.just(MISSING), st.booleans()), st.sampled_from([0, 1, "true", None])
    )
    if explain is not MISSING:
        body["explain"] = explain
    if draw(st.integers(0, 40)) == 0:
        body["unknown"] = True
    # The standard library writes integers beyond 64 bits, and either escapes or not.
    encoded = json.dumps(body, ensure_ascii=draw(st.booleans()), separators=(",", ":")).encode()
    # What no encoder writes: a repeated key, a number beyond a double, a lone surrogate.
    raw = mostly(
        draw,
        st.none(),
        st.sampled_from([b'"surface":"browse",', b'"limit":1e400,', b'"query":"\\ud800",']),
    )
    if raw is not None:
        encoded = b"{" + raw + encoded[1:]
    return encoded


def by_pydantic(body: bytes) -> RankIn | None:
    try:
        return RankIn.model_validate_json(body)
    except pydantic.ValidationError:
        return None


def same(fast: RankIn, slow: RankIn) -> None:
    # orjson tells 2 from 2.0, where == would not.
    assert orjson.dumps(fast.model_dump()) == orjson.dumps(slow.model_dump())
    assert fast.item_ids == slow.item_ids


@settings(max_examples=600, deadline=None)
@given(bodies())
def test_a_body_msgspec_takes_reads_as_pydantic_reads_it(body: bytes) -> None:
    fast = rank_in_from_json(body)
    if fast is not None:
        slow = by_pydantic(body)
        assert slow is not None, body
        same(fast, slow)


def test_the_bodies_merchants_send_are_taken_by_msgspec() -> None:
    sent = [
        {"surface": "search", "query": "red shoes", "items": [{"id": "a", "relevance": 2}]},
        {
            "surface": "browse",
            "category": "Shoes/Running",
            "user_id": "u1",
            "session_id": "s1",
            "items": [{"id": f"sku-{n}", "relevance": n / 3} for n in range(1000)]
            + [{"id": "no-relevance"}],
            "context": {"device": "mobile"},
            "limit": 24,
            "explain": True,
        },
    ]
    for document in sent:
        body = orjson.dumps(document)
        fast = rank_in_from_json(body)
        assert fast is not None, document
        slow = by_pydantic(body)
        assert slow is not None
        same(fast, slow)


def test_what_pydantic_would_change_or_refuse_is_left_to_it() -> None:
    # Stripped by pydantic: msgspec must not take it as sent.
    stripped = orjson.dumps({"surface": "search", "query": "q", "items": [{"id": " a "}]})
    assert rank_in_from_json(stripped) is None
    assert by_pydantic(stripped) is not None
    assert by_pydantic(stripped).item_ids == ("a",)  # type: ignore[union-attr]
    # A whole float where an integer goes: pydantic takes it as the integer.
    whole = orjson.dumps({"surface": "browse", "items": [{"id": "a"}], "limit": 2.0})
    assert rank_in_from_json(whole) is None
    assert by_pydantic(whole) is not None
    # Refused by both: a relevance beyond a double, an unknown field.
    for refused in (
        b'{"surface":"browse","items":[{"id":"a","relevance":1e400}]}',
        b'{"surface":"browse","items":[{"id":"a","colour":"red"}]}',
    ):
        assert rank_in_from_json(refused) is None
        assert by_pydantic(refused) is None
