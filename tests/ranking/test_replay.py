"""Point-in-time features rebuilt from the event log equal what the engine logged when its signals
were fresh, and never see events after the moment they rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from events.models import Event
from ranking.learning import rank_log
from ranking.learning.rank_log import logged_features, logged_relevance
from ranking.learning.replay import PastRequest, features_as_of
from ranking.models import RankLog
from ranking.services import signals_refresh
from ranking.signals import refresh
from ranking.signals.schema import FEATURE_INDEX, FEATURES, N_ITEM, QUERY_SLICE
from tests.conftest import ApiCaller
from tests.factories import CustomerFactory, ItemFactory
from tests.ranking.helpers import put_items, rank, send_events

pytestmark = pytest.mark.django_db

CATALOG = [
    {
        "id": f"sku-{n}",
        "title": f"Item {n}",
        "brand": ["Acme", "Zeta", "Orbit"][n % 3],
        "categories": ["shoes", "shoes/trail" if n % 2 else "shoes/running"],
        "price": None if n == 7 else 20.0 + 13.0 * n,
    }
    for n in range(10)
]


def _history(api: ApiCaller) -> None:
    """A fortnight of searches and browsing by three shoppers and some anonymous traffic, with
    clicks, carts and purchases, an item outside the catalog, and one shopper active minutes
    ago (a live session)."""
    rng = np.random.default_rng(8)
    now = timezone.now()
    events: list[dict[str, Any]] = []
    for n in range(60):
        at = now - timedelta(days=float(rng.uniform(0.2, 14)))
        shown = [f"sku-{i}" for i in rng.permutation(10)[:6]] + ["ghost-1"]
        user = ["u-1", "u-2", "u-3", None][n % 4]
        request_id = f"h-{n}"
        surface, query = (
            ("search", ["trail shoes", "running shoes"][n % 2]) if n % 3 else ("browse", None)
        )
        shopper = {"user_id": user} if user else {"session_id": f"s-{n}"}
        events.append(
            {
                "event_id": f"imp-{n}",
                "type": "impression",
                "timestamp": at.isoformat(),
                "request_id": request_id,
                "surface": surface,
                "items": shown,
                **({"query": query} if query else {}),
                **shopper,
            }
        )
        for position in range(3):
            if rng.random() < 0.5:
                item = shown[position]
                clicked = at + timedelta(seconds=30 + position)
                events.append(
                    {
                        "event_id": f"clk-{n}-{position}",
                        "type": "click",
                        "timestamp": clicked.isoformat(),
                        "request_id": request_id,
                        "item_id": item,
                        "position": position + 1,
                        **shopper,
                    }
                )
                if rng.random() < 0.4:
                    events.append(
                        {
                            "event_id": f"buy-{n}-{position}",
                            "type": "purchase",
                            "timestamp": (clicked + timedelta(minutes=2)).isoformat(),
                            "item_id": item,
                            "price": 25.0,
                            **shopper,
                        }
                    )
    events.append(
        {
            "event_id": "recent",
            "type": "add_to_cart",
            "user_id": "u-1",
            "timestamp": (now - timedelta(minutes=5)).isoformat(),
            "item_id": "sku-4",
        }
    )
    events.sort(key=lambda event: event["timestamp"])
    for start in range(0, len(events), 50):
        send_events(api, events[start : start + 50])


def test_rebuilt_features_equal_the_logged_ones_when_signals_were_fresh(api: ApiCaller) -> None:
    put_items(api, CATALOG)
    _history(api)
    signals_refresh(customer_id=api.customer.pk)
    requests = [
        {"surface": "search", "query": "Trail  shoes", "user_id": "u-1"},
        {"surface": "search", "query": "running shoes", "user_id": "u-2"},
        {"surface": "browse", "category": "shoes/trail", "user_id": "u-3"},
        {"surface": "search", "query": "never searched", "session_id": "s-new"},
    ]
    for n, request in enumerate(requests):
        items = [{"id": f"sku-{i}", "relevance": float((i * 7 + n) % 5)} for i in range(10)]
        rank(api, {**request, "items": [*items, {"id": "unknown-1"}, {"id": "ghost-1"}]})
    rank_log.flush()
    logged = list(RankLog.objects.filter(customer=api.customer).order_by("created_at"))
    assert len(logged) == len(requests)

    rebuilt = features_as_of(
        customer_id=api.customer.pk,
        requests=[
            PastRequest(
                request_id=row.request_id,
                at=row.created_at,
                query=row.query,
                shopper_key=row.shopper_key,
                item_ids=tuple(row.item_ids),
                relevance=logged_relevance(bytes(row.features), len(row.item_ids)),
                signals_at=row.signals_at,
            )
            for row in logged
        ],
    )

    assert all(row.items_by_reference for row in logged)  # the item columns stored once a version
    logged_features = np.concatenate([features_of(row) for row in logged])
    rebuilt_features = np.concatenate(rebuilt)
    # Every family of features is exercised, not left at its default.
    column = FEATURE_INDEX
    assert logged_features[:, column["clicks_long"]].any()
    assert (logged_features[:, column["query_ctr"]] != logged_features[:, column["ctr"]]).any()
    for name in (
        "user_category_affinity",
        "user_brand_affinity",
        "user_price_gap",
        "user_recently_viewed",
        "user_purchased",
        "session_category_affinity",
    ):
        assert logged_features[:, column[name]].any(), name
    # Equal, up to the order in which sums of floats were added (the database's or numpy's).
    np.testing.assert_allclose(rebuilt_features, logged_features, rtol=2e-6, atol=1e-6)
    assert (rebuilt_features == logged_features).mean() > 0.97


def features_of(row: RankLog) -> np.ndarray:
    features = logged_features(row)
    assert features is not None
    return features


def test_a_rebuilt_moment_never_counts_later_events() -> None:
    """Rebuilt as of a past moment, the item signals equal a refresh run at that moment on the
    events before it, whatever happened after."""
    customer = CustomerFactory()
    moment = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    for item in ("a", "b"):
        ItemFactory(customer=customer, external_id=item, price=30.0)

    def add(item: str, kind: str, count: int, at: datetime) -> None:
        Event.objects.bulk_create(
            Event(
                customer=customer,
                event_id=f"{item}-{kind}-{at}-{n}",
                type=kind,
                item_id=item,
                occurred_at=at,
                query="tent",
                revenue=9.0 if kind == "purchase" else 0.0,
            )
            for n in range(count)
        )

    add("a", "impression", 40, moment - timedelta(days=5))
    add("a", "click", 6, moment - timedelta(days=5))
    add("b", "impression", 30, moment - timedelta(days=2))
    add("b", "purchase", 2, moment - timedelta(days=2))
    before = refresh.compute_snapshot(customer_id=customer.pk, version=1, now=moment)[0]
    add("a", "click", 30, moment + timedelta(days=1))  # after the moment: must not count
    add("b", "impression", 500, moment + timedelta(hours=3))

    (rebuilt, claimed_later) = features_as_of(
        customer_id=customer.pk,
        requests=[
            PastRequest("r", moment, "tent", "", ("a", "b")),
            # a log row whose signal version claims a later time must not see later events
            PastRequest("s", moment, "tent", "", ("a", "b"), signals_at=moment + timedelta(days=2)),
        ],
    )
    np.testing.assert_array_equal(claimed_later, rebuilt)

    expected = before.item_records["signals"][
        [before.item_ids.index("a"), before.item_ids.index("b")]
    ]
    np.testing.assert_allclose(rebuilt[:, :N_ITEM], expected, rtol=1e-6)
    pairs = dict(zip(before.query_keys, before.query_records["signals"], strict=True))
    np.testing.assert_allclose(rebuilt[0, QUERY_SLICE], pairs[("tent", "a")], rtol=1e-6)
    assert rebuilt.shape == (2, len(FEATURES))
