"""The rule form's catalog pickers: the admin's item and attribute lookups answer from the
customer's own catalog only, to staff who may see that customer's rules."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from customers.models import Customer, Role
from merchandising.contracts import RuleIn
from merchandising.services import rule_create
from tests.factories import CustomerFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ITEMS_URL = reverse("admin:merchandising_rule_catalog_items")
ATTRIBUTES_URL = reverse("admin:merchandising_rule_catalog_attributes")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shop() -> Customer:
    customer = CustomerFactory(name="Alphaquux Outdoor")
    ItemFactory(
        customer=customer,
        external_id="sku-123",
        title="Trail Runner Pro",
        brand="Solace",
        attributes={"color": "turquoise", "size": ["40", "41"], "waterproof": True},
    )
    ItemFactory(
        customer=customer,
        external_id="sku-124",
        title="Road runner",
        brand="",
        attributes={"color": "black", "weight": 250.0},
    )
    ItemFactory(customer=customer, external_id="trail-map", title="Map of the trails")
    return customer


@pytest.fixture
def other_shop() -> Customer:
    customer = CustomerFactory(name="Bravozed Boutique")
    ItemFactory(
        customer=customer,
        external_id="sku-1239",
        title="Trail Runner Bravozed",
        attributes={"bravozed_fit": "slim", "color": "bravozed-red"},
    )
    return customer


def staff_client(
    customer: Customer, *, permissions: bool = True, role: Role = Role.VIEWER
) -> Client:
    """A staff user of `customer` only, with the permissions on rules (or none)."""
    user = UserFactory(is_staff=True)
    user.save()  # the password set after creation
    if permissions:
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="merchandising")
        )
    MembershipFactory(customer=customer, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def found(client: Client, customer: Customer, text: str) -> list[str]:
    response = client.get(ITEMS_URL, {"customer": customer.pk, "q": text})
    assert response.status_code == 200
    return [item["id"] for item in response.json()["items"]]


def test_items_are_found_by_words_of_their_title_and_labelled_for_people(shop: Customer) -> None:
    client = staff_client(shop)

    response = client.get(ITEMS_URL, {"customer": shop.pk, "q": "trail  RUN"})

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "id": "sku-123",
                "title": "Trail Runner Pro",
                "brand": "Solace",
                "label": "sku-123 · Trail Runner Pro (Solace)",
            }
        ]
    }
    assert found(client, shop, "runner") == ["sku-123", "sku-124"]
    assert found(client, shop, "trail") == ["trail-map", "sku-123"]  # its id first
    assert found(client, shop, "no such words") == []
    assert found(client, shop, "") == []


def test_an_id_prefix_comes_first_then_titles_at_most_twenty(shop: Customer) -> None:
    for number in range(30):
        ItemFactory(customer=shop, external_id=f"a-{number:02d}", title=f"Trail sock {number}")
    client = staff_client(shop)

    assert found(client, shop, "trail")[:1] == ["trail-map"]  # the id starts with it
    assert len(found(client, shop, "trail")) == 20
    assert found(client, shop, "sku-12") == ["sku-123", "sku-124"]
    assert found(client, shop, "a-2")[:10] == [f"a-{n}" for n in range(20, 30)]


def test_the_lookups_never_answer_with_another_customers_catalog(
    shop: Customer, other_shop: Customer
) -> None:
    client = staff_client(shop)

    items = client.get(ITEMS_URL, {"customer": shop.pk, "q": "sku-12"}).json()
    by_title = client.get(ITEMS_URL, {"customer": shop.pk, "q": "trail runner"}).json()
    names = client.get(ATTRIBUTES_URL, {"customer": shop.pk}).json()
    colors = client.get(ATTRIBUTES_URL, {"customer": shop.pk, "name": "color"}).json()
    theirs = client.get(ITEMS_URL, {"customer": other_shop.pk, "q": "trail"})
    their_names = client.get(ATTRIBUTES_URL, {"customer": other_shop.pk})

    for answer in (items, by_title, names, colors):
        assert "ravozed" not in str(answer)
        assert "sku-1239" not in str(answer)
    assert theirs.status_code == their_names.status_code == 404
    assert "ravozed" not in theirs.content.decode() + their_names.content.decode()


@pytest.mark.parametrize("customer", ["", "x", "999999", "-1"])
def test_a_customer_that_is_missing_malformed_or_unknown_is_a_404(
    shop: Customer, customer: str
) -> None:
    client = staff_client(shop)

    assert client.get(ITEMS_URL, {"customer": customer, "q": "trail"}).status_code == 404
    assert client.get(ATTRIBUTES_URL, {"customer": customer}).status_code == 404


def test_the_lookups_need_a_login_staff_and_the_permission_to_see_rules(shop: Customer) -> None:
    anonymous = Client()
    not_staff_user = UserFactory(is_staff=False)
    not_staff_user.save()
    MembershipFactory(customer=shop, user=not_staff_user)
    not_staff = Client()
    not_staff.force_login(not_staff_user)
    without_permission = staff_client(shop, permissions=False)

    for client in (anonymous, not_staff):
        for url in (ITEMS_URL, ATTRIBUTES_URL):
            response = client.get(url, {"customer": shop.pk, "q": "trail"})
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))
    assert without_permission.get(ITEMS_URL, {"customer": shop.pk}).status_code == 403
    assert without_permission.get(ATTRIBUTES_URL, {"customer": shop.pk}).status_code == 403


def test_a_superuser_looks_up_any_customers_catalog(shop: Customer, other_shop: Customer) -> None:
    superuser = UserFactory(is_staff=True, is_superuser=True)
    superuser.save()
    client = Client()
    client.force_login(superuser)

    assert found(client, other_shop, "trail") == ["sku-1239"]
    assert found(client, shop, "trail run") == ["sku-123"]


def test_attribute_names_then_the_values_items_have_for_one(shop: Customer) -> None:
    client = staff_client(shop)

    names = client.get(ATTRIBUTES_URL, {"customer": shop.pk}).json()
    colors = client.get(ATTRIBUTES_URL, {"customer": shop.pk, "name": "color"}).json()
    sizes = client.get(ATTRIBUTES_URL, {"customer": shop.pk, "name": "size"}).json()
    waterproof = client.get(ATTRIBUTES_URL, {"customer": shop.pk, "name": "waterproof"}).json()
    weight = client.get(ATTRIBUTES_URL, {"customer": shop.pk, "name": "weight"}).json()
    unknown = client.get(ATTRIBUTES_URL, {"customer": shop.pk, "name": "colour"}).json()

    assert names == {"names": ["color", "size", "waterproof", "weight"]}
    assert colors == {"name": "color", "values": ["black", "turquoise"]}
    assert sizes["values"] == ["40", "41"]  # a list attribute: each of its values
    assert waterproof["values"] == ["true"]  # as rules match booleans
    assert weight["values"] == ["250", "250.0"]  # a whole number matches either way
    assert unknown["values"] == []


def test_the_rule_pages_tell_the_pickers_where_to_ask_and_about_which_customer(
    shop: Customer,
) -> None:
    client = staff_client(shop, role=Role.MERCHANDISER)
    body = {"name": "Up", "action": {"type": "boost", "strength": "weak"}}
    rule = rule_create(customer=shop, document=RuleIn.model_validate(body))[0]

    added = client.get(reverse("admin:merchandising_rule_add")).content.decode()
    changed = client.get(
        reverse("admin:merchandising_rule_change", args=[rule.pk])
    ).content.decode()

    for page in (added, changed):
        assert f'data-items-url="{ITEMS_URL}"' in page
        assert f'data-attributes-url="{ATTRIBUTES_URL}"' in page
        assert 'data-item-picker="line"' in page
        assert 'data-item-picker="pin"' in page
        assert 'data-attribute-picker="line"' in page
        assert "rankwell/rule_catalog_pickers.js" in page
    assert 'data-customer=""' in added  # the customer chosen in the form
    assert f'data-customer="{shop.pk}"' in changed
