"""The explain pages' tests read the signal store with a patient timeout (tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _patient(patient_signal_store: None) -> None:
    """The page and the test share two cores: a slow read must not change the page."""
