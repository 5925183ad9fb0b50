"""platform/: the image, the compose stack, gunicorn, the Prometheus rules and the dashboard.

The rules are checked and unit-tested by promtool (Debian's prometheus package, installed by
platform/dev/ensure-services.sh); every metric they and the dashboard query must exist.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import metrics
from tests.operations.conftest import ROOT, tool

PLATFORM = ROOT / "platform"
PROMETHEUS = PLATFORM / "prometheus"
DASHBOARD = PLATFORM / "grafana" / "dashboards" / "rankwell.json"

# Metrics of django-prometheus, of Prometheus itself or of a recording rule.
EXTERNAL_METRICS = {"up"}
EXTERNAL_PREFIXES = ("django_http_", "rankwell:")


def promtool() -> str:
    return tool("promtool", env_var="PROMTOOL", install="platform/dev/ensure-services.sh")


def run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def defined_metric_names() -> set[str]:
    """Every series name the app exposes: counters with _total, histograms with their parts."""
    from prometheus_client import Counter, Gauge, Histogram

    # Read from the database at scrape time (metrics.SignalAgeCollector, ExperimentCollector).
    names = {
        "rankwell_signal_age_seconds",
        "rankwell_experiment_sample_ratio_p_value",
        "rankwell_experiment_guardrail_stopped",
    }
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Histogram):
            names.update(f"{value._name}{part}" for part in ("_bucket", "_count", "_sum"))
        elif isinstance(value, Gauge):
            names.add(value._name)
    return names


def queried_metric_names(expression: str) -> set[str]:
    return {
        name
        for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*[{\[)])", expression)
        if name.startswith("rankwell") or name.startswith("django_")
    }


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_alert_rules_and_the_prometheus_config() -> None:
    rules = run([promtool(), "check", "rules", str(PROMETHEUS / "alerts.yml")])
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = run([promtool(), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert config.returncode == 0, config.stdout + config.stderr


def test_alerts_fire_on_the_conditions_they_name() -> None:
    result = run([promtool(), "test", "rules", "alerts.test.yml"], cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_required_alerts_exist_with_a_runbook_entry() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", runbook, flags=re.MULTILINE)
    }
    alerts = {rule["alert"]: rule for rule in alert_rules() if "alert" in rule}
    for required in (
        "RankLatencyP99High",
        "ApiErrorBudgetFastBurn",
        "ApiErrorBudgetSlowBurn",
        "RankDegradedRatioHigh",
        "SignalsStale",
        "CeleryTasksFailing",
        "ExperimentStoppedByGuardrail",
        "ExperimentSampleRatioMismatch",
    ):
        assert required in alerts
    for name, rule in alerts.items():
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in anchors, f"{name}: docs/operations.md has no heading for #{anchor}"
        # The Watchdog always fires, on purpose, and pages no one (see test_alertmanager.py).
        severities = ("none",) if name == "Watchdog" else ("page", "ticket")
        assert rule["labels"]["severity"] in severities


def test_rules_and_dashboard_query_only_metrics_the_service_exposes() -> None:
    exposed = defined_metric_names()
    expressions = [rule["expr"] for rule in alert_rules()]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    unknown = {
        name
        for expression in expressions
        for name in queried_metric_names(expression)
        if name not in exposed
        and name not in EXTERNAL_METRICS
        and not name.startswith(EXTERNAL_PREFIXES)
    }
    assert not unknown, f"queried but never exposed: {sorted(unknown)}"


def test_dashboard_covers_every_domain_metric() -> None:
    dashboard = DASHBOARD.read_text()
    families = {name.removesuffix("_total") for name in defined_metric_names()}
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in families}
    missing = {name for name in families if name not in dashboard}
    assert not missing, f"no panel shows {sorted(missing)}"
    panels = json.loads(dashboard)["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)


def test_image_is_multi_stage_and_runs_as_non_root() -> None:
    dockerfile = (PLATFORM / "Dockerfile").read_text()
    stages = re.findall(r"^FROM .+ AS (\w+)$", dockerfile, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = dockerfile.split("AS runtime", 1)[1]
    users = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in runtime
    assert "PROMETHEUS_MULTIPROC_DIR" in runtime


def test_entrypoint_is_valid_shell_with_every_role() -> None:
    entrypoint = PLATFORM / "entrypoint.sh"
    assert run(["sh", "-n", str(entrypoint)]).returncode == 0
    text = entrypoint.read_text()
    for role in ("api)", "worker|trainer)", "beat)", "migrate)", "healthcheck)"):
        assert role in text


def test_every_queue_has_workers_and_training_has_its_own() -> None:
    """A task routed to a queue no worker reads would wait forever; training shares no worker
    with the rank log's flushes or the refreshes."""
    from config.celery import app

    def queue_of(task: str) -> str:
        return str(app.amqp.router.route({}, task)["queue"].name)

    routed = {
        "ranking.tasks.train_model": "training",
        "ranking.tasks.flush_rank_log": "ranklog",
        "ranking.tasks.flush_rank_log_split": "ranklog",
        "ranking.tasks.refresh_signals": "signals",
        "ranking.tasks.schedule_model_training": "signals",
        "events.tasks.replay_pending_profile_updates": "default",
    }
    assert {task: queue_of(task) for task in routed} == routed
    text = (PLATFORM / "entrypoint.sh").read_text()
    trainer = re.search(r"then queues=(\S+) concurrency=1; else queues=(\S+) concurrency", text)
    assert trainer is not None
    training_queues, worker_queues = (set(group.split(",")) for group in trainer.groups())
    assert training_queues == {"training"}
    assert worker_queues == set(routed.values()) - {"training"}


def test_compose_runs_the_whole_stack_from_the_image() -> None:
    compose = yaml.safe_load((PLATFORM / "compose.yaml").read_text())
    services = compose["services"]
    assert {
        "api",
        "worker",
        "trainer",
        "beat",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
    } <= set(services)
    for role in ("api", "worker", "trainer", "beat", "migrate"):
        service = services[role]
        assert service["build"]["dockerfile"] == "platform/Dockerfile"
        assert service["command"] == [role]
        assert service["read_only"] is True
    for role in ("api", "worker", "trainer", "beat"):
        assert services[role]["environment"]["RANKWELL_ROLE"] == role
        assert services[role]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in ("prometheus.yml", "alerts.yml", "grafana/provisioning", "grafana/dashboards"):
        assert path in mounts
    scraped = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scraped for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"api:8000", "worker:9100", "trainer:9100", "beat:9100"}


def test_gunicorn_config_runs_metrics_in_multiprocess_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1234.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    config = runpy.run_path(str(PLATFORM / "gunicorn.conf.py"))
    assert config["workers"] == 3
    assert config["worker_class"] == "gthread"
    assert config["keepalive"] > 60  # above the ALB's idle timeout
    config["on_starting"](None)
    assert metrics_dir.is_dir()
    assert not any(metrics_dir.iterdir())
