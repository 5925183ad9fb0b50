"""Membership roles, enforced by the admin's and the explain UI's servers, not only by hidden
buttons: a viewer reads, a merchandiser also writes rules, a customer's admin also configs,
models, keys and the shop's settings; a customer's limits and identity are for superusers only.

Every staff user here holds every Django permission on the tenant apps, so what stops them is
their role.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from customers.models import ApiKey, Customer, Membership, Role
from customers.ratelimit import LIMIT_COLUMNS
from customers.services import membership_add
from merchandising.models import Rule
from ranking.models import ModelStatus, RankingConfig, RankingModel
from tests.customers.test_admin_isolation import (
    ADMIN_CASES,
    TENANT_APPS,
    AdminCase,
    Tenant,
    case_id,
    config_form,
    make_tenant,
)
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

STAFF_ROLES = [Role.VIEWER, Role.MERCHANDISER, Role.ADMIN]
LIMITS = {"max_candidates": 1000, "is_active": True}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenant_a() -> Tenant:
    return make_tenant("Alphaquux Outdoor", "alphaquux", 31337)


@pytest.fixture
def tenant_b() -> Tenant:
    return make_tenant("Bravozed Boutique", "bravozed", 42421)


def logged_in(user: AbstractBaseUser) -> Client:
    user.save()  # the factory leaves the password unsaved, and a login session checks it
    client = Client()
    client.force_login(user)
    return client


def staff(**roles: Role) -> tuple[AbstractBaseUser, Client]:
    """A staff user with every tenant-app permission, member of each named customer (by slug)."""
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=TENANT_APPS))
    for slug, role in roles.items():
        MembershipFactory(customer=Customer.objects.get(slug=slug), user=user, role=role)
    return user, logged_in(user)


def member(tenant: Tenant, role: Role) -> Client:
    return staff(**{tenant.customer.slug: role})[1]


def customer_form(customer: Customer, **fields: Any) -> dict[str, Any]:
    """A full POST of the customer form, trying to raise the limits and change the identity."""
    data = {
        "name": customer.name,
        "slug": "taken-over",
        "max_candidates": "10000",
        **dict.fromkeys(LIMIT_COLUMNS, "1000"),  # the per-key rate limits
        "auto_activate_models": "",  # unchecked; is_active left out: unchecked too
        "currency": "",
        "time_zone": "UTC",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return data


def rule_form(customer: Customer | None = None, **fields: Any) -> dict[str, Any]:
    """A full POST of the rule form: a weak boost for every item."""
    data: dict[str, Any] = {
        "name": "Role rule",
        "description": "",
        "enabled": "on",
        "priority": "0",
        "windows": "",
        "query_match": "any",
        "query_patterns": "",
        "page_categories": "",
        "context": "",
        "selector_brands": "",
        "selector_categories": "",
        "selector_price_min": "",
        "selector_price_max": "",
        "selector_in_stock": "",
        "selector_attributes": "",
        "selector_item_ids": "",
        "action_kind": "boost",
        "action_strength": "weak",
        "action_factor": "",
        "action_pins": "",
        "slot_positions": "",
        "diversity_field": "brand",
        "diversity_max_items": "",
        "diversity_top_k": "",
    }
    if customer is not None:
        data["customer"] = customer.pk
    data.update(fields)
    return data


def config_post(customer: Customer, name: str) -> dict[str, Any]:
    """A full POST of the config form: rank by price, under a new name."""
    return {**config_form(customer, price="1"), "name": name}


def key_form(customer: Customer) -> dict[str, Any]:
    return {"customer": customer.pk, "name": "new key", "scopes": ["rank", "events", "rules"]}


def limits_of(customer: Customer) -> dict[str, Any]:
    customer.refresh_from_db()
    return {"max_candidates": customer.max_candidates, "is_active": customer.is_active}


def a_rule(tenant: Tenant) -> Rule:
    return Rule.objects.get(customer=tenant.customer)


def a_config(tenant: Tenant) -> RankingConfig:
    return RankingConfig.objects.get(customer=tenant.customer)


def a_model(tenant: Tenant) -> RankingModel:
    return RankingModel.objects.filter(customer=tenant.customer).order_by("version").first()  # type: ignore[return-value]


# --- a customer's limits and identity -----------------------------------------------------------


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_no_member_changes_the_customers_limits_or_identity(role: Role, tenant_a: Tenant) -> None:
    client = member(tenant_a, role)
    customer = tenant_a.customer
    slug = customer.slug

    response = client.post(
        reverse("admin:customers_customer_change", args=[customer.pk]),
        customer_form(customer, name="Renamed"),
    )

    assert response.status_code == (302 if role == Role.ADMIN else 403)
    assert limits_of(customer) == LIMITS
    assert customer.slug == slug
    assert customer.name == ("Renamed" if role == Role.ADMIN else "Alphaquux Outdoor")


def test_a_customer_admin_sees_the_limits_read_only_and_changes_the_settings(
    tenant_a: Tenant,
) -> None:
    client = member(tenant_a, Role.ADMIN)
    url = reverse("admin:customers_customer_change", args=[tenant_a.customer.pk])

    form = client.get(url).context["adminform"].form
    response = client.post(url, customer_form(tenant_a.customer, auto_activate_models="on"))

    assert set(form.fields) == {"name", "currency", "time_zone", "auto_activate_models"}
    assert response.status_code == 302
    tenant_a.customer.refresh_from_db()
    assert tenant_a.customer.auto_activate_models is True
    assert limits_of(tenant_a.customer) == LIMITS


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_no_member_adds_or_deletes_customers(role: Role, tenant_a: Tenant) -> None:
    client = member(tenant_a, role)

    added = client.post(reverse("admin:customers_customer_add"), customer_form(tenant_a.customer))
    deleted = client.post(
        reverse("admin:customers_customer_delete", args=[tenant_a.customer.pk]), {"post": "yes"}
    )

    assert added.status_code == deleted.status_code == 403
    assert Customer.objects.filter(pk=tenant_a.customer.pk).exists()
    assert not Customer.objects.filter(slug="taken-over").exists()


def test_a_superuser_changes_the_limits_and_identity() -> None:
    customer = CustomerFactory(name="Platform Shop")
    client = logged_in(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:customers_customer_change", args=[customer.pk]), customer_form(customer)
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.max_candidates, customer.is_active, customer.slug) == (
        10000,
        False,
        "taken-over",
    )


# --- rules --------------------------------------------------------------------------------------


def test_a_viewer_cannot_add_change_or_delete_a_rule(tenant_a: Tenant) -> None:
    client = member(tenant_a, Role.VIEWER)
    rule = a_rule(tenant_a)
    change_url = reverse("admin:merchandising_rule_change", args=[rule.pk])

    add_page = client.get(reverse("admin:merchandising_rule_add"))
    added = client.post(reverse("admin:merchandising_rule_add"), rule_form(tenant_a.customer))
    changed = client.post(change_url, rule_form(name="Changed by a viewer"))
    deleted = client.post(
        reverse("admin:merchandising_rule_delete", args=[rule.pk]), {"post": "yes"}
    )
    reverted = client.post(reverse("admin:merchandising_rule_revert", args=[rule.pk, 1]))

    assert add_page.status_code == added.status_code == changed.status_code == 403
    assert deleted.status_code == reverted.status_code == 403
    assert list(Rule.objects.filter(customer=tenant_a.customer)) == [rule]
    assert a_rule(tenant_a).name == rule.name
    assert a_rule(tenant_a).revision == rule.revision


def test_a_viewer_reads_a_rule_its_history_and_its_preview(tenant_a: Tenant) -> None:
    client = member(tenant_a, Role.VIEWER)
    rule = a_rule(tenant_a)

    change = client.get(reverse("admin:merchandising_rule_change", args=[rule.pk]))
    history = client.get(reverse("admin:merchandising_rule_history", args=[rule.pk]))
    preview = client.get(reverse("admin:merchandising_rule_preview", args=[rule.pk]))

    assert change.status_code == history.status_code == preview.status_code == 200
    assert rule.name in change.content.decode()
    assert 'name="_save"' not in change.content.decode()
    assert history.context["can_revert"] is False


def test_a_merchandiser_adds_changes_and_deletes_a_rule(tenant_a: Tenant) -> None:
    client = member(tenant_a, Role.MERCHANDISER)
    rule = a_rule(tenant_a)

    added = client.post(
        reverse("admin:merchandising_rule_add"), rule_form(tenant_a.customer, name="Acme up")
    )
    changed = client.post(
        reverse("admin:merchandising_rule_change", args=[rule.pk]), rule_form(name="Renamed")
    )
    deleted = client.post(
        reverse("admin:merchandising_rule_delete", args=[rule.pk]), {"post": "yes"}
    )

    assert added.status_code == changed.status_code == deleted.status_code == 302
    assert [r.name for r in Rule.objects.filter(customer=tenant_a.customer)] == ["Acme up"]


# --- API keys, configs, models ------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MERCHANDISER])
def test_only_a_customer_admin_creates_or_revokes_api_keys(role: Role, tenant_a: Tenant) -> None:
    client = member(tenant_a, role)
    key = ApiKey.objects.get(customer=tenant_a.customer)

    add_page = client.get(reverse("admin:customers_apikey_add"))
    added = client.post(reverse("admin:customers_apikey_add"), key_form(tenant_a.customer))
    changed = client.post(
        reverse("admin:customers_apikey_change", args=[key.pk]),
        {"name": "renamed", "scopes": ["rank", "rules"]},
    )
    client.post(
        reverse("admin:customers_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    assert add_page.status_code == added.status_code == changed.status_code == 403
    assert list(ApiKey.objects.filter(customer=tenant_a.customer)) == [key]
    key.refresh_from_db()
    assert (key.name, key.scopes, key.revoked_at) == ("alphaquux-key", ["rank"], None)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MERCHANDISER])
def test_only_a_customer_admin_changes_a_ranking_config(role: Role, tenant_a: Tenant) -> None:
    client = member(tenant_a, role)
    config = a_config(tenant_a)

    changed = client.post(
        reverse("admin:ranking_rankingconfig_change", args=[config.pk]),
        config_post(tenant_a.customer, "renamed"),
    )
    added = client.post(
        reverse("admin:ranking_rankingconfig_add"), config_form(tenant_a.customer, "search")
    )

    assert changed.status_code == added.status_code == 403
    assert [c.name for c in RankingConfig.objects.filter(customer=tenant_a.customer)] == [
        "alphaquux-config"
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MERCHANDISER])
def test_only_a_customer_admin_activates_a_model(role: Role, tenant_a: Tenant) -> None:
    client = member(tenant_a, role)
    model = a_model(tenant_a)

    listed = client.post(
        reverse("admin:ranking_rankingmodel_changelist"),
        {"action": "activate_selected", "_selected_action": [model.pk]},
    )
    changed = client.post(
        reverse("admin:ranking_rankingmodel_change", args=[model.pk]),
        {"activate": "on", "activation_reason": "because"},
    )

    assert listed.status_code in {200, 302}
    assert changed.status_code == 403
    model.refresh_from_db()
    assert model.status != ModelStatus.ACTIVE


def test_a_customer_admin_creates_a_key_with_any_scope_and_changes_a_config(
    tenant_a: Tenant,
) -> None:
    client = member(tenant_a, Role.ADMIN)
    config = a_config(tenant_a)

    added = client.post(reverse("admin:customers_apikey_add"), key_form(tenant_a.customer))
    changed = client.post(
        reverse("admin:ranking_rankingconfig_change", args=[config.pk]),
        config_post(tenant_a.customer, "cheap first"),
    )

    assert added.status_code == changed.status_code == 302
    new_key = ApiKey.objects.get(customer=tenant_a.customer, name="new key")
    assert new_key.scopes == ["events", "rank", "rules"]
    assert a_config(tenant_a).name == "cheap first"


# --- reading everywhere -------------------------------------------------------------------------


@pytest.mark.parametrize("case", ADMIN_CASES, ids=case_id)
def test_a_viewer_opens_every_page_read_only(case: AdminCase, tenant_a: Tenant) -> None:
    client = member(tenant_a, Role.VIEWER)

    changelist = client.get(reverse(f"{case.url_prefix}_changelist"))
    change = client.get(reverse(f"{case.url_prefix}_change", args=[tenant_a.obj(case).pk]))

    assert changelist.status_code == change.status_code == 200
    assert tenant_a.marker(case) in changelist.content.decode()
    assert 'name="_save"' not in change.content.decode()
    if case.addable:
        assert client.get(reverse(f"{case.url_prefix}_add")).status_code == 403


@pytest.mark.parametrize("path", ["/explain/", "/explain/compare/"])
def test_a_viewer_may_use_the_explain_ui(path: str, tenant_a: Tenant) -> None:
    client = member(tenant_a, Role.VIEWER)

    response = client.get(path, {"customer": tenant_a.customer.pk})

    assert response.status_code == 200


# --- two tenants --------------------------------------------------------------------------------


def test_a_merchandiser_of_one_customer_has_no_access_to_another(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    client = member(tenant_a, Role.MERCHANDISER)
    b_rule = a_rule(tenant_b)

    opened = client.get(reverse("admin:merchandising_rule_change", args=[b_rule.pk]))
    changed = client.post(
        reverse("admin:merchandising_rule_change", args=[b_rule.pk]), rule_form(name="Hijacked")
    )
    added = client.post(reverse("admin:merchandising_rule_add"), rule_form(tenant_b.customer))
    explained = client.get("/explain/", {"customer": tenant_b.customer.pk})

    assert opened.status_code in {302, 404}
    assert changed.status_code in {302, 404}
    assert "customer" in added.context["adminform"].form.errors
    assert explained.status_code == 404
    assert [r.name for r in Rule.objects.filter(customer=tenant_b.customer)] == [b_rule.name]


def test_a_role_in_one_customer_does_not_carry_over_to_another(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    _, client = staff(**{tenant_a.customer.slug: Role.ADMIN, tenant_b.customer.slug: Role.VIEWER})
    b_model, b_key = a_model(tenant_b), ApiKey.objects.get(customer=tenant_b.customer)

    own = client.post(
        reverse("admin:ranking_rankingconfig_change", args=[a_config(tenant_a).pk]),
        config_post(tenant_a.customer, "mine"),
    )
    other = client.post(
        reverse("admin:ranking_rankingconfig_change", args=[a_config(tenant_b).pk]),
        config_post(tenant_b.customer, "theirs"),
    )
    key_for_b = client.post(reverse("admin:customers_apikey_add"), key_form(tenant_b.customer))
    rule_for_b = client.post(reverse("admin:merchandising_rule_add"), rule_form(tenant_b.customer))
    settings_of_b = client.post(
        reverse("admin:customers_customer_change", args=[tenant_b.customer.pk]),
        customer_form(tenant_b.customer, name="Theirs"),
    )
    for action, pk in (("activate_selected", b_model.pk), ("revoke", b_key.pk)):
        app_model = "ranking_rankingmodel" if action == "activate_selected" else "customers_apikey"
        client.post(
            reverse(f"admin:{app_model}_changelist"),
            {"action": action, "_selected_action": [pk]},
        )

    assert own.status_code == 302
    assert a_config(tenant_a).name == "mine"
    assert other.status_code == 403
    assert a_config(tenant_b).name == "bravozed-config"
    assert "customer" in key_for_b.context["adminform"].form.errors
    assert "customer" in rule_for_b.context["adminform"].form.errors
    assert settings_of_b.status_code == 403
    tenant_b.customer.refresh_from_db()
    assert tenant_b.customer.name == "Bravozed Boutique"
    assert list(ApiKey.objects.filter(customer=tenant_b.customer)) == [b_key]
    b_key.refresh_from_db()
    b_model.refresh_from_db()
    assert b_key.revoked_at is None
    assert b_model.status != ModelStatus.ACTIVE


# --- the role itself ----------------------------------------------------------------------------


def test_new_members_are_viewers(tenant_a: Tenant) -> None:
    user = UserFactory()
    user.save()

    assert membership_add(customer=tenant_a.customer, user=user).role == Role.VIEWER
    assert Membership(customer=tenant_a.customer, user=user).role == Role.VIEWER


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_existing_members_admins() -> None:
    before, after = ("customers", "0003_signal_version_seq"), ("customers", "0004_membership_role")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old_apps = executor.loader.project_state([before]).apps
    customer = old_apps.get_model("customers", "Customer").objects.create(name="Old", slug="old")
    user = old_apps.get_model("auth", "User").objects.create(username="old-member")
    old_apps.get_model("customers", "Membership").objects.create(customer=customer, user=user)

    executor = MigrationExecutor(connection)
    executor.migrate([after])
    executor = MigrationExecutor(connection)
    # Back to the latest state, so the tests after this one find every column.
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Membership.objects.get(user__username="old-member").role == Role.ADMIN
