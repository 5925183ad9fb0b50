"""The customers' admin writes through customers.services, as the other admins do: customers
deleted there, and memberships on their own pages and on the customer page's inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from customers import services
from customers.models import Customer, Membership, Role
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root() -> Client:
    user = UserFactory(is_superuser=True)
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def service_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the customer and membership services were asked to do, in order (they still do
    it)."""
    calls: list[str] = []

    def spy(name: str, write: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(**kwargs: Any) -> Any:
            (written,) = kwargs.values()
            who = written.user.get_username() if isinstance(written, Membership) else written.slug
            calls.append(f"{name} {who}")
            return write(**kwargs)

        return recorded

    for name in ("customer_delete", "membership_save", "membership_delete"):
        monkeypatch.setattr(services, name, spy(name, getattr(services, name)))
    return calls


def test_customers_deleted_in_the_admin_go_through_the_services(
    root: Client, service_writes: list[str]
) -> None:
    one, two, three = (CustomerFactory(slug=slug) for slug in ("one", "two", "three"))

    deleted = root.post(reverse("admin:customers_customer_delete", args=[one.pk]), {"post": "yes"})
    bulk = root.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
    )

    assert (deleted.status_code, bulk.status_code) == (302, 302)
    assert sorted(service_writes) == [
        "customer_delete one",
        "customer_delete three",
        "customer_delete two",
    ]
    assert not Customer.objects.exists()


def test_memberships_written_on_their_own_pages_go_through_the_services(
    root: Client, service_writes: list[str]
) -> None:
    shop = CustomerFactory()
    mira, noor = UserFactory(username="mira"), UserFactory(username="noor")
    mira.save()
    noor.save()

    added = root.post(
        reverse("admin:customers_membership_add"),
        {"customer": shop.pk, "user": mira.pk, "role": Role.VIEWER},
    )
    membership = Membership.objects.get(customer=shop, user=mira)
    changed = root.post(
        reverse("admin:customers_membership_change", args=[membership.pk]),
        {"customer": shop.pk, "user": mira.pk, "role": Role.MERCHANDISER},
    )
    other = MembershipFactory(customer=shop, user=noor)
    deleted = root.post(
        reverse("admin:customers_membership_delete", args=[membership.pk]), {"post": "yes"}
    )
    bulk = root.post(
        reverse("admin:customers_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )

    assert [added.status_code, changed.status_code, deleted.status_code, bulk.status_code] == [
        302,
        302,
        302,
        302,
    ]
    assert service_writes == [
        "membership_save mira",
        "membership_save mira",
        "membership_delete mira",
        "membership_delete noor",
    ]
    assert not Membership.objects.filter(customer=shop).exists()


def test_memberships_written_on_the_customer_page_go_through_the_services(
    root: Client, service_writes: list[str]
) -> None:
    shop = CustomerFactory(name="Cedar & Pine", slug="cedar-pine")
    mira, noor = UserFactory(username="mira"), UserFactory(username="noor")
    mira.save()
    noor.save()
    leaving = MembershipFactory(customer=shop, user=noor, role=Role.VIEWER)
    form = {
        "name": shop.name,
        "slug": shop.slug,
        "is_active": "on",
        **{
            name: str(getattr(shop, name))
            for name in (
                "max_candidates",
                "rank_requests_per_second",
                "rank_burst",
                "events_requests_per_second",
                "events_burst",
                "other_requests_per_second",
                "other_burst",
            )
        },
        "time_zone": shop.time_zone,
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": str(leaving.pk),
        "memberships-0-customer": str(shop.pk),
        "memberships-0-user": str(noor.pk),
        "memberships-0-role": Role.VIEWER,
        "memberships-0-DELETE": "on",
        "memberships-1-customer": str(shop.pk),
        "memberships-1-user": str(mira.pk),
        "memberships-1-role": Role.MERCHANDISER,
    }

    response = root.post(reverse("admin:customers_customer_change", args=[shop.pk]), form)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert service_writes == ["membership_save mira", "membership_delete noor"]
    assert list(Membership.objects.filter(customer=shop).values_list("user__username", "role")) == [
        ("mira", Role.MERCHANDISER)
    ]
