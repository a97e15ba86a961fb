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
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update

from tabkeeper.db.engine import read_transaction, transaction
from tabkeeper.db.tables import DueWork, Invoice, Platform, Subscription
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry
from tabkeeper.domain.decisions import Decision, Reason
from tabkeeper.domain.errors import Forbidden, InvalidInput, TabkeeperError
from tabkeeper.domain.spend import SpendCapReached, spend_key
from tabkeeper.services import auto_top_ups, credit_holds, spend_caps
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.context import billing_for
from tabkeeper.services.credit_purchases import top_up
from tabkeeper.services.credits import consume, consume_by_code
from tabkeeper.services.limits import check_by_code
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import default_payment_method
from tabkeeper.services.session_starts import set_session_limit, start_session
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import World, all_at_once, every_row, make_world, statements_sent
from tests.integration.test_credit_holds import Holdings, _ledger_adds_up
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
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(world.engine)


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


# -- the ledger adds up with auto top-ups and a spend cap (property) ----------------------

AUTO_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), st.integers(1, 40), st.integers(60, 86_400)),
        st.tuples(st.just("settle"), st.integers(0, 9), st.integers(1, 60)),
        st.tuples(st.just("release"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("use"), st.integers(1, 30), st.just(0)),
        st.tuples(st.just("top_up"), st.integers(1, 40), st.just(0)),
        st.tuples(st.just("auto"), st.integers(1, 60), st.integers(1, 60)),
        st.tuples(st.just("auto_off"), st.just(0), st.just(0)),
        st.tuples(st.just("cap"), st.integers(0, 150), st.just(0)),
        st.tuples(st.just("card"), st.sampled_from([0, 1]), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 40 * 24), st.just(0)),
    ),
    max_size=16,
)


REFUSED = ("credits_exhausted", "hold_closed", "spend_cap_reached", "grace_expired",
           "subscription_ended")  # fmt: skip
"""What a step may be refused with: a failing card leaves renewals unpaid, and after the
grace the subscription's uses are refused (SUB-9) or it ends (SUB-11)."""


@pytest.fixture
def holdings(engine: Engine) -> Holdings:
    return Holdings(credits_world(engine), count(1))


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(steps=AUTO_STEPS, plan=st.sampled_from(["plus", "basic"]))
def test_crd6_lim6_the_ledger_adds_up_with_auto_top_ups_and_a_cap(
    holdings: Holdings, steps: list[tuple[str, int, int]], plan: str
) -> None:
    """Property (CRD-2, CRD-5, CRD-6, LIM-6): after any sequence of holds, settles,
    releases, uses, top-ups, auto top-up settings (bought by the billing clock, with a
    card that works or declines), spend caps (set, reset) and waits (hours: hold expiries,
    included credits expiring, renewals), the balance equals the ledger, held credits are
    never spent twice, no grant goes below zero but by a recorded shortfall, at most one
    auto top-up is ever in flight, and the spend counted this period is what purchases
    were invoiced in it (this catalog has no overage price: purchases are all the spend)."""
    world = holdings.world
    code = f"org{next(holdings.codes)}"
    world.clock.set(world.clock.now() + timedelta(days=1))
    world.organization(code)
    world.subscribe(code, plan)
    with world.billing() as b:
        organization_id = organization_by_code(b, code).id
    cards = [world.provider.attach(f"org_{organization_id}", card).token
             for card in ("card_ok", "card_fails_later")]  # fmt: skip
    made: list[int] = []
    for n, (action, first, second) in enumerate(steps):
        if action == "wait":
            world.clock.set(world.clock.now() + timedelta(hours=first))
            world.worker().run_until(world.clock.now())
        else:
            try:
                with world.billing() as b:
                    organization = organization_by_code(b, code)
                    if action == "hold":
                        made.append(credit_holds.hold(b, organization, "smart_reply", first,
                                                      timeout=second).id)  # fmt: skip
                    elif action == "settle" and made:
                        credit_holds.settle(b, made[first % len(made)], second)
                    elif action == "release" and made:
                        credit_holds.release(b, made[first % len(made)])
                    elif action == "use":
                        consume(b, organization, "smart_reply", f"u{n}", uses=first)
                    elif action == "top_up":
                        top_up(b, organization, first)
                    elif action == "auto":
                        auto_top_ups.set_auto_top_up(b, organization, first, second)
                    elif action == "auto_off":
                        auto_top_ups.disable_auto_top_up(b, organization)
                    elif action == "cap":
                        amount = None if first == 0 else f"{first / 100:.2f}"
                        spend_caps.set_spend_cap(b, organization, amount)
                    elif action == "card":
                        method = default_payment_method(b, organization_id)
                        assert method is not None
                        method.token = cards[first]
            except TabkeeperError as error:
                assert error.code in REFUSED, error
            world.worker().run_until(world.clock.now())  # auto top-ups bought now
        _ledger_adds_up(world, organization_id)
        _one_in_flight_and_spend_counted(world, organization_id)
    assert world.count(CreditBalance, CreditBalance.balance < 0) == 0
    with transaction(world.engine) as session:  # later examples move the clock on
        session.execute(
            update(DueWork)
            .where(DueWork.organization_id == organization_id, DueWork.status == "pending")
            .values(status="canceled")
        )


def _one_in_flight_and_spend_counted(world: World, organization_id: int) -> None:
    with transaction(world.engine) as session:
        row = session.scalars(
            select(CreditBalance).where(CreditBalance.organization_id == organization_id)
        ).first()
        if row is None:
            return
        open_work = session.scalar(
            select(func.count()).select_from(DueWork).where(
                DueWork.organization_id == organization_id, DueWork.kind == "auto_top_up",
                DueWork.status.in_(("pending", "running")),
            )
        )  # fmt: skip
        assert open_work == (0 if row.auto_pending is None else 1)
        subscription = session.scalars(
            select(Subscription).where(Subscription.organization_id == organization_id)
        ).one()
        key = spend_key(subscription.id, subscription.period_start)
        charged = session.scalar(
            select(func.coalesce(func.sum(Invoice.total_minor), 0)).where(
                Invoice.organization_id == organization_id,
                Invoice.status != "void",  # a top-up counts when bought; a failed auto one is void
                Invoice.source_key.like("credits:%") | Invoice.source_key.like("auto_top_up:%"),
                Invoice.issued_at >= subscription.period_start,
            )
        )
        counted = row.spent_purchases if row.spend_key == key else 0
        assert counted == charged


@pytest.mark.parametrize("action", ["start_session", "use_ai"])
def test_lim6_the_check_with_a_spend_cap_is_still_one_statement(world: World, action: str) -> None:
    """LIM-6: the cap and the spend are read with the account (the balance row the check
    joins anyway): a check with a cap set sends the one statement a check without sends."""
    with world.billing() as b:
        spend_caps.set_spend_cap(b, organization_by_code(b, "acme"), "5.00", "alice")
    feature = "smart_reply" if action == "use_ai" else None

    def read_check() -> Decision:
        with read_transaction(world.engine) as session:
            b = billing_for(session, world.platform_id, world.clock.now(), world.store)
            return check_by_code(b, "acme", action, feature, visible=lambda _: True,
                                 refresh=False)  # fmt: skip

    read_check()  # the catalog version is cached per process
    with statements_sent(world.engine) as sent:
        assert read_check().allowed
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "spend_cap" in selects[0] and len(sent) <= 2, sent


SESSIONS_CATALOG: dict[str, Any] = {
    "meters": {"sessions": {"kind": "billable_sessions"}},
    "plans": {
        "metered": {"name": "Metered", "price": "10.00", "includes": {"sessions": 2},
                    "overage": {"sessions": {"model": "per_unit", "unit_price": "1.00"}},
                    "limits": {"agents": 2, "seats": 2}},
    },
}  # fmt: skip


def test_lim6_overage_sessions_under_a_session_limit_count_and_stop(engine: Engine) -> None:
    """LIM-6 with LIM-3's capped start (a session limit set): Metered includes 2 sessions,
    1.00 each over; cap 2.00. Starts 1-2 are included (0.00), 3 brings 1.00 (50%), 4
    brings 2.00 (`spend_cap_80` and `spend_cap_100`), 5 is refused `spend_cap_reached`;
    a start in an open window of a counted conversation is still allowed."""
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, SESSIONS_CATALOG, world.clock.now())
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", "metered")
    world.clock.advance(timedelta(hours=1))
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        set_session_limit(b, acme, 100)
        spend_caps.set_spend_cap(b, acme, "2.00", "alice")
    answers = []
    for n in range(1, 6):
        with world.billing() as b:
            answers.append(start_session(b, organization_by_code(b, "acme"), "a1", f"c{n}"))
    assert [a.allowed for a in answers] == [True, True, True, True, False]
    assert answers[-1].reason is Reason.SPEND_CAP_REACHED
    with world.billing() as b:
        spent = spend_caps.spend_of(b, organization_by_code(b, "acme"))
        assert (spent.cap, spent.spent) == (200, 200)
        assert start_session(b, organization_by_code(b, "acme"), "a1", "c4").allowed
    assert world.notices("spend_cap_80") == world.notices("spend_cap_100") == 1


def test_lim6_with_no_cap_the_spend_shown_counts_overage_too(engine: Engine) -> None:
    """LIM-6: with no cap set the overage counter is not kept, but the spend shown (API,
    tab) works it out from the counters: Basic includes 100 minutes at 0.10 over; 130
    minutes and a top-up of 1.00 show 4.00; a cap then set starts from the same 4.00."""
    world = credits_world(engine)
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", "basic")
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        top_up(b, acme, 100)
        ingest_batch(b, [{"id": "c1", "type": "call.ended", "org": "acme", "agent": "a1",
                          "properties": {"duration_seconds": 7800}}])  # fmt: skip
    with world.billing() as b:
        shown = spend_caps.spend_of(b, organization_by_code(b, "acme"))
        assert (shown.cap, shown.spent, shown.percent) == (None, 400, None)
        made = spend_caps.set_spend_cap(b, organization_by_code(b, "acme"), "10.00")
        assert (made.cap, made.spent, made.percent) == (1000, 400, 40)


def test_lim6_concurrent_starts_at_the_spend_cap_never_pass_it(engine: Engine) -> None:
    """LIM-6 like a hard-stop quota under concurrency (LIM-3): Metered includes 2 sessions,
    1.00 each over; cap 2.00, no session limit. After the 2 included starts, 12 starts at
    once: exactly 2 are admitted (spend 0.00 -> 1.00 -> 2.00), the other 10 are refused
    `spend_cap_reached`, and the sessions counter and the spend say 4 and 2.00."""
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, SESSIONS_CATALOG, world.clock.now())
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", "metered")
    world.clock.advance(timedelta(hours=1))
    with world.billing() as b:
        spend_caps.set_spend_cap(b, organization_by_code(b, "acme"), "2.00", "alice")
    for n in (1, 2):
        with world.billing() as b:
            assert start_session(b, organization_by_code(b, "acme"), "a1", f"i{n}").allowed
    answers: list[Decision] = []
    lock = threading.Lock()

    def start(n: int) -> None:
        with world.billing() as b:
            found = start_session(b, organization_by_code(b, "acme"), "a1", f"c{n}")
        with lock:
            answers.append(found)

    all_at_once(12, start)
    admitted = [a for a in answers if a.allowed]
    assert len(admitted) == 2, [a.reason for a in answers]
    assert {a.reason for a in answers if not a.allowed} == {Reason.SPEND_CAP_REACHED}
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        spent = spend_caps.spend_of(b, acme)
        assert (spent.cap, spent.spent) == (200, 200)
        assert not check_by_code(b, "acme", "start_session", visible=lambda _: True).allowed
