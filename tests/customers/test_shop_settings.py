"""A shop's currency and time zone: picked from known values, refused by name otherwise, and
settable where a customer is made (the admin, `create_customer`)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from customers.models import Customer
from customers.services import customer_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"currency": "XYZ"}, "currency"), ({"time_zone": "Mars/Olympus"}, "time_zone")],
)
def test_an_unknown_currency_or_time_zone_is_refused_naming_it(
    fields: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        customer_create(name="Shop", slug="shop", **fields)

    assert list(refused.value.message_dict) == [field]
    assert not Customer.objects.exists()


def test_create_customer_sets_them_and_names_a_bad_one() -> None:
    out = StringIO()
    call_command(
        "create_customer",
        "alps",
        name="Alps",
        currency="CHF",
        time_zone="Europe/Zurich",
        stdout=out,
    )
    with pytest.raises(CommandError, match="time_zone: 'Zurich' is not a time zone name"):
        call_command("create_customer", "alps2", name="Alps 2", time_zone="Zurich")

    shop = Customer.objects.get()
    assert (shop.currency, shop.time_zone) == ("CHF", "Europe/Zurich")


def test_the_customer_form_offers_the_zones_and_currencies_to_pick(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    shop = customer_create(name="Shop", slug="shop")
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)

    page = client.get(f"/admin/customers/customer/{shop.pk}/change/").content.decode()

    assert '<select name="time_zone"' in page
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in page
    assert '<option value="EUR">EUR: euro</option>' in page
