"""The SQL of corrections (INV-5): credit notes and their gapless numbers, refunds, an
invoice's status changed by the platform, account credit added in one statement.

The credit note counter is taken like the invoice counter (db/invoices.py): an UPDATE of
the platform's row in the credit note's own transaction, so a rolled-back credit note
gives its number back. Account credit is added with `SET x = x + :amount` so that two
transactions adding at once never lose one of the additions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tabkeeper.db.records import table_of
from tabkeeper.db.tables import Invoice, InvoiceLine, Organization, PaymentAttempt, Platform
from tabkeeper.db.tables_corrections import AccountCreditGrant, CreditNote, CreditNoteLine, Refund

_PLATFORMS = table_of(Platform)
_ORGANIZATIONS = table_of(Organization)
_INVOICES = table_of(Invoice)
_NEXT_NUMBER = (
    update(_PLATFORMS)
    .where(_PLATFORMS.c.id == bindparam("platform_id"))
    .values(last_credit_note_number=_PLATFORMS.c.last_credit_note_number + 1)
    .returning(_PLATFORMS.c.last_credit_note_number)
)
_ADD_CREDIT = (
    update(_ORGANIZATIONS)
    .where(_ORGANIZATIONS.c.id == bindparam("organization_id"))
    .values(account_credit_minor=_ORGANIZATIONS.c.account_credit_minor + bindparam("amount"))
    .returning(_ORGANIZATIONS.c.account_credit_minor)
)


def next_number(session: Session, platform: Platform) -> int:
    """The platform's next credit note number (INV-5), gapless like invoice numbers."""
    number: int = session.execute(_NEXT_NUMBER, {"platform_id": platform.id}).scalar_one()
    set_committed_value(platform, "last_credit_note_number", number)
    return number


def invoice_lines(session: Session, invoice_id: int) -> list[InvoiceLine]:
    """The invoice's lines in position order."""
    return list(
        session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
    )


def invoice_by_number(session: Session, platform_id: int, number: str) -> Invoice | None:
    return session.scalars(
        select(Invoice).where(Invoice.platform_id == platform_id, Invoice.number == number)
    ).first()


def credit_notes_of(session: Session, invoice_id: int) -> list[CreditNote]:
    """The invoice's credit notes, oldest first."""
    return list(
        session.scalars(
            select(CreditNote).where(CreditNote.invoice_id == invoice_id).order_by(CreditNote.id)
        )
    )


def credit_notes_of_organization(
    session: Session, organization_id: int, limit: int = 50
) -> list[CreditNote]:
    """The organization's credit notes, newest first (the billing tab, INV-5)."""
    return list(
        session.scalars(
            select(CreditNote)
            .where(CreditNote.organization_id == organization_id)
            .order_by(CreditNote.issued_at.desc(), CreditNote.id.desc())
            .limit(limit)
        )
    )


def invoice_numbers(session: Session, invoice_ids: Sequence[int]) -> dict[int, str]:
    """The numbers of the invoices `invoice_ids`, by id."""
    if not invoice_ids:
        return {}
    found = session.execute(
        select(Invoice.id, Invoice.number).where(Invoice.id.in_(set(invoice_ids)))
    )
    return {invoice_id: number or f"#{invoice_id}" for invoice_id, number in found}


def lines_of(session: Session, credit_note_ids: Sequence[int]) -> list[CreditNoteLine]:
    """The lines of the credit notes `credit_note_ids`, by credit note and position."""
    if not credit_note_ids:
        return []
    return list(
        session.scalars(
            select(CreditNoteLine)
            .where(CreditNoteLine.credit_note_id.in_(list(credit_note_ids)))
            .order_by(CreditNoteLine.credit_note_id, CreditNoteLine.position)
        )
    )


def insert_credit_note(session: Session, values: dict[str, Any]) -> CreditNote:
    note = CreditNote(**values)
    session.add(note)
    session.flush()
    return note


def insert_lines(session: Session, lines: Sequence[dict[str, Any]]) -> None:
    session.execute(insert(table_of(CreditNoteLine)), list(lines))


def succeeded_charges(session: Session, invoice_id: int) -> list[PaymentAttempt]:
    """The invoice's succeeded payment attempts with the provider's reference."""
    return list(
        session.scalars(
            select(PaymentAttempt)
            .where(
                PaymentAttempt.invoice_id == invoice_id,
                PaymentAttempt.status == "succeeded",
                PaymentAttempt.provider_reference.is_not(None),
            )
            .order_by(PaymentAttempt.id)
        )
    )


def refunded_of(session: Session, invoice_id: int) -> int:
    """What was refunded of the invoice or is being refunded (processing), minor units."""
    total = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
            Refund.invoice_id == invoice_id, Refund.status.in_(("processing", "succeeded"))
        )
    )
    return int(total or 0)


def insert_refund(session: Session, values: dict[str, Any]) -> Refund:
    refund = Refund(**values)
    session.add(refund)
    session.flush()
    return refund


def record_refund(
    session: Session,
    refund_id: int,
    status: str,
    reference: str | None,
    code: str | None,
    message: str | None,
) -> bool:
    """The outcome of the refund, written while it is processing; False when it was
    already written."""
    table = table_of(Refund)
    recorded = session.execute(
        update(table)
        .where(table.c.id == refund_id, table.c.status == "processing")
        .values(
            status=status,
            provider_reference=reference,
            failure_code=code,
            failure_message=None if message is None else message[:300],
        )
    )
    return bool(getattr(recorded, "rowcount", 0))


def set_status(session: Session, invoice: Invoice, status: str, **values: Any) -> None:
    """A plain UPDATE of the invoice's status (and `values`); the loaded one learns it."""
    session.flush()
    session.execute(
        update(_INVOICES).where(_INVOICES.c.id == invoice.id).values(status=status, **values)
    )
    set_committed_value(invoice, "status", status)
    for name, value in values.items():
        set_committed_value(invoice, name, value)


def add_account_credit(session: Session, organization: Organization, amount_minor: int) -> int:
    """Add `amount_minor` to the organization's account credit in one statement; the
    new balance (the loaded organization learns it)."""
    session.flush()  # a change of the loaded organization goes first
    balance: int = session.execute(
        _ADD_CREDIT, {"organization_id": organization.id, "amount": amount_minor}
    ).scalar_one()
    set_committed_value(organization, "account_credit_minor", balance)
    return balance


def insert_grant(session: Session, values: dict[str, Any]) -> None:
    session.add(AccountCreditGrant(**values))


def refund_of(session: Session, credit_note_id: int) -> Refund | None:
    return session.scalars(select(Refund).where(Refund.credit_note_id == credit_note_id)).first()
