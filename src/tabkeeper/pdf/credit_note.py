"""A credit note as a PDF (INV-5): the same lines and total as the credit note, in the
look of the invoice PDF (pdf/invoice.py, the same stylesheet), titled "Credit note" and
naming the invoice it credits.

What it shows: the platform's name, the credit note's number and issue date, the invoice
credited (its number), the organization, every line (description, and the invoice line
credited), the total, and where the money went: refunded to the payment method,
credited to the account, taken off the invoice's amount due. Every amount is the stored
integer, formatted, never computed again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.db.tables import Invoice, Organization, Platform
from tabkeeper.db.tables_corrections import CreditNote, CreditNoteLine
from tabkeeper.domain.errors import NotFound
from tabkeeper.domain.money import Currency
from tabkeeper.pdf.formatting import format_amount, format_day
from tabkeeper.pdf.printing import document_html, print_pdf
from tabkeeper.services.access import Caller


@dataclass(frozen=True, slots=True)
class CreditDocumentLine:
    description: str
    invoice_line: str | None
    """"Line 2" (1-based, as a person counts), or None for the invoice as a whole."""
    amount: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CreditNoteDocument:
    platform_name: str
    number: str
    invoice_number: str
    issued_on: str
    organization_name: str
    organization_code: str
    currency: str
    reason: str | None
    lines: tuple[CreditDocumentLine, ...]
    total: str
    refunded: str | None
    credited: str | None
    applied: str | None
    refund_pending: bool

    @property
    def title(self) -> str:
        return f"Credit note {self.number}"

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"


def credit_note_document(
    session: Session, platform_id: int, credit_note_id: int
) -> CreditNoteDocument:
    """Read the platform's credit note `credit_note_id`; NotFound when it is not its."""
    note = session.get(CreditNote, credit_note_id)
    if note is None or note.platform_id != platform_id:
        raise NotFound("No such credit note.")
    platform = session.get(Platform, platform_id)
    organization = session.get(Organization, note.organization_id)
    invoice = session.get(Invoice, note.invoice_id)
    assert platform is not None and organization is not None and invoice is not None
    currency = Currency.of(note.currency)
    rows = session.scalars(
        select(CreditNoteLine)
        .where(CreditNoteLine.credit_note_id == note.id)
        .order_by(CreditNoteLine.position)
    )
    return CreditNoteDocument(
        platform_name=platform.name,
        number=note.number,
        invoice_number=invoice.number or f"#{invoice.id}",
        issued_on=format_day(note.issued_at),
        organization_name=organization.name,
        organization_code=organization.code,
        currency=currency.code,
        reason=note.reason,
        lines=tuple(
            CreditDocumentLine(
                description=row.description,
                invoice_line=None if row.invoice_line is None else f"Line {row.invoice_line + 1}",
                amount=format_amount(row.amount_minor, currency),
                amount_minor=row.amount_minor,
            )
            for row in rows
        ),
        total=format_amount(note.total_minor, currency),
        refunded=_shown(note.refund_minor, currency),
        credited=_shown(note.credited_minor, currency),
        applied=_shown(note.applied_minor, currency),
        refund_pending=note.refund_status == "processing",
    )


def _shown(minor: int, currency: Currency) -> str | None:
    return format_amount(minor, currency) if minor else None


def credit_note_html(document: CreditNoteDocument) -> str:
    return document_html("credit_note.html", note=document)


def render_credit_note_pdf(document: CreditNoteDocument) -> bytes:
    """The PDF of `document`; nothing is fetched but `data:` URLs."""
    return print_pdf(credit_note_html(document))


def caller_credit_note(session: Session, caller: Caller, credit_note_id: int) -> CreditNoteDocument:
    """The credit note as `caller` may read it (ACL-1, ACL-3), like an invoice."""
    caller.require_billing()
    note = session.get(CreditNote, credit_note_id)
    organization = None if note is None else session.get(Organization, note.organization_id)
    if organization is None or not caller.sees(organization):
        raise NotFound("No such credit note.")
    return credit_note_document(session, caller.platform_id, credit_note_id)
