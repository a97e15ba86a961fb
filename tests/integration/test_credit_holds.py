"""Credit holds (CRD-5) and the low-balance alert (CRD-7) through the services, on SQLite
and PostgreSQL: concurrent holds never overshoot the balance, and, over any sequence of
holds, settles, releases, uses, top-ups and waits across expiries and renewals, the
ledger always adds up and held credits are never spent twice."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant, CreditHold
from tabkeeper.domain.errors import InvalidInput, TabkeeperError
from tabkeeper.domain.ledger import CreditsExhausted
from tabkeeper.services import credit_alerts, credit_holds
from tabkeeper.services.credit_purchases import grant_adjustment, top_up
from tabkeeper.services.credit_reports import credits_view
from tabkeeper.services.credits import consume
from tabkeeper.services.organizations import organization_by_code
from tests.integration.conftest import World, all_at_once
from tests.integration.test_credits import credits_world


@pytest.fixture
def world(engine: Engine) -> World:
    world = credits_world(engine)
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", "basic")
    return world


def _ledger_adds_up(world: World, organization_id: int) -> None:
    """CRD-2, CRD-5: the balance is the sum of the entries and of what unexpired grants
    have left, never below zero; every credit ever granted is in the balance, held by an
    open hold, used, expired or repaid, exactly once (held credits are never spent
    twice); each grant's remainder is its amount less what entries drew from it, never
    below zero; what is owed is the shortfalls less the repayments."""
    with transaction(world.engine) as session:
        row = session.scalars(
            select(CreditBalance).where(CreditBalance.organization_id == organization_id)
        ).first()
        balance, owed, held_row = (0, 0, 0) if row is None else (row.balance, row.owed, row.held)
        entries = list(
            session.scalars(
                select(CreditEntry).where(CreditEntry.organization_id == organization_id)
            )
        )
        grants = list(
            session.scalars(
                select(CreditGrant).where(CreditGrant.organization_id == organization_id)
            )
        )
        holds = list(
            session.scalars(select(CreditHold).where(CreditHold.organization_id == organization_id))
        )
    assert balance == sum(e.amount for e in entries)
    assert balance == sum(g.remaining for g in grants if g.expired_at is None)
    assert balance >= 0
    by_kind: dict[str, int] = {}
    for entry in entries:
        by_kind[entry.kind] = by_kind.get(entry.kind, 0) - entry.amount
    held = sum(h.credits for h in holds if h.state == "held")
    assert held_row == held
    spent = by_kind.get("use", 0) + by_kind.get("expiry", 0) + by_kind.get("repayment", 0)
    assert sum(g.amount for g in grants) == balance + held + spent
    assert by_kind.get("hold", 0) == sum(h.credits for h in holds)
    assert -by_kind.get("release", 0) == sum(h.credits for h in holds if h.state != "held")
    shortfalls = sum(e.shortfall or 0 for e in entries)
    assert owed == shortfalls - by_kind.get("repayment", 0) >= 0
    drawn: dict[int, int] = {}
    for entry in entries:
        sign = -1 if entry.kind == "release" else 1
        if entry.kind in ("use", "hold", "release", "repayment"):
            assert sum(credits for _, credits in entry.parts or []) == abs(entry.amount)
            for grant_id, credits in entry.parts or []:
                drawn[grant_id] = drawn.get(grant_id, 0) + sign * credits
        elif entry.kind == "expiry":
            assert entry.grant_id is not None
            drawn[entry.grant_id] = drawn.get(entry.grant_id, 0) - entry.amount
    for found in grants:
        assert found.remaining >= 0
        assert found.remaining == found.amount - drawn.get(found.id, 0)
    for found in holds:
        if found.state == "settled":
            assert found.settled_credits is not None and found.shortfall is not None
            use = [e for e in entries if e.entry_key == f"hold:{found.id}:use"]
            assert -use[0].amount + found.shortfall == found.settled_credits


def test_crd5_fifty_concurrent_holds_with_room_for_ten(world: World) -> None:
    """CRD-5: 50 concurrent holds of 1 credit with 10 left: exactly 10 are made, the
    other 40 refused with credits_exhausted; the balance ends at 0 with 10 held."""
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        top_up(b, acme, 10)
    made: list[bool] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        try:
            with world.billing() as b:
                credit_holds.hold_by_code(b, "acme", "smart_reply", 1, agent=f"a{index}")
            result = True
        except CreditsExhausted:
            result = False
        with lock:
            made.append(result)

    all_at_once(50, work)
    assert (len(made), made.count(True)) == (50, 10)
    with world.billing() as b:
        view = credits_view(b, organization_by_code(b, "acme"))
        assert (view.balance, credit_holds.held_credits(b, acme.id)) == (0, 10)
    assert world.count(CreditHold) == 10
    assert world.notices("credits.exhausted") == 1
    _ledger_adds_up(world, acme.id)


# -- the ledger adds up with holds (property) -------------------------------------------------


@dataclass
class Holdings:
    world: World
    codes: Any


@pytest.fixture
def holdings(engine: Engine) -> Holdings:
    return Holdings(credits_world(engine), count(1))


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), st.integers(1, 40), st.integers(60, 86_400)),
        st.tuples(st.just("settle"), st.integers(0, 9), st.integers(1, 60)),
        st.tuples(st.just("release"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("use"), st.integers(1, 30), st.just(0)),
        st.tuples(st.just("top_up"), st.integers(1, 40), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 40 * 24), st.just(0)),
    ),
    max_size=16,
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(steps=STEPS, plan=st.sampled_from(["plus", "basic"]))
def test_crd5_the_ledger_adds_up_with_holds(
    holdings: Holdings, steps: list[tuple[str, int, int]], plan: str
) -> None:
    """Property (CRD-2, CRD-5): after any sequence of holds (any timeout), settles (below,
    at or above the estimate), releases, uses, top-ups and waits (hours, across hold
    expiries, included credits expiring and renewals; the billing clock running), the
    balance equals the ledger, held credits are never spent twice, and no grant goes
    below zero: a settle above the balance records a shortfall instead."""
    world = holdings.world
    code = f"org{next(holdings.codes)}"
    world.clock.set(world.clock.now() + timedelta(days=1))
    world.organization(code)
    world.subscribe(code, plan)
    with world.billing() as b:
        organization_id = organization_by_code(b, code).id
    made: list[int] = []
    for n, (action, first, second) in enumerate(steps):
        if action == "wait":
            world.clock.set(world.clock.now() + timedelta(hours=first))
            world.worker().run_until(world.clock.now())
            _ledger_adds_up(world, organization_id)
            continue
        try:
            with world.billing() as b:
                organization = organization_by_code(b, code)
                if action == "hold":
                    made.append(
                        credit_holds.hold(b, organization, "smart_reply", first,
                                          timeout=second).id
                    )  # fmt: skip
                elif action == "settle" and made:
                    credit_holds.settle(b, made[first % len(made)], second)
                elif action == "release" and made:
                    credit_holds.release(b, made[first % len(made)])
                elif action == "use":
                    consume(b, organization, "smart_reply", f"u{n}", uses=first)
                elif action == "top_up":
                    top_up(b, organization, first)
        except TabkeeperError as error:
            assert error.code in ("credits_exhausted", "hold_closed"), error
        _ledger_adds_up(world, organization_id)
    assert world.count(CreditBalance, CreditBalance.balance < 0) == 0
    with transaction(world.engine) as session:  # later examples move the clock on
        session.execute(
            update(DueWork)
            .where(DueWork.organization_id == organization_id, DueWork.status == "pending")
            .values(status="canceled")
        )


def test_crd7_credits_low_once_per_crossing_also_by_an_expiry(world: World) -> None:
    """CRD-7: threshold 50, balance 120 (100 of an adjustment expiring Jan 10, 20
    bought): a use of 30 leaves 90 (nothing); the expiry of the adjustment's 70 left
    takes it to 20: `credits.low` once, also when read again; a top-up of 100 (120) and
    a use of 80 (40): told again. A threshold of 0 or 2.5 is refused, nothing changed."""
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        grant_adjustment(b, acme, 100, "promo", expires_at=world.clock.now() + timedelta(days=9))
        top_up(b, acme, 20)
        credit_alerts.set_low_alert(b, acme, 50, "alice")
        consume(b, acme, "smart_reply", "u1", uses=30)
    assert world.notices("credits.low") == 0
    world.clock.set(world.clock.now() + timedelta(days=10))
    for _ in range(2):
        with world.billing() as b:
            assert credits_view(b, organization_by_code(b, "acme")).balance == 20
    assert world.notices("credits.low") == 1
    with world.billing() as b:
        top_up(b, acme, 100)
        consume(b, acme, "smart_reply", "u2", uses=80)
    assert world.notices("credits.low") == 2
    for bad in (0, 2.5, -1, "5", True):
        with pytest.raises(InvalidInput), world.billing() as b:
            credit_alerts.set_low_alert(b, organization_by_code(b, "acme"), bad)
    with world.billing() as b:
        assert credit_holds.low_threshold(b, acme.id) == 50
    _ledger_adds_up(world, acme.id)
