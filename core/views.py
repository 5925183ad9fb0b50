"""Project-wide pages."""

from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core.problems import PROBLEM_TYPES


def problem_type(request: HttpRequest, slug: str) -> HttpResponse:
    """The page each problem+json `type` points to."""
    if slug not in PROBLEM_TYPES:
        raise Http404(slug)
    title, description = PROBLEM_TYPES[slug]
    return render(
        request, "problem_type.html", {"slug": slug, "title": title, "description": description}
    )


PROTO_FILES = {
    name: Path(__file__).resolve().parent.parent / "wire" / "rankwell" / "v1" / name
    for name in ("rank.proto", "events.proto")
}


def proto_file(request: HttpRequest, name: str) -> HttpResponse:
    """The .proto files of the protobuf encoding, published beside the OpenAPI schema."""
    if name not in PROTO_FILES:
        raise Http404(name)
    return HttpResponse(PROTO_FILES[name].read_bytes(), content_type="text/plain; charset=utf-8")
