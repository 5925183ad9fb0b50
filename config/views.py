"""Project-wide pages."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from config.problems import PROBLEM_TYPES


def problem_type(request: HttpRequest, slug: str) -> HttpResponse:
    """The page each problem+json `type` points to."""
    if slug not in PROBLEM_TYPES:
        raise Http404(slug)
    title, description = PROBLEM_TYPES[slug]
    return render(
        request, "problem_type.html", {"slug": slug, "title": title, "description": description}
    )
