"""Ranking quality on the shopper simulator, through the public API: what `make quality` runs.

A shop (catalog by `PUT /v1/catalog/items`) gets simulated traffic: each session is ranked by
`POST /v1/rank`, the simulated shopper answers the page shown, and the events go to
`POST /v1/events`; an operator runs the management commands (`refresh_signals`, `train_model
--activate`, which keeps every guard). Then fresh sessions are ranked by the service and by the
reference orders, and each order is scored against the shoppers' true preferences.

Scenarios (docs/quality.md):
- `compressed`: all traffic before the first refresh, then one operator cycle;
- `steady`: refreshes every `refresh_every` sessions, a training cycle halfway and one at the end;
- `history`: months of impressions, clicks and purchases imported as events, no rank log, then
  one operator cycle.

Per ranker and surface: NDCG@10 against the true click probabilities, and the expected clicks,
purchases and revenue per session (expectations under the simulator's own model, so two rankers
compared on the same sessions differ by their orders only, not by sampling luck).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from demo.simulation import (
    PAGE_SIZE,
    Session,
    ShopWorld,
    build_world,
    click_probability,
    expected_outcomes,
    expected_revenue_per_look,
    item_revenue_per_look,
    retriever_order,
    shopper_events,
    simulated_sessions,
)
from ranking.signals.features import REGISTRY, SHOPPER_FAMILIES

SURFACES = ("search", "browse")
SCENARIOS = ("compressed", "steady", "history")
# "oracle": by each shopper's true click probability (the NDCG@10 ideal); "revenue oracle": by
# each shopper's true expected revenue of a looked-at item (the revenue ideal); "item revenue
# oracle": by the item's true expected revenue averaged over its category's shoppers (the most a
# ranker that knows nothing of the shopper can earn).
REFERENCE_RANKERS = (
    "random",
    "retriever",
    "popularity",
    "oracle",
    "revenue oracle",
    "item revenue oracle",
)
METRICS = ("ndcg@10", "clicks", "purchases", "revenue")
EVENT_BATCH = 200
# Every API process serves a newly activated model within about a second (runtime_sync).
SWITCH_SECONDS = 1.5
# Share of sessions followed by a second request of the same visit.
FOLLOW_UPS = 0.3
# Feature families the ablation trains without (docs/quality.md).
FAMILIES: dict[str, tuple[str, ...]] = {
    "shopper affinities": ("user_category_affinity", "user_brand_affinity"),
    "price band": ("user_price_gap",),
    "session": ("session_category_affinity", "session_brand_affinity"),
    "recent items": ("user_recently_viewed", "user_purchased"),
    "query-item": ("query_ctr", "query_conversion_rate"),
}
# The benchmark's shoppers never pause long enough to start a second session, so the session
# affinities equal the shopper's over the whole history and a model trained without one family
# puts its weight on the other (docs/quality.md): this row removes both.
FAMILIES["shopper and session affinities"] = FAMILIES["shopper affinities"] + FAMILIES["session"]
FAMILIES["every personal feature"] = tuple(
    feature.name for feature in REGISTRY if feature.family in SHOPPER_FAMILIES
)


class Shop(Protocol):
    """The public surface the benchmark drives: the API and the operator's commands."""

    def put_items(self, items: list[dict[str, Any]]) -> None: ...

    def send_events(self, events: list[dict[str, Any]]) -> None: ...

    def rank(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def command(self, *args: str) -> str:
        """Run `manage.py <args>` for this shop; returns its output."""
        ...


@dataclass(frozen=True)
class Sizes:
    items: int = 2000
    shoppers: int = 1500
    sessions: int = 20_000
    eval_sessions: int = 2000
    refresh_every: int = 2000
    history_days: int = 28


QUICK = Sizes(
    items=300, shoppers=300, sessions=3000, eval_sessions=400, refresh_every=600, history_days=10
)


@dataclass
class Traffic:
    """What the benchmark knows of the traffic it sent: engagement per item (the popularity
    order a shop already has, counted from events) and counts by event type."""

    engagement: np.ndarray
    counts: dict[str, int]

    def add(self, world: ShopWorld, events: list[dict[str, Any]]) -> None:
        index = {item_id: n for n, item_id in enumerate(world.item_ids)}
        weights = {"click": 1.0, "add_to_cart": 3.0, "purchase": 10.0}
        for event in events:
            self.counts[event["type"]] = self.counts.get(event["type"], 0) + 1
            if event["type"] in weights:
                self.engagement[index[event["item_id"]]] += weights[event["type"]]


def _now() -> datetime:
    return datetime.now(UTC)


def _served_order(world: ShopWorld, session: Session, response: dict[str, Any]) -> np.ndarray:
    index = {world.item_ids[i]: i for i in session.candidates}
    return np.array([index[item["id"]] for item in response["items"]], dtype=np.int64)


def _as_they_happen(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events of a session happening now, stamped now (a microsecond apart, in order): the
    simulator spaces a visit's actions over minutes, which in compressed real time would stamp
    them in the future of the requests that follow."""
    now = _now()
    for offset, event in enumerate(events):
        event["timestamp"] = (now + timedelta(microseconds=offset)).isoformat()
    return events


def run_traffic(
    shop: Shop,
    world: ShopWorld,
    traffic: Traffic,
    *,
    sessions: int,
    seed: int,
    between: Callable[[int], None] | None = None,
) -> None:
    """Sessions happening now, ranked by the service; their events sent in batches (before a
    follow-up request, so the visit's first actions are known when it is ranked)."""
    batch: list[dict[str, Any]] = []
    now = _now()
    stream = simulated_sessions(
        world,
        sessions=sessions,
        start=now,
        end=now + timedelta(seconds=1),
        seed=seed,
        follow_ups=FOLLOW_UPS,
    )
    previous: Session | None = None
    for done, (_, session, rng) in enumerate(stream, 1):
        if previous is not None and session.shopper == previous.shopper and batch:
            shop.send_events(batch)
            batch = []
        session = replace(session, at=_now())
        response = shop.rank(session.rank_request(world))
        shown = _served_order(world, session, response)
        events = _as_they_happen(shopper_events(world, session, shown, rng, response["request_id"]))
        traffic.add(world, events)
        batch.extend(events)
        previous = session
        if len(batch) >= EVENT_BATCH:
            shop.send_events(batch)
            batch = []
        if between is not None:
            if batch:
                shop.send_events(batch)
                batch = []
            between(done)
    if batch:
        shop.send_events(batch)


def import_history(
    shop: Shop, world: ShopWorld, traffic: Traffic, *, sessions: int, days: int, seed: int
) -> None:
    """Past sessions shown in the retriever's order, imported as events with their request ids
    (a retailer's history on day one): no rank log."""
    end = _now() - timedelta(hours=1)
    batch: list[dict[str, Any]] = []
    stream = simulated_sessions(
        world,
        sessions=sessions,
        start=end - timedelta(days=days),
        end=end,
        seed=seed,
        follow_ups=FOLLOW_UPS,
    )
    for request_id, session, rng in stream:
        shown = retriever_order(session)[:PAGE_SIZE]
        events = shopper_events(world, session, shown, rng, f"hist-{request_id}")
        traffic.add(world, events)
        batch.extend(events)
        if len(batch) >= EVENT_BATCH:
            shop.send_events(sorted(batch, key=lambda event: event["timestamp"]))
            batch = []
    if batch:
        shop.send_events(sorted(batch, key=lambda event: event["timestamp"]))


def operator_cycle(shop: Shop, slug: str, *, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Refresh, then train each surface and activate it if every guard passes. Returns what
    each surface serves afterwards, or why the new model was refused."""
    shop.command("refresh_signals", "--customer", slug)
    outcome = {}
    for surface in SURFACES:
        try:
            output = shop.command("train_model", slug, surface, "--activate", *extra)
        except CommandFailed as exc:
            outcome[surface] = f"kept the live ranker: {exc}"
        else:
            served = [line for line in output.splitlines() if "now serves" in line]
            outcome[surface] = served[-1].strip() if served else output.strip().splitlines()[-1]
    time.sleep(SWITCH_SECONDS)
    return outcome


class CommandFailed(Exception):
    """A management command refused or failed; the message is its error."""


def _ndcg10(gains: np.ndarray, order_gains: np.ndarray) -> float:
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.sort(gains)[::-1][:10]
    top = order_gains[:10]
    return float((top * discounts[: len(top)]).sum() / (ideal * discounts[: len(ideal)]).sum())


def evaluate(
    shop: Shop,
    world: ShopWorld,
    traffic: Traffic,
    *,
    sessions: int,
    seed: int,
    rankers: tuple[str, ...] = ("service", *REFERENCE_RANKERS),
    send: bool = True,
) -> dict[str, dict[str, dict[str, float]]]:
    """surface -> ranker -> metric -> mean per session, on fresh sessions. Every ranker faces
    the same shop: what shoppers do with the service's pages is sent only after the last
    session (with `send`), so that these requests, which the rank log keeps, have their outcomes
    like any other traffic."""
    rng = np.random.default_rng(seed + 999)
    shoppers_rng = np.random.default_rng(seed + 998)
    answered: list[dict[str, Any]] = []
    sums: dict[str, dict[str, dict[str, list[float]]]] = {
        surface: {ranker: {metric: [] for metric in METRICS} for ranker in rankers}
        for surface in SURFACES
    }
    item_value = item_revenue_per_look(world)
    now = _now()
    stream = simulated_sessions(
        world,
        sessions=sessions,
        start=now,
        end=now + timedelta(seconds=1),
        seed=seed + 999,
        follow_ups=0.0,
    )
    for _, session, _ in stream:
        gains_of = click_probability(world, session, session.candidates)
        gain = dict(zip(session.candidates.tolist(), gains_of.tolist(), strict=True))
        for ranker in rankers:
            if ranker == "service":
                response = shop.rank(session.rank_request(world))
                order = _served_order(world, session, response)
                if send:
                    answered += _as_they_happen(
                        shopper_events(
                            world, session, order[:PAGE_SIZE], shoppers_rng, response["request_id"]
                        )
                    )
            elif ranker == "random":
                order = rng.permutation(session.candidates)
            elif ranker == "retriever":
                order = retriever_order(session)
            elif ranker == "popularity":
                scores = traffic.engagement[session.candidates]
                order = session.candidates[np.lexsort((session.candidates, -scores))]
            elif ranker == "item revenue oracle":
                value = item_value[session.candidates]
                order = session.candidates[np.argsort(-value, kind="stable")]
            elif ranker == "revenue oracle":
                value = expected_revenue_per_look(world, session, session.candidates)
                order = session.candidates[np.argsort(-value, kind="stable")]
            else:
                order = session.candidates[np.argsort(-gains_of, kind="stable")]
            page = order[:PAGE_SIZE]
            values = expected_outcomes(world, session, page)
            values["ndcg@10"] = _ndcg10(gains_of, np.array([gain[i] for i in order]))
            for metric in METRICS:
                sums[session.surface][ranker][metric].append(values[metric])
    traffic.add(world, answered)
    for start in range(0, len(answered), EVENT_BATCH):
        shop.send_events(answered[start : start + EVENT_BATCH])
    return {
        surface: {
            ranker: {metric: float(np.mean(values)) for metric, values in by_metric.items()}
            for ranker, by_metric in by_ranker.items()
        }
        for surface, by_ranker in sums.items()
    }


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    seed: int
    results: dict[str, dict[str, dict[str, float]]]  # surface -> ranker -> metric
    served: dict[str, str]  # what each surface served at the end, in the operator's words
    traffic: dict[str, int]
    seconds: float
    ablation: dict[str, dict[str, dict[str, float]]] | None = None  # family -> surface -> metric


def run_scenario(
    shop_factory: Callable[[str], tuple[Shop, str]],
    scenario: str,
    seed: int,
    sizes: Sizes,
    *,
    ablation: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> ScenarioResult:
    """One scenario on a new shop (`shop_factory(name)` creates the customer and returns its
    client and slug)."""
    started = time.perf_counter()
    world = build_world(n_items=sizes.items, n_shoppers=sizes.shoppers, seed=seed)
    shop, slug = shop_factory(f"quality-{scenario}-{seed}-{uuid.uuid4().hex[:6]}")
    catalog = world.catalog()
    for start in range(0, len(catalog), 5000):
        shop.put_items(catalog[start : start + 5000])
    traffic = Traffic(np.zeros(len(world.item_ids)), {})
    served: dict[str, str] = {}
    blend: dict[str, dict[str, dict[str, float]]] = {}
    progress(f"{scenario} seed {seed}: {sizes.sessions} sessions of traffic")
    if scenario == "compressed":
        run_traffic(shop, world, traffic, sessions=sizes.sessions, seed=seed)
    elif scenario == "steady":
        half = sizes.sessions // 2

        def refresh(done: int) -> None:
            if done % sizes.refresh_every == 0:
                shop.command("refresh_signals", "--customer", slug)

        run_traffic(shop, world, traffic, sessions=half, seed=seed, between=refresh)
        progress(f"{scenario} seed {seed}: first training cycle")
        served = operator_cycle(shop, slug)
        run_traffic(
            shop, world, traffic, sessions=sizes.sessions - half, seed=seed + 1, between=refresh
        )
    else:
        import_history(
            shop, world, traffic, sessions=sizes.sessions, days=sizes.history_days, seed=seed
        )
    # The cold start: the customer's blend on fresh signals, before this cycle's models.
    if scenario != "steady":
        shop.command("refresh_signals", "--customer", slug)
        progress(f"{scenario} seed {seed}: evaluating the blend")
        blend = evaluate(
            shop, world, traffic, sessions=sizes.eval_sessions, seed=seed, rankers=("service",)
        )
    progress(f"{scenario} seed {seed}: training cycle")
    served = operator_cycle(shop, slug)
    progress(f"{scenario} seed {seed}: evaluating")
    results = evaluate(shop, world, traffic, sessions=sizes.eval_sessions, seed=seed)
    for surface in SURFACES:
        if blend:
            results[surface]["blend"] = blend[surface]["service"]
    ablations = None
    if ablation:
        ablations = _ablation(shop, world, traffic, slug, sizes, seed, progress)
    return ScenarioResult(
        scenario=scenario,
        seed=seed,
        results=results,
        served=served,
        traffic=dict(traffic.counts),
        seconds=time.perf_counter() - started,
        ablation=ablations,
    )


def _ablation(
    shop: Shop,
    world: ShopWorld,
    traffic: Traffic,
    slug: str,
    sizes: Sizes,
    seed: int,
    progress: Callable[[str], None],
) -> dict[str, dict[str, dict[str, float]]]:
    """A model trained on every feature and one per feature family trained without it, all on
    the same requests; then each served in turn (with a recorded override) and evaluated on the
    same fresh sessions, whose events are not sent."""
    families = {"nothing (every feature)": (), **FAMILIES}
    versions: dict[str, dict[str, str]] = {}
    for family, features in families.items():
        progress(f"ablation seed {seed}: training without {family}")
        for surface in SURFACES:
            try:
                output = shop.command("train_model", slug, surface, "--without", ",".join(features))
            except CommandFailed as exc:
                progress(f"  {surface}: not trained: {exc}")
                continue
            registered = [line for line in output.splitlines() if line.startswith("Registered ")]
            label = registered[-1].split()[1]
            versions.setdefault(family, {})[surface] = label.rsplit("@", 1)[1]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for family, by_surface in versions.items():
        for surface, version in by_surface.items():
            shop.command(
                "activate_model",
                slug,
                surface,
                version,
                "--override-reason",
                f"quality ablation: without {family}",
            )
        time.sleep(SWITCH_SECONDS)
        results = evaluate(
            shop,
            world,
            traffic,
            sessions=sizes.eval_sessions,
            seed=seed,
            rankers=("service",),
            send=False,
        )
        out[family] = {surface: results[surface]["service"] for surface in by_surface}
    return out


def summarise(runs: list[ScenarioResult]) -> dict[str, Any]:
    """Mean and 95% interval over seeds of every metric, and the ratios to popularity."""
    table: dict[str, Any] = {}
    for scenario in {run.scenario for run in runs}:
        chosen = [run for run in runs if run.scenario == scenario]
        table[scenario] = {}
        for surface in SURFACES:
            rankers = chosen[0].results[surface].keys()
            table[scenario][surface] = {}
            for ranker in rankers:
                row = {}
                for metric in METRICS:
                    values = np.array([run.results[surface][ranker][metric] for run in chosen])
                    ratios = np.array(
                        [
                            run.results[surface][ranker][metric]
                            / max(run.results[surface]["popularity"][metric], 1e-12)
                            for run in chosen
                        ]
                    )
                    row[metric] = _interval(values)
                    row[f"{metric} vs popularity"] = _interval(ratios)
                table[scenario][surface][ranker] = row
    return table


def _interval(values: np.ndarray) -> dict[str, float]:
    """Mean and a 95% t-interval over seeds (t for n - 1 degrees of freedom)."""
    t = {1: float("nan"), 2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57}.get(len(values), 2.45)
    mean = float(values.mean())
    half = t * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4)}


def iter_runs(
    shop_factory: Callable[[str], tuple[Shop, str]],
    *,
    scenarios: tuple[str, ...],
    seeds: tuple[int, ...],
    sizes: Sizes,
    ablation_scenario: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Iterator[ScenarioResult]:
    for scenario in scenarios:
        for seed in seeds:
            yield run_scenario(
                shop_factory,
                scenario,
                seed,
                sizes,
                ablation=scenario == ablation_scenario and seed == seeds[0],
                progress=progress,
            )
