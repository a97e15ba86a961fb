"""Suspension stops billing, and ends (SUB-11), through the billing clock on both
databases: no renewal while suspended; unpaid `suspension_days` on, the subscription ends
(reason unpaid) and its open invoices become uncollectible, once even when the clock runs
again; paid after the paid period, a new period starts at the payment, billed in full."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Subscription
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.payments import collect, customer_of
from tests.integration.conftest import FEB_1, World, make_world

FEB_8 = datetime(2026, 2, 8, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)
MAR_3 = datetime(2026, 3, 3, tzinfo=UTC)
MAR_10 = datetime(2026, 3, 10, tzinfo=UTC)


def _card(world: World, card: str) -> None:
    with world.billing() as b:
        customer = customer_of(organization_by_code(b, "acme"))
    saved = world.provider.attach(customer, card)
    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, "acme"), saved)


def _run(world: World, until: datetime) -> None:
    """The clock does all work due up to `until`, in time order (as simulate does)."""
    while (due := world.worker().next_due_at(until)) is not None:
        world.clock.set(max(due, world.clock.now()))
        world.worker().run_until(due)
    world.clock.set(until)


def _suspended(engine: Engine) -> World:
    """acme on Basic (30.00) from Jan 1; its Feb 1 renewal fails; suspended on Feb 8."""
    world = make_world(engine, {"suspension_days": 30})
    world.organization("acme")
    world.subscribe("acme")
    _card(world, "card_fails_later")
    _run(world, FEB_8)
    assert _subscription(world).state == "suspended"
    return world


def _subscription(world: World) -> Subscription:
    with transaction(world.engine) as session:
        return session.scalars(select(Subscription)).one()


def _invoices(world: World) -> list[tuple[str, str, int]]:
    with transaction(world.engine) as session:
        rows = session.scalars(select(Invoice).order_by(Invoice.id))
        return [(i.source_key.split(":")[0], i.status, i.total_minor) for i in rows]


def test_sub_11_no_renewal_while_suspended_then_it_ends_unpaid(engine: Engine) -> None:
    world = _suspended(engine)
    _run(world, MAR_1)
    assert _invoices(world) == [("checkout", "paid", 3000), ("renewal", "open", 3000)]
    _run(world, MAR_10)
    subscription = _subscription(world)
    assert (subscription.state, subscription.ended_reason) == ("canceled", "unpaid")
    assert subscription.ended_at == MAR_10
    assert _invoices(world) == [("checkout", "paid", 3000), ("renewal", "uncollectible", 3000)]
    assert world.notices("invoice.uncollectible") == 1
    assert world.notices("subscription.ended") == 1
    charges = world.charges()
    world.worker().run_until(MAR_10)  # INV-4: again for the same moment: nothing more
    assert world.worker().tick() == 0
    assert (world.charges(), world.notices("subscription.ended")) == (charges, 1)


def test_sub_11_paid_after_the_period_starts_a_new_one_at_the_payment(engine: Engine) -> None:
    world = _suspended(engine)
    _run(world, MAR_3)
    _card(world, "card_ok")
    with transaction(world.engine) as session:
        [renewal] = session.scalars(select(Invoice.id).where(Invoice.status == "open"))
    result = collect(world.billing, world.provider, renewal)
    assert result is not None and result.succeeded
    subscription = _subscription(world)
    assert subscription.state == "active" and subscription.ended_reason is None
    assert (subscription.period_start, subscription.period_end) == (
        MAR_3,
        datetime(2026, 4, 3, tzinfo=UTC),
    )
    assert _invoices(world)[-1] == ("restart", "open", 3000)  # collected by the clock, now
    world.worker().run_until(MAR_3)
    assert _invoices(world) == [
        ("checkout", "paid", 3000),
        ("renewal", "paid", 3000),
        ("restart", "paid", 3000),
    ]
    _run(world, MAR_10)  # the suspension's end was dropped with the payment
    assert _subscription(world).state == "active"


def test_sub_11_paid_within_the_period_keeps_it(engine: Engine) -> None:
    world = _suspended(engine)
    _card(world, "card_ok")
    with transaction(world.engine) as session:
        [renewal] = session.scalars(select(Invoice.id).where(Invoice.status == "open"))
    collect(world.billing, world.provider, renewal)
    subscription = _subscription(world)
    assert subscription.state == "active"
    assert (subscription.period_start, subscription.period_end) == (FEB_1, MAR_1)
    assert len(_invoices(world)) == 2
