"""Production settings refuse to start unsafe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = start(RANKWELL_ENV="production")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_with_debug_on() -> None:
    result = start(RANKWELL_ENV="production", SECRET_KEY="x" * 50, DEBUG="true")

    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


def test_production_starts_with_a_secret_key_and_debug_off() -> None:
    result = start(RANKWELL_ENV="production", SECRET_KEY="x" * 50)

    assert result.returncode == 0, result.stderr
