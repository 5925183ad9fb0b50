"""The load balancer's health checks and Prometheus's scrapes, answered before Django checks the
Host header: they address a task by its private IP, which no ALLOWED_HOSTS entry can name in
advance (every Fargate task gets a new one)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core import health
from core.metrics import metrics_view

PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": health.healthz,
    "/readyz": health.readyz,
    "/metrics": metrics_view,
}


class ProbeMiddleware:
    """Answers GET /healthz, /readyz and /metrics whatever the Host header says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)
