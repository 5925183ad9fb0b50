"""Request guards that must run before any view reads the body."""

from collections.abc import Callable

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from config.problems import is_api_path, problem_response


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


class PageCspMiddleware(CSPMiddleware):
    """django-csp's Content-Security-Policy, on pages only: a JSON answer of /v1 runs no script,
    and building the policy for each response cost about 90 µs of /v1/rank's budget. The API's
    docs page (/v1/docs) is a page and gets it."""

    def process_request(self, request: HttpRequest) -> None:
        if not _json_api(request):
            super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _json_api(request):
            return response
        return super().process_response(request, response)


def _json_api(request: HttpRequest) -> bool:
    return is_api_path(request) and request.path != "/v1/docs"
