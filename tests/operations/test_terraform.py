"""terraform/: every file parses (python-hcl2), every variable and output is described, the
stack has what the design asks for, and checkov leaves no failed check unexplained (over the
Dockerfile and the CI workflows too)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.operations.conftest import ROOT, tool

TERRAFORM = ROOT / "terraform"
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def plain(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes and block markers; drop them to compare plain values."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        document: dict[str, Any] = plain(hcl2.load(handle))
    return document


def module_resources(module: str) -> dict[str, dict[str, Any]]:
    """`{"aws_db_instance.main": {...attributes}}` of one module."""
    found: dict[str, dict[str, Any]] = {}
    for path in (TERRAFORM / "modules" / module).glob("*.tf"):
        for block in parse(path).get("resource", []):
            for kind, named in block.items():
                for name, attributes in named.items():
                    found[f"{kind}.{name}"] = attributes
    return found


@pytest.fixture(scope="module")
def checkov_reports() -> dict[str, dict[str, Any]]:
    """One checkov run (about 20 s) over terraform/, the image's Dockerfile and the CI
    workflows, shared by the tests below: its report per framework."""
    checkov = tool(
        "checkov",
        env_var="CHECKOV",
        candidates=(ROOT / ".venv-tools" / "bin" / "checkov",),
        install="make tools",
    )
    result = subprocess.run(
        [
            checkov,
            "--directory",
            "terraform",
            "--directory",
            ".github",
            "--directory",
            "platform",
            "--framework",
            "terraform",
            "github_actions",
            "dockerfile",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    # checkov prints one JSON document per directory, each with the reports so far; the last
    # report of each framework covers every directory.
    reports: list[dict[str, Any]] = []
    decoder, text, position = json.JSONDecoder(), result.stdout, 0
    while text[position:].strip():
        document, end = decoder.raw_decode(text, len(text) - len(text[position:].lstrip()))
        reports.extend(document if isinstance(document, list) else [document])
        position = end
    return {report["check_type"]: report for report in reports}


def test_every_terraform_file_parses() -> None:
    assert len(TF_FILES) > 20
    for path in TF_FILES:
        parse(path)


def test_every_variable_and_output_is_documented() -> None:
    undocumented = []
    for path in TF_FILES:
        document = parse(path)
        for kind in ("variable", "output"):
            for block in document.get(kind, []):
                for name, attributes in block.items():
                    if not str(attributes.get("description", "")).strip():
                        undocumented.append(f"{path.relative_to(ROOT)}: {kind} {name}")
    assert not undocumented


def test_both_environments_deploy_the_whole_stack() -> None:
    for environment in ("staging", "production"):
        main = parse(TERRAFORM / "environments" / environment / "main.tf")
        stack = main["module"][0]["rankwell"]
        assert stack["source"] == "../../modules/stack"
        assert stack["environment"] == environment
        versions = (TERRAFORM / "environments" / environment / "versions.tf").read_text()
        assert 'backend "s3"' in versions
    stack_modules = {
        name: block["source"]
        for module in parse(TERRAFORM / "modules" / "stack" / "main.tf")["module"]
        for name, block in module.items()
    }
    assert set(stack_modules.values()) == {
        "../kms",
        "../network",
        "../ecr",
        "../alb",
        "../database",
        "../cache",
        "../secrets",
        "../ecs",
        "../artifacts",
        "../alerting",
    }


def test_database_is_multi_az_encrypted_and_backed_up() -> None:
    database = module_resources("database")["aws_db_instance.main"]
    assert database["multi_az"] is True
    assert database["storage_encrypted"] is True
    assert database["publicly_accessible"] is False
    assert database["backup_retention_period"] == "${var.backup_retention_days}"
    parameters = module_resources("database")["aws_db_parameter_group.main"]["parameter"]
    assert {"name": "rds.force_ssl", "value": "1"} in parameters


def test_redis_uses_tls_auth_and_cluster_mode_for_signals() -> None:
    redis = module_resources("cache")["aws_elasticache_replication_group.main"]
    assert redis["transit_encryption_enabled"] is True
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["auth_token"] == "${random_password.auth_token.result}"
    assert redis["automatic_failover_enabled"] is True
    stack = {
        name: block
        for module in parse(TERRAFORM / "modules" / "stack" / "main.tf")["module"]
        for name, block in module.items()
    }
    assert stack["signal_store"]["cluster_mode"] is True
    # kombu's Redis transport does not speak Redis Cluster: the broker is a plain primary.
    assert stack["broker"]["cluster_mode"] is False


def test_alb_health_checks_healthz_and_ecs_runs_every_service() -> None:
    """Liveness, not dependencies: an outage of PostgreSQL or Redis must not have every task
    replaced by cold ones (they would degrade answers the warm ones serve from cache)."""
    alb = module_resources("alb")
    assert alb["aws_lb_target_group.api"]["health_check"][0]["path"] == "/healthz"
    ecs = module_resources("ecs")
    services = {"api", "worker", "trainer", "beat"}
    assert {f"aws_ecs_service.{name}" for name in services} <= set(ecs)
    assert {"aws_appautoscaling_target.api", "aws_appautoscaling_target.worker"} <= set(ecs)
    assert ecs["aws_ecs_service.beat"]["deployment_maximum_percent"] == 100
    secrets = module_resources("secrets")["aws_secretsmanager_secret.app"]
    assert "SENTRY_DSN" in str(secrets["for_each"])


@pytest.mark.parametrize("framework", ["terraform", "dockerfile", "github_actions"])
def test_checkov_finds_no_failed_check(
    checkov_reports: dict[str, dict[str, Any]], framework: str
) -> None:
    assert framework in checkov_reports, f"checkov scanned nothing as {framework}"
    report = checkov_reports[framework]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in report["results"].get("failed_checks", [])
    ]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 20
    assert not failed, "\n".join(failed)


def test_every_checkov_suppression_gives_its_reason(
    checkov_reports: dict[str, dict[str, Any]],
) -> None:
    unexplained = []
    for path in TF_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match and len((match.group(2) or "").strip()) < 20:
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not unexplained, "\n".join(unexplained)
    skipped = checkov_reports["terraform"]["results"].get("skipped_checks", [])
    assert skipped, "the suppressions in terraform/ are no longer seen by checkov"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert reason.strip(), check["check_id"]
