"""The merchandiser's workbench: one query's (or category's) live ranking as a product grid, with
changes made on it as drafts, their effect shown before they serve, then published or discarded.
Thin doors into explain.services.workbench.

The page is a GET (its URL is the permalink); each change, publish and discard is a POST that
names the page again and comes back to it. The customer is resolved as on every explain page: one
the user may not see answers 404; writing needs the merchandiser role and the rule permissions
(403 otherwise).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from catalog.selectors import catalog_categories
from customers.models import Customer, Role, role_grants
from customers.selectors import customer_visible, customers_visible
from customers.shop_time import WALL_FORMAT, ShopDateTimeField, shop_wall, shop_zone
from events.queries import normalise_query
from explain import selectors
from explain.insight import CustomerForm, shop_currency
from explain.services import ExplainError
from explain.services.workbench import (
    LOG_DAYS,
    STRENGTH_CHOICES,
    WorkbenchParams,
    workbench,
)
from explain.services.workbench_changes import (
    CHANGES,
    Change,
    draft_change,
    drafts_chosen,
    drafts_discard,
    drafts_publish,
    published_turn_off,
)
from merchandising.contracts import BOOST_STRENGTHS, BURY_STRENGTHS, MAX_POSITION
from merchandising.services import NotADraft, RuleRejected
from ranking.models import Surface

WRITE_ROLE = Role.MERCHANDISER
WRITE_PERMISSIONS = (
    "merchandising.add_rule",
    "merchandising.change_rule",
    "merchandising.delete_rule",
)
PAGE_FIELDS = ("customer", "surface", "query", "category", "user")
MAX_QUERIES = 200


class PageForm(CustomerForm):
    """Which page to work on: a query shoppers searched, or a category of the catalog."""

    surface = forms.ChoiceField(choices=Surface.choices, initial=Surface.SEARCH)
    query = forms.CharField(
        required=False, max_length=200, help_text="Pick one of the shop's searched queries."
    )
    category = forms.ChoiceField(
        required=False,
        choices=[],
        help_text="For browse; for a search, its items stand in when no search was logged.",
        error_messages={"invalid_choice": "Pick a category of the catalog."},
    )
    user = forms.CharField(
        required=False,
        max_length=200,
        label="Shopper",
        help_text="Optional: a shopper id, to see the page as they do.",
    )

    def __init__(self, *args: Any, user: Any, customer: Customer | None, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        categories = catalog_categories(customer_id=customer.pk) if customer else []
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *((c, category_label(c)) for c in categories)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        surface = data.get("surface")
        data["query"] = normalise_query(data.get("query")) if surface != Surface.BROWSE else ""
        if surface in (Surface.SEARCH, Surface.AUTOCOMPLETE) and not data["query"]:
            self.add_error("query", "Pick the query shoppers searched.")
        if surface == Surface.BROWSE and not data.get("category"):
            self.add_error("category", "Pick the category shoppers browsed.")
        data["user"] = (data.get("user") or "").strip()
        return data

    def params(self, now: datetime) -> WorkbenchParams:
        data = self.cleaned_data
        return WorkbenchParams(
            customer_id=data["customer"].pk,
            surface=data["surface"],
            query=data["query"],
            category=data["category"] or "",
            user_id=data["user"],
            now=now,
            time_zone=data["customer"].time_zone or "UTC",
        )


def category_label(path: str) -> str:
    """A category as the tree shows it: its last part, indented by its depth."""
    depth = path.count("/")
    return "\u2003" * depth + path.rsplit("/", 1)[-1]


class ChangeForm(PageForm):
    item = forms.CharField(max_length=256, required=False)
    do = forms.ChoiceField(
        choices=[(change, change) for change in CHANGES],
        label="Change",
        error_messages={"invalid_choice": "Choose pin, hide, boost, bury or a cap per brand."},
    )
    position = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_POSITION,
        error_messages={
            "invalid": f"Give a whole number from 1 to {MAX_POSITION}.",
            "min_value": f"Give a whole number from 1 to {MAX_POSITION}.",
            "max_value": f"Give a whole number from 1 to {MAX_POSITION}.",
        },
    )
    strength = forms.ChoiceField(
        required=False,
        choices=[(s, s) for s in STRENGTH_CHOICES],
        error_messages={"invalid_choice": "Choose weak, medium, strong or max."},
    )
    # A cap (do=diversity): at most `max_items` per brand or top-level category in the top `top_k`.
    field = forms.ChoiceField(
        required=False,
        choices=[("brand", "brand"), ("category", "top-level category")],
        error_messages={"invalid_choice": "Choose brand or top-level category."},
    )
    max_items = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_POSITION,
        error_messages={
            "invalid": f"Give a whole number from 1 to {MAX_POSITION}.",
            "min_value": f"Give a whole number from 1 to {MAX_POSITION}.",
            "max_value": f"Give a whole number from 1 to {MAX_POSITION}.",
        },
    )
    top_k = forms.IntegerField(
        required=False,
        min_value=2,
        max_value=MAX_POSITION,
        error_messages={
            "invalid": f"Give a whole number from 2 to {MAX_POSITION}.",
            "min_value": f"Give a whole number from 2 to {MAX_POSITION}.",
            "max_value": f"Give a whole number from 2 to {MAX_POSITION}.",
        },
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        pin_without_position = data.get("do") == "pin" and data.get("position") is None
        if pin_without_position and "position" not in self.errors:
            self.add_error("position", "Give the position to pin the item to.")
        data["item"] = (data.get("item") or "").strip()
        if data.get("do") == "diversity":
            for name, missing in (
                ("max_items", "Give how many items of one brand may show."),
                ("top_k", "Give how many top places the cap covers."),
            ):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, missing)
            max_items, top_k = data.get("max_items"), data.get("top_k")
            if max_items is not None and top_k is not None and max_items >= top_k:
                self.add_error("max_items", "Give fewer items than the places the cap covers.")
        elif data.get("do") and not data["item"] and "item" not in self.errors:
            self.add_error("item", "Pick an item.")
        return data

    def change(self) -> Change:
        data = self.cleaned_data
        return Change(
            kind=data["do"],
            item_id=data["item"],
            position=data["position"],
            strength=data["strength"] or "medium",
            field=data["field"] or "brand",
            max_items=data["max_items"] or 2,
            top_k=data["top_k"] or 10,
        )


def _accept_named_ids(form: forms.Form, name: str, invalid: str) -> None:
    """A multiple choice of rule ids: the ids posted are the choices (whose they are, the
    service checks), anything not a whole number is refused."""
    field = form.fields[name]
    assert isinstance(field, forms.TypedMultipleChoiceField)
    named = form.data.getlist(name) if hasattr(form.data, "getlist") else []
    field.choices = [(value, value) for value in named if value.isdigit()]
    field.error_messages["invalid_choice"] = invalid


class DraftsForm(PageForm):
    drafts = forms.TypedMultipleChoiceField(
        choices=[],
        coerce=int,
        label="Changes",
        error_messages={"required": "There is no change to publish or discard."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _accept_named_ids(self, "drafts", "A change named is not a draft of this shop.")


class PublishForm(DraftsForm):
    # Picked in the shop's time zone, cleaned to UTC (customers.shop_time).
    start = ShopDateTimeField(required=False)
    when = forms.ChoiceField(choices=[("now", "now"), ("start", "from the start")])

    def __init__(self, *args: Any, zone: ZoneInfo, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        start = self.fields["start"]
        assert isinstance(start, ShopDateTimeField)
        start.zone = zone
        self.now = now

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start = data.get("start")
        if data.get("when") != "start":
            data["start"] = None
            return data
        if start is None:
            if "start" not in self.errors:
                self.add_error("start", "Pick the date and time to start serving from.")
            return data
        if start <= self.now:
            self.add_error("start", "Pick a start in the future, or publish now.")
        data["start"] = start
        return data


# --- doors --------------------------------------------------------------------------------------


def _customer_of(request: HttpRequest, data: Any) -> Customer | None:
    """The customer the request names, None when it names none; 404 unless visible."""
    raw = str(data.get("customer", "")).strip()
    if not raw:
        return None
    customer = None
    if selectors.is_id(raw):
        customer = customer_visible(user=request.user, customer_id=int(raw))
    if customer is None:
        raise Http404("No such customer.")
    return customer


def may_change(user: Any, customer: Customer) -> bool:
    return role_grants(user=user, customer_id=customer.pk, role=WRITE_ROLE) and all(
        user.has_perm(permission) for permission in WRITE_PERMISSIONS
    )


def page_url(data: dict[str, Any]) -> str:
    query = {name: data[name] for name in PAGE_FIELDS if data.get(name) not in (None, "")}
    if isinstance(query.get("customer"), Customer):
        query["customer"] = query["customer"].pk
    return f"{reverse('explain:workbench')}?{urlencode(query)}"


@login_required
def workbench_view(request: HttpRequest) -> HttpResponse:
    """The picker, the grid after the page's drafts, the drafts with their moves and warnings."""
    customer = _customer_of(request, request.GET)
    if customer is None:
        customer = customers_visible(user=request.user).first()
    data = {"surface": Surface.SEARCH, **request.GET.dict()}
    if customer is not None:
        data["customer"] = str(customer.pk)
    # A submitted picker names both (maybe blank); a link naming only the shop shows no complaint.
    asked = "query" in request.GET or "category" in request.GET
    form = PageForm(data if asked else None, initial=data, user=request.user, customer=customer)
    now = timezone.now()
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "insight_page": True,
        "title": "Workbench",
        "form": form,
        "has_customers": customer is not None,
        "customer": customer,
        "strengths": [
            (name, BOOST_STRENGTHS[name], BURY_STRENGTHS[name]) for name in STRENGTH_CHOICES
        ],
        "max_position": MAX_POSITION,
    }
    if customer is not None:
        surface = str(data.get("surface"))
        context["queries"] = selectors.query_traffic(
            customer_id=customer.pk,
            surface=surface if surface == Surface.AUTOCOMPLETE else Surface.SEARCH,
            since=now - timedelta(days=LOG_DAYS),
            until=now,
        )[:MAX_QUERIES]
        context["currency"] = shop_currency(customer)
        context["can_change"] = may_change(request.user, customer)
        zone = shop_zone(customer)
        context["zone"] = zone.key
        context["min_start"] = shop_wall(now, zone).strftime(WALL_FORMAT)
    if asked and form.is_valid():
        try:
            context["bench"] = workbench(form.params(now))
        except ExplainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            context["page_fields"] = {
                name: form.cleaned_data[name] for name in PAGE_FIELDS if name != "customer"
            }
    # htmx's own requests (a change, publish or discard made in place, the picker) get the part
    # of the page they replace; a page load, or a history restore, gets the page.
    htmx = getattr(request, "htmx", None)  # django-htmx's HtmxDetails (core.page_middleware)
    in_place = htmx is not None and bool(htmx) and not htmx.history_restore_request
    response = TemplateResponse(
        request, "explain/workbench_htmx.html" if in_place else "explain/workbench.html", context
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


def _writer(request: HttpRequest) -> Customer:
    customer = _customer_of(request, request.POST)
    if customer is None:
        raise Http404("No such customer.")
    if not may_change(request.user, customer):
        raise PermissionDenied("Only the shop's merchandisers change its rankings.")
    return customer


def field_label(form: forms.Form, name: str) -> str:
    """The field's name as the page shows it ("" for errors of the whole form)."""
    if name not in form.fields:
        return ""
    return str(form.fields[name].label or name.replace("_", " ")).capitalize()


def _form_errors(request: HttpRequest, form: forms.Form) -> None:
    for name, errors in form.errors.items():
        label = field_label(form, name)
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else str(error))


def _back(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(page_url(request.POST.dict()))


@require_POST
@login_required
def change_view(request: HttpRequest) -> HttpResponse:
    """One change (pin, hide, boost, bury an item or its brand), written as a draft."""
    customer = _writer(request)
    form = ChangeForm(request.POST, user=request.user, customer=customer)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(request)
    params = form.params(timezone.now())
    try:
        rule, warnings = draft_change(
            customer=customer, params=params, change=form.change(), user=request.user
        )
    except ExplainError as error:
        label = field_label(form, error.field)
        messages.error(request, f"{label}: {error.message}" if label else error.message)
    except RuleRejected as error:
        messages.error(request, f"Not saved: {error}")
    else:
        messages.success(
            request, f"Saved as a draft: {rule.name}. Shoppers see it once you publish it."
        )
        for warning in warnings:
            messages.warning(request, warning)
    return _back(request)


@require_POST
@login_required
def publish_view(request: HttpRequest) -> HttpResponse:
    """Publish the page's drafts shown, now or from a start in the shop's time zone: all or none."""
    customer = _writer(request)
    now = timezone.now()
    form = PublishForm(
        request.POST, user=request.user, customer=customer, zone=shop_zone(customer), now=now
    )
    if not form.is_valid():
        _form_errors(request, form)
        return _back(request)
    try:
        rules = drafts_chosen(customer_id=customer.pk, rule_ids=form.cleaned_data["drafts"])
        warnings = drafts_publish(rules=rules, user=request.user, start=form.cleaned_data["start"])
    except ExplainError as error:
        messages.error(request, error.message)
    except (RuleRejected, NotADraft) as error:
        messages.error(request, f"Nothing published: {error}")
    else:
        start = form.cleaned_data["start"]
        zone = shop_zone(customer)
        local = None if start is None else start.astimezone(zone)
        when = "now" if local is None else f"from {local:%-d %b %Y, %H:%M} ({zone.key})"
        count = len(rules)
        messages.success(
            request,
            f"Published {count} change{'s' if count != 1 else ''}: shoppers see "
            f"{'it' if count == 1 else 'them'} {when}.",
        )
        for warning in warnings:
            messages.warning(request, warning)
    return _back(request)


class LiveRulesForm(PageForm):
    rules = forms.TypedMultipleChoiceField(
        choices=[],
        coerce=int,
        label="Changes",
        error_messages={"required": "Name the published change to turn off."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _accept_named_ids(self, "rules", "A change named is not one of this shop.")


@require_POST
@login_required
def turn_off_view(request: HttpRequest) -> HttpResponse:
    """Switch off a published change of this page (its history keeps it, a revert restores it)."""
    customer = _writer(request)
    form = LiveRulesForm(request.POST, user=request.user, customer=customer)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(request)
    try:
        rules = published_turn_off(
            customer_id=customer.pk, rule_ids=form.cleaned_data["rules"], user=request.user
        )
    except ExplainError as error:
        messages.error(request, error.message)
    except RuleRejected as error:
        messages.error(request, f"Nothing turned off: {error}")
    else:
        names = ", ".join(f"“{rule.name}”" for rule in rules)
        messages.success(request, f"Turned off {names}: shoppers no longer see it.")
    return _back(request)


@require_POST
@login_required
def discard_view(request: HttpRequest) -> HttpResponse:
    """Throw away the drafts named (kept in their rules' history)."""
    customer = _writer(request)
    form = DraftsForm(request.POST, user=request.user, customer=customer)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(request)
    try:
        rules = drafts_chosen(customer_id=customer.pk, rule_ids=form.cleaned_data["drafts"])
        drafts_discard(rules=rules, user=request.user)
    except ExplainError as error:
        messages.error(request, error.message)
    except NotADraft as error:
        messages.error(request, f"Nothing discarded: {error}")
    else:
        count = len(rules)
        messages.success(request, f"Discarded {count} change{'s' if count != 1 else ''}.")
    return _back(request)
