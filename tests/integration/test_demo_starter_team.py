"""The demo's Starter plan offers no team (docs/demo.md; ADD-4, issue 12 item 8): adding a
member to a Starter organization answers "Upgrade to use team", not "Buy more seats", and
no seat add-on is offered with Starter; Growth still sells seats. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from tabkeeper.demo import seed_demo
from tabkeeper.domain.decisions import UPGRADE_TO_USE_TEAM_MESSAGE, Action
from tabkeeper.services.addons import list_addons
from tabkeeper.services.context import CatalogStore, billing
from tabkeeper.services.limits import check
from tabkeeper.services.organizations import organization_by_code

NOW = datetime(2026, 3, 17, 14, 37, tzinfo=UTC)


def test_add4_the_demo_starter_plan_says_upgrade_to_use_team(engine: Engine) -> None:
    report = seed_demo(engine, None, NOW)
    with billing(engine, report.platform_id, NOW, CatalogStore()) as b:
        decision = check(b, organization_by_code(b, "copper"), Action.ADD_SEAT)
        assert not decision.allowed
        assert decision.message == UPGRADE_TO_USE_TEAM_MESSAGE
        _, catalog = b.current_catalog()
        assert not catalog.addons["extra_seat"].allowed_on("starter")
        assert catalog.addons["extra_seat"].allowed_on("growth")
        atlas = list_addons(b, organization_by_code(b, "atlas"))
        assert "extra_seat" in {card.addon.code for card in atlas.active}
