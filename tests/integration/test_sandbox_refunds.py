"""The sandbox provider's refunds (PAY-1 for INV-5's credit notes): a refund of part of a
succeeded charge is recorded once per idempotency key; a refund beyond what is left of
the charge, or of a declined charge, is a failed result and records nothing; an unknown
charge or a key reused for another refund is InvalidInput."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tabkeeper.clock import SimulatedClock
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.sandbox import SandboxProvider
from tests.integration.conftest import JAN_1

USD = Currency.of("USD")


@pytest.fixture
def sandbox(engine: Engine) -> SandboxProvider:
    return SandboxProvider(engine, SimulatedClock(JAN_1))


def charged(sandbox: SandboxProvider, card: str = "card_ok", amount: int = 5000) -> str:
    saved = sandbox.attach("org_1", card)
    return sandbox.charge(
        "org_1", saved.token, Money(amount, USD), f"k-{card}", "Invoice"
    ).reference


def test_inv5_refunds_part_of_a_charge_once_per_key(sandbox: SandboxProvider) -> None:
    charge = charged(sandbox)
    first = sandbox.refund(charge, Money(2000, USD), "re-1")
    again = sandbox.refund(charge, Money(2000, USD), "re-1")
    assert first.succeeded and first == again and first.reference.startswith("re_sbx_")
    assert [r.amount.minor for r in sandbox.refunds(charge)] == [2000]
    over = sandbox.refund(charge, Money(3001, USD), "re-2")
    assert not over.succeeded and over.failure_code == "refund_exceeds_charge"
    assert sandbox.refund(charge, Money(3000, USD), "re-3").succeeded
    assert [r.amount.minor for r in sandbox.refunds(charge)] == [2000, 3000]
    with pytest.raises(InvalidInput) as reused:
        sandbox.refund(charge, Money(1, USD), "re-1")
    assert reused.value.code == "idempotency_key_reused"


def test_inv5_a_declined_or_unknown_charge_is_not_refunded(sandbox: SandboxProvider) -> None:
    declined = charged(sandbox, "card_fails_later")
    result = sandbox.refund(declined, Money(100, USD), "re-x")
    assert not result.succeeded and result.failure_code == "charge_not_refundable"
    assert sandbox.refunds(declined) == []
    with pytest.raises(InvalidInput) as unknown:
        sandbox.refund("ch_sbx_nope", Money(100, USD), "re-y")
    assert unknown.value.code == "unknown_charge"
    with pytest.raises(InvalidInput):
        sandbox.refund(declined, Money(0, USD), "re-z")
