"""The explain UI's pages: thin doors into explain.services.

Every page is a GET of the same form (the URL is the permalink). The customer comes from the URL
and must be visible to the user (customers.selectors.customer_visible): any other id answers 404,
so no parameter reaches another customer's items, rules, models or logged requests.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any

import orjson
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from customers.models import Customer, Role, role_grants
from customers.selectors import customer_visible
from explain import selectors, services
from explain.forms import DEFAULTS, ExplainForm

MAIN_FIELDS = (
    "customer",
    "surface",
    "query",
    "category",
    "user",
    "context",
    "at",
    "source",
    "ids",
    "from_category",
    "top_n",
    "request_id",
    "ranker",
    "show",
)

Page = Callable[[ExplainForm, services.ExplainParams], dict[str, Any]]

# Every page only reads, compare and export too, and shows nothing the admin does not already
# show a viewer (rules, configs, models): any role of the customer may use them all.
EXPLAIN_ROLE = Role.VIEWER


def _customer(request: HttpRequest) -> Customer | None:
    """The customer named in the URL, if any; 404 unless the user has EXPLAIN_ROLE for it."""
    raw = request.GET.get("customer", "").strip()
    if not raw:
        return None
    customer = None
    if selectors.is_id(raw):
        customer = customer_visible(user=request.user, customer_id=int(raw))
    if customer is None or not role_grants(
        user=request.user, customer_id=customer.pk, role=EXPLAIN_ROLE
    ):
        raise Http404("No such customer.")
    return customer


def _form(request: HttpRequest) -> ExplainForm:
    customer = _customer(request)
    if not request.GET:
        return ExplainForm(user=request.user, customer=customer)
    data = {**DEFAULTS, **request.GET.dict()}
    return ExplainForm(data, user=request.user, customer=customer)


def _add_error(form: ExplainForm, error: services.ExplainError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _page(
    request: HttpRequest, template: str, title: str, build: Page, page_fields: tuple[str, ...] = ()
) -> HttpResponse:
    form = _form(request)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,  # the tables need the width
        "title": title,
        "form": form,
        "main_fields": MAIN_FIELDS,
        "page_fields": page_fields,
        "has_customers": form.fields["customer"].queryset.exists(),  # type: ignore[attr-defined]
    }
    if form.is_bound and form.is_valid():
        try:
            context.update(build(form, form.params()))
        except services.ExplainError as error:
            _add_error(form, error)
    return TemplateResponse(request, template, context)


@login_required
def ranking_view(request: HttpRequest) -> HttpResponse:
    """The form and the ranked list, each item with its top reason, bar, rules and move."""

    def build(form: ExplainForm, params: services.ExplainParams) -> dict[str, Any]:
        explained = services.explain_ranking(params)
        rows = explained.items[: form.cleaned_data["show"]]
        return {"explained": explained, "rows": rows, "lines": services.neighbours(rows)}

    return _page(request, "explain/ranking.html", "Explain a ranking", build)


@login_required
def item_view(request: HttpRequest) -> HttpResponse:
    """One item's full breakdown against the customer's typical values."""

    def build(form: ExplainForm, params: services.ExplainParams) -> dict[str, Any]:
        item_id = form.cleaned_data["item"]
        if not item_id:
            raise services.ExplainError("item", "Choose an item.")
        explained = services.explain_ranking(params)
        return {"explained": explained, "detail": services.item_detail(explained, item_id)}

    return _page(request, "explain/item.html", "Explain an item", build, ("item",))


@login_required
def why_view(request: HttpRequest) -> HttpResponse:
    """Why A is above (or below) B: the exact per-feature differences."""

    def build(form: ExplainForm, params: services.ExplainParams) -> dict[str, Any]:
        a, b = form.cleaned_data["a"], form.cleaned_data["b"]
        if not a or not b:
            raise services.ExplainError("a" if not a else "b", "Choose two items.")
        explained = services.explain_ranking(params)
        return {"explained": explained, "why": services.why_above(explained, a, b)}

    return _page(request, "explain/why.html", "Why is A above B", build, ("a", "b"))


@login_required
def compare_view(request: HttpRequest) -> HttpResponse:
    """Two rankers side by side: positions, deltas and the features that moved each item."""

    def build(form: ExplainForm, params: services.ExplainParams) -> dict[str, Any]:
        key = form.cleaned_data["compare"]
        if not key:
            raise services.ExplainError("compare", "Choose what to compare with.")
        return {"comparison": services.compare(params, key)}

    return _page(request, "explain/compare.html", "Compare two rankers", build, ("compare",))


@login_required
def export_view(request: HttpRequest, fmt: str) -> HttpResponse:
    """The explained ranking as JSON (the API's shape) or CSV (one row per item)."""
    form = _form(request)
    if not form.is_bound or not form.is_valid():
        errors = form.errors.get_json_data() if form.is_bound else {"__all__": ["No request."]}
        return HttpResponse(
            orjson.dumps({"errors": errors}), status=400, content_type="application/json"
        )
    try:
        explained = services.explain_ranking(form.params())
    except services.ExplainError as error:
        body = {"errors": {error.field: [{"message": error.message}]}}
        return HttpResponse(orjson.dumps(body), status=400, content_type="application/json")
    if fmt == "json":
        return HttpResponse(
            orjson.dumps(services.export_dict(explained), option=orjson.OPT_INDENT_2),
            content_type="application/json",
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="explanation.csv"'
    csv.writer(response).writerows(
        [spreadsheet_safe(cell) for cell in row] for row in services.export_rows(explained)
    )
    return response


# A spreadsheet runs a cell starting with these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula (a title or rule name such as
    `=HYPERLINK(...)`) gets a leading apostrophe, so it shows as text; numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell
