"""Production answers with the browser security headers: HSTS, nosniff (JSON API too), a strict
referrer policy, no framing, and a Content-Security-Policy that runs no inline script but the
one carrying the request's nonce (Swagger UI's initialiser on /v1/docs).

Production settings are built in their own process (as tests/test_settings.py does), and real
requests go through the whole middleware stack there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

# Runs in the production process: a GET of each page, as if through the load balancer (https),
# answering the status, headers and body of each. The manifest storage needs collectstatic,
# which the image runs at build; the headers do not depend on it.
PROBE = """
import sys, django, orjson
django.setup()
from django.test import Client
from django.test.utils import override_settings
from django.conf import settings
static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
answers = {}
with override_settings(STORAGES={**settings.STORAGES, "staticfiles": static}):
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    for path in sys.argv[1:]:
        response = client.get(path)
        answers[path] = {"status": response.status_code, "headers": dict(response.headers),
                         "body": response.content.decode()}
sys.stdout.write(orjson.dumps(answers).decode())
"""
PAGES = ["/admin/login/", "/v1/docs", "/v1/schema", "/v1/rank", "/healthz"]


@pytest.fixture(scope="module")
def production() -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env = {
        **clean,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RANKWELL_ENV": "production",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *PAGES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers: dict[str, Any] = orjson.loads(result.stdout)
    return answers


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_production_pages_and_api_answer_with_the_security_headers(
    production: dict[str, Any],
) -> None:
    assert production["/admin/login/"]["status"] == 200
    assert production["/v1/docs"]["status"] == 200
    assert production["/v1/schema"]["status"] == 200
    assert production["/v1/rank"]["status"] == 401  # the API's own problem+json refusal
    for path, answer in production.items():
        headers = answer["headers"]
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        assert headers["X-Frame-Options"] == "DENY", path
        if path.startswith("/v1/") and path != "/v1/docs":
            # JSON runs no script: the API's answers skip the policy (it cost /v1/rank 90 µs).
            assert "Content-Security-Policy" not in headers, path
            continue
        policy = directives(headers["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"], path
        assert "'unsafe-inline'" not in policy["script-src"], path
        assert "'unsafe-eval'" not in policy["script-src"], path
        assert policy["object-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path


def test_the_json_api_tells_browsers_not_to_sniff(production: dict[str, Any]) -> None:
    for path in ("/v1/rank", "/v1/schema", "/healthz"):
        headers = production[path]["headers"]
        assert "json" in headers["Content-Type"], path
        assert headers["X-Content-Type-Options"] == "nosniff", path


def test_only_the_docs_initialiser_runs_inline_and_only_with_the_nonce(
    production: dict[str, Any],
) -> None:
    docs = production["/v1/docs"]
    nonces = [
        v
        for v in directives(docs["headers"]["Content-Security-Policy"])["script-src"]
        if v.startswith("'nonce-")
    ]
    assert len(nonces) == 1
    nonce = nonces[0].removeprefix("'nonce-").removesuffix("'")
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", docs["body"])
    assert inline == [f' nonce="{nonce}"']
    # A page without an inline script has no nonce to lend an injected one.
    login_policy = production["/admin/login/"]["headers"]["Content-Security-Policy"]
    assert "'nonce-" not in login_policy


def test_the_project_templates_carry_no_inline_script_or_event_handler() -> None:
    """The CSP would block them in the browser: scripts are static files."""
    templates = [*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]
    assert templates
    for template in templates:
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or "nonce=" in tag, (template, tag)
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


def test_outside_production_the_same_policy_holds_without_hsts(client: Client) -> None:
    """Development and tests (the browser tests too) run under production's CSP."""
    response = client.get("/admin/login/")

    policy = directives(response["Content-Security-Policy"])
    assert "'unsafe-inline'" not in policy["script-src"]
    assert response["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response
