"""API keys: stored hashed, scoped, shown once, revoked at once here and within a poll elsewhere."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import Client
from django.utils import timezone

from customers import auth, runtime_sync
from customers.models import ApiKey, Customer
from customers.services import api_key_create, api_key_revoke, customer_update
from tests.conftest import ApiCaller
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

RANK_BODY = {"surface": "browse", "items": [{"id": "sku-1"}, {"id": "sku-2"}]}
KEY_PATTERN = re.compile(r"rwk_[A-Za-z0-9_-]{20,}")


@pytest.fixture(autouse=True)
def _no_background_poll(settings: Any) -> None:
    """Only the test polls for changes made by "other processes", so it decides when."""
    settings.RUNTIME_REFRESH_SECONDS = 0


def rank_status(key: str) -> int:
    response = Client().post(
        "/v1/rank", RANK_BODY, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    return response.status_code


def catalog_response(key: str) -> Any:
    return Client().get("/v1/catalog/items/sku-1", HTTP_AUTHORIZATION=f"Bearer {key}")


def create_key_by_command(slug: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", slug, *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_the_key_is_stored_only_as_its_hash() -> None:
    customer = CustomerFactory()

    api_key, plaintext = api_key_create(customer=customer, name="shop", scopes=["rank"])

    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert all(plaintext not in str(value) for value in row.values())
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.startswith(row["prefix"])
    assert len(row["prefix"]) < len(plaintext) // 2
    assert rank_status(plaintext) == 200


def test_create_api_key_command_prints_a_key_limited_to_its_scopes() -> None:
    customer = CustomerFactory(slug="acme")

    key = create_key_by_command("acme", "--name", "x", "--scopes", "rank,events")

    assert KEY_PATTERN.fullmatch(key)
    assert rank_status(key) == 200
    refused = catalog_response(key)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert "catalog" in refused.json()["detail"]
    (api_key,) = ApiKey.objects.filter(customer=customer)
    assert (api_key.name, api_key.scopes) == ("x", ["events", "rank"])


def test_create_api_key_command_refuses_an_unknown_scope_naming_it() -> None:
    customer = CustomerFactory(slug="acme")

    with pytest.raises(CommandError, match="superpowers"):
        create_key_by_command("acme", "--name", "x", "--scopes", "rank,superpowers")

    assert not ApiKey.objects.filter(customer=customer).exists()


def test_create_api_key_command_refuses_an_unknown_customer() -> None:
    with pytest.raises(CommandError, match="nobody"):
        create_key_by_command("nobody", "--name", "x")


def test_a_missing_or_unknown_key_is_refused() -> None:
    assert Client().post("/v1/rank", RANK_BODY, content_type="application/json").status_code == 401
    assert rank_status("rwk_not-a-real-key") == 401


def test_a_revoked_key_is_refused_at_once(api: ApiCaller) -> None:
    assert rank_status(api.key) == 200
    api_key = ApiKey.objects.get(customer=api.customer)

    api_key_revoke(api_key=api_key)

    response = api.post("/v1/rank", RANK_BODY)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_a_key_revoked_by_another_process_stops_working_at_the_next_poll(
    api: ApiCaller,
) -> None:
    runtime_sync.poller.poll_once()
    assert rank_status(api.key) == 200
    # Another process revokes the key: the row and the generation change, this process's
    # cache is not told.
    ApiKey.objects.filter(customer=api.customer).update(revoked_at=timezone.now())
    Customer.objects.filter(pk=api.customer.pk).update(
        runtime_generation=F("runtime_generation") + 1
    )

    served_from_cache = rank_status(api.key)
    runtime_sync.poller.poll_once()

    assert served_from_cache == 200
    assert rank_status(api.key) == 401


def test_a_poll_without_changes_keeps_a_key_working(api: ApiCaller) -> None:
    runtime_sync.poller.poll_once()
    assert rank_status(api.key) == 200

    runtime_sync.poller.poll_once()

    assert rank_status(api.key) == 200


def test_last_used_is_recorded_once_the_batch_is_flushed(api: ApiCaller) -> None:
    auth.flush_last_used()
    before = timezone.now()

    assert rank_status(api.key) == 200
    unflushed = ApiKey.objects.get(customer=api.customer).last_used_at
    auth.flush_last_used()

    assert unflushed is None
    last_used = ApiKey.objects.get(customer=api.customer).last_used_at
    assert last_used is not None
    assert before <= last_used <= timezone.now()


def test_a_key_of_an_inactive_customer_is_refused(make_caller: Callable[..., ApiCaller]) -> None:
    caller = make_caller(customer=CustomerFactory(is_active=False))

    assert rank_status(caller.key) == 401


def test_deactivating_a_customer_refuses_its_keys_at_once(api: ApiCaller) -> None:
    assert rank_status(api.key) == 200

    customer_update(customer=api.customer, is_active=False)

    assert rank_status(api.key) == 401


def test_revoke_api_key_command_revokes_the_key(api: ApiCaller) -> None:
    assert rank_status(api.key) == 200
    api_key = ApiKey.objects.get(customer=api.customer)

    out = io.StringIO()
    call_command("revoke_api_key", api_key.prefix, stdout=out)

    assert "Revoked" in out.getvalue()
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert rank_status(api.key) == 401


def test_revoke_api_key_command_refuses_an_unknown_prefix() -> None:
    with pytest.raises(CommandError, match="rwk_nothing"):
        call_command("revoke_api_key", "rwk_nothing")


def test_revoking_one_key_leaves_the_customers_other_keys_working() -> None:
    customer = CustomerFactory()
    _, kept_key = api_key_create(customer=customer, name="kept", scopes=["rank"])
    revoked, revoked_key = api_key_create(customer=customer, name="revoked", scopes=["rank"])
    assert rank_status(kept_key) == rank_status(revoked_key) == 200

    api_key_revoke(api_key=revoked)

    assert rank_status(revoked_key) == 401
    assert rank_status(kept_key) == 200


def superuser_client() -> Client:
    user = UserFactory(is_superuser=True)
    user.save()  # the factory does not save the password, and a login session checks it
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_shows_a_new_key_once_and_stores_only_its_hash() -> None:
    customer = CustomerFactory()
    client = superuser_client()

    response = client.post(
        "/admin/customers/apikey/add/",
        {"customer": customer.pk, "name": "storefront", "scopes": ["rank", "events"]},
        follow=True,
    )

    assert response.status_code == 200
    shown = KEY_PATTERN.findall(response.content.decode())
    assert len(shown) == 1
    key = shown[0]
    api_key = ApiKey.objects.get(customer=customer)
    assert api_key.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in ApiKey.objects.values().get().values())
    assert api_key.scopes == ["events", "rank"]
    assert rank_status(key) == 200
    assert catalog_response(key).status_code == 403
    change_page = client.get(f"/admin/customers/apikey/{api_key.pk}/change/").content.decode()
    changelist = client.get("/admin/customers/apikey/").content.decode()
    assert key not in change_page
    assert key not in changelist


def test_the_admin_revoke_action_refuses_the_key_at_once(api: ApiCaller) -> None:
    assert rank_status(api.key) == 200
    api_key = ApiKey.objects.get(customer=api.customer)

    response = superuser_client().post(
        "/admin/customers/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
        follow=True,
    )

    assert "Revoked 1 key(s)." in response.content.decode()
    assert rank_status(api.key) == 401


def test_the_process_wiring_is_registered_once_by_the_apps_not_by_imports() -> None:
    """The runtime-sync thread's jobs come from the apps' ready(), each once: a module that also
    registered its job at import would show twice."""
    from customers import runtime_sync

    jobs = [job.__qualname__ for job in runtime_sync._periodic_jobs]
    assert jobs.count("flush_last_used") == 1
    assert jobs.count("flush_quietly") == 1
