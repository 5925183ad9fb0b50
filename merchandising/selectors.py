"""Reads of merchandising rules and their history, each scoped to the customer (or the staff
user's customers) it names. Compiling what they read for the engine is merchandising.loading's."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from django.db.models import Q, QuerySet

from catalog.models import Item
from merchandising.contracts import Selector as SelectorDoc
from merchandising.models import Rule, RuleRevision
from ranking.models import Experiment, ExperimentKind


def rules_of(*, customer_id: int) -> QuerySet[Rule]:
    """Every rule of the customer, drafts too, highest priority first."""
    return Rule.objects.for_customer(customer_id)


def rule_of(*, customer_id: int, rule_id: int) -> Rule | None:
    return Rule.objects.for_customer(customer_id).filter(pk=rule_id).first()


def rule_stored(*, customer_id: int, rule_id: int) -> Rule:
    """The customer's rule as stored now (a form's object holds the edits already)."""
    return Rule.objects.for_customer(customer_id).get(pk=rule_id)


def rule_name(*, customer_id: int, rule_id: int) -> str:
    """The name of the customer's rule (the engine names rules by id)."""
    names = Rule.objects.for_customer(customer_id).filter(pk=rule_id).values_list("name", flat=True)
    return next(iter(names), f"rule {rule_id}")


def rule_names(*, customer_id: int, rule_ids: Iterable[int]) -> dict[int, str]:
    return dict(
        Rule.objects.for_customer(customer_id)
        .filter(pk__in=set(rule_ids))
        .values_list("id", "name")
    )


def rules_serving(
    *, customer_id: int, experiment_ids: Collection[int] = (), excluding: int | None = None
) -> QuerySet[Rule]:
    """The customer's rules serving everyone (enabled, never a draft, tagged to no experiment);
    with `experiment_ids`, also those serving only in their B; without the rule `excluding`."""
    rules = Rule.objects.for_customer(customer_id).serving()
    if experiment_ids:
        rules = rules | Rule.objects.for_customer(customer_id).serving_in(experiment_ids)
    if excluding is not None:
        rules = rules.exclude(pk=excluding)
    return rules


def hide_rules_serving(*, customer_id: int) -> QuerySet[Rule]:
    return Rule.objects.for_customer(customer_id).serving().filter(action_type="hide")


def rules_serving_newest_first(*, customer_id: int) -> QuerySet[Rule]:
    return Rule.objects.for_customer(customer_id).serving().order_by("-id")


def drafts_of(*, customer_id: int) -> QuerySet[Rule]:
    """The customer's drafts, oldest first (switched off ones too)."""
    return Rule.objects.for_customer(customer_id).drafts().order_by("id")


def drafts_enabled(*, customer_id: int) -> QuerySet[Rule]:
    return Rule.objects.for_customer(customer_id).drafts().enabled()


def drafts_among(*, customer_id: int, rule_ids: Iterable[int]) -> list[Rule]:
    """The customer's drafts among `rule_ids`, oldest first (a published or deleted one is not)."""
    return list(
        Rule.objects.for_customer(customer_id).drafts().filter(pk__in=rule_ids).order_by("id")
    )


def rules_of_experiment(*, experiment: Experiment) -> list[Rule]:
    """The rules tagged to the experiment (they serve only in its B)."""
    return list(Rule.objects.for_customer(experiment.customer_id).filter(experiment=experiment))


def rule_selector_documents(*, customer_id: int) -> list[dict[str, Any]]:
    """The stored selector of each of the customer's rules (drafts and disabled ones too)."""
    return list(Rule.objects.for_customer(customer_id).values_list("selector", flat=True))


def rule_revisions(*, customer_id: int, rule_id: int) -> list[RuleRevision]:
    """A rule's history, newest first (kept after the rule is deleted)."""
    return list(
        RuleRevision.objects.for_customer(customer_id)
        .filter(rule_id_value=rule_id)
        .select_related("changed_by")
        .order_by("-number")
    )


def rule_revisions_among(*, customers: Any, rule_id: int) -> list[RuleRevision]:
    """A rule's history, newest first, if it is a rule of one of `customers` (ids, or a
    queryset of the customers a staff user sees); empty otherwise."""
    return list(
        RuleRevision.objects.for_customers(customers)
        .filter(rule_id_value=rule_id)
        .select_related("changed_by")
        .order_by("-number")
    )


def rule_experiments_offered(*, customers: Any, tagged_id: int | None) -> QuerySet[Experiment]:
    """The running rule experiments of `customers` (ids, or a queryset of customers), and the
    experiment `tagged_id` a rule is tagged to (running or not): what the rule form offers."""
    running = Experiment.objects.for_customers(customers).filter(
        kind=ExperimentKind.RULES, enabled=True
    )
    if tagged_id is not None:
        running = running | Experiment.objects.filter(pk=tagged_id)
    return running.select_related("customer").order_by("customer", "surface", "name")


def item_ids_narrowed(*, customer_id: int, selector: SelectorDoc) -> list[str]:
    """Ids of the customer's items that may match the selector, narrowed in SQL by its brand,
    price, stock, id and attribute-key clauses (the engine's own mask decides the rest)."""
    items = Item.objects.for_customer(customer_id)
    if selector.brands:
        brands = Q()
        for brand in selector.brands:
            brands |= Q(brand__iexact=brand)
        items = items.filter(brands)
    if selector.price_min is not None:
        items = items.filter(price__gte=selector.price_min)
    if selector.price_max is not None:
        items = items.filter(price__lte=selector.price_max)
    if selector.in_stock is not None:
        items = items.filter(in_stock=selector.in_stock)
    if selector.item_ids:
        items = items.filter(external_id__in=selector.item_ids)
    for key in selector.attributes:
        items = items.filter(attributes__has_key=key)
    return list(items.values_list("external_id", flat=True))
