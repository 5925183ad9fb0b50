"""Hand edits in the admin write through the services, as the API does: an item changed or
deleted there moves in and out of the rules' attribute sets at once, and a customer added there
is created by `customer_create`, memberships included."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import forms
from catalog.forms import attributes_text
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
        "categories_text": "shoes",
        "price": str(item.price),
        "in_stock": "on" if item.in_stock else "",
        "attributes_text": "color = blue",
        **changes,
    }
    return {key: value for key, value in values.items() if value != ""}


def test_an_item_edited_in_the_admin_joins_a_rules_set_at_once(
    shop: ApiCaller, superuser: AbstractBaseUser
) -> None:
    sets.hide_red(shop)
    item = Item.objects.get(customer=shop.customer, external_id="sku-0")

    response = admin_client(superuser).post(
        f"/admin/catalog/item/{item.pk}/change/", item_form(item, attributes_text="color = red")
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
        item_form(item, external_id="sku-9", attributes_text="color = red"),
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
        "currency": "EUR",
        "time_zone": "Europe/Berlin",
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
    assert (customer.currency, customer.time_zone) == ("EUR", "Europe/Berlin")
    assert Membership.objects.get(customer=customer).user == merchandiser

    bad = client.post("/admin/customers/customer/add/", {**form, "slug": "cedar pine!"})
    assert bad.status_code == 200
    assert "slug" in bad.context["adminform"].form.errors
    assert Customer.objects.filter(name="Cedar & Pine").count() == 1


def test_an_item_is_edited_without_json_and_keeps_its_values_types(
    shop: ApiCaller, superuser: AbstractBaseUser
) -> None:
    item = Item.objects.get(customer=shop.customer, external_id="sku-2")
    client = admin_client(superuser)
    page = client.get(f"/admin/catalog/item/{item.pk}/change/").content.decode()
    typed = 'color = [red, blue]\nsize = "42"\nwidth = 42\nweight = 1.5\nvegan = true'

    response = client.post(
        f"/admin/catalog/item/{item.pk}/change/",
        item_form(item, categories_text="shoes\nshoes/trail\n", attributes_text=typed),
    )

    assert 'name="attributes_text"' in page
    assert 'name="categories_text"' in page
    assert "{&quot;" not in page  # no JSON object shown to edit
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.categories == ["shoes", "shoes/trail"]
    assert item.attributes == {
        "color": ["red", "blue"],
        "size": "42",
        "width": 42,
        "weight": 1.5,
        "vegan": True,
    }
    # Shown again as typed (PostgreSQL keeps the keys in an order of its own).
    assert sorted(attributes_text(item.attributes).splitlines()) == sorted(typed.splitlines())


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"attributes_text": "color red"}, "attributes_text", "line 1: write an attribute as key"),
        ({"attributes_text": "a = 1\na = 2"}, "attributes_text", "line 2: 'a' is given twice"),
        ({"attributes_text": 'a = [x, "y]'}, "attributes_text", "a quote is not closed"),
        ({"categories_text": "shoes//running"}, "categories_text", ""),
        ({"attributes_text": "note = " + "x" * 501}, "attributes_text", "note"),
    ],
)
def test_a_bad_item_edit_names_its_field_and_stores_nothing(
    shop: ApiCaller, superuser: AbstractBaseUser, changes: dict[str, str], field: str, words: str
) -> None:
    item = Item.objects.get(customer=shop.customer, external_id="sku-3")
    before = (item.categories, item.attributes, item.updated_at)

    response = admin_client(superuser).post(
        f"/admin/catalog/item/{item.pk}/change/", item_form(item, **changes)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    item.refresh_from_db()
    assert (item.categories, item.attributes, item.updated_at) == before


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(-1e15, 1e15, allow_nan=False),
        st.lists(st.text(max_size=12), max_size=4),
    )
)
def test_an_attribute_value_reads_back_as_it_was_shown(value: object) -> None:
    shown = forms._text_of(value)  # type: ignore[arg-type]

    read = forms._value_of(shown)

    assert shown.splitlines() == [shown] or shown == ""
    assert read == value
    assert type(read) is type(value)
