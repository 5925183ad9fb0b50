"""Attribute selectors through their signal-store sets (merchandising/attribute_sets.py): written
when a rule is saved, moved with catalog writes, recomputed by a signal refresh, and a signal
store outage during a write costs the write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from merchandising.compiled import attribute_set_name
from merchandising.models import Rule
from ranking.services import signals_refresh
from ranking.signals import backend as store_backend
from ranking.signals.backend import signal_store
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller
from tests.merchandising import test_rules_api
from tests.ranking.helpers import put_items, ranked_ids

pytestmark = pytest.mark.django_db

shop = test_rules_api.shop  # the six-item shop fixture of the rules API tests
create, search = test_rules_api.create, test_rules_api.search

RED = attribute_set_name((("color", ("red",)),))


def members(api: ApiCaller, name: str, ids: list[str]) -> list[str]:
    fetch = signal_store().fetch(api.customer.pk, ids, "", "", [name])
    return [item_id for item_id, hit in zip(ids, fetch.attribute_masks[name], strict=True) if hit]


ALL = [f"sku-{i}" for i in range(6)]


def hide_red(api: ApiCaller) -> None:
    create(
        api,
        {
            "name": "no red",
            "selector": {"attributes": {"color": ["red"]}},
            "action": {"type": "hide"},
        },
    )


def test_saving_a_rule_writes_its_set_and_the_rule_applies(shop: ApiCaller) -> None:
    hide_red(shop)

    assert members(shop, RED, ALL) == ["sku-1", "sku-4"]
    assert ranked_ids(search(shop)) == ["sku-0", "sku-2", "sku-3", "sku-5"]


def test_catalog_writes_move_items_in_and_out_of_sets(shop: ApiCaller) -> None:
    hide_red(shop)

    put_items(
        shop,
        [
            {"id": "sku-0", "title": "Shoe 0", "attributes": {"color": ["red", "tan"]}},
            {"id": "sku-1", "title": "Shoe 1", "attributes": {"color": "blue"}},
        ],
    )
    assert members(shop, RED, ALL) == ["sku-0", "sku-4"]

    response = shop.delete("/v1/catalog/items/sku-4")
    assert response.status_code == 204, response.content
    assert members(shop, RED, ALL) == ["sku-0"]
    # sku-4, deleted from the catalog but still sent, is no longer known to be red.
    assert sorted(ranked_ids(search(shop))) == ["sku-1", "sku-2", "sku-3", "sku-4", "sku-5"]


def test_a_changed_selector_gets_a_new_set_and_a_refresh_drops_the_old(
    shop: ApiCaller,
) -> None:
    hide_red(shop)
    rule = Rule.objects.get(customer=shop.customer)
    blue = attribute_set_name((("color", ("blue",)),))
    document = {**rule.document(), "selector": {"attributes": {"color": ["blue"]}}}
    response = shop.put(f"/v1/rules/{rule.pk}", document)
    assert response.status_code == 200, response.content
    assert members(shop, blue, ALL) == ["sku-0", "sku-2", "sku-3", "sku-5"]
    assert ranked_ids(search(shop)) == ["sku-1", "sku-4"]
    assert members(shop, RED, ALL) == ["sku-1", "sku-4"]  # unused, until the next refresh

    signals_refresh(customer_id=shop.customer.pk)

    assert members(shop, RED, ALL) == []
    assert members(shop, blue, ALL) == ["sku-0", "sku-2", "sku-3", "sku-5"]


def test_a_store_outage_while_saving_loses_nothing_and_a_refresh_repairs(
    shop: ApiCaller,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
) -> None:
    store = signal_store()

    def down(*args: Any) -> None:
        raise SignalStoreUnavailable("down")

    monkeypatch.setattr(store, "attribute_set_replace", down)
    monkeypatch.setattr(store, "attribute_sets_update", down)
    hide_red(shop)  # stored (201), the set not written
    put_items(shop, [{"id": "sku-2", "title": "Shoe 2", "attributes": {"color": "red"}}])
    assert Rule.objects.filter(customer=shop.customer).count() == 1
    assert "not written" in caplog.text
    assert "not updated" in caplog.text
    assert members(shop, RED, ALL) == []
    monkeypatch.undo()

    signals_refresh(customer_id=shop.customer.pk)

    assert members(shop, RED, ALL) == ["sku-1", "sku-2", "sku-4"]
    assert ranked_ids(search(shop)) == ["sku-0", "sku-3", "sku-5"]


def test_attribute_sets_are_kept_per_customer(
    shop: ApiCaller,
    other_api: ApiCaller,
) -> None:
    hide_red(shop)
    put_items(other_api, [{"id": "sku-0", "title": "Theirs", "attributes": {"color": "red"}}])

    assert members(shop, RED, ALL) == ["sku-1", "sku-4"]
    assert members(other_api, RED, ["sku-0"]) == []  # the other customer has no such rule
    store_backend.signal_store().drop_customer(other_api.customer.pk)
