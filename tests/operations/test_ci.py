"""CI: GitHub Actions runs the same `make test` as .ci/run, builds the image and deploys."""

from __future__ import annotations

from typing import Any

import yaml

from tests.operations.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") + str(step.get("with", "")) for step in job["steps"])


def test_ci_run_and_the_workflow_run_the_same_make_test() -> None:
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci_run.splitlines()[-1]
    test_job = load("ci.yml")["jobs"]["test"]
    assert "bash .ci/run" in steps_text(test_job)
    assert "bookworm" in test_job["container"]  # Debian 12, as the project's machines
    assert set(test_job["services"]) == {"postgres", "redis"}
    # The Makefile's URLs are overridable, and the job points them at the service containers.
    makefile = (ROOT / "Makefile").read_text()
    assert "TEST_DATABASE_URL ?=" in makefile
    assert "TEST_REDIS_URL ?=" in makefile
    assert test_job["env"]["TEST_DATABASE_URL"].startswith("postgres://postgres@postgres:5432/")
    assert test_job["env"]["TEST_REDIS_URL"].startswith("redis://redis:6379/")
    services_script = (ROOT / "platform" / "dev" / "ensure-services.sh").read_text()
    assert "TEST_DATABASE_URL" in services_script
    assert "TEST_REDIS_URL" in services_script


def test_the_image_is_built_after_the_tests_pass() -> None:
    image = load("ci.yml")["jobs"]["image"]
    assert image["needs"] == "test"
    assert "platform/Dockerfile" in steps_text(image)


def test_every_terraform_environment_has_a_deploy_job_in_order() -> None:
    jobs = load("ci.yml")["jobs"]
    environments = sorted(p.name for p in (ROOT / "terraform" / "environments").iterdir())
    assert environments == ["production", "staging"]
    assert jobs["deploy-staging"]["needs"] == "image"
    assert jobs["deploy-staging"]["with"]["environment"] == "staging"
    assert jobs["deploy-production"]["needs"] == "deploy-staging"
    assert jobs["deploy-production"]["with"]["environment"] == "production"
    deploy = load("deploy.yml")
    job = deploy["jobs"]["deploy"]
    assert job["defaults"]["run"]["working-directory"] == (
        "terraform/environments/${{ inputs.environment }}"
    )
    text = steps_text(job)
    assert text.index("migrate") < text.index("terraform plan")
    assert "services-stable" in text


def test_workflows_hold_no_static_cloud_credentials() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "AWS_SECRET_ACCESS_KEY" not in text
        assert "aws-secret-access-key" not in text
    assert load("deploy.yml")["permissions"]["id-token"] == "write"
