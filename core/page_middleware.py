"""The middleware a JSON answer of /v1 has no use for, skipped there, and django-prometheus's
per-view metrics at a lower cost per request (docs/performance.md, "Where a request goes").

/v1 authenticates by API key (DRF), never by session or cookie: it reads no session, no Django
user, no flash message and no static file. Each class below is
the stock middleware for pages (the admin, the explain UI, /v1/docs) and passes a JSON API
request straight on when `API_LEAN_PATH` is on (the default; off: the stock behaviour, for
bench/compare.py). CSRF, CommonMiddleware (the Host check), axes (its system check wants
its own class; it costs little) and the security headers still run.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest
from django_htmx.middleware import HtmxMiddleware
from django_prometheus.middleware import PrometheusAfterMiddleware
from django_prometheus.utils import Time
from whitenoise.middleware import WhiteNoiseMiddleware

from core.middleware import json_api_request


class _PagesOnly:
    get_response: Any  # each stock middleware's own

    def __call__(self, request: HttpRequest) -> Any:
        if settings.API_LEAN_PATH and json_api_request(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class PageSessionMiddleware(_PagesOnly, SessionMiddleware):
    """Sessions, for pages only."""


class PageAuthenticationMiddleware(_PagesOnly, AuthenticationMiddleware):
    """`request.user` from the session, for pages only (/v1's user is its API key, from DRF)."""


class PageMessageMiddleware(_PagesOnly, MessageMiddleware):
    """Flash messages, for pages only."""


class PageHtmxMiddleware(_PagesOnly, HtmxMiddleware):
    """`request.htmx` (django-htmx), for pages only: the workbench answers its in-place requests
    with the part of the page they replace."""


class PageWhiteNoiseMiddleware(_PagesOnly, WhiteNoiseMiddleware):
    """Static files: none is under /v1."""


class ViewMetricsMiddleware(PrometheusAfterMiddleware):
    """django-prometheus's per-view and per-status metrics, the same samples: each labelled
    child is looked up once per process rather than on every observation, and the two request
    headers it reads come from META rather than building `request.headers`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.children: dict[tuple[Any, ...], Any] = {}

    def label_metric(
        self, metric: Any, request: HttpRequest, response: Any = None, **labels: str
    ) -> Any:
        if not labels or not settings.API_LEAN_PATH:
            return super().label_metric(metric, request, response, **labels)
        key = (id(metric), *labels.items())
        child = self.children.get(key)
        if child is None:  # the labels are bounded: views, methods, statuses, charsets
            child = self.children[key] = metric.labels(**labels)
        return child

    def process_request(self, request: HttpRequest) -> None:
        if not settings.API_LEAN_PATH:
            return super().process_request(request)
        metrics = self.metrics
        method = self._method(request)
        self.label_metric(metrics.requests_by_method, request, method=method).inc()
        transport = self._transport(request)
        self.label_metric(metrics.requests_by_transport, request, transport=transport).inc()
        if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            metrics.requests_ajax.inc()
        metrics.requests_body_bytes.observe(int(request.META.get("CONTENT_LENGTH") or 0))
        request.prometheus_after_middleware_event = Time()  # type: ignore[attr-defined]
        return None
