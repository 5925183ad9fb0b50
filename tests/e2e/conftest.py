"""Browser tests: Playwright driving Debian's chromium (never a browser Playwright downloads).

`make test` installs chromium (platform/dev/ensure-services.sh); without it these tests fail,
saying so. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(settings.BASE_DIR) / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium per test module, closed after it: Playwright's sync API keeps an event loop
    in this thread while it runs, which Django takes for async code, so the database calls of
    the tests (setup, checks, teardown) are allowed by DJANGO_ALLOW_ASYNC_UNSAFE only meanwhile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's chromium is missing ({CHROMIUM}): the browser tests need it. "
            "Run platform/dev/ensure-services.sh as root (make test does), or "
            "apt-get install chromium.",
            pytrace=False,
        )
    before = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            yield launched
            launched.close()
    finally:
        if before is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = before


# An assertion waits as long as an action may (Playwright's default for `expect` is 5 s): the
# live server, chromium and the test share two cores, and a page the machine is slow to render
# is not a failure; one that never shows what is expected still is.
expect.set_options(timeout=15_000)

# Injected by the browser itself (not subject to the page's CSP): every violation is reported.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " blocked " +
                (event.blockedURI || "an inline script or style") + " on " + event.documentURI);
});
"""


def is_csp_violation(text: str) -> bool:
    return text.startswith("CSP violation") or "Content Security Policy" in text


@pytest.fixture
def csp_violations() -> list[str]:
    """The CSP violations the page met; a test that provokes one on purpose empties it."""
    return []


@pytest.fixture
def page(browser: Browser, csp_violations: list[str]) -> Iterator[Page]:
    """A fresh browser page. Every browser test runs under the project's CSP (the one production
    sends) and fails if the page met any violation of it."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    context.add_init_script(CSP_LISTENER)
    opened = context.new_page()
    opened.on(
        "console",
        lambda message: (
            csp_violations.append(message.text)
            if message.type == "error" and is_csp_violation(message.text)
            else None
        ),
    )
    yield opened
    context.close()
    assert not csp_violations, "the page broke the Content-Security-Policy:\n" + "\n".join(
        csp_violations
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _patient(patient_signal_store: None) -> None:
    """The live server shares two cores with chromium and the test (tests/conftest.py)."""
