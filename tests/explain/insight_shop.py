"""A small shop's search traffic for the insight pages' tests: searches sent through /v1/events
with the counts the queries page must show, and logged rank requests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from customers.models import Customer
from ranking.models import RankLog
from ranking.signals.schema import FEATURES, RELEVANCE_COLUMN
from tests.conftest import ApiCaller
from tests.factories import RankLogFactory

IDS = [f"sku-{i}" for i in range(8)]


@dataclass
class Expected:
    """What the page must show for one query, counted from the events as they are sent."""

    searches: int = 0
    clicks: int = 0
    clicked: set[str] = field(default_factory=set)
    carted: set[str] = field(default_factory=set)
    bought: set[str] = field(default_factory=set)
    revenue: float = 0.0

    def row(self) -> dict[str, str]:
        def share(part: int) -> str:
            return f"{100 * part / self.searches:.1f}%"

        return {
            "searches": str(self.searches),
            "clicks": str(self.clicks),
            "ctr": share(len(self.clicked)),
            "cart-rate": share(len(self.carted)),
            "conversion": share(len(self.bought)),
            "revenue-per-search": f"{self.revenue / self.searches:,.2f}",
        }


class Traffic:
    """Searches with what shoppers did, as /v1/events batches, and the expected counts."""

    def __init__(self, api: ApiCaller) -> None:
        self.api = api
        self.events: list[dict[str, Any]] = []
        self.expected: dict[tuple[int, str], Expected] = defaultdict(Expected)  # (days, query)
        self.number = 0

    def search(
        self,
        query: str,
        *,
        days_ago: float = 1.0,
        clicks: int = 0,
        carts: int = 0,
        purchases: tuple[tuple[int, float], ...] = (),
        surface: str = "search",
    ) -> None:
        """One search shown 4 items; `clicks` clicks on its first items, `carts` add-to-carts
        and `purchases` (quantity, price) on its first item."""
        self.number += 1
        request_id = f"req-{self.number}"
        at = timezone.now() - timedelta(days=days_ago)
        stamp = at.isoformat()
        user = f"u-{self.number}"
        self.events.append(
            {
                "event_id": f"imp-{self.number}",
                "type": "impression",
                "timestamp": stamp,
                "user_id": user,
                "request_id": request_id,
                "surface": surface,
                "query": query,
                "items": IDS[:4],
            }
        )
        for n in range(clicks):
            self.events.append(
                {
                    "event_id": f"clk-{self.number}-{n}",
                    "type": "click",
                    "timestamp": stamp,
                    "user_id": user,
                    "request_id": request_id,
                    "item_id": IDS[n % 4],
                    "position": n % 4 + 1,
                }
            )
        for n in range(carts):
            self.events.append(
                {
                    "event_id": f"cart-{self.number}-{n}",
                    "type": "add_to_cart",
                    "timestamp": stamp,
                    "user_id": user,
                    "request_id": request_id,
                    "item_id": IDS[0],
                    "quantity": 1,
                }
            )
        for n, (quantity, price) in enumerate(purchases):
            self.events.append(
                {
                    "event_id": f"buy-{self.number}-{n}",
                    "type": "purchase",
                    "timestamp": stamp,
                    "user_id": user,
                    "request_id": request_id,
                    "item_id": IDS[0],
                    "quantity": quantity,
                    "price": price,
                }
            )
        if surface != "search":
            return
        for days in (7, 28, 90):
            if days_ago >= days:
                continue
            expected = self.expected[days, query]
            expected.searches += 1
            expected.clicks += clicks
            if clicks:
                expected.clicked.add(request_id)
            if carts:
                expected.carted.add(request_id)
            if purchases:
                expected.bought.add(request_id)
            expected.revenue += sum(quantity * price for quantity, price in purchases)

    def send(self) -> None:
        for start in range(0, len(self.events), 1000):
            response = self.api.post("/v1/events", {"events": self.events[start : start + 1000]})
            assert response.status_code == 202, response.content
        self.events.clear()


def log_request(
    customer: Customer,
    request_id: str,
    query: str,
    item_ids: list[str],
    *,
    days_ago: float = 1,
    surface: str = "search",
    category: str = "",
) -> RankLog:
    features = np.zeros((len(item_ids), len(FEATURES)), dtype="<f4")
    features[:, RELEVANCE_COLUMN] = np.linspace(1.5, -1.5, len(item_ids))
    return RankLogFactory(
        customer=customer,
        request_id=request_id,
        surface=surface,
        query=query,
        category=category,
        item_ids=item_ids,
        features=features.tobytes(),
        created_at=timezone.now() - timedelta(days=days_ago),
    )
