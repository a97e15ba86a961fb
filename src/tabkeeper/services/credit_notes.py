"""Credit notes (INV-5): the one way to correct a finalized invoice.

The rules of what may be credited and where the money goes are pure
(domain/corrections.py); this writes them. A credit note is issued in one transaction:
the platform's next gapless number (`CN-000001`, db/corrections.py), its lines, the
invoice's amount due lowered (an open invoice; the invoice's lines and total never
change, INV-2, and an amount due brought to 0 marks it paid, restoring the subscription
as a payment does), the account credit added, `credit_note.issued` told, and, for a
refund, the refund row claimed with its idempotency key.

A refund crosses the provider, so it runs in three steps like a payment
(services/payments.py):
1. claim (the credit note's transaction): the refund row, status processing, with its key;
2. the provider refunds, outside any transaction, with that key;
3. record (one transaction): succeeded; or failed, and then the amount goes to the
   account credit instead (the credit note's `refund_minor` becomes 0 and its
   `credited_minor` grows by as much): money owed back is never lost.
A crash or a provider outage between 1 and 3 leaves the refund processing;
`finish_refund` sends the same key again (the provider answers with the first result
instead of refunding twice) and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabkeeper.db import corrections as rows
from tabkeeper.db.subscriptions import subscription_of
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.db.tables_corrections import CreditNote, Refund
from tabkeeper.domain.corrections import (
    CreditRequest,
    InvoiceToCredit,
    draft_credit_note,
)
from tabkeeper.domain.errors import NotFound, TabkeeperError
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.provider import PaymentProvider, RefundResult
from tabkeeper.services.context import Billing, UnitOfWork
from tabkeeper.services.corrections import locked_invoice
from tabkeeper.services.invoices import mark_paid
from tabkeeper.services.payments import restore_when_nothing_owed
from tabkeeper.services.records import notify

PREFIX = "CN"


@dataclass(frozen=True, slots=True)
class ClaimedRefund:
    refund_id: int
    credit_note_id: int
    idempotency_key: str
    charge_reference: str
    amount: Money


def next_credit_note_number(b: Billing) -> str:
    """The platform's next credit note number, gapless (INV-5): `CN-000001`, ..."""
    return f"{PREFIX}-{rows.next_number(b.session, b.platform):06d}"


def invoice_to_credit(b: Billing, invoice: Invoice) -> InvoiceToCredit:
    """What the rules need of `invoice`: its lines, earlier credits, what can be refunded."""
    notes = rows.credit_notes_of(b.session, invoice.id)
    by_line: dict[int, int] = {}
    for line in rows.lines_of(b.session, [note.id for note in notes]):
        if line.invoice_line is not None:
            by_line[line.invoice_line] = by_line.get(line.invoice_line, 0) + line.amount_minor
    charges = rows.succeeded_charges(b.session, invoice.id)
    invoice_lines = rows.invoice_lines(b.session, invoice.id)
    collected = sum(charge.amount_minor for charge in charges)
    return InvoiceToCredit(
        number=invoice.number or f"#{invoice.id}",
        status=invoice.status,
        total_minor=invoice.total_minor,
        amount_due_minor=invoice.amount_due_minor,
        lines=tuple((line.description, line.amount_minor) for line in invoice_lines),
        taxes=tuple(  # INV-7: exclusive tax lines, carried back in proportion
            (position, line.amount_minor, int(line.details.get("taxable_minor", 0)))
            for position, line in enumerate(invoice_lines)
            if line.kind == "tax" and not line.details.get("inclusive")
        ),
        credited_minor=sum(note.total_minor for note in notes),
        credited_by_line=by_line,
        refundable_minor=max(0, collected - rows.refunded_of(b.session, invoice.id)),
    )


def issue_credit_note(
    b: Billing, invoice_id: int, request: CreditRequest
) -> tuple[CreditNote, ClaimedRefund | None]:
    """Step 1: the credit note `request` asks for on the platform's invoice `invoice_id`,
    written whole, and its refund claimed (None when nothing goes to the card). Refused
    with nothing written as domain/corrections.py says."""
    invoice = locked_invoice(b, invoice_id)
    subscription = subscription_of(b.session, invoice.organization_id, lock=True)
    draft = draft_credit_note(invoice_to_credit(b, invoice), request)
    organization = b.session.get(Organization, invoice.organization_id)
    assert organization is not None
    charge = None
    if draft.refund_minor:
        charge = rows.succeeded_charges(b.session, invoice.id)[-1].provider_reference
    note = rows.insert_credit_note(
        b.session,
        {
            "platform_id": b.platform_id,
            "organization_id": invoice.organization_id,
            "invoice_id": invoice.id,
            "number": next_credit_note_number(b),
            "currency": invoice.currency,
            "total_minor": draft.total_minor,
            "refund_minor": draft.refund_minor,
            "credited_minor": draft.credited_minor,
            "applied_minor": draft.applied_minor,
            "refund_status": "processing" if draft.refund_minor else None,
            "reason": request.reason,
            "issued_at": b.now,
        },
    )
    rows.insert_lines(
        b.session,
        [
            {
                "credit_note_id": note.id,
                "position": position,
                "invoice_line": line.invoice_line,
                "description": line.description,
                "amount_minor": line.amount_minor,
            }
            for position, line in enumerate(draft.lines)
        ],
    )
    if draft.credited_minor:
        rows.add_account_credit(b.session, organization, draft.credited_minor)
    if draft.applied_minor:
        due = invoice.amount_due_minor - draft.applied_minor
        rows.set_status(b.session, invoice, invoice.status, amount_due_minor=due)
        if due == 0:
            rows.set_status(b.session, invoice, "paid", paid_at=b.now, paid_via="credit_note")
            mark_paid(b, invoice)
            restore_when_nothing_owed(b, organization.id, subscription, f"credit_note:{note.id}")
    notify(
        b,
        organization.id,
        "credit_note.issued",
        f"credit_note:{note.id}",
        {
            "credit_note": note.number,
            "invoice": invoice.number,
            "total_minor": note.total_minor,
            "refund_minor": note.refund_minor,
            "credited_minor": note.credited_minor,
        },
    )
    if charge is None:
        return note, None
    key = f"tk_{b.platform.code}_cn{note.id}"
    refund = rows.insert_refund(
        b.session,
        {
            "credit_note_id": note.id,
            "invoice_id": invoice.id,
            "idempotency_key": key,
            "status": "processing",
            "amount_minor": draft.refund_minor,
            "charge_reference": charge,
            "attempted_at": b.now,
        },
    )
    return note, _claim(refund, Currency.of(invoice.currency))


def _claim(refund: Refund, currency: Currency) -> ClaimedRefund:
    return ClaimedRefund(
        refund_id=refund.id,
        credit_note_id=refund.credit_note_id,
        idempotency_key=refund.idempotency_key,
        charge_reference=refund.charge_reference,
        amount=Money(refund.amount_minor, currency),
    )


def refund(provider: PaymentProvider, claim: ClaimedRefund) -> RefundResult | None:
    """Step 2, outside any transaction; None when the provider could not be reached or
    failed (the refund stays processing, for `finish_refund`)."""
    try:
        return provider.refund(claim.charge_reference, claim.amount, claim.idempotency_key)
    except TabkeeperError:
        return None


def record_refund(b: Billing, claim: ClaimedRefund, result: RefundResult) -> bool:
    """Step 3: the provider's answer; a failed refund goes to the account credit instead.
    False when the outcome was already recorded."""
    status = "succeeded" if result.succeeded else "failed"
    reference = result.reference or None
    if not rows.record_refund(
        b.session, claim.refund_id, status, reference, result.failure_code, result.failure_message
    ):
        return False
    note = b.session.get(CreditNote, claim.credit_note_id)
    assert note is not None
    note.refund_status = status
    if not result.succeeded:
        organization = b.session.get(Organization, note.organization_id)
        assert organization is not None
        note.refund_minor -= claim.amount.minor
        note.credited_minor += claim.amount.minor
        rows.add_account_credit(b.session, organization, claim.amount.minor)
    b.session.flush()
    return True


def credit_invoice(
    work: UnitOfWork, provider: PaymentProvider, invoice_id: int, request: CreditRequest
) -> int:
    """Issue a credit note on `invoice_id` and carry out its refund: claim, refund,
    record, each transaction opened by `work`, none open while the provider is called.
    The credit note's id."""
    with work() as b:
        note, claim = issue_credit_note(b, invoice_id, request)
        note_id = note.id
    if claim is not None:
        result = refund(provider, claim)
        if result is not None:
            with work() as b:
                record_refund(b, claim, result)
    return note_id


def finish_refund(work: UnitOfWork, provider: PaymentProvider, credit_note_id: int) -> bool:
    """Send a refund left processing (a crash, an outage) again with its own key and record
    the outcome; False when the credit note has no unfinished refund."""
    with work() as b:
        note = b.session.get(CreditNote, credit_note_id)
        if note is None or note.platform_id != b.platform_id:
            raise NotFound("No such credit note.")
        found = rows.refund_of(b.session, credit_note_id)
        if found is None or found.status != "processing":
            return False
        claim = _claim(found, Currency.of(note.currency))
    result = refund(provider, claim)
    if result is None:
        return False
    with work() as b:
        return record_refund(b, claim, result)
