"""The direct rank path (ranking/direct.py) answers the common POST /v1/rank without Django's
handler: the same requests sent through it and through Django get the same status, headers, body
and HTTP metrics; everything it does not answer reaches Django with its body intact; a fault in
it falls back to Django. Called as gunicorn calls the application (WSGI), against PostgreSQL and
Redis."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
import redis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from prometheus_client import REGISTRY

from core.middleware import work_slots
from customers import ratelimit
from customers.models import Scope
from customers.services import customer_update
from customers.wire import PROTOBUF
from ranking import direct
from ranking.direct import DirectRank
from ranking.services import signals_refresh
from tests.conftest import ApiCaller, hold_bucket_empty
from tests.ranking.helpers import put_items, send_events
from wire.rankwell.v1 import rank_pb2

pytestmark = pytest.mark.django_db

IDS = [f"sku-{i}" for i in range(30)]
SHOPPER = "shopper-7"


class Django:
    """Django's WSGI application, counting the requests it answers."""

    def __init__(self) -> None:
        self.app = get_wsgi_application()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


Answer = tuple[int, dict[str, str], bytes]


def call(app: Any, body: bytes, headers: dict[str, str] | None = None, **environ: Any) -> Answer:
    """One request as gunicorn hands it to the application; the request's own id taken out."""
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/rank",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in (headers or {}).items():
        base[name] = value
    base.update(environ)
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    # As Django's test client does: the test's transaction keeps its connection open.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        answer = app(base, start_response)
        content = b"".join(answer)
        if hasattr(answer, "close"):
            answer.close()  # as the server does: Django's request_finished
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    headers_out = started["headers"]
    request_id = headers_out.pop("X-Request-ID", "")
    if request_id:
        # Of the same length, so a protobuf answer still decodes.
        content = content.replace(request_id.encode(), b"-" * len(request_id))
    return started["status"], headers_out, content


def http_counts() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """django-prometheus's counters and histogram counts, by name and labels."""
    counts = {}
    for family in REGISTRY.collect():
        if not family.name.startswith(("django_http", "rankwell_rate_limit")):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_total", "_count")):
                counts[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return counts


def counted(app: Any, *args: Any, **kwargs: Any) -> tuple[Answer, dict[Any, float]]:
    before = http_counts()
    answer = call(app, *args, **kwargs)
    after = http_counts()
    return answer, {
        key: value - before.get(key, 0)
        for key, value in after.items()
        if value != before.get(key, 0)
    }


@pytest.fixture
def shop(api: ApiCaller) -> ApiCaller:
    """A shop with signals and a shopper with a history, its key and runtime warm."""
    put_items(
        api,
        [
            {
                "id": item_id,
                "title": f"Shoe {i}",
                "brand": ("Nike", "Puma", "Asics")[i % 3],
                "categories": ["shoes"],
                "price": 10.0 + i,
            }
            for i, item_id in enumerate(IDS)
        ],
    )
    send_events(
        api,
        [
            {
                "event_id": f"click-{i}",
                "type": "click",
                "timestamp": "2026-01-01T10:00:00Z",
                "user_id": SHOPPER,
                "item_id": IDS[i],
            }
            for i in (3, 5, 8)
        ],
    )
    signals_refresh(customer_id=api.customer.id)
    assert (
        api.post("/v1/rank", {"surface": "browse", "items": [{"id": "sku-0"}]}).status_code == 200
    )
    return api


def rank_body(**fields: Any) -> bytes:
    document = {
        "surface": "search",
        "query": "shoes",
        "user_id": SHOPPER,
        "items": [{"id": item_id, "relevance": 1.0 / (i + 1)} for i, item_id in enumerate(IDS)],
        **fields,
    }
    return orjson.dumps(document)


def both(shop: ApiCaller, body: bytes, **kwargs: Any) -> tuple[Answer, Answer, int]:
    """The same request through the direct path and through Django alone; how many of the
    direct path's requests reached Django."""
    django = Django()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {shop.key}", **kwargs.pop("headers", {})}
    through_direct, direct_counts = counted(DirectRank(django), body, headers, **kwargs)
    through_django, django_counts = counted(Django(), body, headers, **kwargs)
    assert direct_counts == django_counts
    return through_direct, through_django, django.calls


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"explain": True, "limit": 5},
        {"surface": "browse", "query": None, "category": "shoes", "context": {"device": "app"}},
        {"session_id": "visit-1", "user_id": None},
    ],
)
def test_a_common_request_is_answered_directly_with_djangos_answer(
    shop: ApiCaller, fields: dict[str, Any]
) -> None:
    direct_answer, django_answer, reached_django = both(shop, rank_body(**fields))
    assert reached_django == 0
    assert direct_answer == django_answer
    status, headers, content = direct_answer
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert len(orjson.loads(content)["items"]) == fields.get("limit", len(IDS))


def rank_message(**fields: Any) -> bytes:
    document = orjson.loads(rank_body(**fields))
    items = [rank_pb2.Candidate(**item) for item in document.pop("items")]
    return rank_pb2.RankRequest(items=items, **document).SerializeToString()


@pytest.mark.parametrize(
    ("body", "content_type", "accept"),
    [
        (rank_message(), PROTOBUF, PROTOBUF),
        (rank_message(explain=True), PROTOBUF, PROTOBUF),
        (rank_body(), "application/json", PROTOBUF),
        (rank_message(), PROTOBUF, "application/json"),
    ],
)
def test_protobuf_in_or_out_is_answered_directly_with_djangos_answer(
    shop: ApiCaller, body: bytes, content_type: str, accept: str
) -> None:
    direct_answer, django_answer, reached_django = both(
        shop, body, headers={"HTTP_ACCEPT": accept}, CONTENT_TYPE=content_type
    )
    assert reached_django == 0
    assert direct_answer == django_answer
    status, headers, content = direct_answer
    assert status == 200
    assert headers["Content-Type"] == accept
    if accept == PROTOBUF:
        assert len(rank_pb2.RankResponse.FromString(content).items) == len(IDS)


def test_a_message_that_is_not_one_reaches_django(shop: ApiCaller) -> None:
    direct_answer, django_answer, reached_django = both(
        shop, b"\xff\xff\xff", headers={"HTTP_ACCEPT": PROTOBUF}, CONTENT_TYPE=PROTOBUF
    )
    assert reached_django == 1
    assert direct_answer == django_answer
    assert direct_answer[0] == 400


def test_behind_the_https_proxy_both_send_hsts(shop: ApiCaller, settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    direct_answer, django_answer, reached_django = both(
        shop, rank_body(), headers={"HTTP_X_FORWARDED_PROTO": "https"}
    )
    assert reached_django == 0
    assert direct_answer == django_answer
    assert direct_answer[1]["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


@pytest.mark.parametrize(
    ("body", "headers", "environ", "status"),
    [
        # Not valid: Django names the field.
        (rank_body(query=" "), {}, {}, 400),
        (rank_body(items=[{"id": "a"}, {"id": "a"}]), {}, {}, 400),
        (b'{"surface": "search"', {}, {}, 400),
        (rank_body(query="a\u0000b"), {}, {}, 400),
        # Not JSON in and out, or not plain.
        (rank_body(), {"HTTP_ACCEPT": "text/html"}, {}, 406),
        (rank_body(), {}, {"CONTENT_TYPE": "text/plain"}, 415),
        (rank_body(), {}, {"QUERY_STRING": "format=json"}, 200),
        # No key, an unknown key.
        (rank_body(), {"HTTP_AUTHORIZATION": ""}, {}, 401),
        (rank_body(), {"HTTP_AUTHORIZATION": "Bearer rwk_unknownunknownunknownunknown"}, {}, 401),
    ],
)
def test_what_the_direct_path_does_not_answer_reaches_django_whole(
    shop: ApiCaller, body: bytes, headers: dict[str, str], environ: dict[str, str], status: int
) -> None:
    direct_answer, django_answer, reached_django = both(shop, body, headers=headers, **environ)
    assert reached_django == 1
    assert direct_answer == django_answer
    assert direct_answer[0] == status


def test_a_host_django_refuses_reaches_django(shop: ApiCaller, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["api.example.com"]
    refused = both(shop, rank_body(), headers={"HTTP_HOST": "elsewhere.example"})
    assert refused[2] == 1
    assert refused[0] == refused[1]
    assert refused[0][0] == 400
    allowed = both(shop, rank_body(), headers={"HTTP_HOST": "api.example.com"})
    assert allowed[2] == 0
    assert allowed[0] == allowed[1]
    assert allowed[0][0] == 200


def test_a_key_without_the_rank_scope_reaches_django(shop: ApiCaller, make_caller: Any) -> None:
    events_only = make_caller(shop.customer, scopes=[Scope.EVENTS])
    assert events_only.post("/v1/rank", rank_body()).status_code == 403  # the key is now cached
    direct_answer, django_answer, reached_django = both(events_only, rank_body())
    assert reached_django == 1
    assert direct_answer == django_answer
    assert direct_answer[0] == 403


def test_a_runtime_not_loaded_yet_is_loaded_by_django_then_served_directly(
    shop: ApiCaller,
) -> None:
    from customers import runtime_sync

    runtime_sync.clear_caches()
    assert shop.post("/v1/rank", rank_body()).status_code == 200  # the key cached again
    from ranking import runtime

    runtime._runtimes.clear()
    django = Django()
    app = DirectRank(django)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {shop.key}"}
    first = call(app, rank_body(), headers)
    assert django.calls == 1
    second = call(app, rank_body(), headers)
    assert django.calls == 1
    assert first == second
    assert first[0] == 200


def test_rate_limited_answers_as_django_does(shop: ApiCaller, settings: Any) -> None:
    settings.RUNTIME_REFRESH_SECONDS = 0
    ratelimit.reset_for_tests()
    customer_update(customer=shop.customer, rank_requests_per_second=1, rank_burst=3)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {shop.key}"}
    statuses = []
    while 429 not in statuses and len(statuses) < 50:
        statuses.append(call(Django(), rank_body(), headers)[0])
    assert statuses[-1] == 429  # the key's burst spent, its limits read again
    # A token comes back every second; on a slow machine one could come back between the two
    # answers compared. Both must meet the same spent bucket.
    bucket = hold_bucket_empty(shop.key, "rank")
    django = Django()
    limited_direct, direct_counts = counted(DirectRank(django), rank_body(), headers)
    limited_django, django_counts = counted(Django(), rank_body(), headers)
    assert django.calls == 0
    assert limited_direct[0] == 429
    assert limited_direct == limited_django
    assert direct_counts == django_counts
    assert (
        direct_counts[
            "rankwell_rate_limit_decisions_total", (("limit", "rank"), ("outcome", "limited"))
        ]
        == 1
    )
    assert limited_direct[1]["Retry-After"] == "1"
    redis.Redis.from_url(settings.SIGNAL_STORE["URL"]).delete(bucket)
    ratelimit.reset_for_tests()


def test_every_slot_taken_answers_503_as_django_does(shop: ApiCaller, settings: Any) -> None:
    settings.API_CONCURRENT_REQUESTS = 1
    settings.API_SLOT_WAIT_SECONDS = 0.05
    slots = work_slots(1)
    assert slots.acquire(timeout=1)
    try:
        direct_answer, django_answer, reached_django = both(shop, rank_body())
    finally:
        slots.release()
    assert reached_django == 0
    assert direct_answer == django_answer
    assert direct_answer[0] == 503
    assert direct_answer[1]["Retry-After"] == "1"


def test_a_fault_in_the_direct_path_falls_back_to_django(
    shop: ApiCaller,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Any,
) -> None:
    settings.API_CONCURRENT_REQUESTS = 2
    expected = call(Django(), rank_body(), {"HTTP_AUTHORIZATION": f"Bearer {shop.key}"})

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a fault in the direct path")

    monkeypatch.setattr(direct, "ranked_answer", broken)
    django = Django()
    answer = call(DirectRank(django), rank_body(), {"HTTP_AUTHORIZATION": f"Bearer {shop.key}"})
    assert django.calls == 1
    assert answer == expected
    assert answer[0] == 200
    assert "the direct rank path failed; Django answers the request" in capsys.readouterr().err
    # The slot it held was given back: both can be taken.
    slots = work_slots(2)
    assert slots.acquire(timeout=0.1)
    assert slots.acquire(timeout=0.1)
    slots.release()
    slots.release()


def test_off_every_request_goes_to_django(shop: ApiCaller, settings: Any) -> None:
    settings.API_DIRECT_PATH = False
    direct_answer, django_answer, reached_django = both(shop, rank_body())
    assert reached_django == 1
    assert direct_answer == django_answer


def test_a_direct_answer_makes_no_database_query(
    shop: ApiCaller, django_assert_num_queries: Any
) -> None:
    django = Django()
    app = DirectRank(django)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {shop.key}"}
    with django_assert_num_queries(0):
        status, _, content = call(app, rank_body(explain=True), headers)
    assert django.calls == 0
    assert status == 200
    assert orjson.loads(content)["items"][0]["explanation"]


def test_with_sentry_on_each_direct_request_tags_a_scope_of_its_own(shop: ApiCaller) -> None:
    """Django's Sentry integration gives each request a scope; the direct path forks one too, so
    a request's id never stays on the scope of the thread that served it."""
    import sentry_sdk

    from core.sentry import init_sentry
    from tests.operations.test_sentry import CapturingTransport

    init_sentry(
        dsn="https://public@sentry.invalid/1",
        environment="test",
        release="rankwell@direct",
        transport=CapturingTransport(),
    )
    try:
        django = Django()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {shop.key}"}
        before = dict(sentry_sdk.get_isolation_scope()._tags)
        direct_answer = call(DirectRank(django), rank_body(), headers)
        after = dict(sentry_sdk.get_isolation_scope()._tags)
        django_answer = call(Django(), rank_body(), headers)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: the SDK is off again for the rest of the suite
    assert django.calls == 0
    assert direct_answer == django_answer
    assert after == before
