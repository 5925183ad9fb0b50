from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from customers.admin import CustomerScopedAdmin
from ranking import services
from ranking.configs import DEFAULT_WEIGHTS, MAX_ABS_WEIGHT, weights_clean
from ranking.models import RankingConfig, SignalVersion
from ranking.signals.schema import FEATURES

WEIGHT_PREFIX = "weight__"


class RankingConfigForm(forms.ModelForm):
    """One number field per signal instead of raw JSON, validated like the service validates."""

    class Meta:
        model = RankingConfig
        fields = ["customer", "surface", "name", "personalization_weight"]

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
    form = RankingConfigForm
    list_display = [
        "customer",
        "surface",
        "name",
        "personalization_weight",
        "updated_at",
        "updated_by",
    ]
    list_select_related = ["customer", "updated_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["customer", "surface"] if obj is not None else []

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
            (None, {"fields": ["customer", "surface", "name", "personalization_weight"]}),
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
            user=request.user,
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
