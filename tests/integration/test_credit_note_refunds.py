"""A credit note's refund crosses the provider like a payment (INV-5, INV-4): claimed with
its idempotency key in the credit note's transaction, sent with no transaction open, the
outcome recorded after. A provider outage leaves it processing, and `finish_refund` sends
the same key again (refunding once); a refund the provider refuses goes to the account
credit instead, so money owed back is never lost."""

from __future__ import annotations

from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Organization, PaymentAttempt
from tabkeeper.db.tables_corrections import CreditNote
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.provider import ProviderError, RefundResult
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services.credit_notes import credit_invoice, finish_refund
from tests.integration.conftest import World


class Unreachable(SandboxProvider):
    """The sandbox, whose refunds fail with an outage."""

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        raise ProviderError("the provider is unreachable")


def paid_invoice(world: World) -> tuple[int, str]:
    """acme subscribed to Basic 30.00 with card_ok: INV-000001's id and its charge."""
    world.organization("acme")
    world.subscribe("acme")
    with transaction(world.engine) as session:
        invoice_id = session.scalars(select(Invoice.id)).one()
        charge = session.scalars(select(PaymentAttempt.provider_reference)).one()
    assert charge is not None
    return invoice_id, charge


def note_and_credit(world: World, note_id: int) -> tuple[tuple[object, ...], int]:
    with transaction(world.engine) as session:
        note = session.get(CreditNote, note_id)
        assert note is not None
        credit = session.scalars(select(Organization.account_credit_minor)).one()
        return (note.refund_status, note.refund_minor, note.credited_minor), credit


def test_inv5_an_outage_leaves_the_refund_processing_until_finished(world: World) -> None:
    invoice_id, charge = paid_invoice(world)
    down = Unreachable(world.engine, world.clock)
    request = CreditRequest(amount_minor=1200, refund=True)
    note_id = credit_invoice(world.billing, down, invoice_id, request)
    assert note_and_credit(world, note_id) == (("processing", 1200, 0), 0)
    assert world.provider.refunds(charge) == []
    assert finish_refund(world.billing, down, note_id) is False
    assert finish_refund(world.billing, world.provider, note_id) is True
    assert note_and_credit(world, note_id) == (("succeeded", 1200, 0), 0)
    assert finish_refund(world.billing, world.provider, note_id) is False
    assert [r.amount.minor for r in world.provider.refunds(charge)] == [1200]


def test_inv5_a_refused_refund_goes_to_the_account_credit(world: World) -> None:
    invoice_id, charge = paid_invoice(world)
    usd = Currency.of("USD")
    assert world.provider.refund(charge, Money(2500, usd), "refunded-elsewhere").succeeded
    note_id = credit_invoice(
        world.billing, world.provider, invoice_id, CreditRequest(amount_minor=1000, refund=True)
    )
    assert note_and_credit(world, note_id) == (("failed", 0, 1000), 1000)
