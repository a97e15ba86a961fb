"""The browser of the tests that drive the billing tab and the hosted payment pages:
Debian's Chromium through Playwright's sync API, one per test run (a session fixture
defined once, here, for tests/portal and tests/stripe_fake alike: Playwright's sync API
cannot run twice at once in a process)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
AXE = Path(__file__).parent / "portal" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    # As root in a container, and with no network beyond loopback (env notes).
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (scripts/browser-deps installs it)"
    if not AXE.exists():
        return f"{AXE} is missing (scripts/browser-deps installs it)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("TABKEEPER_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(work)` in a thread of its own. Once the session's browser has started,
    Playwright's sync API leaves the main thread marked as running an event loop, and
    `asyncio.run` refuses to start there ("cannot be called from a running event loop"):
    tests that run a loop of their own call this, so they pass in any order beside the
    browser tests."""
    found: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.append(asyncio.run(work))
        except BaseException as error:  # raised below, in the test's thread
            failed.append(error)

    thread = threading.Thread(target=run, name="test-event-loop")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return found[0]
