"""The merchandisers' admin for rules: a structured form, live conflict warnings, a preview of the
rule on the live ranking, and its revision history with revert. Every write goes through
merchandising.services; every page is scoped to the staff user's customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.forms import ModelChoiceField
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from catalog.selectors import (
    MAX_PICKED,
    catalog_attribute_names,
    catalog_attribute_values,
    catalog_brands,
    catalog_categories,
    catalog_items_find,
)
from customers.admin import CustomerScopedAdmin
from customers.models import Role, customers_granting, role_grants
from customers.selectors import customer_is_visible, customers_visible
from customers.shop_time import UTC_ZONE, shop_text, shop_zone
from merchandising import selectors, services
from merchandising.conflicts import RuleWarning, rule_warnings
from merchandising.contracts import RuleIn
from merchandising.forms import (
    ACTION_FIELDS,
    PreviewForm,
    RuleForm,
    field_changes,
    warning_field,
)
from merchandising.history import document_diff
from merchandising.holdouts import holdout_html, rule_holdout_readout
from merchandising.models import RevisionKind, Rule, RuleRevision
from merchandising.preview import rule_preview

RULE_FIELDSETS: list[tuple[str | None, dict[str, Any]]] = [
    (None, {"fields": ["customer", "name", "description", "enabled", "priority"]}),
    (
        "When it applies",
        {
            "fields": [
                "surfaces",
                "windows",
                "query_match",
                "query_patterns",
                "page_categories",
                "context",
            ],
            "description": "Every condition must hold; a blank condition always holds.",
        },
    ),
    (
        "Which items",
        {
            "fields": [
                "selector_brands",
                "selector_categories",
                "selector_price_min",
                "selector_price_max",
                "selector_in_stock",
                "selector_attributes",
                "selector_item_ids",
            ],
            "description": "The items the action applies to: every filled clause must match "
            "(any of its values). All blank: every item. A pin names its own items: leave these "
            "blank.",
        },
    ),
    (
        "Action",
        {
            "fields": [
                "action_kind",
                *ACTION_FIELDS,
            ],
            "description": "Fill in the fields of the chosen action; the others are ignored.",
        },
    ),
    (
        "Holdout",
        {
            "fields": ["holdout_percent"],
            "description": "Optional: keep a share of shoppers from seeing this rule, to learn "
            "whether it earns more than it would without it.",
        },
    ),
    (
        "Experiment",
        {
            "fields": ["experiment"],
            "description": "Optional: serve this rule only to the shoppers in B of a running "
            "experiment of rules, to compare them with everyone else (A). It never serves "
            "anyone else, nor after the experiment stops; promoting B makes it serve everyone.",
        },
    ),
]

# The pickers of a new rule list the catalogs of at most this many of the user's customers.
PICKER_CUSTOMERS = 10


def _window_summary(windows: list[dict[str, Any]], zone: ZoneInfo = UTC_ZONE) -> str:
    """Whether the windows are on now, and the first one in the shop's time."""
    if not windows:
        return "always"
    now = timezone.now()

    def parsed(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    spans = [(parsed(w.get("start")), parsed(w.get("end"))) for w in windows]
    if any((s is None or s <= now) and (e is None or now < e) for s, e in spans):
        state = "on now"
    elif any(s is not None and s > now for s, _ in spans):
        state = "scheduled"
    else:
        state = "ended"
    (start, end), *_ = spans
    text = f"{shop_text(start, zone) or '…'} → {shop_text(end, zone) or '…'}"
    more = f" (+{len(windows) - 1})" if len(windows) > 1 else ""
    return f"{state}: {text}{more}"


def _rule_status(rule: Rule) -> str:
    """In words: "draft", "off", or "serving", "scheduled" or "ended" by its windows now."""
    if rule.draft:
        return "draft"
    if not rule.enabled:
        return "off"
    if rule.experiment_id is not None:
        return f"only in B of experiment {rule.experiment_id}"
    if not rule.windows:
        return "serving"
    state = _window_summary(rule.windows).split(":", 1)[0]
    return {"on now": "serving"}.get(state, state)


_MATCH_WORDS = {"exact": "is", "contains": "contains", "starts_with": "starts with"}


def _applies_to(rule: Rule) -> str:
    """Which requests: the query condition and the browsed categories, in words."""
    parts = []
    query = rule.query or {}
    if query.get("match", "any") != "any":
        words = " or ".join(f"“{p}”" for p in query.get("patterns", []))
        parts.append(f"query {_MATCH_WORDS.get(query['match'], query['match'])} {words}")
    if rule.page_categories:
        parts.append("category " + " or ".join(rule.page_categories))
    return "; ".join(parts) or "every request"


def _targets(selector: dict[str, Any]) -> str:
    """Which items the action touches, in words (the clauses combine with "and")."""
    parts = []
    if selector.get("item_ids"):
        ids = selector["item_ids"]
        parts.append(", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else ""))
    if selector.get("brands"):
        parts.append("brand " + " or ".join(selector["brands"]))
    if selector.get("categories"):
        parts.append("in " + " or ".join(selector["categories"]))
    for key, values in (selector.get("attributes") or {}).items():
        parts.append(f"{key} " + " or ".join(map(str, values)))
    low, high = selector.get("price_min"), selector.get("price_max")
    if low is not None or high is not None:
        parts.append(
            f"price {low if low is not None else 0:g} to {high if high is not None else '…'}"
        )
    if selector.get("in_stock") is not None:
        parts.append("in stock" if selector["in_stock"] else "out of stock")
    return "; ".join(parts) or "every item"


class ScheduleFilter(admin.SimpleListFilter):
    title = "schedule"
    parameter_name = "schedule"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("always", "always on"), ("windowed", "with windows")]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> Any:
        if self.value() == "always":
            return queryset.filter(windows=[])
        if self.value() == "windowed":
            return queryset.exclude(windows=[])
        return queryset


def _workbench_url(rule: Rule) -> str:
    """The workbench page a draft was made on (its surface and exact query, or its category)."""
    query = rule.query or {}
    page: dict[str, Any] = {
        "customer": rule.customer_id,
        "surface": (rule.surfaces or ["search"])[0],
    }
    if query.get("match") == "exact" and query.get("patterns"):
        page["query"] = query["patterns"][0]
    elif rule.page_categories:
        page.update(surface="browse", category=rule.page_categories[0], query="")
    return f"{reverse('explain:workbench')}?{urlencode(page)}"


@admin.register(Rule)
class RuleAdmin(CustomerScopedAdmin):
    """Merchandisers and admins write rules; viewers read them, their history and previews (a
    preview changes nothing served)."""

    form = RuleForm
    edit_role = Role.MERCHANDISER
    list_display = [
        "name",
        "customer",
        "status",
        "priority",
        "action_type",
        "applies_to",
        "targets",
        "surface_list",
        "window_summary",
        "updated_at",
        "updated_by",
    ]
    list_filter = ["draft", "enabled", "action_type", ScheduleFilter]
    list_select_related = ["customer", "updated_by"]
    search_fields = ["name", "description"]
    change_form_template = "admin/merchandising/rule/change_form.html"

    @admin.display(description="surfaces")
    def surface_list(self, rule: Rule) -> str:
        return ", ".join(rule.surfaces) or "all"

    @admin.display(description="when (shop time)")
    def window_summary(self, rule: Rule) -> str:
        return _window_summary(rule.windows, shop_zone(rule.customer))

    @admin.display(description="status", ordering="enabled")
    def status(self, rule: Rule) -> str:
        return _rule_status(rule)

    @admin.display(description="for")
    def applies_to(self, rule: Rule) -> str:
        return _applies_to(rule)

    @admin.display(description="items")
    def targets(self, rule: Rule) -> str:
        return _targets(rule.selector)

    @admin.display(description="what it earned")
    def holdout_readout(self, rule: Rule) -> str:
        return holdout_html(rule, rule_holdout_readout(rule=rule))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return RULE_FIELDSETS
        *rest, (title, holdout), experiment = RULE_FIELDSETS
        with_readout = {**holdout, "fields": [*holdout["fields"], "holdout_readout"]}
        return [
            *rest,
            (title, with_readout),
            experiment,
            ("Record", {"fields": ["revision", "updated_at", "updated_by"]}),
        ]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # Only the scalar columns are model fields of the form; the structured fields (some named
        # like the JSON columns) become the document, which the services store.
        readonly = self.get_readonly_fields(request, obj)
        kwargs["fields"] = [name for name in RuleForm.Meta.fields if name not in readonly]
        form = super().get_form(request, obj, change, **kwargs)
        if "experiment" in form.base_fields:
            field = form.base_fields["experiment"]
            assert isinstance(field, ModelChoiceField)
            field.queryset = self.experiments_offered(request, obj)
        return form

    def experiments_offered(self, request: HttpRequest, rule: Rule | None) -> Any:
        """The running rule experiments of the rule's customer (of the user's customers for a
        new rule), and the one it is tagged to."""
        if rule is not None:
            customers: Any = [rule.customer_id]
        else:
            customers = customers_granting(user=request.user, role=self.edit_role)
        tagged_id = rule.experiment_id if rule is not None else None
        return selectors.rule_experiments_offered(customers=customers, tagged_id=tagged_id)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["customer", "revision", "updated_at", "updated_by", "holdout_readout"]

    # --- writes through the services ----------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Rule, form: Any, change: bool) -> None:
        # The tag is written by its own service (checked, recorded), not with the document.
        tag = form.cleaned_data.get("experiment") if "experiment" in form.fields else None
        tag_changed = "experiment" in form.fields and obj.experiment_id != form.stored_experiment_id
        obj.experiment_id = form.stored_experiment_id
        warnings: list[RuleWarning] = []
        if change:
            stored = selectors.rule_stored(customer_id=obj.customer_id, rule_id=obj.pk)
            if not services.rule_unchanged(rule=stored, document=form.document):
                _, warnings = services.rule_update(
                    rule=obj, document=form.document, user=request.user
                )
            elif not tag_changed:
                messages.info(request, "Nothing changed: no new revision.")
                return
        else:
            rule, warnings = services.rule_create(
                customer=form.cleaned_data["customer"], document=form.document, user=request.user
            )
            obj.pk = rule.pk
        if tag_changed:
            services.rule_tag(rule=obj, experiment=tag, user=request.user)
        for warning in warnings:
            messages.warning(request, f"Saved, but: {warning.detail}")

    def delete_model(self, request: HttpRequest, obj: Rule) -> None:
        services.rule_delete(rule=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for rule in queryset:
            services.rule_delete(rule=rule, user=request.user)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        # The form checks conflicts before saving; a rule written meanwhile by someone else can
        # still make the service refuse. Nothing is stored then (the view's transaction rolls
        # back), and the author sees why.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.RuleRejected as exc:
            messages.error(request, f"Not saved: {exc}")
            return HttpResponseRedirect(request.get_full_path())

    @staticmethod
    def pickers(customer_ids: list[int]) -> dict[str, Any]:
        """The catalog's brands and categories of these customers, for the form's pickers."""
        categories = {c for pk in customer_ids for c in catalog_categories(customer_id=pk)}
        return {
            "picker_brands": catalog_brands(customer_ids=customer_ids),
            "picker_categories": sorted(categories)[:MAX_PICKED],
        }

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        # A new rule may be for any customer the user writes rules of: their catalogs' values
        # (a few customers' at most; a platform superuser types the rest).
        writable = customers_granting(user=request.user, role=self.edit_role)
        customer_ids = list(writable.values_list("pk", flat=True)[:PICKER_CUSTOMERS])
        extra_context = {**(extra_context or {}), **self.pickers(customer_ids)}
        return super().add_view(request, form_url, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        extra_context = dict(extra_context or {})
        rule = self.get_object(request, object_id)
        if rule is not None:
            extra_context.update(self.pickers([rule.customer_id]))
        if rule is not None and request.method == "GET":
            form_fields = self.form.base_fields
            extra_context["rule_warnings"] = [
                (form_fields[field].label if field in form_fields else None, warning)
                for warning in self.current_warnings(rule)
                for field in [warning_field(warning)]
            ]
            if rule.draft:
                extra_context["workbench_url"] = _workbench_url(rule)
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def current_warnings(rule: Rule) -> list[RuleWarning]:
        """What the conflict checks say about the rule as stored, right now."""
        return rule_warnings(
            customer_id=rule.customer_id,
            document=RuleIn.stored(rule.document()),
            rule_id=rule.pk,
            at=timezone.now(),
        )

    # --- preview and history ------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "catalog/items/",
                self.admin_site.admin_view(self.catalog_items_view),
                name="merchandising_rule_catalog_items",
            ),
            path(
                "catalog/attributes/",
                self.admin_site.admin_view(self.catalog_attributes_view),
                name="merchandising_rule_catalog_attributes",
            ),
            path(
                "check/",
                self.admin_site.admin_view(self.check_view),
                name="merchandising_rule_check_new",
            ),
            path(
                "<path:object_id>/check/",
                self.admin_site.admin_view(self.check_view),
                name="merchandising_rule_check",
            ),
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="merchandising_rule_preview",
            ),
            path(
                "<path:object_id>/history/<int:number>/revert/",
                self.admin_site.admin_view(self.revert_view),
                name="merchandising_rule_revert",
            ),
        ]
        return own + super().get_urls()

    # --- the form's catalog pickers (static/rankwell/rule_pickers.js asks these) ---------------

    def _picked_customer(self, request: HttpRequest) -> int:
        """The customer a picker asks about: one the user sees (else 404), with rules they may
        read (else 403)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        wanted = request.GET.get("customer", "")
        if not wanted.isdigit() or not customer_is_visible(
            user=request.user, customer_id=int(wanted)
        ):
            raise Http404("No such customer.")
        return int(wanted)

    def catalog_items_view(self, request: HttpRequest) -> JsonResponse:
        """Items of the customer whose id starts with `q` or whose title has its words."""
        customer_id = self._picked_customer(request)
        found = catalog_items_find(customer_id=customer_id, text=request.GET.get("q", "")[:200])
        return JsonResponse(
            {
                "items": [
                    {"id": item.id, "title": item.title, "brand": item.brand, "label": item.label}
                    for item in found
                ]
            }
        )

    def catalog_attributes_view(self, request: HttpRequest) -> JsonResponse:
        """The customer's attribute names, or with `name` the values its items have for it."""
        customer_id = self._picked_customer(request)
        name = request.GET.get("name", "").strip()
        if not name:
            return JsonResponse({"names": catalog_attribute_names(customer_id=customer_id)})
        values = catalog_attribute_values(customer_id=customer_id, name=name[:200])
        return JsonResponse({"name": name, "values": values})

    def check_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """The form as typed so far, checked as saving would check it (the contract, the
        catalog, the conflicts with the shop's other rules), without saving: htmx asks it as the
        merchandiser goes (templates/admin/merchandising/rule/change_form.html)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        rule = self._scoped_rule(request, object_id) if object_id is not None else None
        if rule is not None and not self.has_change_permission(request, rule):
            raise PermissionDenied
        if rule is None and not self.has_add_permission(request):
            raise PermissionDenied
        form = self.get_form(request, rule, change=rule is not None)(request.POST, instance=rule)
        valid = form.is_valid()
        labels = {name: field.label or name for name, field in form.fields.items()}
        problems = [
            (str(labels.get(name, "")) if name != "__all__" else "", str(message))
            for name, messages_ in form.errors.items()
            for message in messages_
        ]
        warnings = [
            (str(labels.get(field, "")) if field else "", warning.detail)
            for warning in form.warnings
            if not warning.blocking
            for field in [warning_field(warning)]
        ]
        context = {"valid": valid, "problems": problems, "warnings": warnings}
        return TemplateResponse(request, "admin/merchandising/rule/check.html", context)

    def _scoped_rule(self, request: HttpRequest, object_id: str) -> Rule:
        rule = self.get_object(request, object_id)
        if rule is None:
            raise Http404("No such rule.")
        if not self.has_view_permission(request, rule):
            raise PermissionDenied
        return rule

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        rule = self._scoped_rule(request, object_id)
        document = rule.document()
        initial = {
            "surface": (rule.surfaces or ["search"])[0],
            "query": next(iter(document["query"].get("patterns", [])), ""),
            "category": next(iter(rule.page_categories), ""),
            "context": "\n".join(f"{k}={v[0]}" for k, v in rule.context.items() if v),
            "candidates": 50,
            "top": 20,
        }
        if initial["surface"] == "search" and not initial["query"] and rule.page_categories:
            initial["surface"] = "browse"
        zone = shop_zone(rule.customer)  # "at" is read and shown in the shop's time
        data = {**initial, **request.GET.dict()} if request.GET else initial
        form = PreviewForm(data, zone=zone)
        preview = None
        if form.is_valid():
            data = form.cleaned_data
            preview = rule_preview(
                rule=rule,
                surface=data["surface"],
                query=data["query"],
                category=data["category"],
                context=data["context"],
                at=data["at"],
                candidates=data["candidates"],
                top=data["top"],
            )
        window_starts = [
            shop_text(datetime.fromisoformat(w["start"]), zone)
            for w in rule.windows
            if w.get("start")
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {rule.name}",
            "opts": self.opts,
            "original": rule,
            "form": form,
            "preview": preview,
            "at": shop_text(form.cleaned_data["at"], zone) if form.is_valid() else None,
            "zone": zone.key,
            "window_starts": window_starts,
        }
        return TemplateResponse(request, "admin/merchandising/rule/preview.html", context)

    def _revisions(self, request: HttpRequest, rule_id: int) -> list[RuleRevision]:
        return selectors.rule_revisions_among(
            customers=customers_visible(user=request.user), rule_id=rule_id
        )

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The rule's revisions and their diffs; kept, and revertible, once it is deleted."""
        if not object_id.isdigit():
            raise Http404("No such rule.")
        revisions = self._revisions(request, int(object_id))
        if not revisions:
            raise Http404("No such rule.")
        rule = self.get_object(request, object_id)
        if not self.has_view_permission(request, rule):
            raise PermissionDenied
        newest = revisions[0]
        zone = shop_zone(newest.customer)  # windows read in the shop's time, as the form shows
        entries = [
            {
                "revision": revision,
                "changes": field_changes(
                    older.document if older else None, revision.document, zone
                ),
                "diff": document_diff(older.document if older else None, revision.document),
                "revertible": revision is not newest or newest.kind == RevisionKind.DELETED,
            }
            for revision, older in zip(revisions, [*revisions[1:], None], strict=True)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {newest.document.get('name', object_id)}",
            "opts": self.opts,
            "rule": rule,
            "rule_id": object_id,
            "entries": entries,
            "can_revert": self.may_revert(request, newest, rule),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/merchandising/rule/history.html", context)

    def may_revert(self, request: HttpRequest, revision: RuleRevision, rule: Rule | None) -> bool:
        """Reverting writes the rule (or brings a deleted one back) for the revision's customer."""
        if rule is not None:
            return self.has_change_permission(request, rule)
        return self.has_add_permission(request) and role_grants(
            user=request.user, customer_id=revision.customer_id, role=self.edit_role
        )

    @staticmethod
    def revert(request: HttpRequest, revision: RuleRevision) -> Rule | None:
        """Revert through the service; tell the author the outcome."""
        try:
            rule, warnings = services.rule_revert(revision=revision, user=request.user)
        except services.RuleRejected as exc:
            messages.error(request, f"Not reverted to revision {revision.number}: {exc}")
            return None
        messages.success(request, f"“{rule.name}” is back to revision {revision.number}.")
        for warning in warnings:
            messages.warning(request, f"Reverted, but: {warning.detail}")
        return rule

    def revert_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not object_id.isdigit():
            raise Http404("No such rule.")
        revision = next(
            (r for r in self._revisions(request, int(object_id)) if r.number == number), None
        )
        if revision is None:
            raise Http404("No such revision.")
        rule = self.get_object(request, object_id)
        if not self.may_revert(request, revision, rule):
            raise PermissionDenied
        reverted = self.revert(request, revision)
        if reverted is None:
            return HttpResponseRedirect(
                reverse("admin:merchandising_rule_history", args=[object_id])
            )
        return HttpResponseRedirect(reverse("admin:merchandising_rule_change", args=[reverted.pk]))


@admin.register(RuleRevision)
class RuleRevisionAdmin(CustomerScopedAdmin):
    """Every rule's changes, deleted rules' too: read-only, with a revert action."""

    list_display = [
        "rule_id_value",
        "rule_name",
        "number",
        "kind",
        "changed_by",
        "changed_at",
        "note",
        "history_link",
    ]
    list_filter = ["kind"]
    list_select_related = ["customer", "changed_by"]
    search_fields = ["document__name", "note"]
    actions = ["revert_selected"]
    edit_role = Role.MERCHANDISER  # reverting is writing a rule

    @admin.display(description="rule")
    def rule_name(self, revision: RuleRevision) -> str:
        return str(revision.document.get("name", ""))

    @admin.display(description="history")
    def history_link(self, revision: RuleRevision) -> str:
        url = reverse("admin:merchandising_rule_history", args=[revision.rule_id_value])
        return format_html('<a href="{}">history and diffs</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revert_permission(self, request: HttpRequest) -> bool:
        return (
            request.user.has_perm("merchandising.change_rule")
            and request.user.has_perm("merchandising.add_rule")
            and self.may_edit(request)
        )

    @admin.action(description="Revert each rule to the selected revision", permissions=["revert"])
    def revert_selected(self, request: HttpRequest, queryset: Any) -> None:
        chosen: dict[int, RuleRevision] = {}
        for revision in self.editable(request, queryset).order_by("number"):
            chosen[revision.rule_id_value] = revision  # one per rule: the newest selected
        for revision in chosen.values():
            RuleAdmin.revert(request, revision)
