"""Request guards that must run before any view reads the body."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

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
