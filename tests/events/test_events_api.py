"""POST /v1/events: the four event types, idempotency, attribution, shopper profiles, tenancy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from events.models import Event
from ranking.signals.backend import reset_signal_store, signal_store
from tests.conftest import ApiCaller

pytestmark = pytest.mark.django_db


def ago(**delta: float) -> str:
    return (timezone.now() - timedelta(**delta)).isoformat()


def send(api: ApiCaller, *events: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/events", {"events": list(events)})
    assert response.status_code == 202, response.content
    return response.json()


def impression(event_id: str, request_id: str, items: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "impression",
        "timestamp": ago(hours=1),
        "user_id": "u-42",
        "request_id": request_id,
        "surface": "search",
        "query": "running shoes",
        "items": items,
        **extra,
    }


def action(event_id: str, kind: str, item_id: str, **extra: Any) -> dict[str, Any]:
    event = {
        "event_id": event_id,
        "type": kind,
        "timestamp": ago(minutes=30),
        "user_id": "u-42",
        "item_id": item_id,
        **extra,
    }
    if kind == "purchase":
        event.setdefault("price", 59.9)
    return event


def stored(api: ApiCaller, **filters: Any) -> list[Event]:
    return list(
        Event.objects.filter(customer=api.customer, **filters).order_by("event_id", "ordinal")
    )


def put_item(api: ApiCaller, item_id: str, brand: str, categories: list[str]) -> None:
    body = {"items": [{"id": item_id, "title": item_id, "brand": brand, "categories": categories}]}
    response = api.put("/v1/catalog/items", body)
    assert response.status_code == 200, response.content


def full_funnel() -> list[dict[str, Any]]:
    return [
        impression("e-1", "r-1", ["sku-2", "sku-1", "sku-3"]),
        action("e-2", "click", "sku-2", request_id="r-1", position=1),
        action("e-3", "add_to_cart", "sku-2", request_id="r-1", quantity=1),
        action("e-4", "purchase", "sku-2", request_id="r-1", quantity=1, price=59.9),
    ]


def test_the_four_event_types_are_accepted(api: ApiCaller) -> None:
    assert send(api, *full_funnel()) == {"accepted": 4, "duplicates": 0}

    assert sorted(event.type for event in stored(api)) == [
        "add_to_cart",
        "click",
        "impression",
        "impression",
        "impression",
        "purchase",
    ]


def test_an_impression_is_one_row_per_item_with_positions_from_one(api: ApiCaller) -> None:
    send(api, impression("e-1", "r-1", ["sku-2", "sku-1", "sku-3"]))

    rows = stored(api, type="impression")
    assert [(row.item_id, row.position) for row in rows] == [
        ("sku-2", 1),
        ("sku-1", 2),
        ("sku-3", 3),
    ]
    assert {row.request_id for row in rows} == {"r-1"}


def test_resending_a_batch_stores_nothing_new(api: ApiCaller) -> None:
    send(api, *full_funnel())
    rows_before = Event.objects.filter(customer=api.customer).count()

    assert send(api, *full_funnel()) == {"accepted": 0, "duplicates": 4}

    assert Event.objects.filter(customer=api.customer).count() == rows_before


def test_a_batch_mixing_new_and_seen_events_stores_only_the_new(api: ApiCaller) -> None:
    send(api, action("e-1", "click", "sku-1"))

    result = send(api, action("e-1", "click", "sku-1"), action("e-2", "click", "sku-2"))

    assert result == {"accepted": 1, "duplicates": 1}
    assert [row.item_id for row in stored(api)] == ["sku-1", "sku-2"]


def test_an_event_id_repeated_within_a_batch_is_a_duplicate(api: ApiCaller) -> None:
    result = send(api, action("e-1", "click", "sku-1"), action("e-1", "click", "sku-2"))

    assert result == {"accepted": 1, "duplicates": 1}
    assert [row.item_id for row in stored(api)] == ["sku-1"]


def test_the_same_event_id_in_two_tenants_is_accepted_by_both(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    assert send(api, action("e-1", "click", "sku-1")) == {"accepted": 1, "duplicates": 0}
    assert send(other_api, action("e-1", "click", "sku-9")) == {"accepted": 1, "duplicates": 0}

    assert [row.item_id for row in stored(api)] == ["sku-1"]
    assert [row.item_id for row in stored(other_api)] == ["sku-9"]


def test_one_invalid_event_refuses_the_whole_batch_naming_it(api: ApiCaller) -> None:
    response = api.post(
        "/v1/events",
        {"events": [action("e-1", "click", "sku-1"), action("e-2", "click", "")]},
    )

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["events[1].item_id"]
    assert stored(api) == []


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [
        ("Running SHOES", "running shoes"),
        ("  Café   CRÈME ", "cafe creme"),
        ("Zapatillas\tde\nMontaña", "zapatillas de montana"),
    ],
)
def test_queries_are_stored_normalised(api: ApiCaller, sent: str, normalised: str) -> None:
    send(api, impression("e-1", "r-1", ["sku-1"], query=sent))

    assert [row.query for row in stored(api)] == [normalised]


@pytest.mark.parametrize("same_batch", [False, True], ids=["earlier_batch", "same_batch"])
def test_a_click_inherits_query_and_surface_of_its_impression(
    api: ApiCaller, same_batch: bool
) -> None:
    shown = impression("e-1", "r-1", ["sku-1", "sku-2"], surface="autocomplete", query="Pégasus")
    clicked = action("e-2", "click", "sku-2", request_id="r-1", position=2)

    if same_batch:
        send(api, shown, clicked)
    else:
        send(api, shown)
        send(api, clicked)

    (click,) = stored(api, type="click")
    assert (click.request_id, click.query, click.surface, click.position) == (
        "r-1",
        "pegasus",
        "autocomplete",
        2,
    )
    assert click.request_attributed is False


def test_a_click_on_a_request_of_another_tenant_inherits_nothing(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    send(other_api, impression("e-1", "r-1", ["sku-1"], query="secret query"))

    send(api, action("e-2", "click", "sku-1", request_id="r-1"))

    (click,) = stored(api, type="click")
    assert (click.query, click.surface) == ("", "")


@pytest.mark.parametrize("kind", ["add_to_cart", "purchase"])
def test_a_cart_or_purchase_without_request_is_attributed_to_the_latest_click(
    api: ApiCaller, kind: str
) -> None:
    send(
        api,
        impression("i-old", "r-old", ["sku-1"], query="trail", timestamp=ago(days=3)),
        impression("i-new", "r-new", ["sku-1"], query="road", timestamp=ago(days=1)),
        impression("i-other", "r-other", ["sku-2"], query="socks", timestamp=ago(hours=2)),
        action("c-old", "click", "sku-1", request_id="r-old", timestamp=ago(days=3)),
        action("c-new", "click", "sku-1", request_id="r-new", timestamp=ago(days=1)),
        action("c-other", "click", "sku-2", request_id="r-other", timestamp=ago(hours=2)),
    )

    send(api, action("a-1", kind, "sku-1"))

    (row,) = stored(api, event_id="a-1")
    assert (row.request_id, row.query, row.surface, row.request_attributed) == (
        "r-new",
        "road",
        "search",
        True,
    )


def test_attribution_also_uses_a_click_in_the_same_batch(api: ApiCaller) -> None:
    send(
        api,
        impression("i-1", "r-1", ["sku-1"], query="road"),
        action("c-1", "click", "sku-1", request_id="r-1"),
        action("p-1", "purchase", "sku-1", timestamp=ago(minutes=5)),
    )

    (purchase,) = stored(api, event_id="p-1")
    assert (purchase.request_id, purchase.query, purchase.request_attributed) == (
        "r-1",
        "road",
        True,
    )


def test_a_click_older_than_seven_days_is_not_attributed(api: ApiCaller) -> None:
    send(
        api,
        impression("i-1", "r-1", ["sku-1"], timestamp=ago(days=8)),
        action("c-1", "click", "sku-1", request_id="r-1", timestamp=ago(days=8)),
    )

    send(api, action("p-1", "purchase", "sku-1"))

    (purchase,) = stored(api, event_id="p-1")
    assert (purchase.request_id, purchase.query, purchase.request_attributed) == ("", "", False)


def test_another_shoppers_click_is_not_attributed(api: ApiCaller) -> None:
    send(
        api,
        impression("i-1", "r-1", ["sku-1"]),
        action("c-1", "click", "sku-1", request_id="r-1", user_id="u-7"),
    )

    send(api, action("p-1", "purchase", "sku-1"))

    (purchase,) = stored(api, event_id="p-1")
    assert (purchase.request_id, purchase.request_attributed) == ("", False)


def test_purchase_revenue_is_price_times_quantity(api: ApiCaller) -> None:
    send(api, action("p-1", "purchase", "sku-1", price=19.5, quantity=3))

    (purchase,) = stored(api, event_id="p-1")
    assert (purchase.price, purchase.quantity, purchase.revenue) == (19.5, 3, pytest.approx(58.5))


def test_a_click_shows_in_the_shoppers_profile(api: ApiCaller) -> None:
    put_item(api, "sku-1", "Asics", ["shoes", "shoes/running"])

    send(api, action("c-1", "click", "sku-1"))

    profile = signal_store().shopper_profile(api.customer.pk, "u:u-42")
    assert set(profile.brand_weights) == {"Asics"}
    assert set(profile.category_weights) == {"shoes", "shoes/running"}
    assert min([*profile.brand_weights.values(), *profile.category_weights.values()]) > 0
    assert profile.recently_viewed == {"sku-1"}
    assert profile.purchased == frozenset()


def test_a_purchase_puts_the_item_among_the_shoppers_purchases(api: ApiCaller) -> None:
    put_item(api, "sku-1", "Asics", ["shoes"])
    put_item(api, "sku-2", "Hoka", ["shoes"])
    send(api, action("c-1", "click", "sku-1"))
    clicked_only = signal_store().shopper_profile(api.customer.pk, "u:u-42")

    send(api, action("p-1", "purchase", "sku-2"))

    profile = signal_store().shopper_profile(api.customer.pk, "u:u-42")
    assert profile.purchased == {"sku-2"}
    assert profile.recently_viewed == {"sku-1"}
    assert profile.brand_weights["Hoka"] > 0
    assert profile.category_weights["shoes"] > clicked_only.category_weights["shoes"]


def test_a_resent_click_does_not_count_twice_in_the_profile(api: ApiCaller) -> None:
    put_item(api, "sku-1", "Asics", ["shoes"])
    send(api, action("c-1", "click", "sku-1"))
    once = signal_store().shopper_profile(api.customer.pk, "u:u-42")

    send(api, action("c-1", "click", "sku-1"))

    assert signal_store().shopper_profile(api.customer.pk, "u:u-42") == once


def test_shopper_profiles_of_one_tenant_are_invisible_to_another(
    api: ApiCaller, other_api: ApiCaller
) -> None:
    put_item(api, "sku-1", "Asics", ["shoes"])
    put_item(other_api, "sku-1", "Hoka", ["boots"])
    send(api, action("c-1", "click", "sku-1"))

    assert signal_store().shopper_profile(other_api.customer.pk, "u:u-42").is_empty

    send(other_api, action("c-1", "click", "sku-1"))

    mine = signal_store().shopper_profile(api.customer.pk, "u:u-42")
    theirs = signal_store().shopper_profile(other_api.customer.pk, "u:u-42")
    assert (set(mine.brand_weights), set(mine.category_weights)) == ({"Asics"}, {"shoes"})
    assert (set(theirs.brand_weights), set(theirs.category_weights)) == ({"Hoka"}, {"boots"})


def test_events_are_stored_when_redis_is_unreachable(api: ApiCaller, settings: Any) -> None:
    put_item(api, "sku-1", "Asics", ["shoes"])
    settings.SIGNAL_STORE = {
        **settings.SIGNAL_STORE,
        "BACKEND": "redis",
        "URL": "redis://127.0.0.1:1/0",
    }
    reset_signal_store()

    response = api.post("/v1/events", {"events": full_funnel()})

    assert response.status_code == 202
    assert response.json() == {"accepted": 4, "duplicates": 0}
    assert len(stored(api)) == 6
