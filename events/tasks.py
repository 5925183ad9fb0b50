"""Celery tasks of events: thin doors into events.services."""

from __future__ import annotations

from celery import shared_task

from events import services


@shared_task(soft_time_limit=50, time_limit=60)
def replay_pending_profile_updates() -> int:
    """Beat's entry point: fold the shopper-profile updates the signal store missed into it, in
    order. Idempotent (each update is applied once, see the service); a run the store refuses
    leaves the rest for the next one."""
    return services.pending_profile_updates_replay()
