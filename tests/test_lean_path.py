"""API_LEAN_PATH (core/page_middleware.py, core/negotiation.py, core/metrics.py) only saves work:
/v1 answers the same status, headers and body with it on as with the stock middleware."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ApiCaller
from tests.ranking.helpers import put_items

pytestmark = pytest.mark.django_db

IDS = [f"sku-{i}" for i in range(5)]
BODY = {"surface": "browse", "items": [{"id": i} for i in IDS]}


def answer(response: Any) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, the request's own id taken out of them."""
    headers = dict(response.headers)
    request_id = headers.pop("X-Request-ID")
    return response.status_code, headers, response.content.replace(request_id.encode(), b"")


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/x-protobuf"])
def test_the_lean_path_answers_as_the_stock_one(
    api: ApiCaller, settings: Any, accept: str | None
) -> None:
    put_items(api, [{"id": item_id, "title": item_id, "categories": ["shoes"]} for item_id in IDS])
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    answers = {}
    for lean in (True, False):
        settings.API_LEAN_PATH = lean
        answers[lean] = [
            answer(api.post("/v1/rank", BODY, **extra)),
            answer(api.post("/v1/rank", {"surface": "search", "items": []}, **extra)),
            answer(api.post("/v1/rank", b"{", **extra)),
            answer(api.client.post("/v1/rank", BODY, content_type="application/json")),
        ]
    assert answers[True] == answers[False]
    assert answers[True][0][0] == 200
    assert "Set-Cookie" not in answers[True][0][1]
