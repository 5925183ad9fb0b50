from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from customers.admin import CustomerScopedAdmin
from customers.models import Customer, Role, customers_granting
from customers.shop_time import ShopDateTimeField, shop_zone, zone_words
from ranking import selectors, services
from ranking.configs import DEFAULT_WEIGHTS, MAX_ABS_WEIGHT, weights_clean
from ranking.engine.experiments import CONTROL, TREATMENT
from ranking.engine.interleaving import TEAM_A, TEAM_B
from ranking.experiment_chart import lift_chart_html, preference_chart_html
from ranking.experiment_stats import CONFIDENCE, MINIMUM_LIFT, Lift
from ranking.experiments import (
    ATTRIBUTION_WINDOW,
    HORIZON_METRIC,
    METRICS,
    ExperimentResult,
    always_valid_verdict,
    experiment_result,
    horizon_verdict,
    money_text,
    rate_text,
    signed_percent,
)
from ranking.interleaving import InterleavingResult, interleaving_result, preference_words
from ranking.learning import registry
from ranking.learning.metrics import NDCG, REVENUE
from ranking.models import (
    Experiment,
    ExperimentEnd,
    ExperimentKind,
    ExperimentMethod,
    ModelStatus,
    RankingConfig,
    RankingModel,
    SignalVersion,
)
from ranking.signals.schema import FEATURES

WEIGHT_PREFIX = "weight__"


class RankingConfigForm(forms.ModelForm):
    """One number field per signal instead of raw JSON, validated like the service validates."""

    # Unticked (and absent from a post): the config serves its surface, as configs always did.
    for_experiment = forms.BooleanField(
        required=False,
        label="only for an experiment's B",
        help_text="Serves nobody but the B of an experiment of ranking configs; promoting that "
        "experiment's B makes it the surface's live config.",
    )

    class Meta:
        model = RankingConfig
        fields = ["customer", "surface", "name", "personalization_weight", "exploration_percent"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.weights if self.instance.pk else DEFAULT_WEIGHTS["search"]
        for feature in FEATURES:
            self.fields[WEIGHT_PREFIX + feature] = forms.FloatField(
                label=feature,
                required=False,
                initial=current.get(feature, 0.0),
                min_value=-MAX_ABS_WEIGHT,
                max_value=MAX_ABS_WEIGHT,
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("for_experiment") and self.instance.pk is None:
            self.instance.live = False  # before the form checks the one-live-config constraint
        weights = {
            feature: cleaned.get(WEIGHT_PREFIX + feature) or 0.0
            for feature in FEATURES
            if cleaned.get(WEIGHT_PREFIX + feature)
        }
        try:
            cleaned["weights"] = weights_clean(weights)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["weights"]) from exc
        return cleaned


@admin.register(RankingConfig)
class RankingConfigAdmin(CustomerScopedAdmin):
    """Configs change live traffic: a customer's admins change them, everyone else reads."""

    form = RankingConfigForm
    edit_role = Role.ADMIN
    list_display = [
        "customer",
        "surface",
        "name",
        "live",
        "personalization_weight",
        "updated_at",
        "updated_by",
    ]
    list_select_related = ["customer", "updated_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A config becomes live only by promoting it from an experiment (its history there).
        return ["customer", "surface", "live"] if obj is not None else []

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # The form adds the weight fields per instance; they are no model fields, so the form
        # class is built without them (the fieldsets below still show them).
        fields = kwargs.get("fields") or RankingConfigForm.Meta.fields
        kwargs["fields"] = [name for name in fields if not name.startswith(WEIGHT_PREFIX)]
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (
                None,
                {
                    "fields": [
                        "customer",
                        "surface",
                        "name",
                        "live" if obj is not None else "for_experiment",
                        "personalization_weight",
                        "exploration_percent",
                    ]
                },
            ),
            (
                "Signal weights (on standardised signals; 0 leaves a signal out)",
                {"fields": [WEIGHT_PREFIX + feature for feature in FEATURES]},
            ),
        ]

    def save_model(self, request: HttpRequest, obj: RankingConfig, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = services.ranking_config_save(
            customer=obj.customer,
            surface=obj.surface,
            name=data["name"],
            weights=data["weights"],
            personalization_weight=data["personalization_weight"],
            exploration_percent=data["exploration_percent"],
            user=request.user,
            live=obj.live,
            config=obj,
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: RankingConfig) -> None:
        services.ranking_config_delete(config=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for config in queryset:
            services.ranking_config_delete(config=config)


@admin.register(SignalVersion)
class SignalVersionAdmin(CustomerScopedAdmin):
    list_display = ["customer", "version", "items", "query_pairs", "seconds", "created_at"]
    list_select_related = ["customer"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RankingModelForm(forms.ModelForm):
    """Nothing of a trained model is editable; the form only activates it, with a reason when
    the guards ask for one."""

    activate = forms.BooleanField(required=False, help_text="Serve this model on its surface.")
    activation_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=(
            "Needed when a guard objects: the model did not beat the live ranker and the "
            "popularity order, its holdout was too small, or a feature never varied."
        ),
    )

    class Meta:
        model = RankingModel
        fields: list[str] = []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("activate"):
            blockers = registry.activation_blockers(self.instance)
            if blockers:
                raise ValidationError(blockers)
            warnings = registry.activation_warnings(self.instance)
            if warnings and not (cleaned.get("activation_reason") or "").strip():
                self.add_error(
                    "activation_reason",
                    [*warnings, "Give a reason to activate it anyway."],
                )
        return cleaned


def _metric(obj: RankingModel, who: str, metric: str = NDCG) -> str:
    values = (obj.metrics or {}).get(who)
    if not isinstance(values, dict) or metric not in values:
        return "-"
    return f"{values[metric]:.2f}" if metric == REVENUE else f"{values[metric]:.4f}"


CHART_WIDTH = 260
CHART_ROW = 18


def comparison_chart(obj: RankingModel) -> str:
    """Bars of the holdout's NDCG@10 and revenue per search for the model, the live ranker and
    the popularity order, each metric on its own scale (inline SVG, nothing downloaded)."""
    metrics = obj.metrics or {}
    rivals = [("this model", "model"), ("live ranker", "active"), ("popularity order", "baseline")]
    groups = []
    for title, metric, shown in (
        ("ranking quality (NDCG@10)", NDCG, "{:.3f}"),
        ("revenue per search", REVENUE, "{:.2f}"),
    ):
        values = [
            (name, float(metrics[who][metric]))
            for name, who in rivals
            if isinstance(metrics.get(who), dict) and metric in metrics[who]
        ]
        if values:
            groups.append(_bars(title, values, shown))
    if not groups:
        return "-"
    return format_html_join("", "{}", ((group,) for group in groups))


def _bars(title: str, values: list[tuple[str, float]], shown: str) -> str:
    top = max(value for _, value in values) or 1.0
    rows = []
    for row, (name, value) in enumerate(values):
        y = row * CHART_ROW
        width = round(max(value, 0.0) / top * (CHART_WIDTH - 170), 1)
        colour = "#417690" if row == 0 else "#9aa9b5"
        text = shown.format(value)
        rows.append((y + 12, name, y + 2, width, colour, text, width + 124, y + 12, text))
    bars = format_html_join(
        "",
        '<text x="0" y="{}" font-size="12">{}</text>'
        '<rect x="120" y="{}" width="{}" height="12" fill="{}"><title>{}</title></rect>'
        '<text x="{}" y="{}" font-size="12">{}</text>',
        rows,
    )
    return format_html(
        '<figure class="model-chart"><figcaption>{}</figcaption>'
        '<svg width="{}" height="{}" role="img" aria-label="{}">{}</svg></figure>',
        title,
        CHART_WIDTH,
        len(values) * CHART_ROW,
        title,
        bars,
    )


@admin.register(RankingModel)
class RankingModelAdmin(CustomerScopedAdmin):
    """Activating and rolling back models is for a customer's admins; everyone else reads."""

    form = RankingModelForm
    edit_role = Role.ADMIN
    list_display = [
        "customer",
        "surface",
        "label",
        "status",
        "holdout_ndcg",
        "active_ndcg",
        "baseline_ndcg",
        "holdout_revenue",
        "baseline_revenue",
        "created_at",
        "created_by",
        "activated_at",
    ]
    list_select_related = ["customer"]
    list_filter = ["surface", "status", "algorithm"]
    actions = ["activate_selected", "rollback_selected"]
    summary_fields = [
        "comparison",
        "chart",
        "decision",
        "sources",
        "position_bias",
        "features_table",
    ]
    model_fields = [
        "customer",
        "surface",
        "algorithm",
        "version",
        "status",
        "train_from",
        "train_until",
        "holdout_from",
        "previous",
        "created_at",
        "created_by",
        "activated_at",
        "activated_by",
        "override_reason",
    ]
    detail_fields = [
        "schema_hash",
        "params",
        "row_counts",
        "propensity",
        "metrics",
        "report",
        "artifact_path",
        "artifact_sha256",
    ]
    readonly_fields = [*summary_fields, *model_fields, *detail_fields, "rollback_link"]

    @admin.display(description="roll back")
    def rollback_link(self, model: RankingModel) -> str:
        url = reverse("admin:ranking_rankingmodel_rollback", args=[model.pk])
        return format_html('<a class="button" href="{}">Roll back…</a>', url)

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<int:pk>/rollback/",
                self.admin_site.admin_view(self.rollback_view),
                name="ranking_rankingmodel_rollback",
            )
        ]
        return own + super().get_urls()

    def rollback_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The model page's "Roll back…": the same confirmation as the list's action."""
        model = self.get_object(request, str(pk))
        if model is None or not self.has_change_permission(request, model):
            raise PermissionDenied
        queryset = self.get_queryset(request).filter(pk=model.pk)
        if request.method == "POST" and request.POST.get("post") == "yes":
            self.rollback_selected(request, queryset)
            return HttpResponseRedirect(reverse("admin:ranking_rankingmodel_changelist"))
        response = self.rollback_selected(request, queryset)
        if response is None:
            return HttpResponseRedirect(reverse("admin:ranking_rankingmodel_change", args=[pk]))
        return response

    @admin.display(description="model")
    def label(self, obj: RankingModel) -> str:
        return obj.label

    @admin.display(description="ranking quality (NDCG@10)")
    def holdout_ndcg(self, obj: RankingModel) -> str:
        return _metric(obj, "model")

    @admin.display(description="live ranker's")
    def active_ndcg(self, obj: RankingModel) -> str:
        return _metric(obj, "active")

    @admin.display(description="popularity order's")
    def baseline_ndcg(self, obj: RankingModel) -> str:
        return _metric(obj, "baseline")

    @admin.display(description="revenue per search")
    def holdout_revenue(self, obj: RankingModel) -> str:
        return _metric(obj, "model", REVENUE)

    @admin.display(description="popularity order's")
    def baseline_revenue(self, obj: RankingModel) -> str:
        return _metric(obj, "baseline", REVENUE)

    @admin.display(description="compared on later requests")
    def comparison(self, obj: RankingModel) -> str:
        words = (obj.report or {}).get("comparison") or []
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w,) for w in words))
        )

    @admin.display(description="on the later requests, side by side")
    def chart(self, obj: RankingModel) -> str:
        return comparison_chart(obj)

    @admin.display(description="decision")
    def decision(self, obj: RankingModel) -> str:
        decided = (obj.report or {}).get("decision")
        if not decided:
            return "none yet: activate it by hand, or let the nightly loop decide"
        return f"{decided['action']} ({decided['by']}, {decided['at'][:16].replace('T', ' ')} UTC)"

    @admin.display(description="where its requests' features came from")
    def sources(self, obj: RankingModel) -> str:
        provenance = (obj.report or {}).get("provenance") or {}
        counts = [(source, n) for source, n in (provenance.get("requests") or {}).items() if n]
        skipped = provenance.get("skipped degraded answers", 0)
        skew = provenance.get("skew") or {}
        lines = [(f"{n} requests: {source}",) for source, n in counts]
        if skipped:
            lines.append((f"{skipped} degraded answers left out (served without signals)",))
        if skew.get("features"):
            off = ", ".join(f"{name} {share:.1%}" for name, share in skew["features"].items())
            lines.append((f"logged values that differ from the event log's: {off}",))
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", lines))

    @admin.display(description="position bias")
    def position_bias(self, obj: RankingModel) -> str:
        bias = obj.propensity or {}
        if "eta" not in bias:
            return "-"
        return (
            f"shoppers look at position k about k^-{bias['eta']:.2f} as often as at the first "
            f"({bias.get('method', 'click model')})"
        )

    @admin.display(description="features")
    def features_table(self, obj: RankingModel) -> str:
        rows = (obj.report or {}).get("features") or []
        if not rows:
            return "-"
        ordered = sorted(rows, key=lambda row: -row["importance"])
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row["feature"].replace("_", " "),
                    f"{row['importance']:.1%}",
                    f"{row['coverage']:.0%}",
                    "yes" if row["varied"] else "no: the model cannot use it",
                )
                for row in ordered
            ),
        )
        return format_html(
            "<table><thead><tr><th>feature</th><th>share of the model's decisions</th>"
            "<th>rows where it was set</th><th>varied in training</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            body,
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets: list[Any] = [
            ("What training found", {"fields": self.summary_fields}),
            ("The model", {"fields": self.model_fields}),
        ]
        serveable = obj is not None and obj.status != ModelStatus.ACTIVE
        if serveable and self.has_change_permission(request, obj):
            fieldsets.append(("Serve it", {"fields": ["activate", "activation_reason"]}))
        if obj is not None and not serveable and self.has_change_permission(request, obj):
            fieldsets.append(("Stop serving it", {"fields": ["rollback_link"]}))
        fieldsets.append(("Details", {"classes": ["collapse"], "fields": self.detail_fields}))
        return fieldsets

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # models come from training (manage.py train_model, the nightly task)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the registry is the audit trail of what served

    def save_model(self, request: HttpRequest, obj: RankingModel, form: Any, change: bool) -> None:
        if not form.cleaned_data.get("activate"):
            return
        registry.model_activate(
            model=obj,
            user=request.user.get_username(),
            override_reason=form.cleaned_data.get("activation_reason") or "",
        )
        messages.success(request, f"{obj.label} now serves {obj.surface}.")

    @admin.action(description="Activate selected models (no override)", permissions=["change"])
    def activate_selected(
        self, request: HttpRequest, queryset: models.QuerySet[RankingModel]
    ) -> None:
        for model in self.editable(request, queryset):
            try:
                registry.model_activate(model=model, user=request.user.get_username())
            except registry.ActivationRefused as exc:
                hint = " Open the model to activate it with a reason." if exc.needs_override else ""
                messages.error(request, f"{model.label} was not activated: {exc}{hint}")
            else:
                messages.success(request, f"{model.label} now serves {model.surface}.")

    @admin.action(
        description="Roll back: serve the model each selected one replaced", permissions=["change"]
    )
    def rollback_selected(
        self, request: HttpRequest, queryset: models.QuerySet[RankingModel]
    ) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            # First say what would serve instead, and roll back only once confirmed.
            active = self.editable(request, queryset).filter(status=ModelStatus.ACTIVE)
            plans = [
                {
                    "customer": model.customer,
                    "surface": model.surface,
                    "current": model.label,
                    "next": model.previous.label if model.previous else "the config's blend",
                }
                for model in active.select_related("customer", "previous")
            ]
            skipped = [m.label for m in queryset if m.status != ModelStatus.ACTIVE]
            if not plans:
                messages.warning(request, "None of the selected models serves now.")
                return None
            return TemplateResponse(
                request,
                "admin/ranking/rankingmodel/rollback_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "plans": plans,
                    "skipped": skipped,
                    "queryset": active,
                    "title": "Roll back",
                },
            )
        for model in self.editable(request, queryset).filter(status=ModelStatus.ACTIVE):
            try:
                serving = registry.model_rollback(
                    customer_id=model.customer_id,
                    surface=model.surface,
                    user=request.user.get_username(),
                )
            except registry.ActivationRefused as exc:
                messages.error(request, f"{model.label} was not rolled back: {exc}")
            else:
                now = serving.label if serving is not None else "the config's blend"
                messages.success(request, f"{model.surface}: {model.label} retired, {now} serves.")
        return None


TREATMENT_FIELDS = ("kind", "treatment_model", "treatment_config")


SCHEDULE_HELP = {
    "starts_at": "Blank: at once. In the shop's time, {zone}; stored in UTC.",
    "ends_at": "Blank: until stopped. In the shop's time, {zone}; stored in UTC.",
}


class ExperimentForm(forms.ModelForm):
    # Picked and shown in the shop's time zone, stored in UTC (customers.shop_time).
    starts_at = ShopDateTimeField(required=False, label="Starts")
    ends_at = ShopDateTimeField(required=False, label="Ends")

    class Meta:
        model = Experiment
        fields = [
            *("customer", "surface", "name", "method", *TREATMENT_FIELDS, "treatment_percent"),
            *("layer", "traffic_percent", "starts_at", "ends_at", "enabled"),
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SCHEDULE_HELP:
            # Declared fields stay in a form even when the page shows them read-only (an
            # experiment that ended for good): then they must not write a blank over the value.
            if name not in (self._meta.fields or ()):
                self.fields.pop(name, None)
        if self.instance.customer_id is not None:
            zones = {self.instance.customer.name: shop_zone(self.instance.customer)}
        else:
            queryset = getattr(self.fields.get("customer"), "queryset", None)
            shops = list(queryset[:20]) if queryset is not None else []
            zones = {shop.name: shop_zone(shop) for shop in shops}
        one = set(zones.values())
        for name, help_text in SCHEDULE_HELP.items():
            field = self.fields.get(name)
            if isinstance(field, ShopDateTimeField):
                field.help_text = help_text.format(zone=zone_words(zones))
                if len(one) == 1:
                    field.zone = next(iter(one))
        if self.instance.customer_id is not None:
            self._use_zone(shop_zone(self.instance.customer))

    def _use_zone(self, zone: Any) -> None:
        for name in SCHEDULE_HELP:
            field = self.fields.get(name)
            if isinstance(field, ShopDateTimeField):
                field.zone = zone

    def clean_customer(self) -> Customer:
        # The start and end (cleaned after it) are read in the chosen shop's zone.
        customer = self.cleaned_data["customer"]
        self._use_zone(shop_zone(customer))
        return customer

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned

        def value(name: str) -> Any:  # a field the page shows read-only keeps its value
            return cleaned.get(name) if name in self.fields else getattr(self.instance, name)

        candidate = Experiment(
            pk=self.instance.pk,
            customer=value("customer"),
            surface=value("surface"),
            method=value("method"),
            kind=value("kind"),
            treatment_model=value("treatment_model"),
            treatment_config=value("treatment_config"),
            layer=value("layer"),
            traffic_percent=value("traffic_percent"),
            layer_slot=self.instance.layer_slot,
            enabled=bool(value("enabled")),
            starts_at=value("starts_at"),
            ends_at=value("ends_at"),
        )
        for field, messages_ in services.experiment_errors(candidate).items():
            self.add_error(field, messages_)
        return cleaned


def treatment_url(experiment: Experiment) -> str:
    """The admin page of what B is: its model, its config, or the rules tagged to it."""
    if experiment.kind == ExperimentKind.CONFIG and experiment.treatment_config_id:
        return reverse("admin:ranking_rankingconfig_change", args=[experiment.treatment_config_id])
    if experiment.kind == ExperimentKind.RULES:
        return (
            reverse("admin:merchandising_rule_changelist")
            + f"?experiment__id__exact={experiment.pk}"
        )
    return reverse("admin:ranking_rankingmodel_change", args=[experiment.treatment_model_id])


def _lift_words(lift: Lift | None) -> str:
    if lift is None:
        return "not enough data yet"
    low, high = signed_percent(lift.low), signed_percent(lift.high)
    interval = f"{CONFIDENCE:.0%} interval {low} to {high}"
    if not lift.significant:
        verdict = "no clear difference"
    else:
        verdict = "B is higher" if lift.lift > 0 else "B is lower"
    return f"{signed_percent(lift.lift)} ({interval}): {verdict}"


def _always_valid_words(lift: Lift | None) -> str:
    if lift is None:
        return "not enough data yet"
    interval = f"{signed_percent(lift.low)} to {signed_percent(lift.high)}"
    if not lift.significant:
        return f"{interval}: no clear difference yet"
    return f"{interval}: {'B is higher' if lift.lift > 0 else 'B is lower'}"


def experiment_end_words(experiment: Experiment) -> str:
    """How the experiment stands, in one sentence: running, or when and why it stopped."""
    if experiment.enabled and experiment.method == ExperimentMethod.INTERLEAVE:
        return (
            "Running: the shoppers in the share see the live ranker's and B's orders merged in "
            "one list; everyone else the live ranker."
        )
    if experiment.enabled:
        what = {
            ExperimentKind.MODEL: "its model",
            ExperimentKind.CONFIG: "its ranking config's blend",
            ExperimentKind.RULES: "the live ranker plus the rules tagged to B",
        }[ExperimentKind(experiment.kind)]
        return f"Running: B's shoppers get {what}, everyone else the live ranker."
    if not experiment.end_reason:
        return "Not running: everyone gets A, the live ranker."
    when = f"{experiment.ended_at:%Y-%m-%d %H:%M} UTC" if experiment.ended_at else "then"
    words = experiment.end_summary[:1].upper() + experiment.end_summary[1:]
    if experiment.end_reason == ExperimentEnd.PROMOTED:
        return f"{words}. The experiment ended on {when}."
    return f"{words}. Since {when}, everyone gets A, the live ranker."


def experiment_results_html(result: ExperimentResult) -> str:
    """The readout as the experiment's admin page shows it: one row per metric, in shop words."""
    control, treatment = result.variants[CONTROL], result.variants[TREATMENT]
    rows: list[tuple[str, str, str, str, str]] = [
        ("Shoppers", f"{control.shoppers:,}", f"{treatment.shoppers:,}", "", ""),
        (
            "Searches",
            f"{int(control.totals['searches']):,}",
            f"{int(treatment.totals['searches']):,}",
            "",
            "",
        ),
    ]
    currency = result.experiment.customer.currency
    for metric in METRICS:
        shown = rate_text if metric.unit == "rate" else partial(money_text, currency=currency)
        rows.append(
            (
                metric.label,
                shown(control.value(metric.key)),
                shown(treatment.value(metric.key)),
                _lift_words(result.lifts[metric.key]),
                _always_valid_words(result.always_valid.get(metric.key)),
            )
        )
    table = format_html(
        '<table><thead><tr><th></th><th>A: the live ranker</th><th>B: <a href="{}">{}</a></th>'
        "<th>B against A</th><th>Always-valid {} interval (may be read at any time)</th>"
        "</tr></thead><tbody>{}</tbody></table>",
        treatment_url(result.experiment),
        result.experiment.treatment_label,
        f"{CONFIDENCE:.0%}",
        format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        ),
    )
    notes = []
    ratio = result.sample_ratio
    if ratio is not None and ratio.mismatch:
        notes.append(
            (
                "Warning: the shoppers are not split as set. "
                f"{ratio.observed_share:.1%} are in B where {ratio.expected_share:.0%} should be, "
                "and chance alone splits them this unevenly less than once in 1,000 experiments. "
                "Something sends or logs one variant's shoppers differently; do not trust the "
                "numbers above until it is found.",
            )
        )
    if result.first_request_at is not None and result.last_request_at is not None:
        notes.append(
            (
                f"Searches from {result.first_request_at:%Y-%m-%d %H:%M} to "
                f"{result.last_request_at:%Y-%m-%d %H:%M} UTC.",
            )
        )
    notes.append(
        (
            f"Can it be read? At any time, on the always-valid intervals: revenue per search "
            f"{always_valid_verdict(result)}. These cover the true lift at every look at once, "
            "so a difference they show is real whenever it shows, but they are wider than the "
            f"fixed intervals. At the fixed horizon, on the fixed intervals: "
            f"{horizon_verdict(result)} (to see a {MINIMUM_LIFT:.0%} change in revenue per "
            "search 8 times in 10, at 95% confidence).",
        )
    )
    notes.append(
        (
            "A shopper's clicks, carts and purchases count for the variant of the search they "
            "came from, or else of their last search in the experiment within the "
            f"{ATTRIBUTION_WINDOW.total_seconds() / 3600:.0f} hours before. Shoppers without a "
            "user or session id are not in the experiment.",
        )
    )
    chart = lift_chart_html(
        result,
        groups=("A", "B"),
        versus="B against A",
        running=result.experiment.enabled,
    )
    return format_html(
        '<p class="experiment-status"><strong>{}</strong></p>{}<ul>{}</ul>{}',
        experiment_end_words(result.experiment),
        table,
        format_html_join("", "<li>{}</li>", notes),
        chart,
    )


def interleaving_results_html(result: InterleavingResult) -> str:
    """An interleaving readout as the experiment's admin page shows it, in shop words."""
    a, b = result.totals[TEAM_A], result.totals[TEAM_B]
    rows: list[tuple[str, str, str]] = [
        ("Clicks on its items", f"{int(a['clicks']):,}", f"{int(b['clicks']):,}"),
        ("Add-to-carts of its items", f"{int(a['add_to_carts']):,}", f"{int(b['add_to_carts']):,}"),
        ("Purchases of its items", f"{int(a['purchases']):,}", f"{int(b['purchases']):,}"),
        (
            "Revenue of its items",
            money_text(a["revenue"], result.experiment.customer.currency),
            money_text(b["revenue"], result.experiment.customer.currency),
        ),
    ]
    table = format_html(
        '<table><thead><tr><th></th><th>A: the live ranker</th><th>B: <a href="{}">{}</a></th>'
        "</tr></thead><tbody>{}</tbody></table>",
        treatment_url(result.experiment),
        result.experiment.treatment_label,
        format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows),
    )
    verdicts = format_html_join(
        "",
        '<li class="interleaving-preference"><strong>{}:</strong> {}</li>',
        (
            (f"Who wins a search on {credit.label.lower()}", preference_words(credit))
            for credit in result.preferences.values()
        ),
    )
    notes = [
        (
            f"{result.shoppers:,} shoppers, {result.searches:,} interleaved searches. Each "
            "search mixes A's and B's orders (each picks in turn, a coin flip deciding who picks "
            "first); a click or purchase counts for the ranker that picked the item, and a "
            "search is won by the ranker whose items got more. Items placed by a pin or slot "
            "count for neither.",
        ),
        (
            "The preference is B's share of the won searches minus A's; the interval counts each "
            "shopper's searches together. Interleaving says which ranker shoppers prefer, fast, "
            "but not by how much revenue: confirm a winner with an A/B test before promoting it.",
        ),
    ]
    if result.first_request_at is not None and result.last_request_at is not None:
        notes.append(
            (
                f"Searches from {result.first_request_at:%Y-%m-%d %H:%M} to "
                f"{result.last_request_at:%Y-%m-%d %H:%M} UTC.",
            )
        )
    return format_html(
        '<p class="experiment-status"><strong>{}</strong></p><ul>{}</ul>{}<ul>{}</ul>{}',
        experiment_end_words(result.experiment),
        verdicts,
        table,
        format_html_join("", "<li>{}</li>", notes),
        preference_chart_html(result),
    )


def promotion_plan(experiment: Experiment) -> str:
    """What promoting B changes, in one sentence (the confirmation page)."""
    url, label = treatment_url(experiment), experiment.treatment_label
    if experiment.kind == ExperimentKind.CONFIG:
        current = selectors.live_config(
            customer_id=experiment.customer_id, surface=experiment.surface
        )
        return format_html(
            '<a href="{}">{}</a> (B) becomes the surface\'s live config instead of {}',
            url,
            label,
            current.name if current else "the built-in default",
        )
    if experiment.kind == ExperimentKind.RULES:
        return format_html(
            '<a href="{}">The rules tagged to B</a> serve every shopper they match (each rule\'s '
            "history records it)",
            url,
        )
    model = selectors.active_model(customer_id=experiment.customer_id, surface=experiment.surface)
    return format_html(
        '<a href="{}">{}</a> (B) serves every shopper instead of {}',
        url,
        label,
        model.label if model else "the config's blend",
    )


@admin.register(Experiment)
class ExperimentAdmin(CustomerScopedAdmin):
    """A/B tests of a model, a ranking config or rules on a share of shoppers; `ranker.variant`
    says which one served."""

    form = ExperimentForm
    edit_role = Role.ADMIN
    list_display = [
        "name",
        "customer",
        "surface",
        "kind",
        "treatment_label",
        "treatment_percent",
        "layer_share",
        "enabled",
        "status",
        "updated_at",
    ]
    list_select_related = ["customer", "treatment_model", "treatment_config"]
    list_filter = ["surface", "enabled", "end_reason"]

    @admin.display(description="what shoppers did in each variant")
    def results(self, obj: Experiment) -> str:
        if obj.method == ExperimentMethod.INTERLEAVE:
            return interleaving_results_html(interleaving_result(experiment=obj))
        return experiment_results_html(experiment_result(experiment=obj))

    @admin.display(description="status")
    def status(self, obj: Experiment) -> str:
        if obj.enabled:
            return "running"
        return obj.get_end_reason_display() if obj.end_reason else "not running"

    @admin.display(description="promote B")
    def promote_link(self, obj: Experiment) -> str:
        url = reverse("admin:ranking_experiment_promote", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Promote B…</a> <span class="help">{} serves everyone on '
            "{} and the experiment ends; you confirm on the next page.</span>",
            url,
            obj.treatment_label,
            obj.surface,
        )

    @admin.display(description="layer")
    def layer_share(self, obj: Experiment) -> str:
        """The layer and the slice of its shoppers the experiment holds."""
        if obj.traffic_percent == 100:
            return obj.layer
        first = obj.layer_slot or 0
        return f"{obj.layer}: {obj.traffic_percent}% ({first}-{first + obj.traffic_percent}%)"

    @admin.display(description="B")
    def treatment_label(self, obj: Experiment) -> str:
        return obj.treatment_label

    @staticmethod
    def _shop_time(obj: Experiment, value: Any, blank: str) -> str:
        if value is None:
            return blank
        zone = shop_zone(obj.customer)
        return f"{value.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"

    @admin.display(description="starts")
    def starts_in_shop_time(self, obj: Experiment) -> str:
        return self._shop_time(obj, obj.starts_at, "at once")

    @admin.display(description="ends")
    def ends_in_shop_time(self, obj: Experiment) -> str:
        return self._shop_time(obj, obj.ends_at, "until stopped")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.end_reason in services.FINAL_ENDS:
            # It ended for good: only its name may change (ranking.services.experiment_errors).
            return [
                "results",
                "promote_link",
                "customer",
                "surface",
                "method",
                *TREATMENT_FIELDS,
                "treatment_percent",
                "layer",
                "traffic_percent",
                "starts_in_shop_time",
                "ends_in_shop_time",
                "enabled",
            ]
        return ["results", "promote_link"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        schedule = ("starts_at", "ends_at")
        if obj is not None and obj.end_reason in services.FINAL_ENDS:
            schedule = ("starts_in_shop_time", "ends_in_shop_time")  # read-only, in shop time
        fields = [
            *("customer", "surface", "name", "method", *TREATMENT_FIELDS, "treatment_percent"),
            *("layer", "traffic_percent"),
            *schedule,
            "enabled",
        ]
        if obj is None:
            return [(None, {"fields": fields})]
        fieldsets: list[Any] = [("Result", {"fields": ["results"]})]
        if obj.end_reason not in services.FINAL_ENDS and self.has_change_permission(request, obj):
            fieldsets.append(("Promote B", {"fields": ["promote_link"]}))
        return [*fieldsets, ("The experiment", {"fields": fields})]

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<int:pk>/promote/",
                self.admin_site.admin_view(self.promote_view),
                name="ranking_experiment_promote",
            )
        ]
        return own + super().get_urls()

    def promote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """ "Promote B…": what would serve and what the guards say, then, once confirmed, B's
        model activated through the registry's guards and the experiment ended."""
        experiment = self.get_object(request, str(pk))
        if experiment is None:
            raise Http404("No such experiment.")
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        refusal = ""
        reason = ""
        if request.method == "POST" and request.POST.get("post") == "yes":
            reason = request.POST.get("override_reason", "")
            try:
                served = services.experiment_promote(
                    experiment=experiment, user=request.user.get_username(), override_reason=reason
                )
            except (registry.ActivationRefused, services.PromotionRefused) as exc:
                refusal = f"B was not promoted: {exc}"
            else:
                messages.success(
                    request,
                    f"{served} now serves everyone on {experiment.surface}; "
                    f"the experiment {experiment.name} has ended.",
                )
                return HttpResponseRedirect(
                    reverse("admin:ranking_experiment_change", args=[experiment.pk])
                )
        model = experiment.treatment_model if experiment.kind == ExperimentKind.MODEL else None
        result = experiment_result(experiment=experiment)
        ended = experiment.end_reason in services.FINAL_ENDS
        return TemplateResponse(
            request,
            "admin/ranking/experiment/promote_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Promote B",
                "experiment": experiment,
                "plan": promotion_plan(experiment),
                "revenue": _lift_words(result.lifts[HORIZON_METRIC]),
                "verdict": horizon_verdict(result),
                "ended": experiment.end_summary if ended else "",
                "blockers": registry.activation_blockers(model) if model else [],
                "warnings": registry.activation_warnings(model) if model else [],
                "refusal": refusal,
                "reason": reason,
            },
        )

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        customers = customers_granting(user=request.user, role=self.edit_role)
        if db_field.name == "treatment_model":
            kwargs["queryset"] = selectors.models_to_try(customers=customers)
        if db_field.name == "treatment_config":
            kwargs["queryset"] = selectors.configs_to_try(customers=customers)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Experiment, form: Any, change: bool) -> None:
        services.experiment_save(experiment=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Experiment) -> None:
        services.experiment_delete(experiment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for experiment in queryset:
            services.experiment_delete(experiment=experiment)
