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
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.provider import ProviderError, RefundResult
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services.credit_notes import credit_invoice, finish_refund
from tests.integration.conftest import World, all_at_once


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


def test_inv5_credit_notes_at_once_never_credit_more_than_the_invoice(world: World) -> None:
    """INV-5 under concurrency: eight credit notes of 10.00 at once on the 30.00 invoice,
    half refunded: exactly three are issued (the invoice is locked while one is written),
    numbered CN-000001..3 with no gap; the others are refused with
    credit_note_exceeds_invoice; refunds never exceed the charge."""
    invoice_id, charge = paid_invoice(world)
    refused: list[str] = []

    def credit(index: int) -> None:
        request = CreditRequest(amount_minor=1000, refund=index % 2 == 0)
        try:
            credit_invoice(world.billing, world.provider, invoice_id, request)
        except Refused as error:
            refused.append(error.code)

    all_at_once(8, credit)
    with transaction(world.engine) as session:
        notes = session.scalars(select(CreditNote).order_by(CreditNote.number)).all()
        numbers = [note.number for note in notes]
        refunded = sum(note.refund_minor for note in notes)
        total = sum(note.total_minor for note in notes)
    assert numbers == ["CN-000001", "CN-000002", "CN-000003"]
    assert total == 3000 and refused == ["credit_note_exceeds_invoice"] * 5
    assert sum(r.amount.minor for r in world.provider.refunds(charge)) == refunded <= 3000
