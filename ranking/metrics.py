"""Ranking's metrics that need its own code or tables: a rank answer from the engine's outcome,
and the gauges read from the database at scrape time (signal age, experiments). The metrics
themselves are declared with the others in core/metrics.py; ranking.apps registers the
collectors."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import observe_rank
from ranking.engine.experiments import TREATMENT
from ranking.engine.records import RankOutcome

logger = logging.getLogger(__name__)


def observe_rank_outcome(
    *,
    customer_id: int | None,
    surface: str,
    started: float,
    candidates: int,
    outcome: RankOutcome,
    degraded_reason: str | None = None,
) -> None:
    """Record one answered rank request from the engine's outcome. A degraded outcome counts
    as degraded (reason `signal_store` unless named) and not in the missing-signal ratio."""
    if outcome.degraded:
        reason = degraded_reason or outcome.degraded_reason or "signal_store"
        observe_rank(
            customer_id=customer_id,
            surface=surface,
            seconds=time.perf_counter() - started,
            candidates=candidates,
            degraded_reason=reason,
        )
        return
    missing = outcome.missing
    observe_rank(
        customer_id=customer_id,
        surface=surface,
        seconds=time.perf_counter() - started,
        candidates=candidates,
        degraded_reason=None,
        missing={
            "item": missing.items_without_signals,
            "query_item": missing.pairs_without_query_signals,
            "relevance": missing.items_without_relevance,
        },
        model=outcome.model,
        candidate_served=outcome.variant == TREATMENT,
    )


class SignalAgeCollector(Collector):
    """`rankwell_signal_age_seconds{customer}`: age of each active customer's newest signal
    version, read from the database at scrape time (one query), so it is right in any process."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from django.db.models import Max

        from ranking.models import SignalVersion

        family = GaugeMetricFamily(
            "rankwell_signal_age_seconds",
            "Seconds since the newest signal version of each active customer was published.",
            labels=["customer"],
        )
        try:
            newest = (
                SignalVersion.objects.unscoped_all_customers()
                .filter(customer__is_active=True)
                .values("customer_id")
                .annotate(at=Max("created_at"))
            )
            now = datetime.now(UTC)
            rows = [(row["customer_id"], row["at"]) for row in newest]
        except DatabaseError:
            logger.warning("signal age unavailable: the database did not answer")
            rows = []
        for customer_id, created_at in rows:
            family.add_metric([str(customer_id)], (now - created_at).total_seconds())
        yield family


# A guardrail stop shows in `rankwell_experiment_guardrail_stopped` for this long after it.
GUARDRAIL_STOP_SHOWN = timedelta(hours=24)


class ExperimentCollector(Collector):
    """Read from the database at scrape time (one query), so it is right in any process:
    `rankwell_experiment_sample_ratio_p_value{customer,experiment}`, the split check's p-value at
    the latest periodic check of each running experiment (ranking.tasks.check_experiment), and
    `rankwell_experiment_guardrail_stopped{customer,experiment}` (1) for each experiment the
    guardrail stopped within GUARDRAIL_STOP_SHOWN. At most one experiment runs per customer
    surface, so the labels stay bounded."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from django.db.models import Q

        from ranking.models import Experiment, ExperimentEnd

        split = GaugeMetricFamily(
            "rankwell_experiment_sample_ratio_p_value",
            "p-value of the chi-square test of each running experiment's shoppers per variant "
            "against its configured split, at its latest hourly check (below 0.001: mismatch).",
            labels=["customer", "experiment"],
        )
        stopped = GaugeMetricFamily(
            "rankwell_experiment_guardrail_stopped",
            "1 for each experiment the guardrail stopped in the last 24 hours (B earned "
            "significantly less revenue per search than A).",
            labels=["customer", "experiment"],
        )
        since = datetime.now(UTC) - GUARDRAIL_STOP_SHOWN
        try:
            rows = list(
                Experiment.objects.unscoped_all_customers()
                .filter(customer__is_active=True)
                .filter(
                    Q(enabled=True, checked_at__isnull=False)
                    | Q(end_reason=ExperimentEnd.GUARDRAIL, ended_at__gte=since)
                )
                .values_list("customer_id", "id", "enabled", "last_check")
            )
        except DatabaseError:
            logger.warning("experiment metrics unavailable: the database did not answer")
            rows = []
        for customer_id, experiment_id, enabled, last_check in rows:
            labels = [str(customer_id), str(experiment_id)]
            if not enabled:
                stopped.add_metric(labels, 1.0)
            elif (last_check or {}).get("sample_ratio_p_value") is not None:
                split.add_metric(labels, float(last_check["sample_ratio_p_value"]))
        yield split
        yield stopped
