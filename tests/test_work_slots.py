"""A process works on at most API_CONCURRENT_REQUESTS /v1 requests at once (the rest wait with
their bodies read), a request that cannot get a slot in time is told to retry, not hung, and a
slot is given back whatever the view did (tests/operations/test_slow_clients.py shows slow
bodies never hold one)."""

from __future__ import annotations

import threading
import time

import orjson
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from core.errors import ServiceUnavailable
from core.middleware import ApiWorkSlotMiddleware, take_work_slot
from core.problems import problem_for


def test_no_more_requests_in_work_at_once_than_the_slots() -> None:
    busy = 0
    most = 0
    lock = threading.Lock()

    def view(request: HttpRequest) -> HttpResponse:
        nonlocal busy, most
        take_work_slot(request)
        with lock:
            busy += 1
            most = max(most, busy)
        time.sleep(0.05)
        with lock:
            busy -= 1
        return HttpResponse(request.body)

    with override_settings(API_CONCURRENT_REQUESTS=2):
        middleware = ApiWorkSlotMiddleware(view)
    statuses: list[int] = []

    def one(n: int) -> None:
        body = orjson.dumps({"n": n})
        request = RequestFactory().post("/v1/rank", body, content_type="application/json")
        response = middleware(request)
        assert response.content == body
        statuses.append(response.status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert most == 2


def test_a_request_that_finds_every_slot_taken_too_long_gets_503_with_retry_after() -> None:
    release = threading.Event()
    entered = threading.Event()

    def view(request: HttpRequest) -> HttpResponse:
        try:
            take_work_slot(request)
        except ServiceUnavailable as exc:
            return problem_for(exc)
        entered.set()
        release.wait(10)
        return HttpResponse(b"done")

    with override_settings(API_CONCURRENT_REQUESTS=1, API_SLOT_WAIT_SECONDS=0.2):
        middleware = ApiWorkSlotMiddleware(view)
        holder = threading.Thread(
            target=middleware, args=(RequestFactory().post("/v1/rank", b"{}", "application/json"),)
        )
        holder.start()
        assert entered.wait(5)
        try:
            response = middleware(RequestFactory().post("/v1/rank", b"{}", "application/json"))
        finally:
            release.set()
            holder.join()
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response["Content-Type"] == "application/problem+json"
    assert "busy" in orjson.loads(response.content)["detail"]
    # Once the holder is done, its slot is free again.
    assert middleware(RequestFactory().post("/v1/rank", b"{}", "application/json")).content == (
        b"done"
    )
