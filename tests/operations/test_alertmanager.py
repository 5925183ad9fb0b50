"""platform/alertmanager: who hears about each alert of platform/prometheus/alerts.yml.

amtool (Debian's prometheus-alertmanager package, installed by platform/dev/ensure-services.sh)
checks the configuration and resolves the receiver of every alert; an Alertmanager server from
the same package shows which alerts the inhibition rules mute. The compose stack and the ECS
task must give Alertmanager every secret file its configuration reads, and no key is written
in the repository.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operations.conftest import ROOT, tool
from tests.operations.test_terraform import parse

CONFIG = ROOT / "platform" / "alertmanager" / "alertmanager.yml"
ALERT_RULES = ROOT / "platform" / "prometheus" / "alerts.yml"
COMPOSE = ROOT / "platform" / "compose.yaml"
PROMETHEUS_CONFIG = ROOT / "platform" / "prometheus" / "prometheus.yml"
ALERTING_MODULE = ROOT / "terraform" / "modules" / "alerting"
INSTALL = "platform/dev/ensure-services.sh"

RECEIVER_OF_SEVERITY = {"page": "pagerduty", "ticket": "chat"}
WATCHDOG_RECEIVER = "heartbeat"


def amtool() -> str:
    return tool("amtool", env_var="AMTOOL", install=INSTALL)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERT_RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def receivers_of(labels: dict[str, str]) -> str:
    """The receivers amtool resolves for an alert with these labels, comma-separated."""
    result = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={CONFIG}"]
        + [f"{name}={value}" for name, value in labels.items()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_configuration() -> None:
    result = subprocess.run(
        [amtool(), "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_each_alert_reaches_the_receiver_of_its_severity(rule: dict[str, Any]) -> None:
    labels = {"alertname": rule["alert"], **rule["labels"]}
    if rule["alert"] == "Watchdog":
        expected = WATCHDOG_RECEIVER
    else:
        expected = RECEIVER_OF_SEVERITY[rule["labels"]["severity"]]
    # Labels an alert of this rule may carry on top of its own must not change where it goes.
    for extra in ({}, {"customer": "7", "job": "rankwell-api", "instance": "api:8000"}):
        assert receivers_of({**labels, **extra}) == expected, f"{rule['alert']} with {extra}"


def test_the_rules_have_a_watchdog_that_never_pages() -> None:
    watchdogs = [rule for rule in alert_rules() if rule["alert"] == "Watchdog"]
    assert len(watchdogs) == 1
    assert watchdogs[0]["expr"].strip() == "vector(1)"
    assert receivers_of({"alertname": "Watchdog", "severity": "page"}) == WATCHDOG_RECEIVER


@pytest.mark.parametrize(
    "labels",
    [{"alertname": "NewAlert"}, {"alertname": "NewAlert", "severity": "critical"}],
    ids=["no severity", "unknown severity"],
)
def test_an_alert_of_unknown_severity_still_reaches_the_chat(labels: dict[str, str]) -> None:
    assert receivers_of(labels) == "chat"


def test_no_key_or_webhook_is_written_in_the_configuration() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert not {key for key in config.get("global", {}) if not key.endswith("_file")} & {
        "slack_api_url",
        "pagerduty_url",
        "smtp_auth_password",
    }
    integrations = [
        (kind, integration)
        for receiver in config["receivers"]
        for kind, integrations in receiver.items()
        if kind.endswith("_configs")
        for integration in integrations
    ]
    kinds = {kind for kind, _ in integrations}
    assert {"pagerduty_configs", "slack_configs"} <= kinds
    for kind, integration in integrations:
        assert not {"routing_key", "service_key", "api_url", "url"} & set(integration), kind
    text = CONFIG.read_text()
    assert not re.search(r"hooks\.slack\.com/services/\w|events\.pagerduty\.com", text)


def secret_files() -> set[str]:
    """Every file the configuration reads a secret from."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return set(walk(yaml.safe_load(CONFIG.read_text())))


def test_compose_mounts_every_secret_file_and_prometheus_sends_it_alerts() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    service = compose["services"]["alertmanager"]
    assert re.fullmatch(r"prom/alertmanager:v\d+\.\d+\.\d+", service["image"])
    assert service["read_only"] is True
    assert {secret["target"] for secret in service["secrets"]} == secret_files()
    for secret in service["secrets"]:
        # The default is an empty file: locally nothing is paged unless a key is given.
        assert compose["secrets"][secret["source"]]["file"].endswith(":-/dev/null}")
    mount = "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
    assert mount in service["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]
    assert "alertmanager" in compose["services"]["prometheus"]["depends_on"]
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [
        target
        for alertmanager in prometheus["alerting"]["alertmanagers"]
        for config in alertmanager["static_configs"]
        for target in config["targets"]
    ]
    assert targets == ["alertmanager:9093"]


def test_the_ecs_task_runs_the_same_image_and_configuration_with_every_secret_file() -> None:
    module = parse(ALERTING_MODULE / "main.tf")
    variables = {
        name: block
        for item in parse(ALERTING_MODULE / "variables.tf")["variable"]
        for name, block in item.items()
    }
    compose = yaml.safe_load(COMPOSE.read_text())
    assert variables["image"]["default"] == compose["services"]["alertmanager"]["image"]
    locals_ = {name: value for block in module["locals"] for name, value in block.items()}
    assert locals_["config_path"].endswith("/../../../platform/alertmanager/alertmanager.yml")
    assert (ALERTING_MODULE / locals_["config_path"].removeprefix("${path.module}/")).resolve() == (
        CONFIG
    )
    written = {f"/alertmanager/secrets/{name}" for name in locals_["secret_files"].values()}
    assert written == secret_files()
    # The secrets come from Secrets Manager, one per file, and no value is set in Terraform.
    resources = {kind for block in module["resource"] for kind in block}
    assert "aws_secretsmanager_secret" in resources
    assert "aws_secretsmanager_secret_version" not in resources


# --- inhibition, on a running Alertmanager ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(port: int, method: str, path: str, body: Any = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read().decode()
        assert response.status < 300, f"{method} {path}: {response.status} {text}"
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return json.loads(text) if is_json and text else text
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {seconds} s: {what}")
        time.sleep(0.1)


class RunningAlertmanager:
    """An Alertmanager on a free port with the repository's configuration."""

    def __init__(self, port: int) -> None:
        self.port = port

    def fire(self, *alerts: dict[str, str]) -> None:
        request(self.port, "POST", "/api/v2/alerts", [{"labels": labels} for labels in alerts])

    def muted(self) -> dict[frozenset[tuple[str, str]], bool]:
        """Each active alert (by its labels): whether an inhibition rule mutes it."""
        return {
            frozenset(alert["labels"].items()): bool(alert["status"]["inhibitedBy"])
            for alert in request(self.port, "GET", "/api/v2/alerts")
        }

    def is_muted(self, labels: dict[str, str]) -> bool:
        return self.muted().get(frozenset(labels.items()), False)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[RunningAlertmanager]:
    binary = tool("prometheus-alertmanager", env_var="ALERTMANAGER", install=INSTALL)
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={CONFIG}",
                f"--storage.path={tmp_path}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                request(port, "GET", "/-/ready")
            except (OSError, AssertionError):
                return False
            return True

        wait_for(ready, "Alertmanager answers /-/ready")
        yield RunningAlertmanager(port)
    finally:
        process.terminate()
        process.wait(timeout=30)


FAST_BURN = {"alertname": "ApiErrorBudgetFastBurn", "severity": "page"}
SLOW_BURN = {"alertname": "ApiErrorBudgetSlowBurn", "severity": "ticket"}
STALE = {"alertname": "SignalsStale", "severity": "ticket", "customer": "7"}


def target_down(job: str) -> dict[str, str]:
    return {"alertname": "RankwellTargetDown", "severity": "page", "job": job}


def test_the_fast_burn_page_mutes_the_slow_burn_ticket(
    alertmanager: RunningAlertmanager,
) -> None:
    alertmanager.fire(FAST_BURN, SLOW_BURN)
    wait_for(lambda: alertmanager.is_muted(SLOW_BURN), "the slow burn is muted")
    assert not alertmanager.is_muted(FAST_BURN)


def test_stale_signals_are_muted_while_beat_is_down_not_while_the_api_is(
    alertmanager: RunningAlertmanager,
) -> None:
    # The burn pair shows when the inhibitor has seen the alerts fired with it.
    alertmanager.fire(target_down("rankwell-api"), STALE, FAST_BURN, SLOW_BURN)
    wait_for(lambda: alertmanager.is_muted(SLOW_BURN), "the slow burn is muted")
    assert not alertmanager.is_muted(STALE)
    alertmanager.fire(target_down("rankwell-beat"))
    wait_for(lambda: alertmanager.is_muted(STALE), "stale signals are muted while beat is down")
    assert not alertmanager.is_muted(target_down("rankwell-beat"))


def test_a_page_mutes_the_ticket_of_the_same_alert_and_customer_only(
    alertmanager: RunningAlertmanager,
) -> None:
    page = {"alertname": "CustomerProblem", "severity": "page", "customer": "1"}
    same_customer = {**page, "severity": "ticket"}
    other_customer = {**same_customer, "customer": "2"}
    alertmanager.fire(page, same_customer, other_customer)
    wait_for(lambda: alertmanager.is_muted(same_customer), "the same customer's ticket is muted")
    assert not alertmanager.is_muted(other_customer)
    assert not alertmanager.is_muted(page)
