"""Issuing invoices (INV-1, INV-2, INV-4).

An invoice is issued finalized: its lines come from domain/invoicing.py, the account credit
is applied (SUB-5), it takes the platform's next gapless number, and `invoice.issued` goes
to the outbox, all in the caller's transaction. `source_key` names what the invoice is for
("renewal:…", "change:…"); a second invoice for the same source is impossible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from tabkeeper.db.tables import Invoice, InvoiceLine, Organization, Platform
from tabkeeper.domain.invoicing import LineDraft, settle
from tabkeeper.domain.money import decimal_string
from tabkeeper.services.context import Billing
from tabkeeper.services.records import notify


def next_invoice_number(b: Billing) -> str:
    """The platform's next number, gapless (INV-2): the counter row is updated in the
    invoice's own transaction, so a rolled-back invoice gives its number back."""
    number = b.session.execute(
        update(Platform)
        .where(Platform.id == b.platform.id)
        .values(last_invoice_number=Platform.last_invoice_number + 1)
        .returning(Platform.last_invoice_number)
    ).scalar_one()
    return f"{b.terms.invoice_prefix}-{number:06d}"


def find_invoice(b: Billing, source_key: str) -> Invoice | None:
    return b.session.scalars(
        select(Invoice).where(
            Invoice.platform_id == b.platform.id, Invoice.source_key == source_key
        )
    ).first()


def issue_invoice(
    b: Billing,
    organization: Organization,
    source_key: str,
    lines: Sequence[LineDraft],
    *,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> Invoice:
    """Issue the invoice for `source_key`, or return the one already issued for it."""
    existing = find_invoice(b, source_key)
    if existing is not None:
        return existing
    draft = settle(b.terms.currency, lines, organization.account_credit_minor)
    organization.account_credit_minor = draft.account_credit_after_minor
    paid = draft.amount_due_minor == 0
    invoice = Invoice(
        platform_id=b.platform.id,
        organization_id=organization.id,
        source_key=source_key,
        number=next_invoice_number(b),
        status="paid" if paid else "open",
        currency=b.terms.currency.code,
        total_minor=draft.total_minor,
        credit_applied_minor=draft.credit_applied_minor,
        amount_due_minor=draft.amount_due_minor,
        issued_at=b.now,
        period_start=period_start,
        period_end=period_end,
        paid_at=b.now if paid else None,
    )
    b.session.add(invoice)
    b.session.flush()
    for position, line in enumerate(draft.lines):
        b.session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                position=position,
                kind=line.kind.value,
                description=line.description,
                quantity=decimal_string(line.quantity),
                unit_amount=None if line.unit_amount is None else f"{line.unit_amount:f}",
                amount_minor=line.amount_minor,
                period_start=line.period_start,
                period_end=line.period_end,
                details=dict(line.details),
            )
        )
    b.session.flush()
    notify(
        b,
        organization.id,
        "invoice.issued",
        f"invoice:{invoice.id}",
        {"invoice": invoice.number, "total_minor": invoice.total_minor},
    )
    if paid:
        mark_paid(b, invoice)
    return invoice


def mark_paid(b: Billing, invoice: Invoice) -> None:
    """The invoice is settled (by a charge, or wholly by account credit): `invoice.paid`."""
    if invoice.status != "paid":
        invoice.status, invoice.paid_at = "paid", b.now
    notify(
        b,
        invoice.organization_id,
        "invoice.paid",
        f"invoice:{invoice.id}",
        {"invoice": invoice.number, "amount_minor": invoice.amount_due_minor},
    )


def open_invoices(b: Billing, organization_id: int) -> list[Invoice]:
    return list(
        b.session.scalars(
            select(Invoice)
            .where(Invoice.organization_id == organization_id, Invoice.status == "open")
            .order_by(Invoice.id)
        )
    )
