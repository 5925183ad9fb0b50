"""Admin for customers, memberships and API keys, and the tenant-scoping admin base class."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest

from customers import services
from customers.models import (
    ApiKey,
    Customer,
    Membership,
    Role,
    Scope,
    customers_granting,
    role_grants,
)
from customers.selectors import customers_visible

# A customer's limits and identity: only platform staff (superusers) change them.
PLATFORM_FIELDS = [
    "slug",
    "is_active",
    "max_candidates",
    # requests per second and bursts per API key (customers/ratelimit.py)
    "rank_requests_per_second",
    "rank_burst",
    "events_requests_per_second",
    "events_burst",
    "other_requests_per_second",
    "other_burst",
]


class CustomerScopedAdmin(admin.ModelAdmin):
    """Staff see only the objects of the customers they belong to, and change them only where
    their membership's role is at least `edit_role`; superusers see and change all.

    Every admin of a tenant-owned model derives from this; none filters by customer or checks a
    role by hand. Django's model permissions still apply: the role caps them per customer.
    """

    customer_path = "customer"
    edit_role: Role = Role.ADMIN  # the least role that may add, change or delete these objects

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.customer_path}__memberships__user": request.user})

    def customer_id_of(self, obj: Any) -> int:
        """The id of the customer owning `obj`, following `customer_path`."""
        *hops, last = self.customer_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
        return int(getattr(obj, f"{last}_id"))

    def may_edit(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whether the role allows writes: for obj's customer, or (no obj) for any customer."""
        if obj is None:
            return customers_granting(user=request.user, role=self.edit_role).exists()
        return role_grants(
            user=request.user, customer_id=self.customer_id_of(obj), role=self.edit_role
        )

    def editable(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> Any:
        """The part of `queryset` the role allows to change; bulk actions act on this only."""
        if request.user.is_superuser:
            return queryset
        allowed = customers_granting(user=request.user, role=self.edit_role)
        return queryset.filter(**{f"{self.customer_path}__in": allowed})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self.may_edit(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self.may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.may_edit(request, obj)

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        # A new object can go only to a customer where the role allows writes.
        if db_field.name == "customer":
            kwargs["queryset"] = customers_granting(user=request.user, role=self.edit_role)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # RelatedOnly: the filter offers only customers of the scoped queryset, never all names.
        customer_filter = (self.customer_path, admin.RelatedOnlyFieldListFilter)
        return (customer_filter, *super().get_list_filter(request))


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role"]


# The time zones the customer form offers (the zones this machine's tz database knows).
TIME_ZONES = sorted(zoneinfo.available_timezones())


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """A customer's admins change its settings; its limits and identity (PLATFORM_FIELDS), and
    creating or deleting customers, are for superusers only."""

    list_display = ["name", "slug", "is_active", "max_candidates", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Customer]:
        return customers_visible(user=request.user)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "time_zone":
            # Picked from the zones this machine knows, not typed.
            kwargs["widget"] = forms.Select(choices=[(zone, zone) for zone in TIME_ZONES])
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return customers_granting(user=request.user, role=Role.ADMIN).exists()
        return role_grants(user=request.user, customer_id=obj.pk, role=Role.ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, *PLATFORM_FIELDS]

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return super().get_prepopulated_fields(request, obj) if request.user.is_superuser else {}

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return self.inlines if request.user.is_superuser else []

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        if change:
            # The form of a non-superuser has no PLATFORM_FIELDS; refuse them anyway, server side.
            changed = [
                field
                for field in form.changed_data
                if request.user.is_superuser or field not in PLATFORM_FIELDS
            ]
            services.customer_update(
                customer=obj, **{field: form.cleaned_data[field] for field in changed}
            )
        else:
            created = services.customer_create(**form.cleaned_data)
            obj.pk = created.pk  # the admin saves the memberships inline against it

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        services.customer_delete(customer=obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Customer]) -> None:
        for customer in queryset:
            services.customer_delete(customer=customer)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # The inline memberships, through the services as MembershipAdmin writes them.
        for membership in formset.save(commit=False):
            services.membership_save(membership=membership)
        for membership in formset.deleted_objects:
            services.membership_delete(membership=membership)
        formset.save_m2m()


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = ApiKey
        fields = ["customer", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(CustomerScopedAdmin):
    """Keys are a customer admin's business; merchandisers and viewers only see them."""

    form = ApiKeyForm
    edit_role = Role.ADMIN
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

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: models.QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in self.editable(request, queryset).filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key)
            revoked += 1
        messages.success(request, f"Revoked {revoked} key(s).")


@admin.register(Membership)
class MembershipAdmin(CustomerScopedAdmin):
    list_display = ["user", "customer", "role", "created_at"]
    fields = ["customer", "user", "role"]
    list_filter = ["role"]
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

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        services.membership_save(membership=obj)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_delete(membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Membership]) -> None:
        for membership in queryset:
            services.membership_delete(membership=membership)
