"""DRF's content negotiation with the common case answered without parsing: a request that
accepts anything or JSON, with no format override, gets the first renderer (JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

JSON = "application/json"
# The Accept headers for which DRF's own negotiation picks a first renderer of `JSON` with
# exactly `JSON` as the accepted media type (absent: DRF reads it as */*).
PLAIN_ACCEPTS = (None, "*/*", JSON)


class JsonFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        meta = request.META
        if (
            settings.API_LEAN_PATH
            and not format_suffix
            and not meta.get("QUERY_STRING")
            and meta.get("HTTP_ACCEPT") in PLAIN_ACCEPTS
            and renderers
            and renderers[0].media_type == JSON
        ):
            return renderers[0], JSON
        return super().select_renderer(request, renderers, format_suffix)
