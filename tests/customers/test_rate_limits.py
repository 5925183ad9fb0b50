"""Rate limits per API key and endpoint group, and per client address for invalid keys: 429
problem+json with Retry-After, no database query for a flooding address, no warning line per
refusal, a limiter that fails open when its Redis is down, and limits that platform staff
change in the admin and that apply within seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from prometheus_client import REGISTRY

from customers import auth, ratelimit, runtime_sync
from customers.models import Customer, Role
from customers.services import customer_update
from tests.conftest import ApiCaller, hold_bucket_empty
from tests.factories import MembershipFactory, UserFactory
from tests.processes import RedisProcess

pytestmark = pytest.mark.django_db

RANK_BODY = {"surface": "browse", "items": [{"id": "sku-1"}, {"id": "sku-2"}]}
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def _fresh_limiter(settings: Any) -> Iterator[None]:
    """A limiter of this test's own, and only the test polls for other processes' changes."""
    settings.RUNTIME_REFRESH_SECONDS = 0
    ratelimit.reset_for_tests()
    yield
    ratelimit.reset_for_tests()


def decisions(limit: str, outcome: str) -> float:
    labels = {"limit": limit, "outcome": outcome}
    return REGISTRY.get_sample_value("rankwell_rate_limit_decisions_total", labels) or 0.0


def refusals(reason: str) -> float:
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("rankwell_api_key_refusals_total", labels) or 0.0


def rank(caller: ApiCaller) -> Any:
    return caller.post("/v1/rank", RANK_BODY)


def until_refused(call: Callable[[], Any], most: int = 50) -> list[Any]:
    """The responses of `call` up to and including the first 429 (at most `most`)."""
    responses = []
    for _ in range(most):
        responses.append(call())
        if responses[-1].status_code == 429:
            break
    return responses


# --- per API key ---------------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_with_retry_after_and_is_served_again_after_it(
    api: ApiCaller,
) -> None:
    customer_update(customer=api.customer, rank_requests_per_second=1, rank_burst=3)
    allowed_before, limited_before = decisions("rank", "allowed"), decisions("rank", "limited")

    responses = until_refused(lambda: rank(api))
    refused = responses[-1]

    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["type"], problem["status"]) == ("/problems/rate-limited", 429)
    assert "1 requests a second" in problem["detail"]
    assert refused["Retry-After"] == "1"  # a token is back within the second
    assert decisions("rank", "allowed") - allowed_before == len(responses) - 1
    assert decisions("rank", "limited") - limited_before == 1

    time.sleep(int(refused["Retry-After"]))

    assert rank(api).status_code == 200


def test_another_customers_key_another_key_and_another_endpoint_group_are_unaffected(
    api: ApiCaller, other_api: ApiCaller, make_caller: Callable[..., ApiCaller]
) -> None:
    customer_update(customer=api.customer, rank_requests_per_second=1, rank_burst=1)
    assert until_refused(lambda: rank(api))[-1].status_code == 429
    # Its token would come back within the second, before a slow machine gets to the last check.
    hold_bucket_empty(api.key, "rank")
    second_key = make_caller(customer=api.customer)

    assert rank(other_api).status_code == 200
    assert rank(second_key).status_code == 200  # limits hold per key
    assert api.get("/v1/models").status_code == 200  # the "other" group has its own bucket
    assert rank(api).status_code == 429


def test_leases_never_let_processes_exceed_the_limit_together(settings: Any) -> None:
    """Two processes' limiters on one Redis: each takes tokens a lease at a time, and together
    they allow no more than the burst plus the rate over the time taken."""
    assert settings.SIGNAL_STORE["BACKEND"] == "redis", "the suite needs REDIS_URL"
    first, second = (
        ratelimit.build_limiter(settings.SIGNAL_STORE, settings.RATE_LIMIT) for _ in range(2)
    )
    limit = ratelimit.Limit(1000, 50)

    started = time.monotonic()
    allowed = sum(
        limiter.key_request(7, "rank", limit).allowed
        for _ in range(300)
        for limiter in (first, second)
    )
    elapsed = time.monotonic() - started

    assert 50 <= allowed <= 50 + 1000 * elapsed


def test_the_limiter_works_on_a_redis_cluster(redis_cluster_url: str, settings: Any) -> None:
    store = {**settings.SIGNAL_STORE, "URL": redis_cluster_url, "CLUSTER": True}
    limiter = ratelimit.build_limiter(store, settings.RATE_LIMIT)
    limit = ratelimit.Limit(1, 2)

    answers = [limiter.key_request(3, "other", limit) for _ in range(3)]

    assert [answer.allowed for answer in answers] == [True, True, False]
    assert 0 < answers[-1].retry_after <= 1


# --- invalid keys per client address --------------------------------------------------------------


def test_a_flood_of_bad_keys_from_one_address_gets_429_without_a_query_or_a_line_each(
    api: ApiCaller, caplog: pytest.LogCaptureFixture
) -> None:
    known = Client(REMOTE_ADDR=ATTACKER, HTTP_AUTHORIZATION=f"Bearer {api.key}")
    assert known.get("/v1/models").status_code == 200  # verified before the flood
    attacker = Client(REMOTE_ADDR=ATTACKER)
    invalid_before, limited_before = refusals("invalid"), refusals("address_limited")
    statuses: list[int] = []
    queries_of_429s: set[int] = set()

    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        for n in range(2000):
            with CaptureQueriesContext(connection) as queries:
                response = attacker.post(
                    "/v1/rank",
                    RANK_BODY,
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer rwk_not-a-key-{n:05d}-xxxxxxxxxxxxxxxx",
                )
            statuses.append(response.status_code)
            if response.status_code == 429:
                queries_of_429s.add(len(queries))
                retry_after = int(response["Retry-After"])
        elapsed = time.monotonic() - started

    per_minute = 20
    # One token comes back every 3 s: each lets one more key be looked up (and refused, 401).
    refills = int(elapsed / (60 / per_minute)) + 1
    assert statuses[:per_minute] == [401] * per_minute
    assert statuses.index(429) <= per_minute + refills
    assert statuses.count(401) <= per_minute + refills
    assert statuses.count(429) >= 2000 - per_minute - refills
    assert queries_of_429s == {0}
    assert 1 <= retry_after <= 60 / per_minute
    assert refusals("invalid") - invalid_before == statuses.count(401)
    assert refusals("address_limited") - limited_before == statuses.count(429)
    warnings = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # one line for the address, not one per request
    assert warnings[0][0] == "customers.ratelimit"
    assert ATTACKER in warnings[0][1]
    # A key verified before keeps working from the address; other addresses are not affected.
    assert known.get("/v1/models").status_code == 200
    elsewhere = Client(REMOTE_ADDR="198.51.100.20", HTTP_AUTHORIZATION="Bearer rwk_also-not-a-key")
    assert elsewhere.get("/v1/models").status_code == 401


def test_the_address_is_the_one_the_load_balancer_saw(settings: Any) -> None:
    settings.TRUSTED_PROXY_HOPS = 1
    settings.RATE_LIMIT = {**settings.RATE_LIMIT, "INVALID_KEYS_PER_MINUTE": 3}  # 20 s a token
    behind_alb = {"REMOTE_ADDR": "10.0.0.5", "HTTP_AUTHORIZATION": "Bearer rwk_not-a-key-at-all"}

    for n in range(3):
        forged = f"192.0.2.{n}, {ATTACKER}"  # the attacker varies the part it can forge
        response = Client(**behind_alb).get("/v1/models", HTTP_X_FORWARDED_FOR=forged)
        assert response.status_code == 401

    again = Client(**behind_alb).get("/v1/models", HTTP_X_FORWARDED_FOR=f"1.2.3.4, {ATTACKER}")
    someone_else = Client(**behind_alb).get("/v1/models", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert again.status_code == 429
    assert someone_else.status_code == 401


def test_a_key_known_bad_is_not_looked_up_again_and_bad_keys_are_remembered_boundedly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = "Bearer rwk_known-bad-key-xxxxxxxxxxxxxxxx"
    with CaptureQueriesContext(connection) as first:
        assert Client(HTTP_AUTHORIZATION=bad).get("/v1/models").status_code == 401
    with CaptureQueriesContext(connection) as again:
        assert Client(HTTP_AUTHORIZATION=bad).get("/v1/models").status_code == 401
    assert len(first) == 1
    assert len(again) == 0

    monkeypatch.setattr(auth, "NEGATIVE_CACHE_MAX", 50)
    for n in range(500):
        assert auth.principal_for_key(f"rwk_bad-{n}") is None
    assert len(auth._unknown) <= 50


# --- the limiter's Redis -----------------------------------------------------------------------


def test_the_limiter_fails_open_when_its_redis_is_killed(
    api: ApiCaller, private_redis: RedisProcess
) -> None:
    customer_update(customer=api.customer, other_requests_per_second=1, other_burst=1)
    assert [api.get("/v1/models").status_code for _ in range(2)] == [200, 429]
    failed_before = decisions("other", "failed_open")

    private_redis.kill()
    started = time.monotonic()
    statuses = [api.get("/v1/models").status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert time.monotonic() - started < 2.0
    assert decisions("other", "failed_open") - failed_before == 5


def test_the_limiter_fails_open_within_its_timeout_when_its_redis_is_frozen(
    api: ApiCaller, private_redis: RedisProcess, settings: Any
) -> None:
    customer_update(customer=api.customer, other_requests_per_second=1, other_burst=1)
    assert api.get("/v1/models").status_code == 200  # connected while Redis answered
    failed_before = decisions("other", "failed_open")

    private_redis.freeze()
    timings = []
    for _ in range(5):
        started = time.monotonic()
        assert api.get("/v1/models").status_code == 200
        timings.append(time.monotonic() - started)

    # The first waits for the timeout (50 ms, no retries); the others do not ask for a second.
    assert timings[0] < 1.0
    assert max(timings[1:]) < 1.0
    assert decisions("other", "failed_open") - failed_before == 5

    private_redis.thaw()
    deadline = time.monotonic() + 10
    while api.get("/v1/models").status_code != 429:
        assert time.monotonic() < deadline, "the limiter never limited again after Redis thawed"
        time.sleep(0.1)


# --- limits in the admin -------------------------------------------------------------------------


def change_form(customer: Customer, **limits: int) -> dict[str, Any]:
    """A full POST of the customer's admin form with its current values and `limits`."""
    data: dict[str, Any] = {
        "name": customer.name,
        "slug": customer.slug,
        "is_active": "on",
        "max_candidates": customer.max_candidates,
        **{column: getattr(customer, column) for column in ratelimit.LIMIT_COLUMNS},
        "currency": customer.currency,
        "time_zone": customer.time_zone,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    data.update(limits)
    return data


def test_limits_a_superuser_changes_in_the_admin_apply_here_at_once(api: ApiCaller) -> None:
    assert api.get("/v1/models").status_code == 200  # the key is cached with its old limits
    superuser = UserFactory(is_superuser=True)
    superuser.save()
    admin = Client()
    admin.force_login(superuser)

    response = admin.post(
        reverse("admin:customers_customer_change", args=[api.customer.pk]),
        change_form(api.customer, other_requests_per_second=1, other_burst=2),
    )

    assert response.status_code == 302
    responses = until_refused(lambda: api.get("/v1/models"))
    assert [r.status_code for r in responses][:2] == [200, 200]
    assert responses[-1].status_code == 429
    assert "bursts of 2" in responses[-1].json()["detail"]


def test_limits_changed_by_another_process_apply_here_within_a_poll(api: ApiCaller) -> None:
    runtime_sync.poller.poll_once()
    assert api.get("/v1/models").status_code == 200

    # What the admin does in another process: the row and its generation change there.
    Customer.objects.filter(pk=api.customer.pk).update(
        other_requests_per_second=1, other_burst=1, runtime_generation=F("runtime_generation") + 1
    )
    before_poll = [api.get("/v1/models").status_code for _ in range(3)]
    runtime_sync.poller.poll_once()  # every RUNTIME_REFRESH_SECONDS in a serving process
    after_poll = [api.get("/v1/models").status_code for _ in range(3)]

    assert before_poll == [200, 200, 200]  # the old limits (50 a second) until the poll
    assert after_poll[0] == 200
    assert 429 in after_poll[1:]


def test_a_customer_admin_sees_the_rate_limits_but_cannot_change_them(api: ApiCaller) -> None:
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__endswith="_customer"))
    MembershipFactory(customer=api.customer, user=user, role=Role.ADMIN)
    staff = Client()
    staff.force_login(user)
    url = reverse("admin:customers_customer_change", args=[api.customer.pk])

    page = staff.get(url)
    response = staff.post(url, change_form(api.customer, rank_requests_per_second=99_999))

    assert not set(ratelimit.LIMIT_COLUMNS) & set(page.context["adminform"].form.fields)
    assert "rank_requests_per_second" in page.context["adminform"].readonly_fields
    assert response.status_code == 302
    api.customer.refresh_from_db()
    assert api.customer.rank_requests_per_second == 1000


# --- the contract ---------------------------------------------------------------------------------


def test_every_v1_operation_documents_429(client: Client) -> None:
    schema = client.get("/v1/schema").json()

    operations = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if path.startswith("/v1/")
    ]
    assert operations
    undocumented = [f"{m} {p}" for m, p, op in operations if "429" not in op["responses"]]
    assert undocumented == []
    assert "Retry-After" in str(schema["paths"]["/v1/rank"]["post"]["responses"]["429"])
