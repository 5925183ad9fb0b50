"""`manage.py demo` builds a working shop: the printed key and curl rank for real."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory

from catalog.models import Item
from customers.models import Customer, Membership
from events.models import Event
from ranking.models import SignalVersion
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_demo(**options: int) -> str:
    out = io.StringIO()
    call_command("demo", items=150, shoppers=60, sessions=200, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_the_demo_builds_a_shop_and_prints_a_working_key_and_curl() -> None:
    output = run_demo()

    shop = Customer.objects.get(slug="demo-shop")
    assert Item.objects.filter(customer=shop).count() == 150
    kinds = set(Event.objects.filter(customer=shop).values_list("type", flat=True))
    assert kinds == {"impression", "click", "add_to_cart", "purchase"}
    assert SignalVersion.objects.filter(customer=shop).exists()
    assert Membership.objects.filter(customer=shop, user__username="merchandiser").exists()
    assert re.search(r"user admin / \S+", output)

    curl = next(line for line in output.splitlines() if line.strip().startswith("curl "))
    words = shlex.split(curl)
    key = words[words.index("-H") + 1].removeprefix("Authorization: Bearer ")
    body = words[words.index("-d") + 1]
    response = Client().post(
        "/v1/rank", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 200
    assert response.json()["degraded"] is False
    assert len(response.json()["items"]) == 5


@pytest.mark.django_db
def test_the_demo_reuses_its_shop_and_logins_work() -> None:
    run_demo()
    events = Event.objects.count()

    output = run_demo()

    assert "Reusing the demo shop" in output
    assert Event.objects.count() == events
    password = re.search(r"user merchandiser / (\S+)", output).group(1)  # type: ignore[union-attr]
    client = Client()
    # The admin's sign-in is throttled per address (django-axes), so the login names a request.
    login = RequestFactory().post("/admin/login/")
    assert client.login(request=login, username="merchandiser", password=password)
    assert client.get("/admin/catalog/item/").status_code == 200
    explain_url = re.search(r"Explain UI:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    assert client.get(urlsplit(explain_url).path).status_code == 200


def test_the_demo_serves_on_the_embedded_default(tmp_path: Path) -> None:
    """What a new user runs: SQLite, the in-process signal store, eager tasks, then serve."""
    addr = f"127.0.0.1:{free_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "RANKWELL_ENV": "development",
    }
    command = [sys.executable, "manage.py", "demo", "--items", "150", "--shoppers", "60"]
    command += ["--sessions", "200", "--serve", "--addr", addr]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if line.startswith("Ready in"):
                break
        output = "".join(lines)
        assert "database sqlite3, signal store memory" in output, output
        words = shlex.split(next(ln for ln in lines if ln.strip().startswith("curl ")))
        request = urllib.request.Request(
            f"http://{addr}/v1/rank",
            data=words[words.index("-d") + 1].encode(),
            headers={"Authorization": words[words.index("-H") + 1].split(": ", 1)[1]},
            method="POST",
        )
        request.add_header("Content-Type", "application/json")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                    body = json.loads(response.read())
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "the demo server never answered"
                time.sleep(0.3)
        assert body["degraded"] is False
        assert len(body["items"]) == 5
    finally:
        server.terminate()
        server.wait(timeout=10)
