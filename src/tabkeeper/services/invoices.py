"""Issuing invoices (INV-1, INV-2, INV-4).

An invoice is issued finalized: its lines come from domain/invoicing.py, the account credit
is applied (SUB-5), it takes the platform's next gapless number, and `invoice.issued` goes
to the outbox, all in the caller's transaction. `source_key` names what the invoice is for
("renewal:…", "change:…"); a second invoice for the same source is impossible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from tabkeeper.db.tables import Invoice, InvoiceLine, Organization, Platform
from tabkeeper.db.types import UtcDateTime
from tabkeeper.domain.invoicing import LineDraft, settle
from tabkeeper.domain.money import decimal_string
from tabkeeper.services.context import Billing
from tabkeeper.services.records import notify, table_of

_PLATFORMS = table_of(Platform)
_LINES = table_of(InvoiceLine)
_NEXT_NUMBER = (
    update(_PLATFORMS)
    .where(_PLATFORMS.c.id == bindparam("platform_id"))
    .values(last_invoice_number=_PLATFORMS.c.last_invoice_number + 1)
    .returning(_PLATFORMS.c.last_invoice_number)
)
_BY_SOURCE = select(Invoice).where(
    Invoice.platform_id == bindparam("platform_id"),
    Invoice.source_key == bindparam("source_key"),
)
_INVOICES = table_of(Invoice)
_NEW_INVOICE = insert(_INVOICES).returning(_INVOICES.c.id)
_NEW_LINES = insert(_LINES)
_PAID = (
    update(_INVOICES)
    .where(_INVOICES.c.id == bindparam("invoice_id"))
    .values(status="paid", paid_at=bindparam("paid_at", type_=UtcDateTime()))
)
"""Statements built once, the values as parameters: building them (and the ORM's
bookkeeping for rows nothing reads back, such as the lines) is a good part of a
renewal's time."""


def next_invoice_number(b: Billing) -> str:
    """The platform's next number, gapless (INV-2): the counter row is updated in the
    invoice's own transaction, so a rolled-back invoice gives its number back."""
    number = b.session.execute(_NEXT_NUMBER, {"platform_id": b.platform.id}).scalar_one()
    # The loaded platform learns the new count, as if it had been read again.
    set_committed_value(b.platform, "last_invoice_number", number)
    return f"{b.terms.invoice_prefix}-{number:06d}"


def find_invoice(b: Billing, source_key: str) -> Invoice | None:
    return b.session.scalars(
        _BY_SOURCE, {"platform_id": b.platform.id, "source_key": source_key}
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
    if draft.account_credit_after_minor != organization.account_credit_minor:
        organization.account_credit_minor = draft.account_credit_after_minor
        b.session.flush()  # written before the invoice, as it always was
    paid = draft.amount_due_minor == 0
    values = {
        "platform_id": b.platform.id,
        "organization_id": organization.id,
        "source_key": source_key,
        "number": next_invoice_number(b),
        "status": "paid" if paid else "open",
        "currency": b.terms.currency.code,
        "total_minor": draft.total_minor,
        "credit_applied_minor": draft.credit_applied_minor,
        "amount_due_minor": draft.amount_due_minor,
        "issued_at": b.now,
        "period_start": period_start,
        "period_end": period_end,
        "paid_at": b.now if paid else None,
    }
    # A plain INSERT, then the row joins the session as if it had been read back: the
    # same Invoice as an add() and flush() would give, for less than the flush costs.
    invoice = Invoice(id=b.session.execute(_NEW_INVOICE, values).scalar_one(), **values)
    make_transient_to_detached(invoice)
    b.session.add(invoice)
    if draft.lines:
        b.session.execute(
            _NEW_LINES,
            [
                {
                    "invoice_id": invoice.id,
                    "position": position,
                    "kind": line.kind.value,
                    "description": line.description,
                    "quantity": decimal_string(line.quantity),
                    "unit_amount": None if line.unit_amount is None else f"{line.unit_amount:f}",
                    "amount_minor": line.amount_minor,
                    "period_start": line.period_start,
                    "period_end": line.period_end,
                    "details": dict(line.details),
                }
                for position, line in enumerate(draft.lines)
            ],
        )
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
    if invoice.status != "paid" and inspect(invoice).persistent:
        # A plain UPDATE of a stored invoice, and the loaded one learns it (no flush).
        b.session.execute(_PAID, {"invoice_id": invoice.id, "paid_at": b.now})
        set_committed_value(invoice, "status", "paid")
        set_committed_value(invoice, "paid_at", b.now)
    elif invoice.status != "paid":
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
