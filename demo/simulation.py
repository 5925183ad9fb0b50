"""A shopper simulator: a shop whose shoppers have latent tastes and look at results with
position bias. It feeds the demo and the tests (and, later, learning-to-rank evaluation).

The truth, known only here:
- each item has a latent quality; each shopper a preference over categories and brands and a
  price sensitivity; utility(u, i) = quality_i + 1.5 pref_cat[u, cat_i] + 1.0 pref_brand[u, brand_i]
  - sensitivity_u * price_z_i;
- a shopper examines position k with probability 1 / k ** POSITION_BIAS_ETA, clicks an examined
  item with probability sigmoid(utility - 2), adds a clicked item to the cart with probability
  CART_RATE * sigmoid(utility - 1) and buys a carted item with probability BUY_RATE.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

POSITION_BIAS_ETA = 1.0
CART_RATE = 0.25
BUY_RATE = 0.5
PAGE_SIZE = 20
CANDIDATES_PER_SESSION = 40

DEPARTMENTS: dict[str, dict[str, list[str]]] = {
    "shoes": {
        "running": ["running shoes", "trainers", "marathon shoes"],
        "trail": ["trail shoes", "hiking shoes"],
        "casual": ["sneakers", "casual shoes"],
    },
    "clothing": {
        "jackets": ["rain jacket", "down jacket", "jacket"],
        "shirts": ["t-shirt", "running shirt", "shirt"],
        "trousers": ["running tights", "trousers", "shorts"],
    },
    "outdoor": {
        "tents": ["tent", "camping tent", "2 person tent"],
        "backpacks": ["backpack", "hiking backpack", "daypack"],
        "lamps": ["headlamp", "camping lamp"],
    },
    "electronics": {
        "watches": ["gps watch", "running watch", "smartwatch"],
        "headphones": ["headphones", "wireless earbuds", "sport headphones"],
    },
}
BRANDS = [
    "Northpeak",
    "Strider",
    "Kestrel",
    "Aldergrove",
    "Fjellbu",
    "Quanta",
    "Velox",
    "Marlowe",
    "Tundra Co",
    "Sable",
    "Brightwater",
    "Cobalt",
    "Juniper",
    "Orbit",
    "Halden",
    "Pioneer",
    "Redwing",
    "Solace",
    "Trailhead",
    "Windrose",
    "Atlas",
    "Borealis",
    "Cascade",
    "Drift",
]
ADJECTIVES = ["Pro", "Lite", "Max", "Trail", "Air", "Ultra", "Classic", "Evo", "Flex", "Storm"]
COLORS = ["black", "blue", "red", "green", "grey", "white", "orange"]
PRICE_LEVEL = {"shoes": 110, "clothing": 60, "outdoor": 140, "electronics": 180}


@dataclass(frozen=True)
class Category:
    department: str
    leaf: str
    queries: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"{self.department}/{self.leaf}"


@dataclass
class ShopWorld:
    """The simulated shop and its shoppers, with the latent truth behind their behaviour."""

    categories: list[Category]
    item_ids: list[str]
    item_titles: list[str]
    item_brand: np.ndarray  # index into BRANDS
    item_category: np.ndarray  # index into categories
    item_price: np.ndarray
    item_age_days: np.ndarray
    item_in_stock: np.ndarray
    item_quality: np.ndarray
    shopper_ids: list[str]
    pref_category: np.ndarray  # shoppers x categories
    pref_brand: np.ndarray  # shoppers x brands
    price_sensitivity: np.ndarray
    shopper_activity: np.ndarray  # probability of each shopper starting a session

    def utility(self, shopper: int, items: np.ndarray) -> np.ndarray:
        """The true utility of items for a shopper: what a perfect ranker would sort by."""
        log_price, mean, std = self._log_prices
        price_z = (log_price[items] - mean) / std
        return (
            self.item_quality[items]
            + 1.5 * self.pref_category[shopper, self.item_category[items]]
            + 1.0 * self.pref_brand[shopper, self.item_brand[items]]
            - self.price_sensitivity[shopper] * price_z
        )

    # What every session and utility reads of the catalog, worked out once per world (the world
    # is not changed after build_world): the same arrays each call worked out anew, so the
    # draws and utilities are the same numbers, in a fraction of the time.
    @functools.cached_property
    def _log_prices(self) -> tuple[np.ndarray, float, float]:
        log_price = np.log(self.item_price)
        return log_price, log_price.mean(), log_price.std()

    @functools.cached_property
    def _activity_cdf(self) -> np.ndarray:
        return _cdf(self.shopper_activity)

    def _category_cdf(self, shopper: int) -> np.ndarray:
        """Which category the shopper browses or searches: by taste, every category possible."""
        cdfs = self.__dict__.setdefault("_category_cdfs", {})
        cdf = cdfs.get(shopper)
        if cdf is None:
            taste = self.pref_category[shopper] + 0.05
            cdf = cdfs[shopper] = _cdf(taste / taste.sum())
        return cdf

    @functools.cached_property
    def _category_items(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.item_category == n) for n in range(len(self.categories))]

    @functools.cached_property
    def _department_items(self) -> dict[str, np.ndarray]:
        item_department = np.array([c.department for c in self.categories])[self.item_category]
        return {
            department: np.flatnonzero(item_department == department)
            for department in {c.department for c in self.categories}
        }

    def catalog(self) -> list[dict[str, Any]]:
        """The catalog as the catalog API takes it."""
        rows = []
        for index, item_id in enumerate(self.item_ids):
            category = self.categories[self.item_category[index]]
            rows.append(
                {
                    "id": item_id,
                    "title": self.item_titles[index],
                    "brand": BRANDS[self.item_brand[index]],
                    "categories": [category.department, category.path],
                    "price": round(float(self.item_price[index]), 2),
                    "in_stock": bool(self.item_in_stock[index]),
                    "attributes": {"color": COLORS[index % len(COLORS)]},
                }
            )
        return rows


def build_world(*, n_items: int, n_shoppers: int, seed: int = 7) -> ShopWorld:
    rng = np.random.default_rng(seed)
    categories = [
        Category(department, leaf, tuple(queries))
        for department, leaves in DEPARTMENTS.items()
        for leaf, queries in leaves.items()
    ]
    n_categories = len(categories)
    item_category = rng.integers(0, n_categories, n_items)
    # Brands specialise: each category is served mostly by a handful of brands.
    brand_pool = [rng.choice(len(BRANDS), size=6, replace=False) for _ in categories]
    item_brand = np.array([rng.choice(brand_pool[c]) for c in item_category])
    base_price = np.array([PRICE_LEVEL[categories[c].department] for c in item_category])
    item_price = np.round(base_price * rng.lognormal(0.0, 0.45, n_items), 2) + 0.99
    titles = [
        " ".join(
            [
                BRANDS[item_brand[i]],
                str(rng.choice(ADJECTIVES)),
                categories[item_category[i]].leaf.rstrip("s").title(),
                str(i),
            ]
        )
        for i in range(n_items)
    ]
    pref_category = rng.dirichlet(np.full(n_categories, 0.3), n_shoppers) * 3.0
    pref_brand = rng.normal(0.0, 0.6, (n_shoppers, len(BRANDS)))
    activity = rng.pareto(2.0, n_shoppers) + 1.0
    return ShopWorld(
        categories=categories,
        item_ids=[f"sku-{i:05d}" for i in range(n_items)],
        item_titles=titles,
        item_brand=item_brand,
        item_category=item_category,
        item_price=item_price,
        item_age_days=rng.uniform(0, 365, n_items),
        item_in_stock=rng.random(n_items) > 0.05,
        item_quality=rng.normal(0.0, 1.0, n_items),
        shopper_ids=[f"shopper-{u:05d}" for u in range(n_shoppers)],
        pref_category=pref_category,
        pref_brand=pref_brand,
        price_sensitivity=rng.uniform(0.0, 0.8, n_shoppers),
        shopper_activity=activity / activity.sum(),
    )


@dataclass(frozen=True)
class Session:
    """One shopper's search or browse: what a rank request would carry."""

    shopper: int
    surface: str
    query: str
    category: int
    candidates: np.ndarray  # item indexes
    relevance: np.ndarray
    at: datetime

    def rank_request(self, world: ShopWorld, limit: int = PAGE_SIZE) -> dict[str, Any]:
        return {
            "surface": self.surface,
            "query": self.query or None,
            "category": world.categories[self.category].path if self.surface == "browse" else None,
            "user_id": world.shopper_ids[self.shopper],
            "items": [
                {"id": world.item_ids[i], "relevance": round(float(r), 4)}
                for i, r in zip(self.candidates, self.relevance, strict=True)
            ],
            "limit": limit,
        }


def draw_session(world: ShopWorld, rng: np.random.Generator, at: datetime) -> Session:
    """A shopper (by activity) searching or browsing a category they like (by taste)."""
    shopper = _pick(world._activity_cdf, rng)
    category = _pick(world._category_cdf(shopper), rng)
    return _session(world, rng, shopper, category, at)


def _pick(cdf: np.ndarray, rng: np.random.Generator) -> int:
    """`rng.choice(len(p), p=p)` for the `p` whose `_cdf` this is: the same draw, the same
    numbers taken from `rng`, without checking and summing `p` again on every call."""
    return int(cdf.searchsorted(rng.random(), side="right"))


def _cdf(p: np.ndarray) -> np.ndarray:
    """As numpy's `Generator.choice` makes it of `p`."""
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return cdf


def follow_up(world: ShopWorld, session: Session, rng: np.random.Generator) -> Session:
    """The same shopper's next request in the same visit: the same category, a few minutes on,
    searched or browsed anew (what the session's actions can tell the ranker about)."""
    at = session.at + timedelta(seconds=int(rng.integers(60, 600)))
    return _session(world, rng, session.shopper, session.category, at)


def _session(
    world: ShopWorld, rng: np.random.Generator, shopper: int, category: int, at: datetime
) -> Session:
    in_category = world._category_items[category]
    same_department = world._department_items[world.categories[category].department]
    pool = np.union1d(in_category, rng.choice(same_department, size=min(8, len(same_department))))
    candidates = rng.choice(pool, size=min(CANDIDATES_PER_SESSION, len(pool)), replace=False)
    # The retriever's text relevance: higher for the asked category, noisy, blind to taste.
    relevance = np.where(world.item_category[candidates] == category, 10.0, 6.0) + rng.normal(
        0.0, 1.5, len(candidates)
    )
    searching = rng.random() < 0.7
    query = str(rng.choice(world.categories[category].queries)) if searching else ""
    return Session(
        shopper=shopper,
        surface="search" if searching else "browse",
        query=query,
        category=category,
        candidates=candidates,
        relevance=relevance,
        at=at,
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def shopper_events(
    world: ShopWorld,
    session: Session,
    shown: np.ndarray,
    rng: np.random.Generator,
    request_id: str,
    eta: float = POSITION_BIAS_ETA,
) -> list[dict[str, Any]]:
    """What the shopper does with a page of `shown` item indexes, as /v1/events events;
    `eta` is the position bias (position k is examined with probability 1 / k ** eta)."""
    user_id = world.shopper_ids[session.shopper]
    stamp = session.at
    events: list[dict[str, Any]] = [
        {
            "event_id": f"imp-{request_id}",
            "type": "impression",
            "timestamp": stamp.isoformat(),
            "user_id": user_id,
            "request_id": request_id,
            "surface": session.surface,
            **({"query": session.query} if session.query else {}),
            "items": [world.item_ids[i] for i in shown],
        }
    ]
    utility = world.utility(session.shopper, shown)
    examined = rng.random(len(shown)) < 1.0 / np.arange(1, len(shown) + 1) ** eta
    clicked = examined & (rng.random(len(shown)) < _sigmoid(utility - 2.0))
    for position in np.flatnonzero(clicked):
        item = shown[position]
        stamp += timedelta(seconds=int(rng.integers(5, 90)))
        item_id = world.item_ids[item]
        events.append(
            {
                "event_id": f"clk-{request_id}-{position}",
                "type": "click",
                "timestamp": stamp.isoformat(),
                "user_id": user_id,
                "request_id": request_id,
                "item_id": item_id,
                "position": int(position) + 1,
            }
        )
        if not world.item_in_stock[item] or rng.random() >= CART_RATE * _sigmoid(
            utility[position] - 1.0
        ):
            continue
        stamp += timedelta(seconds=int(rng.integers(10, 300)))
        events.append(
            {
                "event_id": f"atc-{request_id}-{position}",
                "type": "add_to_cart",
                "timestamp": stamp.isoformat(),
                "user_id": user_id,
                "item_id": item_id,
                "quantity": 1,
            }
        )
        if rng.random() < BUY_RATE:
            stamp += timedelta(seconds=int(rng.integers(30, 900)))
            events.append(
                {
                    "event_id": f"pur-{request_id}-{position}",
                    "type": "purchase",
                    "timestamp": stamp.isoformat(),
                    "user_id": user_id,
                    "item_id": item_id,
                    "quantity": 1,
                    "price": round(float(world.item_price[item]), 2),
                }
            )
    return events


def click_probability(world: ShopWorld, session: Session, items: np.ndarray) -> np.ndarray:
    """How likely the shopper clicks each item once they look at it: the true gain a perfect
    ranker orders by."""
    return _sigmoid(world.utility(session.shopper, items) - 2.0)


def expected_revenue_per_look(world: ShopWorld, session: Session, items: np.ndarray) -> np.ndarray:
    """The revenue each item brings once the shopper looks at it: click, cart (in stock) and
    purchase probabilities times its price. Looking depends on the position alone, so sorting by
    this maximises a page's expected revenue: the ceiling of what any ranker can earn."""
    utility = world.utility(session.shopper, items)
    bought = (
        _sigmoid(utility - 2.0)
        * world.item_in_stock[items]
        * CART_RATE
        * _sigmoid(utility - 1.0)
        * BUY_RATE
    )
    return bought * np.round(world.item_price[items], 2)


def item_revenue_per_look(world: ShopWorld) -> np.ndarray:
    """Each item's expected revenue per look averaged over the shoppers who come to its category
    (weighted by how often they shop and how often they pick that category): the best a ranker
    that knows every item exactly but nothing of the shopper could sort by."""
    price_log = np.log(world.item_price)
    price_z = (price_log - price_log.mean()) / price_log.std()
    utility = (
        world.item_quality[None, :]
        + 1.5 * world.pref_category[:, world.item_category]
        + 1.0 * world.pref_brand[:, world.item_brand]
        - world.price_sensitivity[:, None] * price_z[None, :]
    )
    bought = (
        _sigmoid(utility - 2.0)
        * world.item_in_stock[None, :]
        * CART_RATE
        * _sigmoid(utility - 1.0)
        * BUY_RATE
    )
    taste = world.pref_category + 0.05
    taste = taste / taste.sum(axis=1, keepdims=True)
    visits = world.shopper_activity[:, None] * taste[:, world.item_category]
    return (visits * bought).sum(axis=0) / visits.sum(axis=0) * np.round(world.item_price, 2)


def expected_outcomes(
    world: ShopWorld, session: Session, shown: np.ndarray, eta: float = POSITION_BIAS_ETA
) -> dict[str, float]:
    """Expected clicks, purchases and revenue of showing `shown` (the page, best first), under
    the same model `shopper_events` samples from: no sampling noise in comparisons."""
    utility = world.utility(session.shopper, shown)
    seen = 1.0 / np.arange(1, len(shown) + 1) ** eta
    clicks = seen * _sigmoid(utility - 2.0)
    bought = clicks * world.item_in_stock[shown] * CART_RATE * _sigmoid(utility - 1.0) * BUY_RATE
    return {
        "clicks": float(clicks.sum()),
        "purchases": float(bought.sum()),
        "revenue": float((bought * np.round(world.item_price[shown], 2)).sum()),
    }


Ranker = Callable[[Session], np.ndarray]


def retriever_order(session: Session) -> np.ndarray:
    """Candidates in the retriever's order (relevance), as a shop without us would show them."""
    return session.candidates[np.argsort(-session.relevance, kind="stable")]


def simulated_sessions(
    world: ShopWorld,
    *,
    sessions: int,
    start: datetime,
    end: datetime,
    seed: int = 11,
    follow_ups: float = 0.0,
) -> Iterator[tuple[str, Session, np.random.Generator]]:
    """Yield (request id, session, the run's generator) in time order; request ids are unique
    per seed. With `follow_ups` > 0, that share of sessions is followed by a second request of
    the same shopper minutes later (yielded right after it, counted in `sessions`). Pass the
    generator on to `shopper_events` to keep a run reproducible."""
    rng = np.random.default_rng(seed)
    span = (end - start).total_seconds()
    offsets = np.sort(rng.uniform(0.0, span, sessions))
    namespace = uuid.UUID(int=seed)
    number = 0
    for offset in offsets:
        if number >= sessions:
            break
        session = draw_session(world, rng, start + timedelta(seconds=math.floor(offset)))
        yield str(uuid.uuid5(namespace, str(number))), session, rng
        number += 1
        if follow_ups and number < sessions and rng.random() < follow_ups:
            yield str(uuid.uuid5(namespace, str(number))), follow_up(world, session, rng), rng
            number += 1


def simulate(
    world: ShopWorld,
    *,
    sessions: int,
    start: datetime,
    end: datetime,
    seed: int = 11,
    ranker: Ranker = retriever_order,
) -> Iterator[list[dict[str, Any]]]:
    """Yield each session's events in time order; the page shown is the ranker's top 20."""
    for request_id, session, rng in simulated_sessions(
        world, sessions=sessions, start=start, end=end, seed=seed
    ):
        shown = ranker(session)[:PAGE_SIZE]
        yield shopper_events(world, session, shown, rng, request_id)
