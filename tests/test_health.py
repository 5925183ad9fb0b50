"""/healthz says the process is up; /readyz says whether its database and signal store answer."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ranking.signals.backend import reset_signal_store

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_the_database_and_redis_answer(client: Client, redis_url: str) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "signal_store": "ok"},
    }


def test_readyz_is_unavailable_naming_the_signal_store_when_redis_is_down(
    client: Client, settings: Any
) -> None:
    settings.SIGNAL_STORE = {**settings.SIGNAL_STORE, "URL": "redis://127.0.0.1:1/0"}
    reset_signal_store()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["signal_store"].startswith("unavailable")
