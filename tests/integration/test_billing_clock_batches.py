"""The billing clock's faster paths keep it exactly-once (INV-4): renewals done several to
a transaction (SQLite), work left running looked for less often, and the outcome of a
charge written with one conditional UPDATE."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Invoice, Notice, Organization, PaymentAttempt
from tabkeeper.payments.provider import ChargeResult
from tabkeeper.services.context import Billing
from tabkeeper.services.payments import charge, claim_attempt, record_outcome
from tabkeeper.services.renewals import HANDLERS, Handler
from tests.integration.conftest import FEB_1, Crash, World, make_world


def _renewed(world: World) -> dict[str, str]:
    """The status of each organization's renewal invoice, by organization code."""
    with transaction(world.engine) as session:
        rows = session.execute(
            select(Organization.code, Invoice.status)
            .join(Invoice, Invoice.organization_id == Organization.id)
            .where(Invoice.source_key.startswith("renewal:"))
        )
        return {code: status for code, status in rows}


def _subscribe(world: World, count: int) -> list[str]:
    codes = [f"org-{i}" for i in range(count)]
    for code in codes:
        world.organization(code)
        world.subscribe(code)
    return codes


def test_a_failing_renewal_fails_alone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """INV-4: when one renewal of those due at the same moment fails, those before it are
    renewed and committed, it fails (the tick raises) and nothing after it is done; once
    it can succeed, a rerun renews the rest, each once. (On SQLite renewals are done
    several to a transaction: the failed batch is done again one at a time.)"""
    codes = _subscribe(world, 5)
    renew: Handler = HANDLERS["period_end"]
    with transaction(world.engine) as session:
        failing = session.scalars(select(Organization.id).where(Organization.code == "org-2")).one()

    def fail_for_org_2(b: Billing, work: DueWork) -> None:
        if work.organization_id == failing:
            raise RuntimeError("renewal failed")
        renew(b, work)

    monkeypatch.setitem(HANDLERS, "period_end", fail_for_org_2)
    world.clock.set(FEB_1)
    with pytest.raises(RuntimeError, match="renewal failed"):
        world.worker().tick()
    assert _renewed(world) == {"org-0": "open", "org-1": "open"}
    monkeypatch.setitem(HANDLERS, "period_end", renew)
    assert world.worker().tick() == 2 + 2 * 3  # the two collections, the three others
    assert _renewed(world) == dict.fromkeys(codes, "paid")
    assert world.charges() == 2 * len(codes)  # each checkout and each renewal, once
    assert world.notices("invoice.issued") == 2 * len(codes)
    assert world.worker().tick() == 0


def test_crash_after_renewals_before_their_charges(world: World) -> None:
    """INV-4: the worker dies right after renewals commit (several in one transaction on
    SQLite, one on PostgreSQL), before any charge; a rerun charges each renewal once and
    invoices, charges and notices nothing twice."""
    codes = _subscribe(world, 3)
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="period_end").tick()
    assert set(_renewed(world).values()) == {"open"}
    assert world.charges() == len(codes)  # only the checkouts so far
    world.worker().tick()
    assert _renewed(world) == dict.fromkeys(codes, "paid")
    assert world.charges() == 2 * len(codes)
    assert world.notices("invoice.issued") == 2 * len(codes)
    assert world.notices("invoice.paid") == 2 * len(codes)
    assert world.count(PaymentAttempt) == 2 * len(codes)
    assert world.worker().tick() == 0


def test_a_long_running_worker_takes_over_work_left_running(world: World) -> None:
    """INV-4: a worker that keeps running looks for work left running by a dead worker
    less often than before each piece of work, but still takes it over once its lease ran
    out, in due order (before later work that is pending), and charges nothing twice."""
    _subscribe(world, 2)  # org-0 and org-1 renew at FEB_1
    world.clock.set(world.clock.now() + timedelta(minutes=6))
    world.organization("late")
    world.subscribe("late")  # renews at FEB_1 + 6 minutes
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="charged").tick()  # org-0's charge made, not recorded
    assert world.charges() == 3 + 1
    worker = world.worker()
    worker.tick()  # org-1's collection, unless the dead worker claimed it with org-0's
    world.clock.advance(timedelta(minutes=6))
    worker.tick()
    assert _renewed(world) == {"org-0": "paid", "org-1": "paid", "late": "paid"}
    assert world.charges() == 3 + 3  # org-0's charge was not made twice
    assert world.count(PaymentAttempt) == 3 + 3
    assert world.notices("invoice.paid") == 3 + 3
    with transaction(world.engine) as session:
        kinds = session.execute(
            select(Organization.code, Notice.kind)
            .join(Notice, Notice.organization_id == Organization.id)
            .where(Notice.kind.in_(("invoice.paid", "subscription.renewed")))
            .order_by(Notice.id)
        ).all()
    # org-0's collection, due at FEB_1, was taken over before "late" renewed.
    paid = max(i for i, row in enumerate(kinds) if tuple(row) == ("org-0", "invoice.paid"))
    assert paid < kinds.index(("late", "subscription.renewed"))
    assert worker.tick() == 0


def test_an_outcome_is_recorded_once(engine: Engine) -> None:
    """INV-4: two workers recording the same charge: the first writes the outcome, the
    invoice paid and its notice; the second is told it was already done and writes
    nothing."""
    world = make_world(engine)
    world.organization("acme")
    world.subscribe("acme")
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="period_end").tick()  # renewed; the collection is pending
    with world.billing() as b:
        [invoice_id] = b.session.scalars(
            select(Invoice.id).where(Invoice.source_key.startswith("renewal:"))
        ).all()
        claim = claim_attempt(b, invoice_id, None)
    assert claim is not None
    result = charge(world.provider, claim)
    recorded = []
    for _ in range(2):
        with world.billing() as b:
            recorded.append(record_outcome(b, claim, result))
    assert recorded == [True, False]
    assert _renewed(world) == {"acme": "paid"}
    assert world.notices("invoice.paid") == 2  # the checkout and the renewal
    with transaction(world.engine) as session:
        attempt = session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice_id)
        ).one()
        assert (attempt.status, attempt.provider_reference) == ("succeeded", result.reference)


def test_crash_after_the_first_charge_of_several(world: World) -> None:
    """INV-4: the worker dies after charging the first of several collections due at the
    same moment, before recording it (on SQLite the others were claimed with it, on
    PostgreSQL they are still pending). Once the lease runs out everything is collected,
    and each renewal is charged once, with one attempt."""
    codes = _subscribe(world, 3)
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="charged").tick()
    assert world.charges() == len(codes) + 1
    world.worker().tick()  # what is not held by the dead worker's lease
    world.clock.advance(timedelta(minutes=6))
    world.worker().tick()
    assert _renewed(world) == dict.fromkeys(codes, "paid")
    assert world.charges() == 2 * len(codes)
    assert world.count(PaymentAttempt) == 2 * len(codes)
    assert world.notices("invoice.paid") == 2 * len(codes)
    assert world.worker().tick() == 0


def test_a_provider_error_hands_back_the_claims_after_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """INV-4: the provider fails (raises) on the first of several collections: the tick
    raises, the collections claimed after it are pending again and collected by the next
    tick, without waiting for their lease; the failed one is taken over after its lease.
    Each renewal is charged once."""
    codes = _subscribe(world, 3)
    provider_charge = world.provider.charge
    calls: list[str] = []

    def fail_once(*arguments: Any) -> ChargeResult:
        calls.append("charge")
        if len(calls) == 1:
            raise ConnectionError("the provider is unreachable")
        return provider_charge(*arguments)

    monkeypatch.setattr(world.provider, "charge", fail_once)
    world.clock.set(FEB_1)
    with pytest.raises(ConnectionError):
        world.worker().tick()
    assert world.charges() == len(codes)  # nothing charged
    assert world.worker().tick() == 2  # the two others, at once
    assert _renewed(world) == {"org-0": "open", "org-1": "paid", "org-2": "paid"}
    world.clock.advance(timedelta(minutes=6))
    assert world.worker().tick() == 1  # the first, after its lease
    assert _renewed(world) == dict.fromkeys(codes, "paid")
    assert world.charges() == 2 * len(codes)
    assert world.count(PaymentAttempt) == 2 * len(codes)
