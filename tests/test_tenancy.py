"""Reads of a customer's rows name the customer through `TenantQuerySet.for_customer` (or
`for_customers`): every model with a `customer` has it, and no application code spells the
filter out. The few reads that span customers by design say so with `unscoped_all_customers()`
(and the selectors that make them are named `unscoped_*`): a read that names neither (nor a
customer or a primary key in its arguments) is refused, so every cross-tenant read is easy to
find and to review. The apps' reads live in their `selectors.py`: pages, admin and API views call
those, never a model's manager."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from django.apps import apps

from customers.models import Customer, TenantQuerySet

ROOT = Path(__file__).resolve().parent.parent
APPS = ("catalog", "customers", "events", "merchandising", "ranking", "explain", "config", "core")
APPS += ("demo",)


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


# The arguments that spell a customer filter out, and the calls that read with them.
CUSTOMER_ARGUMENTS = {"customer", "customer_id", "customer__in", "customer_id__in"}
FILTERS = {"filter", "exclude", "get"}


def spelled_out_filters(source: str) -> list[str]:
    """Each filter, exclude or get that names a customer by hand (a correlated `OuterRef` of a
    subquery is no read of its own, and is not counted)."""
    found = []
    for node in sorted(ast.walk(ast.parse(source)), key=lambda node: getattr(node, "lineno", 0)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in FILTERS:
            continue
        for keyword in node.keywords:
            value = keyword.value
            is_outer_ref = (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id == "OuterRef"
            )
            if keyword.arg in CUSTOMER_ARGUMENTS and not is_outer_ref:
                found.append(f"{node.lineno}: .{node.func.attr}({keyword.arg}=...)")
    return found


def application_modules(*apps: str) -> list[Path]:
    return [
        path
        for app in apps
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_no_application_code_spells_the_customer_filter_out() -> None:
    found: dict[str, list[str]] = {}
    for path in application_modules(*APPS):
        relative = path.relative_to(ROOT)
        for line in spelled_out_filters(path.read_text()):
            _, call = line.split(": ", 1)
            found.setdefault(relative.parts[0], []).append(f"{relative}: {call}")

    # for_customer and for_customers themselves.
    assert found.pop("customers") == [
        "customers/models.py: .filter(customer_id=...)",
        "customers/models.py: .filter(customer__in=...)",
    ]
    assert found == {}


def test_the_check_finds_a_customer_filter_spelled_out_over_several_lines() -> None:
    source = (
        "a = Event.objects.filter(\n    customer_id=customer_id,\n    ordinal=0,\n)\n"
        "b = Experiment.objects.filter(customer__in=customers, enabled=True)\n"
        "c = Event.objects.for_customer(customer_id).filter(ordinal=0)\n"
        "d = Customer.objects.filter(Exists(Event.objects.filter(customer_id=OuterRef('pk'))))\n"
        "e = queryset.exclude(customer_id__in=ids)\n"
    )

    assert spelled_out_filters(source) == [
        "1: .filter(customer_id=...)",
        "5: .filter(customer__in=...)",
        "8: .exclude(customer_id__in=...)",
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
NAMING_METHODS = {"for_customer", "for_customers", "unscoped_all_customers"}


def outermost_calls(source: str) -> Iterator[ast.Call]:
    """Each call of the module that is no link inside a longer chain (`a.b().c()` once, as its
    outermost call)."""
    tree = ast.parse(source)
    inner = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in inner:
            yield node


def unnamed_reads(source: str, models: set[str]) -> list[str]:
    """Each query of `Model.objects...` (a tenant model) that names no customer: no
    for_customer(s), no unscoped_all_customers, no customer or key argument in its chain."""
    found = []
    for node in outermost_calls(source):
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
                    named = NAMING_METHODS & set(methods)
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


# --- reads live in the apps' selectors ----------------------------------------------------------

# The apps whose doors read through their selectors.py.
SELECTOR_APPS = ("catalog", "customers", "events", "merchandising", "explain", "ranking")
# Where a model's manager may be used: the selectors read, the services write (and lock and
# number what they write), the models define the QuerySet methods.
MANAGER_HOMES = ("selectors.py", "services.py", "models.py")
# The doors: pages, admin and API views, their forms. They call selectors and services only.
DOORS = ("admin.py", "api.py", "views.py", "forms.py", "explain/insight.py", "explain/workbench.py")
# Writes, which the doors leave to the services too, and which elsewhere are no read.
WRITE_METHODS = {"create", "bulk_create", "update", "delete", "update_or_create", "get_or_create"}
NO_QUERY = {"none"}  # an empty queryset a form field starts with: nothing is read
MAY_READ_THEIR_OWN = {
    # Every /v1 request's key look-up: read beside the per-process cache it fills, on the hot
    # path (the look-up by hash spans customers and says so with unscoped_all_customers).
    "customers/auth.py": "the API key cache",
    # ranking's computations, whose queries are the computation (ranking/selectors.py says so):
    "ranking/experiments.py": "a readout's attribution, grouped in SQL",
    "ranking/interleaving.py": "an interleaving readout's credit, grouped in SQL",
    "ranking/learning/dataset.py": "the training data, point in time",
    "ranking/learning/replay.py": "training requests rebuilt from impressions",
    "ranking/learning/training.py": "the next model version, numbered under its lock",
    "ranking/learning/registry.py": "the guarded activation, under row locks",
    "ranking/learning/rank_log.py": "the rank log's writes and purge",
    "ranking/signals/refresh.py": "the refresh's aggregates, under the customer's lock",
    "ranking/runtime.py": "the runtime's loader, cached per process",
    "ranking/metrics.py": "scrape-time collectors over every shop",
}


def project_model_names() -> set[str]:
    return {model.__name__ for model in apps.get_models() if model._meta.app_label in APPS}


def manager_calls(source: str, models: set[str]) -> list[tuple[int, str, bool]]:
    """Each `Model.objects...` (or `_default_manager`) chain of a project model: its line, the
    chain, and whether it writes."""
    found = []
    for node in outermost_calls(source):
        methods: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Call | ast.Attribute):
            if isinstance(current, ast.Call):
                current = current.func
                continue
            manager = current.attr in {"objects", "_default_manager"}
            if manager and isinstance(current.value, ast.Name) and current.value.id in models:
                if methods and methods[-1] not in NO_QUERY:
                    chain = ".".join([current.value.id, current.attr, *reversed(methods)])
                    found.append((current.lineno, chain, bool(WRITE_METHODS & set(methods))))
                break
            methods.append(current.attr)
            current = current.value
    return sorted(found)


def misplaced_manager_calls(relative: str, source: str, models: set[str]) -> list[str]:
    """What a module of an app with selectors does with a model's manager that it should leave
    to the selectors (reads) or the services (a door's writes)."""
    name = relative.rsplit("/", 1)[-1]
    in_services = "/services/" in relative  # a package of services (explain/services/)
    if name in MANAGER_HOMES or in_services or relative in MAY_READ_THEIR_OWN:
        return []
    door = name in DOORS or relative in DOORS
    return [
        f"{relative}:{line}: {chain}"
        for line, chain, writes in manager_calls(source, models)
        if door or not writes
    ]


def test_pages_admin_and_api_read_through_selectors_and_write_through_services() -> None:
    models = project_model_names()
    found = []
    for path in application_modules(*SELECTOR_APPS):
        relative = str(path.relative_to(ROOT))
        found += misplaced_manager_calls(relative, path.read_text(), models)

    assert found == []


def test_the_check_finds_a_read_or_a_write_left_in_a_door() -> None:
    source = (
        "a = Rule.objects.for_customer(7).filter(enabled=True).first()\n"
        "b = Customer.objects.visible_to(user).exists()\n"
        "c = Rule.objects.filter(pk=rule.pk).update(enabled=False)\n"
        "d = forms.ModelChoiceField(queryset=Customer.objects.none())\n"
        "e = selectors.rule_of(customer_id=7, rule_id=3)\n"
    )
    models = {"Rule", "Customer"}

    assert misplaced_manager_calls("merchandising/admin.py", source, models) == [
        "merchandising/admin.py:1: Rule.objects.for_customer.filter.first",
        "merchandising/admin.py:2: Customer.objects.visible_to.exists",
        "merchandising/admin.py:3: Rule.objects.filter.update",
    ]
    assert misplaced_manager_calls("merchandising/preview.py", source, models) == [
        "merchandising/preview.py:1: Rule.objects.for_customer.filter.first",
        "merchandising/preview.py:2: Customer.objects.visible_to.exists",
    ]
    assert misplaced_manager_calls("merchandising/selectors.py", source, models) == []
