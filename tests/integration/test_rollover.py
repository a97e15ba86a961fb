"""Rollover of plan-included credits (CRD-8, CRD-2) through the services, on SQLite and
PostgreSQL: the unused included credits of a period carry into the next up to the plan's
`rollover.max`, are drawn before the new period's included credits, expire after that one
period, and the balance always equals the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Platform
from tabkeeper.db.tables_credits import CreditEntry, CreditGrant
from tabkeeper.domain.ledger import CreditsExhausted
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.credit_reports import credits_view
from tabkeeper.services.credits import consume
from tabkeeper.services.organizations import organization_by_code
from tests.integration.conftest import CATALOG as WORLD_CATALOG
from tests.integration.conftest import World, make_world
from tests.integration.test_credits import _ledger_adds_up

CATALOG: dict[str, Any] = {
    **WORLD_CATALOG,
    "plans": {
        **WORLD_CATALOG["plans"],
        "keeper": {"name": "Keeper", "price": "49.00", "rank": 3, "features": ["smart_reply"],
                   "credits": {"amount": 100, "expires": "period_end", "rollover": {"max": 50}}},
    },
    "ai_features": {"smart_reply": {"credits": 1}},
}  # fmt: skip


def _at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


@pytest.fixture
def world(engine: Engine) -> World:
    """acme on Keeper (100 included a month, up to 50 roll over) since Jan 1."""
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, CATALOG, world.clock.now())
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", "keeper")
    return world


def _use(world: World, use_id: str, uses: int) -> int:
    with world.billing() as b:
        return consume(b, organization_by_code(b, "acme"), "smart_reply", use_id, uses=uses).balance


def _go(world: World, moment: datetime) -> int:
    """The clock to `moment` (the billing clock doing the renewals), then the balance."""
    world.clock.set(moment)
    world.worker().run_until(moment)
    with world.billing() as b:
        view = credits_view(b, organization_by_code(b, "acme"))
    _ledger_adds_up(world, view.organization.id)
    return view.balance


def _grants(world: World) -> list[tuple[str, int, int, datetime | None]]:
    with transaction(world.engine) as session:
        rows = session.scalars(select(CreditGrant).order_by(CreditGrant.id))
        return [(g.source_key.split(":")[0], g.amount, g.remaining, g.expires_at) for g in rows]


def test_crd8_rollover_over_three_periods_with_a_max(world: World) -> None:
    """CRD-8: Jan: 100 included, 30 used (70 left). Feb 1: 50 of the 70 roll over (the
    max), 20 expire, 100 granted: 150. Feb: 30 used, all from the rolled-over 50 (drawn
    first): 120. Mar 1: the rolled-over 20 expire (they never roll again), 50 of Feb's
    unused 100 roll over, 100 granted: 150. Mar: 120 used, 50 rolled + 70 included: 30.
    Apr 1: the 30 left (below the max) roll over, 100 granted: 130. The balance equals
    the ledger at every step (CRD-2)."""
    assert _go(world, _at(1, 2)) == 100
    assert _use(world, "jan", 30) == 70
    assert _go(world, _at(2, 2)) == 150
    assert _use(world, "feb", 30) == 120
    feb_rollover = [g for g in _grants(world) if g[0] == "rollover"]
    assert feb_rollover == [("rollover", 50, 20, _at(3, 1))]
    assert _go(world, _at(3, 2)) == 150
    assert _use(world, "mar", 120) == 30
    assert _go(world, _at(4, 2)) == 130
    rolled = [(amount, left, ends) for kind, amount, left, ends in _grants(world)
              if kind == "rollover"]  # fmt: skip
    assert rolled == [(50, 0, _at(3, 1)), (50, 0, _at(4, 1)), (30, 30, _at(5, 1))]
    with transaction(world.engine) as session:
        entries = [
            (e.kind, e.amount)
            for e in session.scalars(select(CreditEntry).order_by(CreditEntry.id))
            if e.kind != "use"
        ]
    assert entries == [
        ("grant", 100),
        ("expiry", -70), ("grant", 50), ("grant", 100),
        ("expiry", -20), ("expiry", -100), ("grant", 50), ("grant", 100),
        ("expiry", -30), ("grant", 30), ("grant", 100),
    ]  # fmt: skip


def test_crd8_nothing_rolls_when_all_was_used(world: World) -> None:
    """CRD-8: a period whose included credits were all used carries nothing over."""
    assert _use(world, "jan", 100) == 0
    assert _go(world, _at(2, 2)) == 100
    assert [g for g in _grants(world) if g[0] == "rollover"] == []


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("use"), st.integers(1, 80)),
        st.tuples(st.just("wait"), st.integers(1, 45)),
    ),
    max_size=10,
)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_crd8_property_the_ledger_adds_up_with_rollover(
    world: World, steps: list[tuple[str, int]]
) -> None:
    """Property (CRD-8, CRD-2): after any uses and waits across renewals, the balance
    equals the ledger; no rollover grant exceeds the max or outlives one period; the
    balance never exceeds a period's 100 plus the 50 that may roll over."""
    code = f"org{next(_CODES)}"
    world.clock.set(world.clock.now() + timedelta(days=1))
    world.organization(code)
    world.subscribe(code, "keeper")
    with world.billing() as b:
        organization_id = organization_by_code(b, code).id
    for n, (action, amount) in enumerate(steps):
        if action == "wait":
            world.clock.set(world.clock.now() + timedelta(days=amount))
            world.worker().run_until(world.clock.now())
        else:
            with world.billing() as b:
                try:
                    with b.session.begin_nested():
                        consume(b, organization_by_code(b, code), "smart_reply", f"u{n}",
                                uses=amount)  # fmt: skip
                except CreditsExhausted:
                    pass
        with world.billing() as b:
            balance = credits_view(b, organization_by_code(b, code)).balance
        _ledger_adds_up(world, organization_id)
        assert 0 <= balance <= 150
    with transaction(world.engine) as session:
        rolled = list(
            session.scalars(
                select(CreditGrant).where(
                    CreditGrant.organization_id == organization_id,
                    CreditGrant.source_key.startswith("rollover:"),
                )
            )
        )
        for found in rolled:
            assert 1 <= found.amount <= 50
            assert found.expires_at is not None
            assert found.expires_at - found.granted_at <= timedelta(days=31)
        session.execute(  # later examples move the clock on
            update(DueWork)
            .where(DueWork.organization_id == organization_id, DueWork.status == "pending")
            .values(status="canceled")
        )


_CODES = count(1)
