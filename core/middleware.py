"""Request guards that must run before any view reads the body."""

import threading
from collections.abc import Callable

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from core.errors import ServiceUnavailable
from core.problems import is_api_path, problem_response


class ApiBodyLimitMiddleware:
    """Refuse /v1 bodies over `API_MAX_BODY_BYTES` with 413 before a byte of them is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = settings.API_MAX_BODY_BYTES
            if length > limit:
                return problem_response(
                    413, "body-too-large", f"The body is {length} bytes; the limit is {limit}."
                )
        return self.get_response(request)


class ApiWorkSlotMiddleware:
    """At most `API_CONCURRENT_REQUESTS` /v1 requests of this process past their body at once.

    A view takes the slot (`take_work_slot`) once the caller is authenticated and the body is
    read, before parsing it: a slow or unauthenticated client holds only its own thread (bounded
    by gunicorn's read deadlines), never a slot. Under the GIL a process gains no throughput from
    more requests in work at once, only memory: each holds its parsed body, candidates and
    features. The slot is given back when the response is made."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.slots = work_slots(settings.API_CONCURRENT_REQUESTS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request):
            return self.get_response(request)
        slot = _WorkSlot(self.slots)
        request.work_slot = slot  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            slot.release()


_work_slots: dict[int, threading.BoundedSemaphore] = {}
_work_slots_lock = threading.Lock()


def work_slots(count: int) -> threading.BoundedSemaphore:
    """The process's slots for requests in work: one semaphore per configured count, shared by
    the middleware and the direct rank path (ranking/direct.py)."""
    slots = _work_slots.get(count)
    if slots is None:
        with _work_slots_lock:
            slots = _work_slots.setdefault(count, threading.BoundedSemaphore(count))
    return slots


class _WorkSlot:
    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self.slots = slots
        self.held = False

    def take(self) -> None:
        if self.held:
            return
        if not self.slots.acquire(timeout=settings.API_SLOT_WAIT_SECONDS):
            raise ServiceUnavailable(
                "The service is busy: every slot of this worker stayed taken while the request "
                "waited. Retry after the Retry-After header's seconds.",
                retry_after=1,
            )
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


def take_work_slot(request: HttpRequest) -> None:
    """Wait for one of the process's slots for requests in work (ApiWorkSlotMiddleware); 503
    when none frees up in time. Without the middleware (a test calling a view) it does nothing."""
    slot = getattr(request, "work_slot", None)
    if slot is not None:
        slot.take()


class PageCspMiddleware(CSPMiddleware):
    """django-csp's Content-Security-Policy, on pages only: a JSON answer of /v1 runs no script,
    and building the policy for each response cost about 90 µs of /v1/rank's budget. The API's
    docs page (/v1/docs) is a page and gets it."""

    def process_request(self, request: HttpRequest) -> None:
        if not json_api_request(request):
            super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if json_api_request(request):
            return response
        return super().process_response(request, response)


def json_api_request(request: HttpRequest) -> bool:
    """A /v1 request answered in JSON (or protobuf): every /v1 path but the docs page."""
    return is_api_path(request) and request.path != "/v1/docs"
