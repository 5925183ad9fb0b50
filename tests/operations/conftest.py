"""Helpers of the operations tests: the repository root and the external tools they need.

A missing tool fails its test with the command that installs it; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str, *, env_var: str, candidates: tuple[Path, ...] = (), install: str) -> str:
    """The path of a command-line tool, or a test failure that says how to install it."""
    configured = os.environ.get(env_var)
    if configured:
        return configured
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: run `{install}` (or set {env_var})")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """A Prometheus text exposition as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)
