"""The guardrail: the periodic check stops an experiment whose B earns significantly less revenue
per search than A, once it has the sample to say so; it records when and why, the readout says
it in words, and everyone gets A again. Stops by hand are recorded too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.celery import app
from customers.models import Customer
from ranking import services, tasks
from ranking.engine.experiments import shopper_bucket
from ranking.experiment_stats import (
    CONFIDENCE,
    always_valid_lift,
    ratio_estimate,
    relative_lift,
    sample_ratio,
)
from ranking.experiments import (
    GUARDRAIL_MIN_PURCHASES,
    GUARDRAIL_MIN_SHOPPERS,
    METRICS,
    ExperimentResult,
    VariantResult,
    experiment_result,
    guardrail_breach,
)
from ranking.models import Experiment, ExperimentEnd, RankLog
from tests.conftest import ApiCaller
from tests.factories import MembershipFactory, UserFactory
from tests.operations.conftest import parse, value
from tests.ranking.helpers import put_items, rank, send_events
from tests.ranking.test_experiment_results import event, served_row, start_experiment
from tests.ranking.test_experiment_stats import shoppers

MINUS = "\u2212"


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


# --- the rule, on simulated shoppers (no database) ----------------------------------------------


def result_of(
    control: dict[str, np.ndarray],
    treatment: dict[str, np.ndarray],
    confidence: float = CONFIDENCE,
) -> ExperimentResult:
    """The readout of two variants' per-shopper sums, as experiment_result builds it (its
    intervals, fixed and always-valid, at `confidence`: bench/guardrail.py compares others)."""
    variants = {}
    for name, data in (("A", control), ("B", treatment)):
        columns = {
            **data,
            "add_to_carts": data["clicks"],
            "shoppers": np.ones(len(data["searches"])),
        }
        variants[name] = VariantResult(
            variant=name,
            shoppers=len(data["searches"]),
            totals={key: float(columns[key].sum()) for key in columns if key != "shoppers"},
            estimates={
                m.key: ratio_estimate(columns[m.numerator], columns[m.denominator]) for m in METRICS
            },
        )
    return ExperimentResult(
        experiment=Experiment(treatment_percent=50),
        first_request_at=timezone.now(),
        last_request_at=timezone.now(),
        variants=variants,
        lifts={
            m.key: relative_lift(
                variants["A"].estimates[m.key], variants["B"].estimates[m.key], confidence
            )
            for m in METRICS
        },
        always_valid={
            m.key: always_valid_lift(
                variants["A"].estimates[m.key], variants["B"].estimates[m.key], alpha=1 - confidence
            )
            for m in METRICS
        },
        sample_ratio=sample_ratio(variants["A"].shoppers, variants["B"].shoppers, 0.5),
        horizon=None,
    )


def cut(data: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {key: values[:n] for key, values in data.items()}


def test_a_much_worse_b_is_not_judged_before_the_floor_and_is_stopped_after_it() -> None:
    rng = np.random.default_rng(3)
    control = shoppers(rng, 3000)
    treatment = shoppers(rng, 3000, price_factor=0.6)  # B earns 40% less per search
    early = result_of(cut(control, 300), cut(treatment, 300))
    later = result_of(control, treatment)

    assert early.lifts["revenue_per_search"] is not None
    assert early.lifts["revenue_per_search"].high < 0  # significant already, but too early
    assert guardrail_breach(early) is None
    assert later.variants["B"].totals["purchases"] >= GUARDRAIL_MIN_PURCHASES
    breach = guardrail_breach(later)
    assert breach is not None
    assert breach.high < 0
    assert breach.low <= -0.4 <= breach.high


def test_a_better_or_equal_b_is_never_stopped() -> None:
    rng = np.random.default_rng(4)
    control = shoppers(rng, 3000)

    better = result_of(control, shoppers(rng, 3000, price_factor=1.3))

    assert guardrail_breach(better) is None


def test_checking_every_few_hundred_shoppers_stops_few_a_a_experiments_and_most_worse_bs() -> None:
    """40 looks from the floor (1,000 a side) to 10,750 a side, as hourly checks of a growing
    experiment would. The always-valid interval holds at every look at once, so the looks do
    not add up to false stops: 1 of these 60 A/A seeds was stopped (the fixed interval, looked at
    the same way, stopped 13% of 200 seeds in docs/experiments.md); asserted at most 5 (the
    binomial's 99th percentile at 2.5%, one side of 95%). A B that earns 10% less was stopped in
    13 of these 20 (asserted at least 9)."""

    def stopped(price_factor: float, seed: int) -> bool:
        rng = np.random.default_rng(seed)
        control, treatment = shoppers(rng, 10_750), shoppers(rng, 10_750, price_factor=price_factor)
        return any(
            guardrail_breach(result_of(cut(control, n), cut(treatment, n))) is not None
            for n in range(GUARDRAIL_MIN_SHOPPERS, 10_751, 250)
        )

    a_a = sum(stopped(1.0, seed) for seed in range(60))
    worse = sum(stopped(0.9, seed) for seed in range(100, 120))

    assert a_a <= 5, a_a
    assert worse >= 9, worse


# --- the periodic check, on the database --------------------------------------------------------


def worse_b_traffic(
    api: ApiCaller,
    running: Experiment,
    per_variant: int = 1200,
    *,
    first: int = 0,
    price_factor: float = 0.6,
) -> None:
    """Logged requests of `per_variant` shoppers a side (numbered from `first` a side); a third
    of them buy, B's at `price_factor` of A's order values."""
    rng = np.random.default_rng(11 + first)
    at = timezone.now() - timedelta(hours=2)
    numbers = range(2 * first, 2 * (first + per_variant))
    RankLog.objects.bulk_create(
        served_row(running, f"r-{n}", f"u:{n}", "AB"[n % 2], at) for n in numbers
    )
    purchases = []
    for n in numbers[::3]:
        price = float(rng.lognormal(3.5, 0.6)) * (price_factor if n % 2 else 1.0)
        purchases.append(
            event("purchase", f"p-{n}", str(n), at + timedelta(minutes=5), f"r-{n}", price=price)
        )
    send_events(api, purchases)


@pytest.mark.django_db
def test_the_check_stops_a_b_that_earns_significantly_less_and_everyone_gets_a_again(
    api: ApiCaller, django_capture_on_commit_callbacks: Any
) -> None:
    put_items(api, [{"id": f"sku-{i}", "title": f"Item {i}", "price": 10.0 + i} for i in range(5)])
    services.signals_refresh(customer_id=api.customer.pk)
    running = start_experiment(api.customer, percent=50)
    in_b = next(f"b{n}" for n in range(1000) if shopper_bucket(running.salt, f"u:b{n}") < 50 * 100)
    body = {"surface": "search", "query": "shoes", "items": [{"id": f"sku-{i}"} for i in range(5)]}
    assert rank(api, {**body, "user_id": in_b})["ranker"]["variant"] == "B"
    worse_b_traffic(api, running)
    lift = experiment_result(experiment=running).always_valid["revenue_per_search"]
    assert lift is not None

    with django_capture_on_commit_callbacks(execute=True):  # API processes reload after commit
        checked = tasks.schedule_experiment_checks.delay().get()

    assert checked == 1
    running.refresh_from_db()
    assert not running.enabled
    assert running.end_reason == ExperimentEnd.GUARDRAIL
    assert running.ended_by == "guardrail"
    assert running.ended_at is not None
    assert timezone.now() - running.ended_at < timedelta(minutes=1)
    words = (
        f"stopped by the guardrail: B earned {-lift.lift:.1%} less revenue per search "
        f"(always-valid 95% interval {MINUS}{-lift.low:.1%} to {MINUS}{-lift.high:.1%})"
    )
    assert running.end_summary == words
    assert running.last_check["always_valid"]["high"] < 0
    # Stopped experiments send everyone to A: the live ranker, with no variant.
    after = rank(api, {**body, "user_id": in_b})["ranker"]
    assert after["variant"] is None
    assert after["model"] is None
    # The readout says so, in the API and on the admin page.
    results = api.get(f"/v1/experiments/{running.pk}/results").json()["experiment"]
    assert results["status"] == "stopped_by_guardrail"
    assert results["end_summary"] == words
    html = admin_page(api.customer, running)
    assert "Stopped by the guardrail: B earned" in html
    assert "everyone gets A, the live ranker." in html
    # A second check reads it again but stops nothing twice.
    tasks.check_experiment.delay(running.pk).get()
    running.refresh_from_db()
    assert running.end_summary == words


@pytest.mark.django_db
@pytest.mark.parametrize(("price_factor", "stopped_at"), [(0.75, 3), (1.0, None)])
def test_hourly_checks_of_a_growing_experiment_stop_a_worse_b_long_before_its_horizon(
    api: ApiCaller, price_factor: float, stopped_at: int | None
) -> None:
    """Hourly checks as the shoppers come, 400 more a side each hour: the guardrail judges at
    every check from the floor on (the always-valid interval may be read at any look), so a B
    earning 25% less is stopped at the third check, far before the fixed horizon; an equal B
    runs on through every check."""
    running = start_experiment(api.customer, percent=50)
    outcomes = []
    for hour in range(4):
        worse_b_traffic(api, running, 400, first=400 * hour, price_factor=price_factor)
        outcomes.append(tasks.check_experiment.delay(running.pk).get())
        running.refresh_from_db()
        if not running.enabled:
            break

    checked = running.last_check
    if stopped_at is None:
        assert outcomes == ["checked"] * 4
        assert running.enabled
        assert checked["shoppers"] == {"A": 1600, "B": 1600}
        assert not checked["always_valid"]["significant"]
        return
    assert outcomes == ["checked"] * (stopped_at - 1) + ["stopped by the guardrail"]
    assert running.end_reason == ExperimentEnd.GUARDRAIL
    assert "always-valid 95% interval" in running.end_summary
    # Stopped on the hour its always-valid interval first fell below 0: at the last check
    # before, with 400 fewer shoppers a side, it still held 0 (or the floor was not reached).
    assert checked["shoppers"] == {"A": 400 * stopped_at, "B": 400 * stopped_at}
    assert checked["always_valid"]["high"] < 0
    assert not checked["may_be_read"]  # the fixed horizon is far off
    horizon = experiment_result(experiment=running).horizon
    assert horizon is not None
    assert horizon.more_shoppers > 10_000


@pytest.mark.django_db
def test_the_check_keeps_the_reading_of_an_experiment_too_small_to_judge(api: ApiCaller) -> None:
    running = start_experiment(api.customer, percent=50)
    worse_b_traffic(api, running, per_variant=150)

    outcome = tasks.check_experiment.delay(running.pk).get()

    running.refresh_from_db()
    assert outcome == "checked"
    assert running.enabled
    assert running.checked_at is not None
    assert running.last_check["shoppers"] == {"A": 150, "B": 150}
    assert running.last_check["sample_ratio_p_value"] == pytest.approx(1.0)


def admin_page(customer: Customer, experiment: Experiment) -> str:
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__model="experiment"))
    MembershipFactory(user=user, customer=customer)
    client = Client()
    client.force_login(user)
    response = client.get(reverse("admin:ranking_experiment_change", args=[experiment.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_stop_by_hand_is_recorded_and_undone_but_a_guardrail_stop_is_final(
    api: ApiCaller,
) -> None:
    running = start_experiment(api.customer)
    user = UserFactory(username="mona")
    user.save()

    running.enabled = False
    services.experiment_save(experiment=running, user=user)
    stopped = Experiment.objects.get(pk=running.pk)
    running.enabled = True
    services.experiment_save(experiment=running, user=user)
    restarted = Experiment.objects.get(pk=running.pk)
    services.experiment_stop(
        experiment=running,
        reason=ExperimentEnd.GUARDRAIL,
        by="guardrail",
        summary="stopped by "
        "the guardrail: B earned 9.0% less revenue per search (95% interval -15.0% to -3.0%)",
    )
    running.refresh_from_db()
    running.enabled = True

    assert (stopped.end_reason, stopped.ended_by, stopped.end_summary) == (
        "stopped",
        "mona",
        "stopped by mona",
    )
    assert (restarted.enabled, restarted.end_reason, restarted.ended_at) == (True, "", None)
    with pytest.raises(ValidationError) as refused:
        services.experiment_save(experiment=running, user=user)
    assert "enabled" in refused.value.message_dict
    assert "B earned 9.0% less" in refused.value.message_dict["enabled"][0]
    assert not Experiment.objects.get(pk=running.pk).enabled


def test_beat_checks_experiments_every_hour_on_the_signals_queue(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["check-experiments"]

    assert entry["task"] == tasks.schedule_experiment_checks.name
    assert entry["schedule"] == settings.EXPERIMENT_CHECK_INTERVAL_SECONDS == 3600
    for task in (tasks.schedule_experiment_checks, tasks.check_experiment):
        assert app.amqp.router.route({}, task.name)["queue"].name == "signals"


# --- what Prometheus scrapes ---------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_show_a_skewed_split_and_a_guardrail_stop_per_experiment(api: ApiCaller) -> None:
    stopped = start_experiment(api.customer)
    services.experiment_stop(
        experiment=stopped, reason=ExperimentEnd.GUARDRAIL, by="guardrail", summary="stopped"
    )
    skewed = start_experiment(api.customer, percent=50)
    at = timezone.now() - timedelta(hours=2)
    RankLog.objects.bulk_create(
        served_row(skewed, f"r-{n}", f"u:{n}", "B" if n % 100 < 45 else "A", at)
        for n in range(3000)
    )  # 45% of the shoppers in B where 50% should be
    tasks.check_experiment.delay(skewed.pk).get()

    samples = parse(Client().get("/metrics").content.decode())

    customer = str(api.customer.pk)
    p_value = value(
        samples,
        "rankwell_experiment_sample_ratio_p_value",
        customer=customer,
        experiment=str(skewed.pk),
    )
    assert 0 < p_value < 0.001
    assert value(samples, "rankwell_experiment_guardrail_stopped", experiment=str(stopped.pk)) == 1
    assert not value(samples, "rankwell_experiment_guardrail_stopped", experiment=str(skewed.pk))
    assert not value(
        samples, "rankwell_experiment_sample_ratio_p_value", experiment=str(stopped.pk)
    )
