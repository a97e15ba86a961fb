"""The browser harness itself: Debian's Chromium reaches the test's server, and axe-core
runs in the page (PRT-2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.portal.conftest import Portal


def test_browser_reaches_the_server_and_axe_runs(
    portal: Portal, page: Any, axe: Callable[[Any], list[dict[str, Any]]]
) -> None:
    """PRT-2: a real browser on 127.0.0.1; axe-core answers in the page."""
    page.goto(f"{portal.base_url}/health")
    assert '"status":"ok"' in page.content().replace(" ", "")
    page.set_content(
        "<html lang='en'><head><title>t</title></head><body><main>"
        "<img src='x.png'></main></body></html>"
    )
    found = axe(page)
    assert [violation["id"] for violation in found] == ["image-alt"]
