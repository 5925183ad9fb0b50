"""/metrics after real requests: HTTP latency and errors per endpoint, the rank path's metrics,
events by outcome, cache lookups, signal age and Celery task runs; and under gunicorn with two
workers, one scrape sums what every worker counted (multiprocess mode)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import orjson
import pytest
from django.test import Client

from config.celery import app as celery_app
from ranking import services, tasks
from ranking.signals.backend import reset_signal_store
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller
from tests.operations.conftest import Samples, gunicorn_serving, parse, value
from tests.processes import free_port, subprocess_database_url
from tests.ranking.helpers import put_items


def scrape(client: Client | None = None) -> Samples:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


RANK_REQUEST = {
    "surface": "search",
    "query": "running shoes",
    "user_id": "u-42",
    "items": [{"id": "sku-1", "relevance": 2.0}, {"id": "sku-2"}, {"id": "unknown"}],
}
EVENT = {
    "event_id": "e-1",
    "type": "click",
    "timestamp": "2026-11-26T10:00:00Z",
    "user_id": "u-42",
    "item_id": "sku-1",
}


@pytest.mark.django_db
def test_a_scrape_after_real_requests_finds_every_metric(api: ApiCaller, settings: Any) -> None:
    customer = str(api.customer.pk)
    before = scrape()
    put_items(api, [{"id": "sku-1", "title": "Pegasus"}, {"id": "sku-2", "title": "Vomero"}])
    tasks.refresh_signals.delay(api.customer.pk)  # eager: runs here, through Celery's hooks
    assert api.post("/v1/events", {"events": [EVENT]}).status_code == 202
    assert api.post("/v1/events", {"events": [EVENT]}).status_code == 202  # a duplicate
    bad = {"events": [EVENT, {**EVENT, "event_id": "e-2", "type": "teleport"}]}
    assert api.post("/v1/events", bad).status_code == 400
    assert api.post("/v1/rank", RANK_REQUEST | {"explain": True}).status_code == 200
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "URL": "redis://127.0.0.1:1/0"}
    reset_signal_store()
    degraded = api.post("/v1/rank", {**RANK_REQUEST, "surface": "browse", "query": None})
    assert degraded.json()["degraded"] is True

    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # HTTP per endpoint (django-prometheus)
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert delta(latency, view="rank", method="POST") == 2
    responses = "django_http_responses_total_by_status_view_method_total"
    assert delta(responses, view="events", status="202") == 2
    assert delta(responses, view="events", status="400") == 1
    # the rank path
    assert delta("rankwell_rank_seconds_count", customer=customer, surface="search") == 1
    assert delta("rankwell_rank_seconds_count", customer=customer, surface="browse") == 1
    for stage in ("engine", "features", "score", "rules", "explain"):
        assert delta("rankwell_rank_stage_seconds_count", surface="search", stage=stage) == 1
    assert delta("rankwell_rank_candidates_sum", surface="search") == 3
    assert delta("rankwell_rank_items_total", customer=customer, surface="search") == 3
    assert delta("rankwell_rank_missing_signals_total", customer=customer, kind="item") == 1
    assert delta("rankwell_rank_missing_signals_total", customer=customer, kind="relevance") == 2
    assert delta("rankwell_rank_degraded_total", customer=customer, reason="signal_store") == 1
    assert delta("rankwell_rank_degraded_total", surface="search") == 0
    model_labels = frozenset({("customer", customer), ("surface", "search")})
    assert ("rankwell_active_model_version", model_labels) in after
    assert delta("rankwell_cache_lookups_total", cache="api_keys", result="hit") >= 4
    # events by outcome
    assert delta("rankwell_events_total", customer=customer, outcome="accepted") == 1
    assert delta("rankwell_events_total", customer=customer, outcome="duplicate") == 1
    assert delta("rankwell_events_total", customer=customer, outcome="rejected") == 2
    # signal age of the refreshed customer, and the refresh task's run
    age = value(after, "rankwell_signal_age_seconds", customer=customer)
    assert 0 <= age < 60
    task = "ranking.tasks.refresh_signals"
    assert delta("rankwell_celery_task_seconds_count", task=task, state="success") == 1


@pytest.mark.django_db
def test_task_retries_and_failures_are_counted(
    api: ApiCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as a worker runs tasks: Celery handles the errors instead of raising them here."""
    task = "ranking.tasks.refresh_signals"
    before = scrape()

    celery_app.conf.task_eager_propagates = False
    try:
        for error in (SignalStoreUnavailable("Redis is down"), RuntimeError("a bug")):
            monkeypatch.setattr(services, "signals_refresh", Mock(side_effect=error))
            tasks.refresh_signals.apply(args=(api.customer.pk,))
    finally:
        celery_app.conf.task_eager_propagates = True

    after = scrape()

    def delta(name: str) -> float:
        return value(after, name, task=task) - value(before, name, task=task)

    # The outage is retried max_retries times, then fails; the bug fails at once.
    assert delta("rankwell_celery_task_retries_total") == tasks.refresh_signals.max_retries
    assert delta("rankwell_celery_task_failures_total") == 2
    assert value(after, "rankwell_celery_task_seconds_count", task=task, state="retry") >= 1
    assert value(after, "rankwell_celery_task_seconds_count", task=task, state="failure") >= 1


@dataclass
class Gunicorn:
    base_url: str
    log: Path

    def get(self, path: str) -> tuple[str, str]:
        """The body and X-Request-ID of GET `path`, whatever its status."""
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=5) as response:  # noqa: S310
                return response.read().decode(), response.headers["X-Request-ID"]
        except urllib.error.HTTPError as error:
            return error.read().decode(), error.headers["X-Request-ID"]


@pytest.fixture
def gunicorn(transactional_db: None, tmp_path: Path) -> Iterator[Gunicorn]:
    """The API under gunicorn with platform/gunicorn.conf.py and two workers; its output
    (gunicorn's access log and the application's logs) goes to a file."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "LOG_FORMAT": "json",
        "DATABASE_URL": subprocess_database_url(),
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn_serving(port, env, log):
        yield Gunicorn(f"http://127.0.0.1:{port}", log)


def test_gunicorn_workers_are_scraped_as_one(gunicorn: Gunicorn) -> None:
    responses = "django_http_responses_total_by_status_view_method_total"
    before = value(parse(gunicorn.get("/metrics")[0]), responses, status="404")
    for _ in range(40):
        gunicorn.get("/v1/no-such-endpoint")
    samples = parse(gunicorn.get("/metrics")[0])

    assert value(samples, responses, status="404") - before == 40
    # only the multiprocess collector's sums, not one worker's own process metrics
    assert value(samples, "python_gc_objects_collected_total") == 0


def test_gunicorn_access_log_is_json_lines_with_the_request_id(gunicorn: Gunicorn) -> None:
    _, request_id = gunicorn.get("/v1/no-such-endpoint")
    deadline = time.monotonic() + 10
    while request_id not in gunicorn.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)

    entries = [
        orjson.loads(line)
        for line in gunicorn.log.read_text().splitlines()
        if line.startswith("{")  # gunicorn's own start-up lines are plain text
    ]
    access = [entry for entry in entries if entry["logger"] == "gunicorn.access"]
    assert len(access) >= 2  # the start-up probe and this request
    mine = next(entry for entry in access if entry["request_id"] == request_id)
    assert mine["path"] == "/v1/no-such-endpoint"
    assert mine["status"] == 404
