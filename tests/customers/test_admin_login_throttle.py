"""Guessing an admin password is throttled (django-axes): after 10 wrong passwords for one
username from one address, even the right password is refused for 15 minutes; other users, and
the same user from another address, still sign in."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff(username: str) -> Any:
    user = UserFactory(username=username, is_staff=True)
    user.save()  # the factory leaves the password unsaved
    return user


def sign_in(client: Client, username: str, password: str, **extra: str) -> Any:
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, **extra
    )


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_fifty_wrong_passwords_then_the_right_one_is_refused_with_a_clear_message() -> None:
    staff("alice")
    attacker = Client()

    for _ in range(50):
        sign_in(attacker, "alice", "wrong password")
    response = sign_in(attacker, "alice", PASSWORD)

    assert response.status_code == 429
    body = response.content.decode()
    assert 'id="locked-out"' in body
    assert "Too many failed sign-ins" in body
    assert "15 minutes" in body
    assert not signed_in(attacker)


def test_a_lockout_leaves_other_users_and_other_addresses_alone() -> None:
    staff("alice")
    staff("bob")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(50):
        sign_in(attacker, "alice", "wrong password")

    colleague = Client(REMOTE_ADDR="203.0.113.9")
    assert sign_in(colleague, "bob", PASSWORD).status_code == 302
    assert signed_in(colleague)

    alice_elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert sign_in(alice_elsewhere, "alice", PASSWORD).status_code == 302
    assert signed_in(alice_elsewhere)


def test_a_few_typos_do_not_lock_anyone_out() -> None:
    staff("alice")
    client = Client()

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = sign_in(client, "alice", "typo")
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()

    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert signed_in(client)


def test_behind_the_load_balancer_the_client_address_is_the_one_it_saw(settings: Any) -> None:
    """The ALB appends the address it saw to X-Forwarded-For; entries left of it are forgeable,
    so an attacker cannot rotate them to dodge the lockout, nor pin it on someone else."""
    settings.TRUSTED_PROXY_HOPS = 1
    staff("alice")
    behind_alb = {"REMOTE_ADDR": "10.0.0.5"}  # the load balancer
    for n in range(50):
        forged = f"192.0.2.{n}, 203.0.113.9"
        sign_in(Client(**behind_alb), "alice", "wrong", HTTP_X_FORWARDED_FOR=forged)

    refused = sign_in(Client(**behind_alb), "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert refused.status_code == 429
    elsewhere = sign_in(
        Client(**behind_alb), "alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7"
    )
    assert elsewhere.status_code == 302

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8"
    )
    assert settings.AXES_CLIENT_IP_CALLABLE(request) == "5.6.7.8"
