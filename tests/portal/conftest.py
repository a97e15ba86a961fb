"""The billing tab in a real browser: Debian's Chromium driven by Playwright, against a
tabkeeper server that the test starts on 127.0.0.1 (PRT-2).

Fixtures:
- `portal`: a running server over a billing world (the catalog of tests/api/billing.py,
  on a SQLite file of the test's own, a simulated clock, the sandbox provider), with
  `enter_url(org, member)` giving the portal URL a platform hands to that member.
- `page`: a Playwright page in a fresh browser context; at teardown it saves a screenshot
  named after the test under test-output/portal/ (or $TABKEEPER_TEST_OUTPUT/portal/).
- `axe`: runs axe-core (tests/portal/node_modules, from the npm registry) in the page
  and returns the serious and critical violations.

`scripts/browser-deps` (run by `make test`) installs Chromium and axe-core. Run outside
`make test` without them, these tests are skipped, unless TABKEEPER_REQUIRE_BROWSER=1
(set by `make test`), which turns a missing browser into an error.

The server runs the billing world of the test, so the browser tests run once, on
SQLite: the services they call are proved on PostgreSQL by tests/api and
tests/integration.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine

from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tests.api.conftest import ApiWorld
from tests.integration.conftest import World

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
OUTPUT = Path(os.environ.get("TABKEEPER_TEST_OUTPUT", HERE.parent.parent / "test-output"))
SCREENSHOTS = OUTPUT / "portal"
SERIOUS = ("serious", "critical")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Portal:
    """A tabkeeper server on 127.0.0.1 over a billing world."""

    api: ApiWorld
    base_url: str

    @property
    def world(self) -> World:
        return self.api.world

    def enter_url(self, organization: str, member: str) -> str:
        """The portal URL of a fresh portal session for `member` of `organization`."""
        response = self.api.platform.post(
            "/v1/portal_sessions", {"organization": organization, "member": member}
        )
        assert response.status_code == 201, response.text
        return f"{self.base_url}/portal/enter?token={response.json()['token']}"

    def tick(self) -> int:
        """One run of the billing clock (charges, renewals, notices) at the world's now."""
        return self.world.worker().tick()


@pytest.fixture
def portal_engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file of the test's own (not the `engine` fixture: see the docstring)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="portal-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the portal server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def portal(browser: Any, portal_engine: Engine) -> Iterator[Portal]:
    from tests.api.billing import make_billing_world

    api = make_billing_world(portal_engine)
    with serving(api.platform.http.app) as base_url:
        yield Portal(api, base_url)


def _screenshot_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_") + ".png"


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(
            path=str(SCREENSHOTS / _screenshot_name(request.node.nodeid)), full_page=True
        )
    finally:
        context.close()


@pytest.fixture
def axe() -> Callable[[Any], list[dict[str, Any]]]:
    """`axe(page)`: the serious and critical axe-core violations of the page as it is."""
    source = AXE.read_text(encoding="utf-8")

    def run(page: Any) -> list[dict[str, Any]]:
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(content=source)
        results: dict[str, Any] = page.evaluate("async () => await window.axe.run(document)")
        return [
            {
                "id": violation["id"],
                "impact": violation["impact"],
                "help": violation["help"],
                "nodes": [node["target"] for node in violation["nodes"]][:5],
                "url": page.url,
            }
            for violation in results["violations"]
            if violation["impact"] in SERIOUS
        ]

    return run
