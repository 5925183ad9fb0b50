"""`/healthz`: the process is up. `/readyz`: the database and every registered check answer,
and no registered data check reports lost data.

An app adds its own from AppConfig.ready(): `register_check` for a dependency the process cannot
serve without (ranking: the signal store), `register_data_check` for data a dependency lost that
the process can still serve around, degraded (ranking: customers whose signals Redis lost).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

# name -> a callable that raises when the dependency is unavailable.
_CHECKS: dict[str, Callable[[], None]] = {}
# name -> a callable that returns what is lost, in a sentence, or None; run once every check
# passed.
_DATA_CHECKS: dict[str, Callable[[], str | None]] = {}


def register_check(name: str, check: Callable[[], None]) -> None:
    _CHECKS[name] = check


def register_data_check(name: str, check: Callable[[], str | None]) -> None:
    _DATA_CHECKS[name] = check


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
    for name, check in _CHECKS.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure of a dependency's check means "not ready"
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if ready:
        for name, data_check in _DATA_CHECKS.items():
            lost = data_check()
            if lost:
                # Still ready (every task would be replaced otherwise, and none would serve
                # better): the answers are degraded until the data is back.
                body["status"] = "degraded"
                checks[name] = lost
    return JsonResponse(body, status=200 if ready else 503)
