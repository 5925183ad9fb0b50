"""The admin shows staff only the customers they belong to; superusers see every customer.

Every admin of a tenant-owned model is one line in ADMIN_CASES, and every test here runs for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.db.models import Model
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from customers.models import ApiKey, Customer
from events.models import Event
from explain import urls as explain_urls
from merchandising.models import Rule, RuleRevision
from ranking.models import Experiment, RankingConfig, RankingModel, SignalVersion
from ranking.services import signals_refresh
from tests.conftest import ApiCaller
from tests.factories import (
    ApiKeyFactory,
    CustomerFactory,
    EventFactory,
    ExperimentFactory,
    ItemFactory,
    MembershipFactory,
    RankingConfigFactory,
    RankingModelFactory,
    RankLogFactory,
    RuleFactory,
    SignalVersionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TENANT_APPS = ("customers", "catalog", "events", "ranking", "merchandising")


def signal_version(customer: Customer, version: int) -> SignalVersion:
    return SignalVersionFactory(customer=customer, version=version)


def ranking_model(customer: Customer, version: int) -> RankingModel:
    return RankingModelFactory(customer=customer, version=version)


def experiment(customer: Customer, tag: str, version: int) -> Experiment:
    """An experiment row as the admin lists it (serving checks are tests/ranking's business)."""
    return ExperimentFactory(
        customer=customer,
        name=f"{tag}-test",
        treatment_model=ranking_model(customer, version + 100),
    )


def click(customer: Customer, tag: str) -> Event:
    return EventFactory(customer=customer, event_id=f"{tag}-event", item_id=f"{tag}-clicked-sku")


def rule(customer: Customer, tag: str) -> Rule:
    return RuleFactory(customer=customer, name=f"{tag}-rule")


@dataclass(frozen=True)
class AdminCase:
    """A tenant-owned model's admin: how to give a customer one object, and the text it shows."""

    model: str  # app_label.model_name
    make: Callable[[Customer, str, int], tuple[Model, str]]  # (customer, tag, number)
    addable: bool = False

    @property
    def url_prefix(self) -> str:
        return "admin:" + self.model.replace(".", "_")


ADMIN_CASES = [
    AdminCase("customers.customer", lambda c, tag, n: (c, c.name)),
    AdminCase(
        "customers.apikey",
        lambda c, tag, n: (
            ApiKeyFactory(customer=c, name=f"{tag}-key", scopes=["rank"]),
            f"{tag}-key",
        ),
        addable=True,
    ),
    AdminCase(
        "catalog.item",
        lambda c, tag, n: (ItemFactory(customer=c, external_id=f"{tag}-sku"), f"{tag}-sku"),
        addable=True,
    ),
    AdminCase("events.event", lambda c, tag, n: (click(c, tag), f"{tag}-clicked-sku")),
    AdminCase(
        "ranking.rankingconfig",
        lambda c, tag, n: (
            RankingConfigFactory(customer=c, surface="browse", name=f"{tag}-config"),
            f"{tag}-config",
        ),
        addable=True,
    ),
    AdminCase("ranking.signalversion", lambda c, tag, n: (signal_version(c, n), f">{n}<")),
    AdminCase("ranking.rankingmodel", lambda c, tag, n: (ranking_model(c, n), f"lambdamart@{n}")),
    AdminCase("ranking.experiment", lambda c, tag, n: (experiment(c, tag, n), f"{tag}-test")),
    AdminCase("merchandising.rule", lambda c, tag, n: (rule(c, tag), f"{tag}-rule"), addable=True),
    AdminCase(
        "merchandising.rulerevision",
        lambda c, tag, n: (RuleRevision.objects.get(customer=c), f"{tag}-rule"),
    ),
]
ADD_CASES = [case for case in ADMIN_CASES if case.addable]


def case_id(case: AdminCase) -> str:
    return case.model


@dataclass
class Tenant:
    customer: Customer
    objects: dict[str, tuple[Model, str]]

    def obj(self, case: AdminCase) -> Model:
        return self.objects[case.model][0]

    def marker(self, case: AdminCase) -> str:
        return self.objects[case.model][1]


def make_tenant(name: str, tag: str, number: int) -> Tenant:
    customer = CustomerFactory(name=name)
    return Tenant(customer, {case.model: case.make(customer, tag, number) for case in ADMIN_CASES})


@pytest.fixture
def tenant_a() -> Tenant:
    return make_tenant("Alphaquux Outdoor", "alphaquux", 31337)


@pytest.fixture
def tenant_b() -> Tenant:
    return make_tenant("Bravozed Boutique", "bravozed", 42421)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Staff users get a password; hashing it the production way is slow and tests nothing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(user: AbstractBaseUser) -> Client:
    user.save()  # the factory leaves the password unsaved, and a login session checks it
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_a(tenant_a: Tenant) -> Client:
    """A staff user of customer A only, with every permission on the tenant apps."""
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=TENANT_APPS))
    MembershipFactory(customer=tenant_a.customer, user=user)
    return logged_in(user)


@pytest.fixture
def superuser() -> Client:
    return logged_in(UserFactory(is_staff=True, is_superuser=True))


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def customer_choices(html: str) -> list[str]:
    select = re.search(r'<select name="customer".*?</select>', html, re.S)
    assert select is not None, "the form has no customer dropdown"
    return re.findall(r'<option value="\d+"[^>]*>([^<]*)</option>', select.group(0))


def test_every_tenant_admin_has_a_case_here() -> None:
    tenant_models = {
        f"{model._meta.app_label}.{model._meta.model_name}"
        for model in admin.site._registry
        if model is Customer or any(field.name == "customer" for field in model._meta.fields)
    }

    assert tenant_models - {"customers.membership"} == {case.model for case in ADMIN_CASES}


@pytest.mark.parametrize("case", ADMIN_CASES, ids=case_id)
def test_staff_see_only_their_customers_objects_in_a_changelist(
    case: AdminCase, staff_a: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    html = page(staff_a, reverse(f"{case.url_prefix}_changelist"))

    assert tenant_a.marker(case) in html
    assert tenant_b.marker(case) not in html
    assert tenant_b.customer.name not in html


@pytest.mark.parametrize("case", ADMIN_CASES, ids=case_id)
def test_staff_see_nothing_of_another_customer_when_searching_or_filtering(
    case: AdminCase, staff_a: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    changelist = reverse(f"{case.url_prefix}_changelist")
    filter_by_b = "id" if case.model == "customers.customer" else "customer__id__exact"

    own = staff_a.get(changelist, {filter_by_b: tenant_a.customer.pk, "q": "alphaquux"})
    other = staff_a.get(changelist, {filter_by_b: tenant_b.customer.pk, "q": "bravozed"})

    assert own.status_code == other.status_code == 200
    assert tenant_a.marker(case) in own.content.decode()
    html = other.content.decode()
    assert tenant_b.marker(case) not in html
    assert tenant_b.customer.name not in html


@pytest.mark.parametrize("case", ADMIN_CASES, ids=case_id)
def test_staff_open_their_own_objects(case: AdminCase, staff_a: Client, tenant_a: Tenant) -> None:
    html = page(staff_a, reverse(f"{case.url_prefix}_change", args=[tenant_a.obj(case).pk]))

    assert tenant_a.customer.name in html


@pytest.mark.parametrize("view", ["change", "history", "delete"])
@pytest.mark.parametrize("case", ADMIN_CASES, ids=case_id)
def test_staff_cannot_open_another_customers_object(
    case: AdminCase, view: str, staff_a: Client, tenant_b: Tenant
) -> None:
    url = reverse(f"{case.url_prefix}_{view}", args=[tenant_b.obj(case).pk])

    response = staff_a.get(url)

    allowed = {302, 404} if view == "change" else {302, 403, 404}
    assert response.status_code in allowed
    if response.status_code == 302:
        assert response["Location"] == reverse("admin:index")
    html = staff_a.get(url, follow=True).content.decode()
    assert tenant_b.marker(case) not in html
    assert tenant_b.customer.name not in html


@pytest.mark.parametrize("case", ADMIN_CASES, ids=case_id)
def test_a_superuser_sees_every_customers_objects(
    case: AdminCase, superuser: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    html = page(superuser, reverse(f"{case.url_prefix}_changelist"))

    assert tenant_a.marker(case) in html
    assert tenant_b.marker(case) in html
    page(superuser, reverse(f"{case.url_prefix}_change", args=[tenant_b.obj(case).pk]))


@pytest.mark.parametrize("case", ADD_CASES, ids=case_id)
def test_add_forms_offer_staff_only_their_customers(
    case: AdminCase, staff_a: Client, superuser: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    add_url = reverse(f"{case.url_prefix}_add")

    assert customer_choices(page(staff_a, add_url)) == [tenant_a.customer.name]
    assert set(customer_choices(page(superuser, add_url))) >= {
        tenant_a.customer.name,
        tenant_b.customer.name,
    }


@pytest.mark.parametrize("case", ADD_CASES, ids=case_id)
def test_staff_cannot_add_an_object_for_another_customer(
    case: AdminCase, staff_a: Client, tenant_b: Tenant
) -> None:
    model = type(tenant_b.obj(case))
    before = model._default_manager.filter(customer=tenant_b.customer).count()

    response = staff_a.post(reverse(f"{case.url_prefix}_add"), {"customer": tenant_b.customer.pk})

    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    assert model._default_manager.filter(customer=tenant_b.customer).count() == before


# Every page of one object that a tenant admin adds to Django's own (changelist, add, change,
# history, delete): its URL name, the case whose object it takes, and any further URL arguments.
OBJECT_PAGES = {
    "ranking_rankingmodel_rollback": ("ranking.rankingmodel", ()),
    "ranking_experiment_promote": ("ranking.experiment", ()),
    "merchandising_rule_preview": ("merchandising.rule", ()),
    "merchandising_rule_revert": ("merchandising.rule", (1,)),
    "merchandising_rule_check": ("merchandising.rule", ()),
}
# Pages that answer about a customer named in the query (?customer=): the rule form's catalog
# lookups.
CUSTOMER_PAGES = ("merchandising_rule_catalog_items", "merchandising_rule_catalog_attributes")
# Pages that check the form of a new object, whose customer is chosen in the form: the rule form
# checked as it is typed.
NEW_FORM_PAGES = ("merchandising_rule_check_new",)
DJANGO_ADMIN_VIEWS = ("changelist", "add", "change", "history", "delete")


def test_every_object_page_of_a_tenant_admin_is_checked_here() -> None:
    cases = {case.model for case in ADMIN_CASES}
    pages = set()
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}"
        if prefix.replace("_", ".", 1) not in cases:
            continue
        own = {f"{prefix}_{view}" for view in DJANGO_ADMIN_VIEWS}
        pages |= {url.name for url in model_admin.get_urls() if url.name and url.name not in own}

    assert pages == set(OBJECT_PAGES) | set(CUSTOMER_PAGES) | set(NEW_FORM_PAGES)


@pytest.mark.parametrize("name", NEW_FORM_PAGES)
def test_staff_cannot_check_a_new_objects_form_for_another_customer(
    name: str, staff_a: Client, tenant_b: Tenant
) -> None:
    response = staff_a.post(
        reverse(f"admin:{name}"),
        {"customer": tenant_b.customer.pk, "name": "mine now", "action_kind": "hide"},
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice" in body  # another customer is no choice
    assert tenant_b.customer.name not in body
    assert "bravozed" not in body.casefold()


@pytest.mark.parametrize("name", CUSTOMER_PAGES)
def test_staff_cannot_look_up_another_customers_catalog(
    name: str, staff_a: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    url = reverse(f"admin:{name}")

    theirs = staff_a.get(url, {"customer": tenant_b.customer.pk, "q": "bravozed"})
    mine = staff_a.get(url, {"customer": tenant_a.customer.pk, "q": "bravozed"})

    assert theirs.status_code == 404
    assert mine.status_code == 200
    for response in (theirs, mine):
        assert "bravozed" not in response.content.decode().casefold()


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_staff_can_neither_open_nor_post_another_customers_object_page(
    name: str, staff_a: Client, tenant_b: Tenant
) -> None:
    model, more = OBJECT_PAGES[name]
    case = next(case for case in ADMIN_CASES if case.model == model)
    obj = tenant_b.obj(case)
    before = model_to_dict(type(obj)._default_manager.get(pk=obj.pk))
    url = reverse(f"admin:{name}", args=[obj.pk, *more])

    opened = staff_a.get(url)
    posted = staff_a.post(url, {"post": "yes", "override_reason": "mine now"})

    # 405: the page takes only the other method (a preview is shown, a revert is posted)
    assert opened.status_code in {403, 404, 405}
    assert posted.status_code in {403, 404, 405}
    assert {opened.status_code, posted.status_code} != {405}
    for response in (opened, posted):
        assert tenant_b.marker(case) not in response.content.decode()
        assert tenant_b.customer.name not in response.content.decode()
    assert model_to_dict(type(obj)._default_manager.get(pk=obj.pk)) == before


def test_staff_cannot_add_customers(staff_a: Client) -> None:
    assert staff_a.get(reverse("admin:customers_customer_add")).status_code == 403


def test_memberships_are_managed_by_superusers_only(
    staff_a: Client, superuser: Client, tenant_a: Tenant
) -> None:
    staff_member = tenant_a.customer.memberships.get().user

    assert staff_a.get(reverse("admin:customers_membership_changelist")).status_code == 403
    assert staff_a.get(reverse("admin:customers_membership_add")).status_code == 403
    assert "customers/membership/" not in page(staff_a, reverse("admin:index"))
    assert staff_member.get_username() in page(
        superuser, reverse("admin:customers_membership_changelist")
    )


# --- ranking configs ---------------------------------------------------------------------------


def config_form(customer: Customer, surface: str = "browse", **weights: Any) -> dict[str, Any]:
    return {
        "customer": customer.pk,
        "surface": surface,
        "name": "by price",
        "personalization_weight": "1.0",
        "exploration_percent": "0",
        **{f"weight__{feature}": value for feature, value in weights.items()},
    }


def test_the_config_form_refuses_an_out_of_range_weight_naming_the_field(
    staff_a: Client, tenant_a: Tenant
) -> None:
    response = staff_a.post(
        reverse("admin:ranking_rankingconfig_add"),
        config_form(tenant_a.customer, "search", price="1000", ctr="1"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["weight__price"]
    html = response.content.decode()
    assert re.search(r'class="[^"]*errors[^"]*field-weight__price', html)
    assert not RankingConfig.objects.filter(name="by price").exists()


def rank_browse(api: ApiCaller, ids: list[str]) -> dict[str, Any]:
    response = api.post("/v1/rank", {"surface": "browse", "items": [{"id": i} for i in ids]})
    assert response.status_code == 200, response.content
    return response.json()


def test_saving_a_config_in_the_admin_changes_the_next_ranking(
    make_caller: Callable[..., ApiCaller], staff_a: Client, tenant_a: Tenant
) -> None:
    RankingConfig.objects.filter(customer=tenant_a.customer).delete()
    api = make_caller(customer=tenant_a.customer)
    prices = {"cheap": 10.0, "dear": 90.0, "mid": 40.0}
    items = [{"id": i, "title": i, "price": price} for i, price in prices.items()]
    assert api.put("/v1/catalog/items", {"items": items}).status_code == 200
    signals_refresh(customer_id=tenant_a.customer.pk)
    ids = list(prices)
    before = rank_browse(api, ids)

    added = staff_a.post(
        reverse("admin:ranking_rankingconfig_add"), config_form(tenant_a.customer, price="-1")
    )
    by_price = rank_browse(api, ids)
    config = RankingConfig.objects.get(customer=tenant_a.customer)
    changed = staff_a.post(
        reverse("admin:ranking_rankingconfig_change", args=[config.pk]),
        {
            "name": "dear first",
            "personalization_weight": "1.0",
            "exploration_percent": "0",
            "weight__price": "1",
        },
    )
    dear_first = rank_browse(api, ids)

    # The default blend counts an item's price for it (ranking/configs.py).
    assert [item["id"] for item in before["items"]] == ["dear", "mid", "cheap"]
    assert before["ranker"]["config"] == "default"
    assert added.status_code == changed.status_code == 302
    assert [item["id"] for item in by_price["items"]] == ["cheap", "mid", "dear"]
    assert by_price["ranker"]["config"] == "by price"
    assert [item["id"] for item in dear_first["items"]] == ["dear", "mid", "cheap"]
    assert dear_first["ranker"]["config"] == "dear first"


def test_saving_a_config_for_one_customer_leaves_the_others_ranking(
    make_caller: Callable[..., ApiCaller], staff_a: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    api_b = make_caller(customer=tenant_b.customer)
    before = rank_browse(api_b, ["x", "y"])["ranker"]["config"]

    staff_a.post(
        reverse(
            "admin:ranking_rankingconfig_change",
            args=[tenant_a.objects["ranking.rankingconfig"][0].pk],
        ),
        {
            "name": "renamed",
            "personalization_weight": "1.0",
            "exploration_percent": "0",
            "weight__price": "1",
        },
    )

    assert RankingConfig.objects.get(customer=tenant_a.customer).name == "renamed"
    assert rank_browse(api_b, ["x", "y"])["ranker"]["config"] == before == "bravozed-config"


def test_an_api_key_of_another_customer_cannot_be_revoked_by_staff(
    staff_a: Client, tenant_b: Tenant
) -> None:
    b_key = tenant_b.objects["customers.apikey"][0]

    staff_a.post(
        reverse("admin:customers_apikey_changelist"),
        {"action": "revoke", "_selected_action": [b_key.pk]},
    )

    assert ApiKey.objects.get(pk=b_key.pk).revoked_at is None


# --- the explain UI's insight pages (explain.insight) --------------------------------------------


def searched(customer: Customer, tag: str) -> None:
    """One search for `<tag> boots` that showed the tenant's item, in the event log and rank log."""
    EventFactory(
        customer=customer,
        event_id=f"{tag}-search",
        type="impression",
        item_id=f"{tag}-sku",
        request_id=f"{tag}-request",
        surface="search",
        query=f"{tag} boots",
    )
    RankLogFactory(
        customer=customer,
        request_id=f"{tag}-request",
        query=f"{tag} boots",
        item_ids=[f"{tag}-sku"],
    )


# Every page of explain.insight and explain.workbench, with the parameters that make it show a
# tenant's data; the workbench's writes (POST only) with what they write.
INSIGHT_PAGES = {
    "explain:queries": lambda tag: {"period": "7"},
    "explain:why-not": lambda tag: {"query": f"{tag} boots", "item": f"{tag}-sku"},
    "explain:workbench": lambda tag: {"query": f"{tag} boots", "category": ""},
}
WORKBENCH_WRITES = {
    "explain:workbench-change": lambda draft: {"item": "alphaquux-sku", "do": "hide"},
    "explain:workbench-publish": lambda draft: {"drafts": [draft], "when": "now"},
    "explain:workbench-discard": lambda draft: {"drafts": [draft]},
    "explain:workbench-turn-off": lambda draft: {"rules": [draft]},
}


def test_every_insight_page_is_checked_here() -> None:
    assert {
        f"explain:{p.name}"
        for p in explain_urls.urlpatterns
        if p.callback.__module__ in ("explain.insight", "explain.workbench")
    } == set(INSIGHT_PAGES) | set(WORKBENCH_WRITES)


def insight_url(name: str, customer: Customer, tag: str) -> str:
    return f"{reverse(name)}?{urlencode({'customer': customer.pk, **INSIGHT_PAGES[name](tag)})}"


@pytest.mark.parametrize("name", INSIGHT_PAGES)
def test_staff_see_only_their_customers_data_on_the_insight_pages(
    name: str, staff_a: Client, superuser: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    a, b = tenant_a.customer, tenant_b.customer
    searched(a, "alphaquux")
    searched(b, "bravozed")

    own = page(staff_a, insight_url(name, a, "alphaquux"))
    by_default = page(staff_a, reverse(name))  # no customer named: the user's first
    other = staff_a.get(insight_url(name, b, "bravozed"))
    b_data_asked_of_a = page(staff_a, insight_url(name, a, "bravozed"))
    everyone = superuser.get(insight_url(name, b, "bravozed"))

    assert "alphaquux boots" in own
    assert customer_choices(by_default) == [a.name]
    assert other.status_code == 404
    for html in (own, by_default, other.content.decode(), b_data_asked_of_a):
        shown = re.sub(r"<form.*?</form>", "", html, flags=re.S)  # the form echoes what was asked
        assert "bravozed-sku" not in shown
        assert "bravozed boots" not in shown
        assert b.name not in html
    assert everyone.status_code == 200
    assert "bravozed boots" in everyone.content.decode()


@pytest.mark.parametrize("name", WORKBENCH_WRITES)
def test_staff_cannot_change_another_customers_ranking_on_the_workbench(
    name: str, staff_a: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """Naming the other customer answers 404; naming one's own with the other's draft changes
    nothing of the other's."""
    a, b = tenant_a.customer, tenant_b.customer
    searched(a, "alphaquux")
    searched(b, "bravozed")
    document = {
        "name": "bravozed-draft",
        "selector": {"item_ids": ["bravozed-sku"]},
        "action": {"type": "hide"},
    }
    draft = RuleFactory(customer=b, **document, draft=True)
    page_of = {"surface": "search", "query": "bravozed boots", **WORKBENCH_WRITES[name](draft.pk)}

    as_b = staff_a.post(reverse(name), {"customer": b.pk, **page_of})
    as_a = staff_a.post(reverse(name), {"customer": a.pk, **page_of}, follow=True)

    assert as_b.status_code == 404
    assert as_a.status_code == 200
    assert "bravozed-sku" not in as_a.content.decode()
    assert Rule.objects.get(pk=draft.pk).draft
    names = set(Rule.objects.filter(customer=b).values_list("name", flat=True))
    assert names == {"bravozed-rule", "bravozed-draft"}
