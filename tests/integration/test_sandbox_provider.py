"""The sandbox payment provider on a real database, SQLite and PostgreSQL (PAY-1, PAY-2)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Base
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments import (
    CardDeclined,
    CardOnFile,
    ChargeResult,
    CheckoutStatus,
    SandboxProvider,
    UnknownCard,
)
from tabkeeper.payments import sandbox_store as store
from tabkeeper.payments.sandbox import CHECKOUT_LIFETIME, TEST_CARDS

T0 = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
USD = Currency.of("USD")
EUR = Currency.of("EUR")
TEN = Money(1000, USD)
SANDBOX_TABLES = ("sandbox_payment_methods", "sandbox_charges", "sandbox_checkouts")
R = TypeVar("R")


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def sandbox(engine: Engine, clock: SimulatedClock) -> SandboxProvider:
    # Until a migration adds them: the sandbox's own tables only.
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[t] for t in SANDBOX_TABLES])
    return SandboxProvider(engine, clock)


def count(engine: Engine, table: str) -> int:
    with transaction(engine) as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def counts(engine: Engine) -> dict[str, int]:
    return {table: count(engine, table) for table in SANDBOX_TABLES}


def all_at_once(times: int, call: Callable[[], R]) -> list[R]:
    """`call` from `times` threads that start together."""
    start = threading.Barrier(times)

    def run() -> R:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=times) as pool:
        futures = [pool.submit(run) for _ in range(times)]
        return [future.result() for future in futures]


# card, brand, last4, attaches, charges succeed, checkout ends as
CARD_BEHAVIOUR = [
    ("card_ok", "visa", "4242", True, True, CheckoutStatus.COMPLETED),
    ("4242 4242 4242 4242", "visa", "4242", True, True, CheckoutStatus.COMPLETED),
    ("card_declined", "visa", "0002", False, None, CheckoutStatus.DECLINED),
    ("4000-0000-0000-0002", "visa", "0002", False, None, CheckoutStatus.DECLINED),
    ("card_fails_later", "visa", "0341", True, False, CheckoutStatus.DECLINED),
    ("4000000000000341", "visa", "0341", True, False, CheckoutStatus.DECLINED),
    ("5555 5555 5555 4444", "mastercard", "4444", True, True, CheckoutStatus.COMPLETED),
]


@pytest.mark.parametrize(("card", "brand", "last4", "attaches", "succeeds", "_"), CARD_BEHAVIOUR)
def test_pay1_test_card_attach_and_charge(
    sandbox: SandboxProvider,
    engine: Engine,
    card: str,
    brand: str,
    last4: str,
    attaches: bool,
    succeeds: bool | None,
    _: CheckoutStatus,
) -> None:
    """PAY-1: each test card attaches (or is declined at once) and its charges succeed or
    are declined as the sandbox promises; a declined charge is a result, not an error."""
    if not attaches:
        with pytest.raises(CardDeclined, match="Your card was declined."):
            sandbox.attach("acme", card)
        assert counts(engine) == dict.fromkeys(SANDBOX_TABLES, 0)
        return
    saved = sandbox.attach("acme", card)
    assert (saved.provider, saved.brand, saved.last4) == ("sandbox", brand, last4)
    assert saved.token.startswith("pm_sbx_") and len(saved.token) == len("pm_sbx_") + 24
    assert (saved.exp_month, saved.exp_year) == (12, 2030)
    for attempt in range(2):  # every charge, not only the first
        result = sandbox.charge("acme", saved.token, TEN, f"k{attempt}", "Starter, January")
        assert result.succeeded is succeeds
        assert result.amount == TEN
        assert result.reference.startswith("ch_sbx_")
        if succeeds:
            assert (result.failure_code, result.failure_message) == (None, None)
        else:
            assert result.failure_code == "card_declined"
            assert result.failure_message == "Your card was declined."
    assert len(sandbox.charges("acme")) == 2


@pytest.mark.parametrize(("card", "brand", "last4", "attaches", "succeeds", "ends"), CARD_BEHAVIOUR)
def test_pay1_test_card_checkout(
    sandbox: SandboxProvider,
    card: str,
    brand: str,
    last4: str,
    attaches: bool,
    succeeds: bool | None,
    ends: CheckoutStatus,
) -> None:
    """PAY-1, SUB-3: a checkout with each test card completes, or is declined: at once
    (CardDeclined, nothing charged) or by its first charge (a failed ChargeResult)."""
    opened = sandbox.start_checkout("acme", TEN, "sub_1", "/billing?paid=1")
    assert opened.status is CheckoutStatus.OPEN
    assert opened.id.startswith("cs_sbx_")
    assert opened.url == f"/sandbox/checkout/{opened.id}"
    assert opened.amount == TEN
    if not attaches:
        with pytest.raises(CardDeclined):
            sandbox.complete_checkout(opened.id, card)
        assert sandbox.charges("acme") == []
    else:
        saved, charged = sandbox.complete_checkout(opened.id, card)
        assert (saved.brand, saved.last4) == (brand, last4)
        assert charged.succeeded is succeeds
        assert charged.amount == TEN
        assert sandbox.charges("acme") == [charged]
    assert sandbox.checkout(opened.id).status is ends


def test_pay1_same_key_twice_charges_once(sandbox: SandboxProvider, engine: Engine) -> None:
    """PAY-1: the same idempotency key returns the first result and one charge row."""
    saved = sandbox.attach("acme", "card_ok")
    first = sandbox.charge("acme", saved.token, TEN, "invoice-7", "Invoice 7")
    again = sandbox.charge("acme", saved.token, TEN, "invoice-7", "Invoice 7, again")
    assert again == first
    assert count(engine, "sandbox_charges") == 1
    other = sandbox.charge("acme", saved.token, TEN, "invoice-8", "Invoice 8")
    assert other.reference != first.reference
    assert sandbox.charges("acme") == [first, other]


def test_pay1_idempotency_survives_a_restart(
    sandbox: SandboxProvider, engine: Engine, clock: SimulatedClock
) -> None:
    """PAY-1: a new SandboxProvider on the same database (a restart) knows the key."""
    saved = sandbox.attach("acme", "card_fails_later")
    first = sandbox.charge("acme", saved.token, TEN, "renewal-2026-02", "Renewal")
    restarted = SandboxProvider(engine, clock)
    assert restarted.charge("acme", saved.token, TEN, "renewal-2026-02", "Renewal") == first
    assert restarted.charges("acme") == [first]


@pytest.mark.parametrize(
    ("customer", "token_of", "amount"),
    [
        ("acme", "acme", Money(1001, USD)),  # another amount
        ("acme", "acme", Money(1000, EUR)),  # the same minor units, another currency
        ("acme", "acme-second-card", TEN),  # another card of the same customer
        ("globex", "globex", TEN),  # another customer
    ],
)
def test_pay1_key_reuse_for_another_charge_is_refused(
    sandbox: SandboxProvider, engine: Engine, customer: str, token_of: str, amount: Money
) -> None:
    """PAY-1: a key already used, with another amount, currency, token or customer, is
    InvalidInput ("idempotency_key_reused") and charges nothing. Bad input tried:
    mismatched currency under a used key."""
    tokens = {
        "acme": sandbox.attach("acme", "card_ok").token,
        "acme-second-card": sandbox.attach("acme", "5555555555554444").token,
        "globex": sandbox.attach("globex", "card_ok").token,
    }
    sandbox.charge("acme", tokens["acme"], TEN, "k-1", "first")
    with pytest.raises(InvalidInput, match="already used for another charge") as raised:
        sandbox.charge(customer, tokens[token_of], amount, "k-1", "second")
    assert raised.value.code == "idempotency_key_reused"
    assert count(engine, "sandbox_charges") == 1


def test_pay1_concurrent_charges_with_one_key_charge_once(
    sandbox: SandboxProvider, engine: Engine
) -> None:
    """PAY-1, INV-4: 8 threads charge with the same key at once: one charge row, and all
    of them get the same result."""
    saved = sandbox.attach("acme", "card_ok")
    results = all_at_once(8, lambda: sandbox.charge("acme", saved.token, TEN, "race", "race"))
    assert len(set(results)) == 1
    assert results[0].succeeded
    assert count(engine, "sandbox_charges") == 1


def test_pay1_concurrent_checkout_completions_charge_once(
    sandbox: SandboxProvider, engine: Engine
) -> None:
    """PAY-1: 8 threads complete one checkout at once: one card saved, one charge."""
    opened = sandbox.start_checkout("acme", TEN, "sub_1", "/billing")
    results = all_at_once(8, lambda: sandbox.complete_checkout(opened.id, "card_ok"))
    assert len(set(results)) == 1
    assert counts(engine) == dict.fromkeys(SANDBOX_TABLES, 1)


def test_pay1_a_key_written_between_read_and_insert_returns_that_charge(
    sandbox: SandboxProvider, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAY-1: the race window made certain: the first lookup misses a charge another
    call already wrote; the UNIQUE key refuses the second row and the stored one is
    returned."""
    saved = sandbox.attach("acme", "card_ok")
    first = sandbox.charge("acme", saved.token, TEN, "race", "race")
    real_lookup = store.charge_by_key
    lookups: list[str] = []

    def late_lookup(session: Session, key: str) -> store.SandboxCharge | None:
        lookups.append(key)
        return None if len(lookups) == 1 else real_lookup(session, key)

    monkeypatch.setattr(store, "charge_by_key", late_lookup)
    assert sandbox.charge("acme", saved.token, TEN, "race", "race") == first
    assert lookups == ["race", "race"]
    lookups.clear()  # the same race, but the late call asks for another amount
    with pytest.raises(InvalidInput, match="already used"):
        sandbox.charge("acme", saved.token, Money(5, USD), "race", "race")
    assert count(engine, "sandbox_charges") == 1


def test_pay1_declined_charge_is_recorded(sandbox: SandboxProvider, engine: Engine) -> None:
    """PAY-1: a declined charge is kept, with its failure code, like any charge."""
    saved = sandbox.attach("acme", "card_fails_later")
    declined = sandbox.charge("acme", saved.token, TEN, "renewal", "Renewal")
    with transaction(engine) as session:
        row = session.scalars(select(store.SandboxCharge)).one()
        assert (row.succeeded, row.failure_code) == (False, "card_declined")
        assert (row.amount_minor, row.currency, row.customer) == (1000, "USD", "acme")
        assert row.created_at == T0
    assert sandbox.charges("acme") == [declined]
    assert sandbox.charges("globex") == []


@pytest.mark.parametrize(
    ("first_card", "second_card"),
    [("card_ok", "card_ok"), ("card_ok", "card_fails_later"), ("card_fails_later", "card_ok")],
)
def test_pay1_completing_a_checkout_twice_returns_the_same_result(
    sandbox: SandboxProvider, engine: Engine, first_card: str, second_card: str
) -> None:
    """PAY-1: completing a finished checkout again returns the first result (whatever card
    is given now) and charges once."""
    opened = sandbox.start_checkout("acme", TEN, "sub_1", "/billing")
    first = sandbox.complete_checkout(opened.id, first_card)
    assert sandbox.complete_checkout(opened.id, second_card) == first
    assert counts(engine) == dict.fromkeys(SANDBOX_TABLES, 1)


def test_pay1_a_checkout_declined_at_once_stays_declined(
    sandbox: SandboxProvider, engine: Engine
) -> None:
    """PAY-1: a checkout declined at once raises CardDeclined again when repeated, even
    with a good card: the member starts a new checkout."""
    opened = sandbox.start_checkout("acme", TEN, "sub_1", "/billing")
    for card in ("card_declined", "card_ok"):
        with pytest.raises(CardDeclined):
            sandbox.complete_checkout(opened.id, card)
    assert sandbox.checkout(opened.id).status is CheckoutStatus.DECLINED
    assert counts(engine) == {
        "sandbox_payment_methods": 0,
        "sandbox_charges": 0,
        "sandbox_checkouts": 1,
    }


def test_pay1_checkouts_expire_after_24_hours(
    sandbox: SandboxProvider, engine: Engine, clock: SimulatedClock
) -> None:
    """PAY-1: an open checkout expires after CHECKOUT_LIFETIME; completing it then is
    refused and changes nothing. A finished checkout never expires."""
    stale = sandbox.start_checkout("acme", TEN, "sub_1", "/billing")
    paid = sandbox.start_checkout("acme", TEN, "sub_2", "/billing")
    result = sandbox.complete_checkout(paid.id, "card_ok")
    clock.advance(CHECKOUT_LIFETIME - timedelta(microseconds=1))
    assert sandbox.checkout(stale.id).status is CheckoutStatus.OPEN
    clock.advance(timedelta(microseconds=1))
    assert sandbox.checkout(stale.id).status is CheckoutStatus.EXPIRED
    before = counts(engine)
    with pytest.raises(Refused, match="expired at 2026-02-01T09:30:00") as raised:
        sandbox.complete_checkout(stale.id, "card_ok")
    assert raised.value.code == "checkout_expired"
    assert counts(engine) == before
    assert sandbox.checkout(paid.id).status is CheckoutStatus.COMPLETED
    assert sandbox.complete_checkout(paid.id, "card_ok") == result


def test_pay1_the_sandbox_records_stay_when_the_callers_transaction_rolls_back(
    sandbox: SandboxProvider, engine: Engine
) -> None:
    """PAY-1: each call commits on its own, like a remote provider."""
    saved = sandbox.attach("acme", "card_ok")
    with pytest.raises(RuntimeError), transaction(engine) as session:
        session.execute(text("SELECT 1"))
        raise RuntimeError("the caller's own work failed")
    assert sandbox.charge("acme", saved.token, TEN, "k", "after") in sandbox.charges("acme")


def test_pay2_no_whole_card_number_is_stored(sandbox: SandboxProvider, engine: Engine) -> None:
    """PAY-2: every column of every sandbox row is searched for every test card number
    (and for a non-test number that was tried): only brand and last 4 are kept."""
    for card in TEST_CARDS:
        spaced = " ".join(card.number[i : i + 4] for i in range(0, 16, 4))
        for typed in (card.number, spaced, spaced.replace(" ", "-")):
            try:
                saved = sandbox.attach("acme", typed)
            except CardDeclined:
                continue
            sandbox.charge("acme", saved.token, TEN, f"{saved.token}-1", "charge")
            opened = sandbox.start_checkout("acme", TEN, "sub", "/billing")
            sandbox.complete_checkout(opened.id, typed)
    with pytest.raises(UnknownCard):
        sandbox.attach("acme", "4111 1111 1111 1111")
    numbers = [card.number for card in TEST_CARDS] + ["4111111111111111"]
    with transaction(engine) as session:
        for table in SANDBOX_TABLES:
            rows = session.execute(text(f"SELECT * FROM {table}")).all()
            assert rows
            for row in rows:
                for value in row:
                    stored = str(value).replace(" ", "").replace("-", "")
                    assert not any(number in stored for number in numbers), (table, row)
        methods = session.scalars(select(store.SandboxPaymentMethod)).all()
        assert {(m.brand, m.last4) for m in methods} == {
            ("visa", "4242"),
            ("visa", "0341"),
            ("mastercard", "4444"),
        }


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s, t: s.attach("acme", "4111 1111 1111 1111"), UnknownCard, "ending in 1111"),
        (lambda s, t: s.attach("acme", "1234"), UnknownCard, "'1234' is not a sandbox"),
        (lambda s, t: s.attach("acme", ""), UnknownCard, "empty card"),
        (lambda s, t: s.attach("acme", None), UnknownCard, "no card"),
        (lambda s, t: s.attach("", "card_ok"), InvalidInput, "customer: expected"),
        (lambda s, t: s.attach(None, "card_ok"), InvalidInput, "customer: expected"),
        (lambda s, t: s.charge("acme", t, Money(0, USD), "k", "d"), InvalidInput, "positive"),
        (lambda s, t: s.charge("acme", t, Money(-1, USD), "k", "d"), InvalidInput, "positive"),
        (
            lambda s, t: s.charge("acme", t, Money(1000, Currency("USD", 3)), "k", "d"),
            InvalidInput,
            "USD has exponent 2",
        ),
        (lambda s, t: s.charge("acme", t, 1000, "k", "d"), InvalidInput, "expected Money"),
        (lambda s, t: s.charge("acme", "pm_sbx_nope", TEN, "k", "d"), InvalidInput, "not a pay"),
        (lambda s, t: s.charge("globex", t, TEN, "k", "d"), InvalidInput, "not a payment"),
        (lambda s, t: s.charge("acme", "", TEN, "k", "d"), InvalidInput, "token: expected"),
        (lambda s, t: s.charge("acme", t, TEN, "", "d"), InvalidInput, "idempotency_key"),
        (lambda s, t: s.charge("acme", t, TEN, "k" * 256, "d"), InvalidInput, "at most 255"),
        (lambda s, t: s.charge("acme", t, TEN, "k", None), InvalidInput, "description"),
        (lambda s, t: s.start_checkout("acme", Money(0, USD), "r", "/"), InvalidInput, "positive"),
        (lambda s, t: s.start_checkout("acme", TEN, "", "/"), InvalidInput, "reference"),
        (lambda s, t: s.start_checkout("acme", TEN, "r", ""), InvalidInput, "return_url"),
        (lambda s, t: s.checkout("cs_sbx_nope"), InvalidInput, "no checkout 'cs_sbx_nope'"),
        (lambda s, t: s.checkout(""), InvalidInput, "checkout_id"),
        (lambda s, t: s.complete_checkout("cs_sbx_x", "card_ok"), InvalidInput, "no checkout"),
        (lambda s, t: s.complete_checkout("cs_sbx_x", "4111"), UnknownCard, "'4111'"),
        (lambda s, t: s.charges(""), InvalidInput, "customer"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    sandbox: SandboxProvider,
    engine: Engine,
    call: Callable[[SandboxProvider, str], object],
    error: type[Exception],
    message: str,
) -> None:
    """Bad inputs tried: an unknown card number, a short number, an empty card, None, a
    non-test Visa number, an empty or None customer, a zero or negative amount, a
    mismatched currency (USD with 3 decimals), not Money, an unknown token, another
    customer's token, an empty token, key or description, a key too long, an empty
    reference or return URL, an unknown or empty checkout id. Each raises a clear error
    and writes nothing."""
    token = sandbox.attach("acme", "card_ok").token
    before = counts(engine)
    with pytest.raises(error, match=message):
        call(sandbox, token)
    assert counts(engine) == before


def test_unknown_token_error_code(sandbox: SandboxProvider) -> None:
    with pytest.raises(InvalidInput) as raised:
        sandbox.charge("acme", "pm_sbx_nope", TEN, "k", "d")
    assert raised.value.code == "unknown_payment_method"
    with pytest.raises(InvalidInput) as unknown:
        sandbox.checkout("cs_sbx_nope")
    assert unknown.value.code == "unknown_checkout"


def test_charges_are_listed_per_customer_in_order(sandbox: SandboxProvider) -> None:
    """The demo and tests count charges per customer, oldest first."""
    acme = sandbox.attach("acme", "card_ok").token
    globex = sandbox.attach("globex", "card_fails_later").token
    made = [
        sandbox.charge("acme", acme, Money(minor, USD), f"a{minor}", "x") for minor in (3, 1, 2)
    ]
    sandbox.charge("globex", globex, TEN, "g", "x")
    assert sandbox.charges("acme") == made
    assert [c.succeeded for c in sandbox.charges("globex")] == [False]


def test_money_is_stored_as_minor_units_and_code(sandbox: SandboxProvider, engine: Engine) -> None:
    jpy = Money(500, Currency.of("JPY"))
    opened = sandbox.start_checkout("acme", jpy, "sub_1", "/billing")
    _, charged = sandbox.complete_checkout(opened.id, "card_ok")
    assert charged.amount == jpy
    with transaction(engine) as session:
        row = session.scalars(select(store.SandboxCheckout)).one()
        assert (row.amount_minor, row.currency, row.status) == (500, "JPY", "completed")
        assert row.charge_id == charged.reference
        assert session.scalar(select(func.count()).select_from(store.SandboxCharge)) == 1


def test_card_on_file_is_a_value(sandbox: SandboxProvider) -> None:
    saved = sandbox.attach("acme", "card_ok")
    assert isinstance(saved, CardOnFile)
    result = sandbox.charge("acme", saved.token, TEN, "k", "d")
    assert isinstance(result, ChargeResult)
    with pytest.raises(AttributeError):
        saved.last4 = "0000"  # type: ignore[misc]
