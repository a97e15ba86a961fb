"""The demo's billing tabs in the browser: every organization of `make run`, in every
state, as each member the demo prints (PRT-1, PRT-2, ACL-2), with no serious or critical
axe-core violation."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabkeeper.api.app import create_app
from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tabkeeper.demo import seed_demo
from tabkeeper.settings import Settings
from tests.portal.conftest import SCREENSHOTS, serving

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_every_demo_tab_opens_and_is_accessible(
    browser: Any, page: Any, axe: Callable[[Any], list[dict[str, Any]]], tmp_path: Path
) -> None:
    """PRT-1, PRT-2, ACL-2: each printed portal URL opens its organization's tab with the
    state's badge (owners and billing admins) or no billing tab (plain members); axe
    finds nothing serious on any of them."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(database_url=url)
    report = seed_demo(engine, settings, NOW)
    states = {entry.state.split("+")[0] for entry in report.entries}
    assert {"trialing", "active", "past_due", "canceled", "expired"} <= states
    app = create_app(settings, engine, clock=SimulatedClock(NOW))
    violations = []
    with serving(app) as base_url:
        for entry in report.entries:
            page.goto(entry.portal_url(base_url))
            switch = page.get_by_role("button", name=re.compile("^Switch to "))
            if switch.count():  # this browser is in another tab already: it asks (ACL-3)
                violations += axe(page)
                with page.expect_navigation():
                    switch.click()
            text = page.locator("main").inner_text()
            if entry.role == "member":
                assert page.get_by_role("link", name="Billing").count() == 0, entry
                assert "Billing not available" in text
            else:
                assert entry.badge in text, (entry.organization, entry.badge)
            violations += axe(page)
            name = f"demo_{entry.organization}_{entry.member}.png"
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    engine.dispose()
    assert violations == []
