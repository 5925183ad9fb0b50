"""What the rank path reads of a valid body: relevance as floats (a missing one NaN), and the
duplicate ids it names."""

from __future__ import annotations

import math

import orjson

from ranking.api import rank_input, rank_input_errors
from ranking.contracts import RankIn


def body(items: list[dict[str, object]]) -> RankIn:
    return RankIn.model_validate_json(orjson.dumps({"surface": "browse", "items": items}))


def test_a_missing_relevance_is_nan_and_the_others_keep_their_value() -> None:
    ranked = rank_input(
        body([{"id": "a", "relevance": 2}, {"id": "b"}, {"id": "c", "relevance": 0.5}])
    )

    relevance = ranked.relevance.tolist()
    assert relevance[0] == 2.0
    assert math.isnan(relevance[1])
    assert relevance[2] == 0.5
    assert ranked.relevance.dtype == "float64"


def test_every_relevance_given_is_read_as_floats() -> None:
    ranked = rank_input(body([{"id": "a", "relevance": 1}, {"id": "b", "relevance": 0.25}]))

    assert ranked.relevance.tolist() == [1.0, 0.25]
    assert ranked.item_ids == ("a", "b")


def test_each_place_of_a_duplicate_id_is_named() -> None:
    errors = rank_input_errors(body([{"id": "a"}, {"id": "b"}, {"id": "a"}]), 10)

    assert [(error.location, error.code) for error in errors] == [
        (("items", 0, "id"), "duplicate"),
        (("items", 2, "id"), "duplicate"),
    ]
