"""`/healthz`: the process is up. `/readyz`: the database and the signal store answer, and
the store still holds the signals of every customer that had some."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from ranking.signals.store import SignalStoreUnavailable, signal_store


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        signal_store().ping()
        checks["signal_store"] = "ok"
    except SignalStoreUnavailable as exc:
        checks["signal_store"] = f"unavailable: {type(exc).__name__}"
    lost = _lost_customers() if checks["database"] == checks["signal_store"] == "ok" else []
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if lost:
        # Still ready (every task would be replaced otherwise, and none would serve better):
        # the answers of these customers are degraded until the refresh beat republishes.
        body["status"] = "degraded"
        checks["signal_data"] = (
            f"lost: the signal store holds no version of {len(lost)} customers that had one "
            "(Redis lost its data); refreshes are republishing them"
        )
    return JsonResponse(body, status=200 if ready else 503)


def _lost_customers() -> list[int]:
    from ranking.services import signals_lost_customers

    try:
        return signals_lost_customers()
    except (SignalStoreUnavailable, DatabaseError):
        return []
