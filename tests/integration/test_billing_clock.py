"""The billing clock is idempotent (INV-4): a crash at any point followed by a rerun makes
no second invoice, charge or notice; two workers never do the same work."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Invoice, PaymentAttempt, Subscription
from tests.integration.conftest import FEB_1, Crash, World, make_world


def _renewals(world: World) -> list[Invoice]:
    with transaction(world.engine) as session:
        return list(
            session.scalars(select(Invoice).where(Invoice.source_key.startswith("renewal:")))
        )


def test_running_the_clock_twice_for_the_same_moment_does_nothing_more(world: World) -> None:
    """INV-4: a second run for the same moment makes no second invoice, charge or notice."""
    world.organization("acme")
    world.subscribe("acme")
    world.clock.set(FEB_1)
    assert world.worker().tick() == 2  # the renewal, then its collection
    counts = (world.invoices(), world.charges(), world.notices("invoice.issued"))
    assert world.worker().tick() == 0
    assert world.worker().run_until(FEB_1) == 0
    assert (world.invoices(), world.charges(), world.notices("invoice.issued")) == counts
    assert counts == (2, 2, 2)


def test_crash_after_the_invoice_before_the_charge(world: World) -> None:
    """INV-4: the worker dies after the renewal's invoice row is committed and before the
    charge; the next tick charges it once, and nothing is invoiced or noticed twice."""
    world.organization("acme")
    world.subscribe("acme")
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="period_end").tick()
    [renewal] = _renewals(world)
    assert renewal.status == "open"
    assert world.charges() == 1  # only the checkout so far
    assert world.worker().tick() == 1
    [renewal] = _renewals(world)
    assert renewal.status == "paid"
    assert (world.invoices(), world.charges(), world.notices("invoice.issued")) == (2, 2, 2)
    assert world.notices("invoice.paid") == 2  # the checkout and the renewal
    assert world.worker().tick() == 0


@pytest.mark.parametrize("card", ["card_ok", "card_fails_later"])
def test_crash_after_the_charge_before_the_notice(world: World, card: str) -> None:
    """INV-4, SUB-8: the worker dies after the provider charged and before the outcome
    (and its notice) is recorded. The collection is taken over after its lease; the same
    idempotency key goes to the provider, which answers with the first charge: one charge,
    one outcome, one notice."""
    world.organization("acme")
    world.subscribe("acme")
    if card != "card_ok":
        with world.billing() as b:
            from tabkeeper.services.organizations import organization_by_code
            from tabkeeper.services.payment_methods import save_payment_method
            from tabkeeper.services.payments import customer_of

            org = organization_by_code(b, "acme")
            customer = customer_of(org)
        saved = world.provider.attach(customer, card)
        with world.billing() as b:
            save_payment_method(b, organization_by_code(b, "acme"), saved)
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="charged").tick()
    assert world.charges() == 2  # the provider did charge
    [renewal] = _renewals(world)
    assert renewal.status == "open"
    assert world.worker().tick() == 0  # still within the lease: nobody takes it over
    world.clock.advance(timedelta(minutes=6))
    assert world.worker().tick() == 1
    assert world.charges() == 2
    [renewal] = _renewals(world)
    assert world.count(PaymentAttempt, PaymentAttempt.invoice_id == renewal.id) == 1
    if card == "card_ok":
        assert renewal.status == "paid"
        assert world.notices("invoice.paid") == 2  # the checkout and the renewal
        assert world.notices("payment.failed") == 0
    else:
        assert renewal.status == "open"
        assert world.notices("payment.failed") == 1
        assert world.notices("subscription.past_due") == 1
        with transaction(world.engine) as session:
            assert session.scalars(select(Subscription.state)).one() == "past_due"
    assert world.worker().tick() == 0


def test_two_workers_renew_each_subscription_exactly_once(engine: Engine) -> None:
    """INV-4, rule 6: two workers at once over many due renewals: each subscription is
    renewed, invoiced and charged exactly once (1,000 on PostgreSQL; 200 on SQLite, where
    writers take turns anyway)."""
    world = make_world(engine)
    count = 200 if engine.dialect.name == "sqlite" else 1000
    for i in range(count):
        world.organization(f"org-{i}")
        world.subscribe(f"org-{i}")
    world.clock.set(FEB_1)
    errors: list[BaseException] = []
    done: list[int] = []

    def run() -> None:
        try:
            done.append(world.worker().run_until(FEB_1))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(done) == 2 * count  # each renewal and each collection, once
    renewals = _renewals(world)
    assert len(renewals) == count
    assert len({r.organization_id for r in renewals}) == count
    assert all(r.status == "paid" for r in renewals)
    assert world.charges() == 2 * count
    assert world.notices("invoice.issued") == 2 * count
    assert world.count(DueWork, DueWork.status.in_(("pending", "running"))) == count
    numbers = [r.number for r in renewals]
    assert len(set(numbers)) == count
