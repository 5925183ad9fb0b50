"""Reads of a customer's rows name the customer through `TenantQuerySet.for_customer`: every
model with a `customer` has it, and no application code spells the filter out. The few reads
that span customers by design say so with `unscoped_all_customers()`: a read that names neither
(nor a customer or a primary key in its arguments) is refused, so every cross-tenant read is
easy to find and to review."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.apps import apps

from customers.models import Customer, TenantQuerySet

ROOT = Path(__file__).resolve().parent.parent
APPS = ("catalog", "customers", "events", "merchandising", "ranking", "explain", "config", "core")
APPS += ("demo",)
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


def tenant_model_names() -> set[str]:
    return {
        model.__name__
        for model in apps.get_models()
        if any(
            getattr(field, "related_model", None) is Customer and field.name == "customer"
            for field in model._meta.get_fields()
        )
    }


# Arguments that name whose rows a query reads: a customer, or rows already found by their key.
NAMING_ARGUMENTS = {"customer", "customer_id", "customer__in", "customer_id__in"}
NAMING_ARGUMENTS |= {"pk", "id", "pk__in", "id__in"}
WRITES = {"create", "bulk_create"}


def unnamed_reads(source: str, models: set[str]) -> list[str]:
    """Each query of `Model.objects...` (a tenant model) that names no customer: no
    for_customer, no unscoped_all_customers, no customer or key argument in its chain."""
    tree = ast.parse(source)
    inner = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in inner:
            continue  # only a chain's outermost call
        methods: list[str] = []
        arguments: set[str | None] = set()
        current: ast.expr = node
        while isinstance(current, ast.Call | ast.Attribute):
            if isinstance(current, ast.Call):
                arguments |= {keyword.arg for keyword in current.keywords}
                current = current.func
                continue
            if current.attr == "objects" and isinstance(current.value, ast.Name):
                if current.value.id in models and methods:
                    named = {"for_customer", "unscoped_all_customers"} & set(methods)
                    if not named and not arguments & NAMING_ARGUMENTS and methods[0] not in WRITES:
                        chain = ".".join(reversed(methods))
                        found.append(f"{node.lineno}: {current.value.id}.objects.{chain}")
                break
            methods.append(current.attr)
            current = current.value
    return found


def test_every_read_names_its_customer_or_says_it_spans_customers() -> None:
    models = tenant_model_names()
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                relative = path.relative_to(ROOT)
                found += [f"{relative}:{line}" for line in unnamed_reads(path.read_text(), models)]

    assert found == []


def test_the_check_finds_a_read_across_customers_that_does_not_say_so() -> None:
    source = (
        "a = Rule.objects.filter(enabled=True).count()\n"
        "b = Rule.objects.for_customer(7).filter(enabled=True).count()\n"
        "c = Rule.objects.unscoped_all_customers().filter(enabled=True).count()\n"
        "d = Rule.objects.select_for_update().get(pk=rule.pk)\n"
        "e = Item.objects.values_list('customer_id', flat=True).distinct()\n"
        "f = Rule.objects.create(customer=customer, name='x')\n"
    )

    assert unnamed_reads(source, {"Rule", "Item"}) == [
        "1: Rule.objects.filter.count",
        "5: Item.objects.values_list.distinct",
    ]
