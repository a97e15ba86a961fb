"""Prepaid AI credits through the services, on SQLite and PostgreSQL (CRD-1..4, INV-1,
LIM-2): concurrent uses never overdraw, the ledger always adds up, included credits come
and go with the periods, top-ups are invoiced and collected, refusals change nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select, update

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Invoice, InvoiceLine, Notice, Platform
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant
from tabkeeper.domain.errors import Forbidden, InvalidInput, NotFound, Refused
from tabkeeper.domain.ledger import CreditsExhausted
from tabkeeper.domain.money import Currency, Money
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.context import CatalogStore, billing
from tabkeeper.services.credit_batches import Outcome, Use, consume_batch
from tabkeeper.services.credit_purchases import grant_adjustment, top_up
from tabkeeper.services.credit_reports import credits_view, spend
from tabkeeper.services.credits import consume, consume_by_code
from tabkeeper.services.limits import check
from tabkeeper.services.organizations import create_organization, organization_by_code
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import CATALOG as WORLD_CATALOG
from tests.integration.conftest import FEB_1, JAN_1, World, every_row, make_world

USD = Currency.of("USD")
PLANS = WORLD_CATALOG["plans"]
CATALOG: dict[str, Any] = {
    **WORLD_CATALOG,
    "plans": {
        **PLANS,
        "basic": {**PLANS["basic"], "features": ["smart_reply", "kb_answer"]},
        "plus": {"name": "Plus", "price": "40.00", "rank": 2,
                 "features": ["smart_reply", "kb_answer"],
                 "credits": {"amount": 100, "expires": "period_end"}},
    },
    "ai_features": {"smart_reply": {"credits": 1}, "kb_answer": {"credits": 2}},
    "credit_price": "0.01",
}  # fmt: skip


def credits_world(engine: Engine) -> World:
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, CATALOG, world.clock.now())
    return world


@pytest.fixture
def world(engine: Engine) -> World:
    """acme (alice owner, bob billing admin, carol member) on Basic since Jan 1."""
    world = credits_world(engine)
    world.organization("acme", {"alice": "owner", "bob": "billing_admin", "carol": "member"})
    world.subscribe("acme", "basic")
    return world


def _use(world: World, use_id: str, feature: str = "smart_reply", **more: Any) -> Any:
    with world.billing() as b:
        return consume(b, organization_by_code(b, "acme"), feature, use_id, **more)


def _top_up(world: World, credits: object, **more: Any) -> Any:
    with world.billing() as b:
        return top_up(b, organization_by_code(b, "acme"), credits, **more)


def _balance(world: World) -> int:
    with world.billing() as b:
        return credits_view(b, organization_by_code(b, "acme")).balance


def _state(engine: Engine) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(engine)


def _ledger_adds_up(world: World, organization_id: int) -> None:
    """CRD-2: balance = sum of entries = sum of what unexpired grants have left; each
    grant's remainder = its amount less what uses drew from it and its expiry; never < 0."""
    with transaction(world.engine) as session:
        balance = session.scalars(
            select(CreditBalance.balance).where(CreditBalance.organization_id == organization_id)
        ).first()
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
    assert (balance or 0) == sum(e.amount for e in entries)
    assert (balance or 0) == sum(g.remaining for g in grants if g.expired_at is None)
    assert (balance or 0) >= 0
    drawn: dict[int, int] = {}
    for entry in entries:
        if entry.kind == "use":
            assert sum(credits for _, credits in entry.parts or []) == -entry.amount
            for grant_id, credits in entry.parts or []:
                drawn[grant_id] = drawn.get(grant_id, 0) + credits
        elif entry.kind == "expiry":
            assert entry.grant_id is not None
            drawn[entry.grant_id] = drawn.get(entry.grant_id, 0) - entry.amount
    for found in grants:
        assert found.remaining >= 0
        assert found.remaining == found.amount - drawn.get(found.id, 0)


# -- concurrency ----------------------------------------------------------------------------


def test_fifty_concurrent_uses_with_ten_credits_left(world: World) -> None:
    """CRD-3: 50 concurrent uses of 1 credit with 10 left: exactly 10 are taken, the
    other 40 refused with credits_exhausted; the balance ends at 0, never below."""
    _top_up(world, 10)
    taken: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(25)

    def run(worker: int) -> None:
        for i in (worker, worker + 25):
            if i < 25:
                gate.wait()
            try:
                _use(world, f"u{i}", agent=f"a{worker}")
                result = True
            except CreditsExhausted:
                result = False
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)
                return
            with lock:
                taken.append(result)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (len(taken), taken.count(True)) == (50, 10)
    assert _balance(world) == 0
    assert world.count(CreditEntry, CreditEntry.kind == "use") == 10
    assert world.notices("credits.exhausted") == 1
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        decision = check(b, acme, "use_ai", "smart_reply")
        assert (decision.allowed, decision.reason) == (False, "credits_exhausted")
        assert check(b, acme, "start_session").allowed  # CRD-3: sessions go on
    _ledger_adds_up(world, acme.id)


# -- order, expiry, renewal ----------------------------------------------------------------


def test_included_credits_are_used_first_and_expire_at_period_end(world: World) -> None:
    """CRD-2: on Plus (100 included a period), a top-up of 50, then 130 used: the 100
    included first, then 30 purchased; at the period's end nothing included is left to
    expire and the next period grants 100; purchased credits stay."""
    with world.billing() as b:
        from tabkeeper.services.changes import change_plan

        change_plan(b, organization_by_code(b, "acme"), "plus", "immediately", None)
    world.worker().run_until(world.clock.now())
    assert _balance(world) == 100
    _top_up(world, 50)
    assert _use(world, "u1", "kb_answer", uses=40).balance == 70  # 80 of the included
    assert _use(world, "u2", uses=50).balance == 20  # 20 included + 30 purchased
    with world.billing() as b:
        view = credits_view(b, organization_by_code(b, "acme"))
    assert (view.balance, view.included, view.purchased) == (20, 0, 20)
    assert view.next_grant_at == FEB_1 and view.next_grant == 100
    world.clock.set(FEB_1 + timedelta(days=3))
    world.worker().run_until(world.clock.now())
    assert _balance(world) == 120
    _use(world, "u3", uses=30)
    world.clock.set(FEB_1 + timedelta(days=40))  # two renewals: Mar 1 and nothing else
    world.worker().run_until(world.clock.now())
    with world.billing() as b:
        view = credits_view(b, organization_by_code(b, "acme"))
    _ledger_adds_up(world, view.organization.id)
    assert (view.balance, view.included, view.purchased) == (120, 100, 20)
    kinds = [(e.kind, e.amount) for e in _entries(world) if e.kind != "use" and e.at >= FEB_1]
    assert kinds == [("grant", 100), ("expiry", -70), ("grant", 100)]


def _entries(world: World) -> list[CreditEntry]:
    with transaction(world.engine) as session:
        return list(session.scalars(select(CreditEntry).order_by(CreditEntry.id)))


def test_an_adjustment_with_priority_and_expiry_crd_2(world: World) -> None:
    """CRD-2: a platform grant with priority 10 is used before purchased credits (50);
    its expiry takes what it has left; a second grant with the same id adds nothing."""
    _top_up(world, 20)
    with world.billing() as b:
        acme = organization_by_code(b, "acme")
        made = grant_adjustment(b, acme, 10, "promo-1", priority=10,
                                expires_at=JAN_1 + timedelta(days=5))  # fmt: skip
        assert (made.balance, made.duplicate) == (30, False)
        again = grant_adjustment(b, acme, 10, "promo-1")
        assert (again.balance, again.duplicate) == (30, True)
    assert _use(world, "u1", uses=4).balance == 26
    with world.billing() as b:
        view = credits_view(b, organization_by_code(b, "acme"))
    assert [(g.kind, g.remaining) for g in view.grants] == [("adjustment", 6), ("purchased", 20)]
    world.clock.set(JAN_1 + timedelta(days=6))
    assert _balance(world) == 20
    for bad in ({"expires_at": JAN_1}, {"priority": 101}):
        with pytest.raises(InvalidInput), world.billing() as b:
            grant_adjustment(b, organization_by_code(b, "acme"), 5, "promo-2", **bad)


# -- top-ups --------------------------------------------------------------------------------


def test_a_top_up_is_its_own_invoice_collected_at_once_inv_1(world: World) -> None:
    """INV-1, CRD-1: 250 credits at 0.01 = 2.50 on their own invoice with one `credits`
    line, open until the billing clock collects it (paid); the credits count at once."""
    bought = _top_up(world, 250, member="bob")
    assert (bought.credits, bought.price, bought.balance) == (250, Money(250, USD), 250)
    assert bought.message == "Credits added successfully."
    with transaction(world.engine) as session:
        invoice = session.get(Invoice, bought.invoice.id)
        assert invoice is not None
        assert (invoice.status, invoice.total_minor, invoice.source_key) == (
            "open",
            250,
            f"credits:{invoice.organization_id}:1",
        )
        line = session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
        ).one()
        assert (line.kind, line.description, line.quantity, line.unit_amount) == (
            "credits",
            "250 AI credits",
            "250",
            "0.01",
        )
    world.worker().run_until(world.clock.now())
    with transaction(world.engine) as session:
        invoice = session.get(Invoice, bought.invoice.id)
        assert invoice is not None and invoice.status == "paid"
    second = _top_up(world, 1, price=Money(7, USD))
    assert second.invoice.total_minor == 7 and second.balance == 251


@pytest.mark.parametrize(
    ("credits", "more", "error", "code"),
    [
        (0, {}, InvalidInput, "invalid_credits"),
        (-5, {}, InvalidInput, "invalid_credits"),
        (2.5, {}, InvalidInput, "invalid_credits"),
        ("10", {}, InvalidInput, "invalid_credits"),
        (10_000_001, {}, InvalidInput, "invalid_credits"),
        (10, {"price": Money(-1, USD)}, InvalidInput, "invalid_price"),
        (10, {"member": "carol"}, Forbidden, "forbidden"),
        (10, {"member": "nobody"}, Forbidden, "forbidden"),
    ],
)
def test_bad_top_ups_change_nothing(
    world: World, credits: object, more: dict[str, Any], error: type[Exception], code: str
) -> None:
    """CRD-1, ACL-1: zero, negative, fractional, text and huge credits, a negative price,
    a plain member and a stranger are refused; nothing changes."""
    before = _state(world.engine)
    with pytest.raises(error) as raised:
        _top_up(world, credits, **more)
    assert getattr(raised.value, "code", None) == code
    assert _state(world.engine) == before


def test_bad_uses_change_nothing(world: World) -> None:
    """CRD-1, CRD-3, LIM-2: an unknown feature, 0 or fractional uses, a use the balance
    cannot cover, and a feature the plan does not include are refused; nothing changes."""
    _top_up(world, 1)
    before = _state(world.engine)
    for feature, uses, code in (
        ("poetry", 1, "unknown_feature"),
        ("smart_reply", 0, "invalid_credits"),
        ("smart_reply", 1.5, "invalid_credits"),
        ("kb_answer", 1, "credits_exhausted"),
    ):
        with pytest.raises((InvalidInput, Refused)) as raised:
            _use(world, "u1", feature, uses=uses)
        assert raised.value.code == code  # type: ignore[union-attr]
        assert _state(world.engine) == before
    world.organization("globex")
    world.subscribe("globex", "pro")  # Pro has no AI features
    with pytest.raises(Refused) as refused, world.billing() as b:
        consume(b, organization_by_code(b, "globex"), "smart_reply", "g1")
    assert refused.value.code == "feature_not_in_plan"


def test_a_use_reported_twice_is_taken_once_crd_1(world: World) -> None:
    """CRD-1, USE-1: the same use id through the API and as an `ai.used` event is taken
    once; the second answer is the first's."""
    _top_up(world, 10)
    first = _use(world, "u1", "kb_answer", uses=2, agent="a1")
    again = _use(world, "u1", "kb_answer", uses=2, agent="a1")
    assert (first.balance, again.balance, again.duplicate) == (6, 6, True)
    with world.billing() as b:
        used = {"feature": "kb_answer", "quantity": 2}
        outcome = ingest_batch(b, [{"id": "u1", "type": "ai.used", "org": "acme",
                                    "properties": used}])  # fmt: skip
    assert (outcome.accepted, outcome.refused) == (1, ())
    assert _balance(world) == 6
    with world.billing() as b:
        acme_id = organization_by_code(b, "acme").id
    _ledger_adds_up(world, acme_id)


def test_sub_accounts_use_their_organizations_credits_sub_2(world: World) -> None:
    """SUB-2, CRD-1: a sub-account's agents consume the organization's credits; the
    sub-account has no credits of its own to buy."""
    with world.billing() as b:
        create_organization(b, "acme-eu", {"owner": "owner"}, parent="acme")
    _top_up(world, 5)
    with world.billing() as b:
        used = consume(b, organization_by_code(b, "acme-eu"), "smart_reply", "x1", agent="eu")
    assert used.balance == 4
    with pytest.raises(Refused, match="organization level"), world.billing() as b:
        top_up(b, organization_by_code(b, "acme-eu"), 5)


def test_spend_per_feature_and_per_agent_crd_4(world: World) -> None:
    """CRD-4: where AI credits go: per feature and per agent, in the current period."""
    _top_up(world, 100)
    _use(world, "u1", "kb_answer", uses=3, agent="sales")
    _use(world, "u2", "smart_reply", uses=5, agent="sales")
    _use(world, "u3", "smart_reply", uses=2, agent="support")
    _use(world, "u4", "smart_reply")
    with world.billing() as b:
        spent = spend(b, organization_by_code(b, "acme"))
    assert (spent.since, spent.until) == (JAN_1, FEB_1)
    assert (spent.total.uses, spent.total.credits) == (11, 14)
    assert {k: (v.uses, v.credits) for k, v in spent.features.items()} == {
        "kb_answer": (3, 6),
        "smart_reply": (8, 8),
    }
    assert {k: (v.uses, v.credits) for k, v in spent.agents.items()} == {
        "": (1, 1),
        "sales": (8, 11),
        "support": (2, 2),
    }
    with pytest.raises(InvalidInput, match="later than since"), world.billing() as b:
        spend(b, organization_by_code(b, "acme"), FEB_1, JAN_1)


# -- the ledger adds up (property) ----------------------------------------------------------


@dataclass
class Ledgers:
    world: World
    codes: Iterator[int]


@pytest.fixture
def ledgers(engine: Engine) -> Ledgers:
    return Ledgers(credits_world(engine), count(1))


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("top_up"), st.integers(1, 40)),
        st.tuples(st.just("use"), st.integers(1, 30)),
        st.tuples(st.just("kb"), st.integers(1, 15)),
        st.tuples(st.just("wait"), st.integers(1, 45)),
        st.tuples(st.just("check"), st.just(0)),
    ),
    max_size=14,
)


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, plan=st.sampled_from(["plus", "basic"]))
def test_the_ledger_always_adds_up(
    ledgers: Ledgers, steps: list[tuple[str, int]], plan: str
) -> None:
    """Property (CRD-2): after any sequence of top-ups, uses, waits across expiries and
    renewals (the billing clock running), the balance equals the sum of the ledger and
    the sum of what unexpired grants have left, and no grant goes below zero."""
    world = ledgers.world
    code = f"org{next(ledgers.codes)}"
    world.clock.set(world.clock.now() + timedelta(days=1))
    world.organization(code)
    world.subscribe(code, plan)
    with world.billing() as b:
        organization_id = organization_by_code(b, code).id
    for n, (action, amount) in enumerate(steps):
        if action == "wait":
            world.clock.set(world.clock.now() + timedelta(days=amount))
            world.worker().run_until(world.clock.now())
            continue
        with world.billing() as b:
            organization = organization_by_code(b, code)
            if action == "top_up":
                top_up(b, organization, amount)
            elif action == "check":
                check(b, organization, "use_ai", "smart_reply")
            else:
                feature = "kb_answer" if action == "kb" else "smart_reply"
                try:
                    with b.session.begin_nested():
                        consume(b, organization, feature, f"u{n}", uses=amount)
                except CreditsExhausted:
                    pass
        _ledger_adds_up(world, organization_id)
    with world.billing() as b:
        credits_view(b, organization_by_code(b, code))
    _ledger_adds_up(world, organization_id)
    assert world.count(CreditBalance, CreditBalance.balance < 0) == 0
    with transaction(world.engine) as session:  # later examples move the clock on
        session.execute(
            update(DueWork)
            .where(DueWork.organization_id == organization_id, DueWork.status == "pending")
            .values(status="canceled")
        )


# -- batches (services/credit_batches.py) ---------------------------------------------------


def _batch(world: World, uses: list[Use], **more: Any) -> tuple[Outcome, ...]:
    with world.billing() as b:
        return consume_batch(b, uses, **more)


def _answer(outcome: Outcome) -> tuple[Any, ...]:
    """An outcome without the ids that differ between two organizations."""
    if outcome.refused is not None:
        return ("refused", outcome.refused.code)
    used = outcome.used
    assert used is not None
    return ("used", used.feature, used.uses, used.credits, used.balance, used.agent,
            used.duplicate)  # fmt: skip


def test_a_batch_takes_or_refuses_each_use_on_its_own_crd_3(world: World) -> None:
    """CRD-1, CRD-3: a batch with 10 credits left: uses are taken in order while the
    balance covers them; a bad use among good ones (unknown feature, 0 uses, an unknown
    organization, one the balance cannot cover) is refused alone and changes nothing; a
    use id repeated in the batch answers as the first; one exhaustion notice."""
    _top_up(world, 10)
    uses = [
        Use("acme", "smart_reply", "u1", 3, "a1"),
        Use("acme", "poetry", "u2"),
        Use("acme", "kb_answer", "u3", 2),
        Use("acme", "smart_reply", "u4", 0),
        Use("nobody", "smart_reply", "u5"),
        Use("acme", "smart_reply", "u6", 5),
        Use("acme", "smart_reply", "u7", 3),
        Use("acme", "smart_reply", "u1", 3, "a1"),
    ]
    outcomes = _batch(world, uses)
    assert [_answer(o) for o in outcomes] == [
        ("used", "smart_reply", 3, 3, 7, "a1", False),
        ("refused", "unknown_feature"),
        ("used", "kb_answer", 2, 4, 3, None, False),
        ("refused", "invalid_credits"),
        ("refused", "not_found"),
        ("refused", "credits_exhausted"),
        ("used", "smart_reply", 3, 3, 0, None, False),
        ("used", "smart_reply", 3, 3, 7, "a1", True),
    ]
    assert [o.use for o in outcomes] == uses
    assert _balance(world) == 0
    assert world.count(CreditEntry, CreditEntry.kind == "use") == 3
    assert world.notices("credits.exhausted") == 1
    again = _batch(world, [Use("acme", "smart_reply", "u1", 3, "a1")])
    assert _answer(again[0]) == ("used", "smart_reply", 3, 3, 7, "a1", True)
    with world.billing() as b:
        acme_id = organization_by_code(b, "acme").id
    _ledger_adds_up(world, acme_id)


def test_a_batch_the_balance_covers_takes_one_gate(world: World) -> None:
    """CRD-1, CRD-2: when the balance covers the whole batch, one balance UPDATE takes
    it (one gate per organization) and one grant UPDATE when the first grant covers it;
    each entry has its own balance after; ids taken before (and repeats) take nothing;
    a sub-account's uses share its organization's gate (SUB-2)."""
    with world.billing() as b:
        create_organization(b, "acme-eu", {"owner": "owner"}, parent="acme")
    _top_up(world, 100)
    _use(world, "old", uses=4)
    statements: list[str] = []

    def seen(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(" ".join(statement.split()[:2]).upper())

    uses = [
        Use("acme", "smart_reply", "n1", 2, "a"),
        Use("acme", "smart_reply", "old", 4),
        Use("acme-eu", "kb_answer", "n2", 3, "eu"),
        Use("acme", "smart_reply", "n1", 2, "a"),
        Use("acme", "smart_reply", "n3", 1),
    ]
    event.listen(world.engine, "before_cursor_execute", seen)
    try:
        outcomes = _batch(world, uses)
    finally:
        event.remove(world.engine, "before_cursor_execute", seen)
    assert [_answer(o) for o in outcomes] == [
        ("used", "smart_reply", 2, 2, 94, "a", False),
        ("used", "smart_reply", 4, 4, 96, None, True),
        ("used", "kb_answer", 3, 6, 88, "eu", False),
        ("used", "smart_reply", 2, 2, 94, "a", True),
        ("used", "smart_reply", 1, 1, 87, None, False),
    ]
    assert statements.count("UPDATE CREDIT_BALANCES") == 2  # the gate, the put-back of "old"
    assert statements.count("UPDATE CREDIT_GRANTS") == 1
    assert _balance(world) == 87
    uses_entries = [(e.entry_key.split(":")[-1], e.amount, e.balance_after, e.parts)
                    for e in _entries(world) if e.kind == "use"]  # fmt: skip
    grant_id = uses_entries[0][3][0][0]
    assert uses_entries == [
        ("old", -4, 96, [[grant_id, 4]]),
        ("n1", -2, 94, [[grant_id, 2]]),
        ("n2", -6, 88, [[grant_id, 6]]),
        ("n3", -1, 87, [[grant_id, 1]]),
    ]
    with world.billing() as b:
        acme_id = organization_by_code(b, "acme").id
    _ledger_adds_up(world, acme_id)


def test_a_batch_draws_from_several_grants_in_order_crd_2(world: World) -> None:
    """CRD-2: a batch larger than the first grant draws as uses one after the other would:
    the priority-10 adjustment (5) first, then the purchased credits."""
    _top_up(world, 20)
    with world.billing() as b:
        grant_adjustment(b, organization_by_code(b, "acme"), 5, "promo", priority=10)
    outcomes = _batch(world, [Use("acme", "smart_reply", f"u{i}", 2) for i in range(4)])
    assert [o.used.balance for o in outcomes if o.used] == [23, 21, 19, 17]
    parts = [e.parts for e in _entries(world) if e.kind == "use"]
    promo, bought = parts[0][0][0], parts[3][0][0]
    assert parts == [[[promo, 2]], [[promo, 2]], [[promo, 1], [bought, 1]], [[bought, 2]]]
    with world.billing() as b:
        acme_id = organization_by_code(b, "acme").id
    _ledger_adds_up(world, acme_id)


@pytest.mark.parametrize(
    ("uses", "problem"),
    [
        ([], "expected 1 to 1,000 uses, got 0"),
        ([Use("acme", "smart_reply", f"u{i}") for i in range(1_001)], "got 1001"),
        ("acme", "expected 1 to 1,000 uses"),
        ([Use("acme", "smart_reply", "u1"), ("acme", "smart_reply", "u2")], "expected uses"),
    ],
)
def test_bad_batches_change_nothing(world: World, uses: Any, problem: str) -> None:
    """CRD-1: bad batches tried: an empty list, 1,001 uses (the most is 1,000), a text
    instead of a list, something else than a use among uses; refused whole with
    `invalid_batch`, nothing changes."""
    _top_up(world, 10)
    before = _state(world.engine)
    with pytest.raises(InvalidInput, match=problem) as raised:
        _batch(world, uses)
    assert raised.value.code == "invalid_batch"
    assert _state(world.engine) == before


def test_a_batch_refused_whole_changes_nothing(world: World) -> None:
    """CRD-3, LIM-2: every use refused (too little left, a feature not in the plan on
    another organization): nothing changes, not even what was due."""
    world.organization("globex")
    world.subscribe("globex", "pro")  # Pro has no AI features
    before = _state(world.engine)
    outcomes = _batch(world, [Use("acme", "smart_reply", "u1"), Use("globex", "kb_answer", "g")])
    assert [_answer(o) for o in outcomes] == [
        ("refused", "credits_exhausted"),
        ("refused", "feature_not_in_plan"),
    ]
    assert _state(world.engine) == before


def test_a_batch_after_the_period_grants_the_included_credits_first(world: World) -> None:
    """CRD-2: on Plus, the first batch of a new period makes its included grant (and
    expires the last one's) before taking its uses."""
    with world.billing() as b:
        from tabkeeper.services.changes import change_plan

        change_plan(b, organization_by_code(b, "acme"), "plus", "immediately", None)
    world.worker().run_until(world.clock.now())
    assert _batch(world, [Use("acme", "smart_reply", "u1", 30)])[0].used is not None
    world.clock.set(FEB_1 + timedelta(days=1))
    world.worker().run_until(world.clock.now())
    outcomes = _batch(world, [Use("acme", "smart_reply", f"v{i}", 10) for i in range(3)])
    assert [o.used.balance for o in outcomes if o.used] == [90, 80, 70]
    kinds = [(e.kind, e.amount) for e in _entries(world) if e.kind != "use"]
    assert kinds == [("grant", 100), ("expiry", -70), ("grant", 100)]
    with world.billing() as b:
        acme_id = organization_by_code(b, "acme").id
    _ledger_adds_up(world, acme_id)


def test_concurrent_batches_never_overdraw(world: World) -> None:
    """CRD-3: 4 batches at once, each of 10 uses of acme and 10 of globex (in opposite
    orders, no deadlock), pairs of them with the same use ids, 15 credits each: exactly
    15 distinct uses are taken per organization, the others refused or answered as
    duplicates; balances end at 0, never below; the ledgers add up."""
    world.organization("globex")
    world.subscribe("globex", "basic")
    _top_up(world, 15)
    with world.billing() as b:
        top_up(b, organization_by_code(b, "globex"), 15)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(4)

    def run(worker: int) -> None:
        prefix = "ab"[worker % 2]
        orgs = ("acme", "globex") if worker < 2 else ("globex", "acme")
        uses = [Use(org, "smart_reply", f"{prefix}{i}") for org in orgs for i in range(10)]
        gate.wait()
        try:
            found = _batch(world, uses)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
            return
        with lock:
            outcomes.extend(found)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(outcomes) == 80
    for code in ("acme", "globex"):
        taken = [o for o in outcomes if o.use.organization == code and o.used is not None]
        assert sum(1 for o in taken if not o.used.duplicate) == 15  # type: ignore[union-attr]
        with world.billing() as b:
            organization = organization_by_code(b, code)
            assert credits_view(b, organization).balance == 0
        _ledger_adds_up(world, organization.id)
    assert world.count(CreditEntry, CreditEntry.kind == "use") == 30
    assert world.notices("credits.exhausted") == 2


def _entry_view(entry: CreditEntry, grants: dict[int, tuple[str, int]]) -> tuple[Any, ...]:
    """An entry without the ids that differ between two organizations."""
    parts = [(grants[grant_id], credits) for grant_id, credits in entry.parts or []]
    return (entry.kind, entry.amount, entry.balance_after, entry.feature, entry.uses,
            entry.agent, parts)  # fmt: skip


USES = st.lists(
    st.tuples(
        st.sampled_from(["", "", "-eu", "?"]),
        st.sampled_from(["smart_reply", "smart_reply", "kb_answer", "poetry"]),
        st.integers(0, 7),
        st.integers(0, 6),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uses=USES, credits=st.integers(0, 40), plan=st.sampled_from(["plus", "basic"]))
def test_a_batch_is_the_uses_one_after_the_other(
    ledgers: Ledgers, uses: list[tuple[str, str, int, int]], credits: int, plan: str
) -> None:
    """Property (CRD-1, CRD-2, CRD-3): a batch answers each use as `consume_by_code` would
    if the same uses came one after the other (taken, duplicate or refused with the same
    code, the same balances), and leaves the same ledger: the same entries with the
    same amounts, balances after and grants drawn."""
    world = ledgers.world
    n = next(ledgers.codes)
    pair = (f"batch{n}", f"alone{n}")
    for code in pair:
        world.organization(code)
        world.subscribe(code, plan)
        with world.billing() as b:
            create_organization(b, f"{code}-eu", {"owner": "owner"}, parent=code)
            if credits:
                top_up(b, organization_by_code(b, code), credits)
    batch = _batch(world, [Use(f"{pair[0]}{who}", feature, f"u{i}", quantity, who or None)
                           for who, feature, quantity, i in uses])  # fmt: skip
    alone = []
    for who, feature, quantity, i in uses:
        with world.billing() as b:
            try:
                with b.session.begin_nested():
                    used = consume_by_code(b, f"{pair[1]}{who}", feature, f"u{i}",
                                           uses=quantity, agent=who or None)  # fmt: skip
                alone.append(Outcome(Use("", "", ""), used=used))
            except (InvalidInput, Refused, NotFound) as error:
                alone.append(Outcome(Use("", "", ""), refused=error))
    assert [_answer(o) for o in batch] == [_answer(o) for o in alone]
    ledgers_of = []
    for code in pair:
        with world.billing() as b:
            organization = organization_by_code(b, code)
            credits_view(b, organization)
        _ledger_adds_up(world, organization.id)
        with transaction(world.engine) as session:
            entries = session.scalars(
                select(CreditEntry)
                .where(CreditEntry.organization_id == organization.id)
                .order_by(CreditEntry.id)
            )
            of_organization = CreditGrant.organization_id == organization.id
            grants = {
                g.id: (g.kind, g.amount)
                for g in session.scalars(select(CreditGrant).where(of_organization))
            }
            ledgers_of.append([_entry_view(e, grants) for e in entries])
    assert ledgers_of[0] == ledgers_of[1]
    with transaction(world.engine) as session:  # later examples move the clock on
        session.execute(
            update(DueWork).where(DueWork.status == "pending").values(status="canceled")
        )


# -- the hot path reads only what it needs --------------------------------------------------


def _statements(world: World, work: Any) -> list[str]:
    seen: list[str] = []

    def record(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(world.engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(world.engine, "before_cursor_execute", record)
    return seen


def test_a_use_reads_no_platform_row_and_its_catalog_once(world: World) -> None:
    """CRD-1: `consume_by_code` reads the organization with its subscription in one
    query and never the platform row; the catalog version is read once per process (a
    version never changes, CAT-6); then the gate, the grant and the entry."""
    _top_up(world, 10)
    store = CatalogStore()

    def use(use_id: str) -> None:
        with billing(world.engine, world.platform_id, world.clock.now(), store) as b:
            consume_by_code(b, "acme", "smart_reply", use_id)

    first = _statements(world, lambda: use("u1"))
    second = _statements(world, lambda: use("u2"))
    assert not any("FROM platforms" in s for s in first + second)
    assert sum("FROM catalog_versions" in s for s in first) == 1
    assert [s.split()[0] for s in second if "credit_" in s or "organizations" in s] == [
        "SELECT", "UPDATE", "UPDATE", "INSERT",
    ]  # fmt: skip


def test_what_a_use_cannot_find_is_refused(world: World) -> None:
    """CRD-1, LIM-2, ACL-3: an unknown organization is not found; an organization with no
    subscription is refused `no_subscription` (an unknown feature `unknown_feature`
    first); a catalog version of another platform and an unknown platform are unknown;
    nothing changes."""
    world.organization("initech")
    before = _state(world.engine)
    for code, feature, error in (
        ("nobody", "smart_reply", "not_found"),
        ("initech", "poetry", "unknown_feature"),
        ("initech", "smart_reply", "no_subscription"),
    ):
        with pytest.raises((NotFound, InvalidInput, Refused)) as raised, world.billing() as b:
            consume_by_code(b, code, feature, "u1")
        assert raised.value.code == error  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="unknown catalog version"), world.billing() as b:
        world.store.catalog_by_id(b.session, world.platform_id + 1, 1)  # not its platform
    with pytest.raises(InvalidInput, match="unknown catalog version"), world.billing() as b:
        CatalogStore().catalog_by_id(b.session, world.platform_id, 999)
    with (
        pytest.raises(InvalidInput, match="unknown platform 999"),
        billing(world.engine, 999, world.clock.now()) as b,
    ):
        assert b.platform_id == 999
        b.terms  # noqa: B018 - the row is read when first asked for
    assert _state(world.engine) == before


def test_exhausted_notice_names_the_next_grant_in_a_batch(world: World) -> None:
    """CRD-3: on Plus, a batch that takes the last included credit tells
    `credits.exhausted` once, with when the plan next grants credits; the same batch
    again takes nothing (all duplicates, one gate)."""
    with world.billing() as b:
        from tabkeeper.services.changes import change_plan

        change_plan(b, organization_by_code(b, "acme"), "plus", "immediately", None)
    world.worker().run_until(world.clock.now())
    uses = [Use("acme", "smart_reply", f"u{i}", 25) for i in range(4)]
    assert [o.used.balance for o in _batch(world, uses) if o.used] == [75, 50, 25, 0]
    with transaction(world.engine) as session:
        notice = session.scalars(select(Notice).where(Notice.kind == "credits.exhausted")).one()
    assert notice.payload == {"balance": 0, "next_grant_at": "2026-02-01T00:00:00Z"}
    _top_up(world, 100)
    again = _batch(world, uses)
    assert [(o.used.duplicate, o.used.balance) for o in again if o.used] == [
        (True, 75), (True, 50), (True, 25), (True, 0),
    ]  # fmt: skip
    assert _balance(world) == 100
