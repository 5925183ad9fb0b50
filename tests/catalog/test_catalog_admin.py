"""Hand edits in the admin write through the services, as the API does: an item changed or
deleted there moves in and out of the rules' attribute sets at once, and a customer added there
is created by `customer_create`, memberships included."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from catalog.models import Item
from customers.models import Customer, Membership, Role
from tests.conftest import ApiCaller
from tests.factories import UserFactory
from tests.merchandising import test_attribute_sets as sets
from tests.ranking.helpers import ranked_ids

pytestmark = pytest.mark.django_db

shop = sets.shop


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def superuser() -> AbstractBaseUser:
    user = UserFactory(is_superuser=True)
    user.save()
    return user


def admin_client(user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def item_form(item: Item, **changes: Any) -> dict[str, Any]:
    values = {
        "customer": item.customer_id,
        "external_id": item.external_id,
        "title": item.title,
        "brand": item.brand,
        "categories": '["shoes"]',
        "price": str(item.price),
        "in_stock": "on" if item.in_stock else "",
        "attributes": '{"color": "blue"}',
        **changes,
    }
    return {key: value for key, value in values.items() if value != ""}


def test_an_item_edited_in_the_admin_joins_a_rules_set_at_once(
    shop: ApiCaller, superuser: AbstractBaseUser
) -> None:
    sets.hide_red(shop)
    item = Item.objects.get(customer=shop.customer, external_id="sku-0")

    response = admin_client(superuser).post(
        f"/admin/catalog/item/{item.pk}/change/", item_form(item, attributes='{"color": "red"}')
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert sets.members(shop, sets.RED, sets.ALL) == ["sku-0", "sku-1", "sku-4"]
    assert "sku-0" not in ranked_ids(sets.search(shop))


def test_an_item_renamed_in_the_admin_leaves_the_set_under_its_old_id(
    shop: ApiCaller, superuser: AbstractBaseUser
) -> None:
    sets.hide_red(shop)
    item = Item.objects.get(customer=shop.customer, external_id="sku-1")

    response = admin_client(superuser).post(
        f"/admin/catalog/item/{item.pk}/change/",
        item_form(item, external_id="sku-9", attributes='{"color": "red"}'),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert sets.members(shop, sets.RED, [*sets.ALL, "sku-9"]) == ["sku-4", "sku-9"]


def test_items_deleted_in_the_admin_leave_the_set(
    shop: ApiCaller, superuser: AbstractBaseUser
) -> None:
    sets.hide_red(shop)
    red = Item.objects.filter(customer=shop.customer, external_id__in=["sku-1", "sku-4"])
    client = admin_client(superuser)

    response = client.post(
        "/admin/catalog/item/",
        {"action": "delete_selected", "_selected_action": [i.pk for i in red], "post": "yes"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Item.objects.filter(customer=shop.customer, external_id__in=["sku-1", "sku-4"])
    assert sets.members(shop, sets.RED, sets.ALL) == []
    # Still sent by the search engine, no longer known to be red: shown again.
    assert {"sku-1", "sku-4"} <= set(ranked_ids(sets.search(shop)))


def test_a_customer_added_in_the_admin_is_created_with_its_members(
    superuser: AbstractBaseUser,
) -> None:
    merchandiser = UserFactory(username="mira")
    merchandiser.save()
    client = admin_client(superuser)
    form = {
        "name": "Cedar & Pine",
        "slug": "cedar-pine",
        "is_active": "on",
        "max_candidates": "500",
        "rank_requests_per_second": "100",
        "rank_burst": "200",
        "events_requests_per_second": "20",
        "events_burst": "40",
        "other_requests_per_second": "5",
        "other_burst": "10",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-0-user": str(merchandiser.pk),
        "memberships-0-role": Role.MERCHANDISER,
    }

    response = client.post("/admin/customers/customer/add/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    customer = Customer.objects.get(slug="cedar-pine")
    assert (customer.name, customer.max_candidates, customer.rank_burst) == (
        "Cedar & Pine",
        500,
        200,
    )
    assert Membership.objects.get(customer=customer).user == merchandiser

    bad = client.post("/admin/customers/customer/add/", {**form, "slug": "cedar pine!"})
    assert bad.status_code == 200
    assert "slug" in bad.context["adminform"].form.errors
    assert Customer.objects.filter(name="Cedar & Pine").count() == 1
