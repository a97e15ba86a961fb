"""CAT-6: catalog changes never rewrite history."""

from __future__ import annotations

import copy
from datetime import timedelta

from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Platform
from tabkeeper.services import changes
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.organizations import organization_by_code
from tests.integration.conftest import CATALOG, FEB_1, World


def test_a_price_change_is_a_new_version_and_subscriptions_keep_theirs(world: World) -> None:
    """CAT-6: Basic goes from 30.00 to 35.00. The existing subscription renews at 30.00;
    a new subscriber pays 35.00; a change applied to the old one moves it to the new
    version."""
    world.organization("old")
    world.subscribe("old", "basic")
    repriced = copy.deepcopy(CATALOG)
    repriced["plans"]["basic"]["price"] = "35.00"
    repriced["plans"]["pro"]["price"] = "70.00"
    with transaction(world.engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        assert import_catalog(session, platform, repriced, world.clock.now()).version == 2
    world.organization("new")
    world.subscribe("new", "basic")
    world.clock.set(FEB_1)
    world.worker().tick()
    with transaction(world.engine) as session:
        totals = {
            (invoice.organization_id, invoice.source_key.split(":")[0]): invoice.total_minor
            for invoice in session.scalars(select(Invoice))
        }
    assert sorted(totals.values()) == [3000, 3000, 3500, 3500]
    world.clock.advance(timedelta(days=15))
    with world.billing() as b:
        changes.change_plan(b, organization_by_code(b, "old"), "pro", "immediately")
    with transaction(world.engine) as session:
        change = session.scalars(
            select(Invoice).where(Invoice.source_key.startswith("change:"))
        ).one()
    # Feb 16 of a Feb 1 – Mar 1 period: 13/28 remains. The old plan is credited at its own
    # price (−3000 × 13/28 = −1392.86 → −1393), Pro charged at the new one (7000 × 13/28 =
    # 3250): 1857.
    assert change.total_minor == 1857
