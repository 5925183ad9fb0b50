"""Reads of a customer's rows name the customer through `TenantQuerySet.for_customer`: every
model with a `customer` has it, and no application code spells the filter out (so the reads that
span customers are the ones without it, easy to find and to review)."""

from __future__ import annotations

import re
from pathlib import Path

from django.apps import apps

from customers.models import Customer, TenantQuerySet

ROOT = Path(__file__).resolve().parent.parent
APPS = ("catalog", "customers", "events", "merchandising", "ranking", "explain", "config", "demo")
SPELLED_OUT = re.compile(r"\.filter\(\s*customer(_id)?=(?!OuterRef)")


def test_every_model_of_a_customer_reads_through_for_customer() -> None:
    tenant_models = [
        model
        for model in apps.get_models()
        if any(
            getattr(field, "related_model", None) is Customer and field.name == "customer"
            for field in model._meta.get_fields()
        )
    ]

    assert len(tenant_models) >= 12
    for model in tenant_models:
        assert isinstance(model._default_manager.all(), TenantQuerySet), model.__name__


def test_no_application_code_spells_the_customer_filter_out() -> None:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for line in path.read_text().splitlines():
                if SPELLED_OUT.search(line):
                    found.append(f"{path.relative_to(ROOT)}: {line.strip()}")

    # for_customer itself, and the tenant-scoped API views' queryset of any model.
    assert found == [
        "customers/api.py: return self.model._default_manager.filter(customer_id=self.customer_id)",
        "customers/models.py: return self.filter(customer_id=customer_id)",
    ]
