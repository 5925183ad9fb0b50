"""Ranking's readiness checks (core/health.py runs them; ranking.apps registers them)."""

from __future__ import annotations

from django.db import DatabaseError

from ranking.signals.backend import signal_store
from ranking.signals.store import SignalStoreUnavailable


def signal_store_answers() -> None:
    """Raises SignalStoreUnavailable when the signal store does not answer a ping."""
    signal_store().ping()


def signal_data_lost() -> str | None:
    """The sentence /readyz shows when the store holds no version of customers that had one."""
    from ranking.services import signals_lost_customers

    try:
        lost = signals_lost_customers()
    except (SignalStoreUnavailable, DatabaseError):
        return None
    if not lost:
        return None
    return (
        f"lost: the signal store holds no version of {len(lost)} customers that had one "
        "(Redis lost its data); refreshes are republishing them"
    )
