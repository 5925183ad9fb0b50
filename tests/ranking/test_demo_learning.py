"""`manage.py demo` trains a model per surface on its logged traffic and activates it: the shop
ranks with it. Where the small holdout does not show the model above the popularity baseline,
the guard asks for a reason and the demo gives one, recorded in the registry."""

from __future__ import annotations

import io
import shlex
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from customers.models import Customer
from ranking.models import ModelStatus, RankingModel, RankLog

pytestmark = pytest.mark.django_db


def test_the_demo_trains_and_activates_models_that_serve(
    settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", items=300, shoppers=200, sessions=2400, stdout=out)

    output = out.getvalue()
    shop = Customer.objects.get(slug="demo-shop")
    assert RankLog.objects.filter(customer=shop).count() == 800
    models = {m.surface: m for m in RankingModel.objects.filter(customer=shop)}
    assert set(models) == {"search", "browse"}
    for surface, model in models.items():
        assert model.status == ModelStatus.ACTIVE
        assert f"{model.label} serves {surface}." in output
        if model.override_reason:
            # A small holdout can go either way: the override, and what it overrode, are on record.
            assert model.override_reason.startswith("demo shop: ")
            assert "(overriding: " in model.override_reason
    active = list(models.values())

    curl = next(line for line in output.splitlines() if line.strip().startswith("curl "))
    words = shlex.split(curl)
    body = shlex.split(curl)[words.index("-d") + 1]
    if active[0].surface == "browse":
        body = body.replace('"surface":"search"', '"surface":"browse"')
    response = Client().post(
        "/v1/rank",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=words[words.index("-H") + 1].removeprefix("Authorization: "),
    )
    assert response.status_code == 200
    assert response.json()["ranker"]["model"] == active[0].label
