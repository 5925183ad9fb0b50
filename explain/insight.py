"""Two pages for merchandisers beside the explain UI: the queries that need attention, and why
an item is not on the page for a query. Thin doors into explain.services.attention and
explain.services.missing; the customer is resolved as on every explain page (explain.views:
a customer the user may not see answers 404)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from customers.selectors import customers_visible
from events.queries import normalise_query
from explain import services
from explain.services.attention import (
    DEFAULT_PERIOD,
    LOW_CTR_SHARE,
    MIN_SEARCHES,
    PERIODS,
    queries_report,
)
from explain.services.missing import WhyNot, WhyNotParams, why_not_here
from explain.views import _customer
from ranking.models import Surface

PERIOD_CHOICES = [(str(days), f"last {days} days") for days in PERIODS]
_PERIOD_WORDS = ", ".join(str(days) for days in PERIODS[:-1]) + f" or {PERIODS[-1]} days"
PERIOD_ERRORS = dict.fromkeys(
    ("required", "invalid_choice"), f"Choose a period of {_PERIOD_WORDS}."
)
SHOW_ALL = "all"
SHOW_FLAGGED = "flagged"


def shop_currency(customer: Customer) -> str:
    """The shop's currency code, "" when the shop has none (amounts then show as plain numbers)."""
    return customer.currency


class CustomerForm(forms.Form):
    """The customer choice both pages share: only the customers the user may see."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), empty_label=None)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = customers_visible(user=user)


class QueriesForm(CustomerForm):
    # Picked by the links above the table (kept in the form, hidden, for the other choices).
    period = forms.TypedChoiceField(
        choices=PERIOD_CHOICES,
        coerce=int,
        initial=str(DEFAULT_PERIOD),
        label="Period",
        widget=forms.HiddenInput,
        error_messages=PERIOD_ERRORS,
    )
    show = forms.ChoiceField(
        choices=[(SHOW_ALL, "every query"), (SHOW_FLAGGED, "only those needing attention")],
        initial=SHOW_ALL,
    )


class WhyNotForm(CustomerForm):
    surface = forms.ChoiceField(choices=Surface.choices, initial=Surface.SEARCH)
    query = forms.CharField(required=False, max_length=200, help_text="What shoppers searched.")
    category = forms.CharField(
        required=False, max_length=200, help_text="The browsed category, e.g. shoes/running."
    )
    item = forms.CharField(
        max_length=256,
        label="Item id",
        help_text="The catalog id of the item you expected to see.",
        error_messages={"required": "Give the id of the item you expected to see."},
    )
    period = forms.TypedChoiceField(
        choices=PERIOD_CHOICES,
        coerce=int,
        initial=str(DEFAULT_PERIOD),
        label="Period",
        help_text="How far back to look in the log of served requests.",
        error_messages=PERIOD_ERRORS,
    )
    page_size = forms.IntegerField(
        min_value=1,
        max_value=100,
        initial=20,
        label="Items on the page",
        help_text="How many items the shop shows on the first page.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        surface = data.get("surface")
        if surface in (Surface.SEARCH, Surface.AUTOCOMPLETE) and not normalise_query(
            data.get("query")
        ):
            self.add_error("query", "Give the query shoppers searched.")
        if surface == Surface.BROWSE and not (data.get("category") or "").strip():
            self.add_error("category", "Give the category shoppers browsed.")
        return data


def _data(request: HttpRequest, defaults: dict[str, str]) -> dict[str, str]:
    """The URL's fields over the page's defaults, for the customer of the URL (404 unless the
    user may see it) or, when the URL names none, the user's first."""
    customer = _customer(request)
    data = {**defaults, **request.GET.dict()}
    if customer is None:
        first = customers_visible(user=request.user).first()
        if first is not None:
            data["customer"] = str(first.pk)
    return data


def _context(request: HttpRequest, title: str, form: CustomerForm) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "insight_page": True,  # the explain tabs link to the other pages without this form
        "title": title,
        "form": form,
        "has_customers": customers_visible(user=request.user).exists(),
    }


@login_required
def queries_view(request: HttpRequest) -> HttpResponse:
    """The shop's search queries by traffic over a period, with their rates and flags."""
    data = _data(request, {"period": str(DEFAULT_PERIOD), "show": SHOW_ALL})
    form = QueriesForm(data, user=request.user)
    context = _context(request, "Queries that need attention", form)
    context.update(
        periods=PERIODS,
        min_searches=MIN_SEARCHES,
        low_ctr_percent=round(LOW_CTR_SHARE * 100),
    )
    if form.is_valid():
        customer = form.cleaned_data["customer"]
        context["customer"] = customer
        context["currency"] = shop_currency(customer)
        context["report"] = queries_report(
            customer_id=customer.pk,
            days=form.cleaned_data["period"],
            now=timezone.now(),
            only_flagged=form.cleaned_data["show"] == SHOW_FLAGGED,
        )
    return TemplateResponse(request, "explain/queries.html", context)


@login_required
def why_not_view(request: HttpRequest) -> HttpResponse:
    """Why an item is not on the page for a query: served where, hidden or buried by which
    rule, how far below the page, and what would lift it."""
    data = _data(
        request, {"surface": Surface.SEARCH, "period": str(DEFAULT_PERIOD), "page_size": "20"}
    )
    asked = "item" in request.GET
    # A first visit (or one from a link naming the query only) shows the form, no complaints.
    form = WhyNotForm(data if asked else None, initial=data, user=request.user)
    context = _context(request, "Why isn't it here?", form)
    if asked and form.is_valid():
        cleaned = form.cleaned_data
        customer = cleaned["customer"]
        context["customer"] = customer
        context["currency"] = shop_currency(customer)
        surface = cleaned["surface"]
        params = WhyNotParams(
            customer_id=customer.pk,
            surface=surface,
            query=normalise_query(cleaned["query"]) if surface != Surface.BROWSE else "",
            category=cleaned["category"].strip(),
            item_id=cleaned["item"].strip(),
            page_size=cleaned["page_size"],
            days=cleaned["period"],
            now=timezone.now(),
        )
        try:
            why_not = why_not_here(params)
        except services.ExplainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            context.update(why_not=why_not, **_explain_links(customer, why_not))
    return TemplateResponse(request, "explain/why_not.html", context)


def _explain_links(customer: Customer, why_not: WhyNot) -> dict[str, str]:
    """The explain pages of the ranking the answer was worked out on: the whole list, and the
    item's own breakdown when it is ranked (not hidden)."""
    explained = why_not.explained
    if explained is None or explained.degraded:
        return {}
    params = explained.params
    ids = "\n".join(
        item_id if relevance is None else f"{item_id} {relevance!r}"
        for item_id, relevance in params.ids
    )
    query = {
        "customer": customer.pk,
        "surface": params.surface,
        "query": params.query,
        "category": params.category,
        "source": "ids",
        "ids": ids,
        "top_n": 50,
        "show": max(why_not.params.page_size, why_not.position or 0),
    }
    links = {"ranking_url": f"{reverse('explain:ranking')}?{urlencode(query)}"}
    if why_not.ranked is not None:
        query["item"] = why_not.params.item_id
        links["item_url"] = f"{reverse('explain:item')}?{urlencode(query)}"
    return links
