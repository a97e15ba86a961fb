"""Auto top-up (CRD-6) and the spend cap (LIM-6) on a real database (SQLite, and
PostgreSQL with `-m db`): 20 concurrent uses crossing the threshold together fire one
top-up; a declined charge turns it off; a top-up counts against the spend cap and is not
bought past it; overage accrued by events counts while a cap is set, and setting a cap
works it out from the period's counters.

Bad inputs tried (each refused with nothing changed): thresholds and credits of 0, -1,
2.5, "5", True and 10,000,001; a catalog with no credit price; a plain member setting it;
caps of "0", "-1.00", "1.001", 50 (a number), "abc" and "21474836.48"; a plain member
setting a cap.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Invoice
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry
from tabkeeper.domain.errors import Forbidden, InvalidInput
from tabkeeper.domain.spend import SpendCapReached
from tabkeeper.services import auto_top_ups, spend_caps
from tabkeeper.services.credit_purchases import top_up
from tabkeeper.services.credits import consume_by_code
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import default_payment_method
from tests.integration.conftest import World, all_at_once
from tests.integration.test_credits import credits_world


@pytest.fixture
def world(engine: Engine) -> World:
    """acme (alice owner, carol member) on Basic with 100 credits (1.00)."""
    world = credits_world(engine)
    world.organization("acme", {"alice": "owner", "carol": "member"})
    world.subscribe("acme", "basic")
    with world.billing() as b:
        top_up(b, organization_by_code(b, "acme"), 100)
    world.worker().tick()  # the top-up's invoice collected
    return world


def _row(world: World) -> CreditBalance:
    with transaction(world.engine) as session:
        found = session.scalars(select(CreditBalance)).one()
        session.expunge(found)
        return found


def _ledger(world: World) -> int:
    with transaction(world.engine) as session:
        return sum(e.amount for e in session.scalars(select(CreditEntry)))


def _state(world: World) -> dict[str, Any]:
    engine = world.engine
    with engine.connect() as connection:
        return {
            table: sorted(map(repr, connection.execute(text(f'SELECT * FROM "{table}"')).all()))
            for table in sorted(inspect(engine).get_table_names())
        }


def test_crd6_twenty_concurrent_uses_crossing_the_threshold_fire_one_top_up(world: World) -> None:
    """CRD-6: balance 100, threshold 90, 20 uses of 1 credit at once: every one of them
    leaves the balance below 90 from the 11th on, but exactly one top-up is claimed and
    queued, and the clock buys it once: 100 - 20 + 200 = 280."""
    with world.billing() as b:
        auto_top_ups.set_auto_top_up(b, organization_by_code(b, "acme"), 90, 200, "alice")
    done: list[int] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        with world.billing() as b:
            used = consume_by_code(b, "acme", "smart_reply", f"u{index}")
        with lock:
            done.append(used.balance)

    all_at_once(20, work)
    assert sorted(done) == list(range(80, 100))
    assert world.count(DueWork, DueWork.kind == "auto_top_up") == 1
    assert _row(world).auto_pending is not None
    charges = world.charges()
    world.worker().tick()
    assert world.charges() == charges + 1
    row = _row(world)
    assert (row.balance, row.auto_pending, row.auto_threshold) == (280, None, 90)
    assert row.spent_purchases == 100 + 200  # LIM-6: both purchases count
    assert _ledger(world) == 280  # CRD-2
    assert world.notices("credits.auto_top_up") == 1
    assert world.invoices(Invoice.source_key.like("auto_top_up:%")) == 1
    world.worker().tick()
    assert world.charges() == charges + 1  # nothing more in flight


def test_crd6_a_declined_charge_turns_auto_top_up_off(world: World) -> None:
    """CRD-6: the card's charge is declined: the invoice voided, nothing granted, auto
    top-up off, `credits.auto_top_up_failed` told; the subscription stays active."""
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        auto_top_ups.set_auto_top_up(b, acme, 50, 200, "alice")
        acme_id = acme.id
    failing = world.provider.attach(f"org_{acme_id}", "card_fails_later")
    with world.billing() as b:
        method = default_payment_method(b, acme_id)
        assert method is not None
        method.token = failing.token
    with world.billing() as b:
        consume_by_code(b, "acme", "smart_reply", "u1", uses=60)
    world.worker().tick()
    row = _row(world)
    assert (row.balance, row.auto_threshold, row.auto_credits, row.auto_pending) == (
        40, None, None, None,
    )  # fmt: skip
    assert world.notices("credits.auto_top_up_failed") == 1
    assert world.notices("credits.auto_top_up") == 0
    with transaction(world.engine) as session:
        invoice = session.scalars(
            select(Invoice).where(Invoice.source_key.like("auto_top_up:%"))
        ).one()
        assert invoice.status == "void"
    assert world.notices("subscription.past_due") == 0
    with world.billing() as b:
        consume_by_code(b, "acme", "smart_reply", "u2", uses=30)
    world.worker().tick()
    assert world.count(DueWork, DueWork.kind == "auto_top_up") == 1  # off: none fired
    assert _row(world).balance == 10


def test_lim6_auto_top_up_counts_against_the_cap_and_stops_at_it(world: World) -> None:
    """LIM-6, CRD-6: cap 3.00; spent 1.00 (the fixture's top-up); an auto top-up of 2.00
    brings it to 3.00 (`spend_cap_80` and `spend_cap_100`); the next one would pass the
    cap, so it is not bought, and a manual top-up is refused `spend_cap_reached`."""
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        spend_caps.set_spend_cap(b, acme, "3.00", "alice")
        auto_top_ups.set_auto_top_up(b, acme, 50, 200, "alice")
    with world.billing() as b:
        consume_by_code(b, "acme", "smart_reply", "u1", uses=60)
    world.worker().tick()
    assert _row(world).balance == 240
    assert world.notices("spend_cap_80") == world.notices("spend_cap_100") == 1
    with world.billing() as b:
        consume_by_code(b, "acme", "smart_reply", "u2", uses=200)
    charges = world.charges()
    world.worker().tick()
    assert world.charges() == charges  # not bought past the cap
    row = _row(world)
    assert (row.balance, row.auto_pending, row.auto_threshold) == (40, None, 50)
    before = _state(world)
    with pytest.raises(SpendCapReached), world.billing() as b:
        top_up(b, organization_by_code(b, "acme"), 1)
    assert _state(world) == before
    with world.billing() as b:
        spent = spend_caps.spend_of(b, organization_by_code(b, "acme"))
    assert (spent.cap, spent.spent, spent.percent) == (300, 300, 100)
    world.clock.advance(timedelta(days=32))  # the next period: the spend starts again
    world.worker().tick()
    with world.billing() as b:
        top_up(b, organization_by_code(b, "acme"), 1)
        assert spend_caps.spend_of(b, organization_by_code(b, "acme")).spent == 1


@pytest.mark.parametrize(
    ("threshold", "credits"),
    [(0, 10), (-1, 10), (2.5, 10), ("5", 10), (True, 10), (10_000_001, 10), (10, 0),
     (10, 10_000_001), (10, None)],
)  # fmt: skip
def test_crd6_bad_settings_change_nothing(world: World, threshold: Any, credits: Any) -> None:
    before = _state(world)
    with pytest.raises(InvalidInput), world.billing() as b:
        auto_top_ups.set_auto_top_up(b, organization_by_code(b, "acme"), threshold, credits)
    assert _state(world) == before


def test_crd6_and_lim6_need_the_billing_role(world: World) -> None:
    before = _state(world)
    with pytest.raises(Forbidden), world.billing() as b:
        auto_top_ups.set_auto_top_up(b, organization_by_code(b, "acme"), 10, 10, "carol")
    with pytest.raises(Forbidden), world.billing() as b:
        spend_caps.set_spend_cap(b, organization_by_code(b, "acme"), "10.00", "carol")
    assert _state(world) == before


@pytest.mark.parametrize("amount", ["0", "-1.00", "1.001", 50, "abc", "21474836.48", ""])
def test_lim6_bad_caps_change_nothing(world: World, amount: Any) -> None:
    before = _state(world)
    with pytest.raises(InvalidInput), world.billing() as b:
        spend_caps.set_spend_cap(b, organization_by_code(b, "acme"), amount, "alice")
    assert _state(world) == before
