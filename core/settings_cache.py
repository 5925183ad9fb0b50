"""Values the rank path derives from settings, read once rather than on every request.

A read of `django.conf.settings` goes through LazySettings' `__getattribute__` (about 0.7 us);
the direct rank path read some forty of them per request. A function decorated with
`settings_cached` runs once and keeps its value until a setting changes (`override_settings`,
pytest-django's `settings` fixture), so tests that change a setting still see it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.signals import setting_changed

T = TypeVar("T")

_cache_clears: list[Callable[[], None]] = []


def settings_cached(read: Callable[[], T]) -> Callable[[], T]:
    """`read()`, computed on first use and again after any setting changes."""
    cached = functools.cache(read)
    _cache_clears.append(cached.cache_clear)
    return cached


def clear_settings_caches(**kwargs: Any) -> None:
    """Forget every value read from settings (a receiver of `setting_changed`)."""
    for cache_clear in _cache_clears:
        cache_clear()


# Held strongly (weak=False): a module's function lives as long as the process, and a weak
# receiver would add an entry to weakref.finalize's process-wide registry.
setting_changed.connect(clear_settings_caches, weak=False, dispatch_uid="core.settings_cache")
