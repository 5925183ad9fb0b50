"""The ALB's health check and Prometheus's scrape reach a task by its IP address: they are
answered whatever the Host header, while every other path still checks it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

TASK_ADDRESS = "10.20.4.17:8000"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_on_the_task_address(settings: Any, path: str) -> None:
    settings.ALLOWED_HOSTS = ["api.rankwell.example"]
    response = Client().get(path, HTTP_HOST=TASK_ADDRESS)
    assert response.status_code == 200


def test_other_paths_still_refuse_an_unknown_host(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["api.rankwell.example"]
    response = Client().get("/v1/schema", HTTP_HOST=TASK_ADDRESS)
    assert response.status_code == 400
