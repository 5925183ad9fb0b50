"""Admin for customers, memberships and API keys, and the tenant-scoping admin base class."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest

from customers import services
from customers.models import ApiKey, Customer, Membership, Scope


class CustomerScopedAdmin(admin.ModelAdmin):
    """Staff see and edit only the objects of the customers they belong to; superusers see all.

    Every admin of a tenant-owned model derives from this; none filters by customer by hand.
    """

    customer_path = "customer"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.customer_path}__memberships__user": request.user})

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        if db_field.name == "customer":
            kwargs["queryset"] = Customer.objects.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # RelatedOnly: the filter offers only customers of the scoped queryset, never all names.
        customer_filter = (self.customer_path, admin.RelatedOnlyFieldListFilter)
        return (customer_filter, *super().get_list_filter(request))


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "max_candidates", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Customer]:
        return Customer.objects.visible_to(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return self.inlines if request.user.is_superuser else []

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        if change:
            services.customer_update(
                customer=obj, **{field: form.cleaned_data[field] for field in form.changed_data}
            )
        else:
            super().save_model(request, obj, form, change)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = ApiKey
        fields = ["customer", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(CustomerScopedAdmin):
    form = ApiKeyForm
    list_display = [
        "name",
        "customer",
        "prefix",
        "scope_list",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "customer"] if obj is not None else fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are revoked, never deleted, so their history stays

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.api_key_update(api_key=obj, name=data["name"], scopes=data["scopes"])
            return
        api_key, plaintext = services.api_key_create(
            customer=data["customer"],
            name=data["name"],
            scopes=data["scopes"],
            created_by=request.user,
        )
        obj.pk, obj.prefix = api_key.pk, api_key.prefix
        messages.warning(
            request,
            f"The new API key is {plaintext} — copy it now: it is stored hashed and "
            "will not be shown again.",
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: models.QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key)
            revoked += 1
        messages.success(request, f"Revoked {revoked} key(s).")


@admin.register(Membership)
class MembershipAdmin(CustomerScopedAdmin):
    list_display = ["user", "customer", "created_at"]
    autocomplete_fields = ["user"]

    # Who works for which customer is for superusers only: hiding the module is not enough, the
    # pages themselves must refuse staff whatever permissions they hold.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser
