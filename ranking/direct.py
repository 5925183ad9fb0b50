"""`POST /v1/rank` answered without Django's request handling: the common request only.

A served rank request spent about a quarter of its CPU outside the engine in Django's handler,
sixteen middleware, DRF's dispatch and the response object (docs/performance.md, "Where the
instructions go"). `DirectRank` wraps the WSGI application (config/wsgi.py) and answers a
request itself when it is the common case: a JSON or protobuf body with no query string, an
Accept that DRF would answer with JSON or protobuf, an allowed Host, a key this process has
verified and that carries the rank scope, a body that validates, a customer whose runtime this
process holds. It does what the stack would have done for it, in the same order and with the
same answer: the body limit, the rank rate limit, a work slot, the request id, the engine
(`ranking.api.ranked_answer`, shared with the view), the security headers and DRF's, and
django-prometheus's samples.

Everything else goes to Django as before, the body handed on unread by anyone else: errors,
another Accept, unknown keys, a runtime not loaded yet, a key store or runtime outage (answered
degraded by the view). A failure inside the direct path before it answers goes to Django too,
which answers it as it would have (`API_DIRECT_PATH=false` turns the direct path off).
tests/ranking/test_direct_path.py sends the same requests both ways and compares status, headers,
body and metrics.
"""

from __future__ import annotations

import contextvars
import io
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
import sentry_sdk
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.urls import resolve
from django_prometheus.middleware import Metrics
from django_prometheus.utils import Time, TimeSince

from core import logs
from core.errors import DomainError, ServiceUnavailable
from core.metrics import inc, labelled, observe
from core.middleware import work_slots
from core.negotiation import PLAIN_ACCEPTS
from core.problems import PROBLEM_CONTENT_TYPE, problem_exception_handler, problem_for
from core.settings_cache import settings_cached
from customers import ratelimit, wire
from customers.api import NUL_ESCAPE, is_json_content_type
from customers.auth import ApiPrincipal, cached_principal, hash_key, key_throttled, note_used
from customers.models import Scope
from customers.wire import PROTOBUF, is_protobuf
from ranking.api import rank_input_errors, ranked_answer
from ranking.contracts import RankIn, rank_in_from_json
from ranking.runtime import CustomerRuntime, cached_customer_runtime

logger = logging.getLogger(__name__)

PATH = "/v1/rank"
JSON_TYPE = "application/json"
StartResponse = Callable[..., Any]
# The answer's media type, and its encoder of the answer's document.
Encoding = tuple[str, Callable[[dict[str, Any]], bytes]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_HOSTS_KNOWN_MAX = 64


@dataclass(frozen=True, slots=True)
class _Call:
    """A request the direct path answers, as its checks found it."""

    environ: dict[str, Any]
    started: float
    secure: bool
    principal: ApiPrincipal
    request: RankIn
    runtime: CustomerRuntime
    encoding: Encoding


@dataclass(frozen=True, slots=True)
class _Settings:
    """What the direct path reads of settings, read once (core.settings_cache): each read of
    `django.conf.settings` costs about as much as a metric sample."""

    enabled: bool
    max_body_bytes: int
    slots: threading.BoundedSemaphore
    slot_wait_seconds: float
    secure_proxy_header: tuple[str, str] | None
    # The security headers of an answer sent over HTTP, and over HTTPS.
    http_headers: tuple[tuple[str, str], ...]
    https_headers: tuple[tuple[str, str], ...]
    charset: str


@settings_cached
def _settings() -> _Settings:
    return _Settings(
        enabled=settings.API_DIRECT_PATH,
        max_body_bytes=settings.API_MAX_BODY_BYTES,
        slots=work_slots(settings.API_CONCURRENT_REQUESTS),
        slot_wait_seconds=settings.API_SLOT_WAIT_SECONDS,
        secure_proxy_header=settings.SECURE_PROXY_SSL_HEADER,
        http_headers=_security_headers(secure=False),
        https_headers=_security_headers(secure=True),
        charset=settings.DEFAULT_CHARSET,
    )


class DirectRank:
    """The WSGI application: the direct path for the common /v1/rank request, Django for the
    rest."""

    def __init__(self, django: WsgiApp) -> None:
        self.django = django
        self.hosts: dict[tuple[str | None, str | None, str | None, str | None], bool] = {}
        self.metrics: _HttpMetrics | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or not _settings().enabled
        ):
            return self.django(environ, start_response)
        try:
            answered = self._answer(environ, start_response)
        except Exception:
            logger.exception("the direct rank path failed; Django answers the request")
            answered = None
        if answered is None:
            return self.django(environ, start_response)
        return answered

    def _answer(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes] | None:
        started = Time()
        accept = environ.get("HTTP_ACCEPT")
        encoding: Encoding
        if accept in PLAIN_ACCEPTS:
            encoding = (JSON_TYPE, orjson.dumps)
        elif accept == PROTOBUF:
            encoding = (PROTOBUF, wire.rank_response_bytes)
        else:
            return None
        content_type = environ.get("CONTENT_TYPE", "")
        protobuf_in = is_protobuf(content_type)
        if (
            environ.get("QUERY_STRING")
            or not (protobuf_in or is_json_content_type(content_type))
            or not self._host_allowed(environ)
        ):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= _settings().max_body_bytes:
            return None
        principal = _principal(environ)
        if principal is None or Scope.RANK not in principal.scopes:
            return None
        body = environ["wsgi.input"].read(length)
        # Whatever happens next, Django can still read the body it would have read.
        environ["wsgi.input"] = io.BytesIO(body)
        if len(body) != length:
            return None
        if protobuf_in:
            try:
                body = wire.rank_request_json(body)
            except DomainError:  # Django names what is wrong with the message
                return None
        if NUL_ESCAPE in body:
            return None
        request = rank_in_from_json(body)
        if request is None:
            try:
                request = RankIn.model_validate_json(body)
            except pydantic.ValidationError:
                return None
        runtime = cached_customer_runtime(principal.customer_id)
        if runtime is None or rank_input_errors(request, runtime.max_candidates):
            return None
        # From here on the direct path answers, as the view would.
        secure = _is_secure(environ, _settings().secure_proxy_header)
        call = _Call(environ, started, secure, principal, request, runtime, encoding)
        return contextvars.copy_context().run(self._serve, call, start_response)

    def _serve(self, call: _Call, start_response: StartResponse) -> list[bytes]:
        """The request id in the logs' context (and Sentry's scope, where Sentry runs), as
        core.logs.RequestContextMiddleware gives it."""
        request_id = logs.new_request_id()
        logs.request_id_var.set(request_id)
        logs.customer_var.set(None)
        if sentry_sdk.is_initialized():  # Django's Sentry integration gives each request a scope
            with sentry_sdk.isolation_scope():
                logs.tag_sentry(request_id)
                return self._rank(call, request_id, start_response)
        return self._rank(call, request_id, start_response)

    def _rank(self, call: _Call, request_id: str, start_response: StartResponse) -> list[bytes]:
        principal = call.principal
        known = _settings()
        note_used(principal)
        logs.bind_customer(principal.customer_id)
        refusal = _rate_limited(principal)
        served = None
        if refusal is not None:
            status, content_type, content, extra = refusal
        elif not (slots := known.slots).acquire(timeout=known.slot_wait_seconds):
            status, content_type, content, extra = _busy()
        else:
            try:
                document, served = ranked_answer(
                    principal.customer_id, call.runtime, call.request, request_id
                )
                content_type, encode = call.encoding
                content = encode(document)
            finally:
                slots.release()
            status, extra = 200, ()
        headers = [
            ("Content-Type", content_type),
            *extra,
            ("Vary", "Accept"),
            ("Allow", "POST, OPTIONS"),
            ("X-Request-ID", request_id),
            *(known.https_headers if call.secure else known.http_headers),
            ("Content-Length", str(len(content))),
        ]
        if served is not None:
            served.observe(call.started)
        self._observe(call, status, content, known.charset)
        start_response(_STATUS_LINES[status], headers)
        return [content]

    def _host_allowed(self, environ: dict[str, Any]) -> bool:
        """Django's own Host check (CommonMiddleware's `get_host`), its verdict kept for the few
        Host headers a deployment sees."""
        key = (
            environ.get("HTTP_X_FORWARDED_HOST"),
            environ.get("HTTP_HOST"),
            environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"),
        )
        allowed = self.hosts.get(key)
        if allowed is None:
            try:
                WSGIRequest({**environ, "wsgi.input": io.BytesIO()}).get_host()
                allowed = True
            except DisallowedHost:
                allowed = False
            if len(self.hosts) >= _HOSTS_KNOWN_MAX:
                self.hosts.clear()
            self.hosts[key] = allowed
        return allowed

    def _observe(self, call: _Call, status: int, content: bytes, charset: str) -> None:
        if self.metrics is None:
            self.metrics = _HttpMetrics()
        self.metrics.observe(call, status, content, charset)


_STATUS_LINES = {200: "200 OK", 429: "429 Too Many Requests", 503: "503 Service Unavailable"}


def _principal(environ: dict[str, Any]) -> ApiPrincipal | None:
    """The principal of a bearer key this process already verified; None sends the request to
    Django (which looks the key up, or refuses it)."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return cached_principal(hash_key(token))


def _is_secure(environ: dict[str, Any], proxy: tuple[str, str] | None) -> bool:
    """`HttpRequest.is_secure()`: the trusted proxy's header when one is configured."""
    if proxy:
        header, secure_value = proxy
        value = environ.get(header)
        if value is not None:
            return bool(value.split(",", 1)[0].strip() == secure_value)
    return bool(environ.get("wsgi.url_scheme") == "https")


def _security_headers(*, secure: bool) -> tuple[tuple[str, str], ...]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to an /v1 answer, in their order
    (the page CSP is not sent on /v1: core/middleware.py)."""
    headers = []
    if secure and settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append(("Strict-Transport-Security", value))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        if not isinstance(policy, str):
            policy = ",".join(policy)
        headers.append(("Referrer-Policy", policy))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS.upper()))
    return tuple(headers)


Refusal = tuple[int, str, bytes, tuple[tuple[str, str], ...]]


def _as_refusal(response: Any) -> Refusal:
    extra = tuple(
        (name, value)
        for name, value in response.items()
        if name not in ("Content-Type", "Content-Length")
    )
    return response.status_code, PROBLEM_CONTENT_TYPE, response.content, extra


def _rate_limited(principal: ApiPrincipal) -> Refusal | None:
    """customers.auth.ApiKeyRateThrottle for the rank group, answered as DRF would."""
    if not ratelimit.enabled():
        return None
    limit = principal.limits.of("rank")
    decision = ratelimit.limiter().key_request(principal.key_id, "rank", limit)
    if decision.allowed:
        return None
    response = problem_exception_handler(key_throttled(limit, decision), {})
    assert response is not None
    return _as_refusal(response)


def _busy() -> Refusal:
    return _as_refusal(
        problem_for(
            ServiceUnavailable(
                "The service is busy: every slot of this worker stayed taken while the request "
                "waited. Retry after the Retry-After header's seconds.",
                retry_after=1,
            )
        )
    )


class _HttpMetrics:
    """django-prometheus's samples for the request, as its before and after middleware
    (core.page_middleware.ViewMetricsMiddleware) take them: the same names and labels, each
    labelled child looked up once per process (core.metrics.labelled)."""

    def __init__(self) -> None:
        self.metrics = Metrics.get_instance()
        self.view = resolve(PATH).view_name

    def observe(self, call: _Call, status: int, content: bytes, charset: str) -> None:
        metrics, view = self.metrics, self.view
        environ, started = call.environ, call.started
        transport = "https" if call.secure else "http"
        code = str(status)
        inc(metrics.requests_total)
        inc(labelled(metrics.requests_by_method, "POST"))
        inc(labelled(metrics.requests_by_transport, transport))
        if environ.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            inc(metrics.requests_ajax)
        observe(metrics.requests_body_bytes, int(environ.get("CONTENT_LENGTH") or 0))
        inc(labelled(metrics.requests_by_view_transport_method, view, transport, "POST"))
        inc(labelled(metrics.responses_by_status, code))
        inc(labelled(metrics.responses_by_status_view_method, code, view, "POST"))
        inc(labelled(metrics.responses_by_charset, charset))
        observe(metrics.responses_body_bytes, len(content))
        elapsed = TimeSince(started)
        observe(labelled(metrics.requests_latency_by_view_method, view, "POST"), elapsed)
        inc(metrics.responses_total)
        observe(metrics.requests_latency_before, elapsed)
