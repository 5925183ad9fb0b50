"""Drafts: a rule that never serves until published. Publishing (now or from a start) and
discarding go through the services, each recorded in the rule's history; a revert brings a
discarded draft back as a draft, never serving."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from merchandising import services
from merchandising.contracts import RuleIn
from merchandising.loading import load_drafts, load_rule_set
from merchandising.models import Rule, RuleRevision
from tests.conftest import ApiCaller
from tests.factories import CustomerFactory, ItemFactory, RuleFactory

pytestmark = pytest.mark.django_db

IDS = ["sku-a", "sku-b", "sku-c"]


@pytest.fixture
def api(make_caller: Callable[..., ApiCaller]) -> ApiCaller:
    customer = CustomerFactory()
    for item_id in IDS:
        ItemFactory(customer=customer, external_id=item_id, title=item_id)
    return make_caller(customer)


def ranked(api: ApiCaller) -> list[str]:
    items = [{"id": item_id, "relevance": 3.0 - n} for n, item_id in enumerate(IDS)]
    response = api.post("/v1/rank", {"surface": "search", "query": "shoes", "items": items})
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def hide_draft(api: ApiCaller, item_id: str = "sku-a") -> Rule:
    return RuleFactory(
        customer=api.customer,
        name=f"hide {item_id}",
        selector={"item_ids": [item_id]},
        action={"type": "hide"},
        draft=True,
    )


def test_a_draft_never_serves_and_publishing_makes_it_serve(api: ApiCaller) -> None:
    draft = hide_draft(api)

    while_draft = ranked(api)
    loaded = [rule.id for rule in load_rule_set(api.customer.pk).rules]
    services.rule_publish(rule=draft, user=None)
    published = ranked(api)

    assert while_draft == IDS
    assert loaded == []
    assert [rule.id for rule in load_drafts(api.customer.pk)] == []
    assert published == ["sku-b", "sku-c"]
    kinds = list(
        RuleRevision.objects.filter(rule_id_value=draft.pk)
        .order_by("number")
        .values_list("kind", "draft")
    )
    assert kinds == [("created", True), ("published", False)]


def test_drafts_are_loaded_only_as_drafts(api: ApiCaller) -> None:
    draft = hide_draft(api)

    assert [rule.id for rule in load_drafts(api.customer.pk)] == [draft.pk]
    assert load_rule_set(api.customer.pk).rules == ()
    assert list(Rule.objects.serving()) == []


def test_a_draft_does_not_clash_with_the_rules_serving() -> None:
    """Two drafts pinning one position at one priority: neither serves, so neither blocks."""
    customer = CustomerFactory()
    ItemFactory(customer=customer, external_id="sku-a")
    ItemFactory(customer=customer, external_id="sku-b")

    def pin(item_id: str) -> RuleIn:
        action = {"type": "pin", "pins": [{"item_id": item_id, "position": 1}]}
        return RuleIn.model_validate({"name": f"pin {item_id}", "action": action})

    first = services.rule_create(customer=customer, document=pin("sku-a"), draft=True)[0]
    services.rule_create(customer=customer, document=pin("sku-b"), draft=True)
    services.rule_publish(rule=first)

    with pytest.raises(services.RuleRejected, match="same priority"):
        services.rule_publish(rule=Rule.objects.get(name="pin sku-b"))
    assert Rule.objects.get(name="pin sku-b").draft  # nothing half-stored


def test_publishing_from_a_start_date_schedules_the_rule(api: ApiCaller) -> None:
    draft = hide_draft(api)
    start = timezone.now() + timedelta(days=7)

    rule, _ = services.rule_publish(rule=draft, start=start)

    assert not rule.draft
    assert [(w.start, w.end) for w in RuleIn.stored(rule.document()).windows] == [(start, None)]
    assert ranked(api) == IDS  # not yet
    revision = RuleRevision.objects.get(rule_id_value=rule.pk, kind="published")
    assert revision.note.startswith("published, serving from")


def test_discarding_a_draft_keeps_its_history_and_a_revert_brings_back_a_draft(
    api: ApiCaller,
) -> None:
    draft = hide_draft(api)
    rule_id = draft.pk

    services.rule_discard(rule=draft)
    gone = not Rule.objects.filter(pk=rule_id).exists()
    deleted = RuleRevision.objects.get(rule_id_value=rule_id, kind="deleted")
    back, _ = services.rule_revert(revision=deleted)

    assert gone
    assert deleted.note == "draft discarded"
    assert deleted.draft
    assert back.draft
    assert ranked(api) == IDS  # the reverted draft still serves nothing


def test_a_published_rule_cannot_be_published_or_discarded_again(api: ApiCaller) -> None:
    rule, _ = services.rule_publish(rule=hide_draft(api))

    with pytest.raises(services.NotADraft):
        services.rule_publish(rule=rule)
    with pytest.raises(services.NotADraft):
        services.rule_discard(rule=rule)
    assert Rule.objects.filter(pk=rule.pk, draft=False).exists()


def test_the_api_says_which_rules_are_drafts(api: ApiCaller) -> None:
    draft = hide_draft(api)

    listed: list[dict[str, Any]] = api.get("/v1/rules").json()["rules"]

    assert [(rule["id"], rule["draft"]) for rule in listed] == [(draft.pk, True)]
