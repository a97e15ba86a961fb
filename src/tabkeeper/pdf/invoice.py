"""An invoice as a PDF (INV-3): the same lines and totals as the invoice it came from.

`invoice_pdf(session, platform_id, invoice_id)` reads the invoice and renders it;
`invoice_pdf_for(session, caller, invoice_id)` does the same for a caller (the platform's
key, or an owner or billing admin of the invoice's organization, ACL-1/ACL-3): a member
without billing rights is Forbidden, an invoice of an organization the caller does not
see is NotFound, exactly as if it did not exist.

Reading and rendering are apart (`invoice_document`, `render_invoice_pdf`) so that a web
request can read in its transaction and render (about half a second) after it closed.

What the PDF shows: the platform's name as a wordmark (or its logo, a `data:` image URL,
when one is given), the invoice number, issue date, status (draft, open, paid, void,
uncollectible), the organization billed (name and code, and its billing details when it
gave them: legal name, address, country, tax ID; INV-7), the billing period, every line
(description, period, quantity, unit amount, amount) and the totals: subtotal, the
discount line (INV-6), one line per tax rate (INV-7; an inclusive rate's line says what
the prices include; reverse charge is said in a note), account credit applied, total and
amount due. The billing details printed are the organization's current ones. Every
amount is the stored integer of the invoice row or line, formatted (pdf/formatting.py),
never computed again, but for the subtotal and the tax in all: sums of stored lines
(domain/taxes.py `breakdown`). Long invoices run over
several pages with the table's header repeated, and every page is footed with the
invoice number and "Page n of m".

WeasyPrint is given a URL fetcher that allows `data:` URLs only: rendering never reaches
the network or the file system.
"""

from __future__ import annotations

from dataclasses import dataclass

from babel import Locale
from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.db.discounts import billing_details_of
from tabkeeper.db.tables import Invoice, InvoiceLine, Organization, Platform
from tabkeeper.db.tables_discounts import BillingDetailsRow
from tabkeeper.domain.errors import InvalidInput, NotFound
from tabkeeper.domain.money import Currency
from tabkeeper.domain.taxes import breakdown
from tabkeeper.pdf.formatting import (
    format_amount,
    format_day,
    format_period,
    format_quantity,
    format_unit_amount,
)
from tabkeeper.pdf.printing import document_html, print_pdf
from tabkeeper.services.access import Caller

STATUS_LABELS = {
    "draft": "Draft",
    "open": "Open",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Uncollectible",
}
LOGO_PREFIXES = ("data:image/png;", "data:image/jpeg;", "data:image/svg+xml;")


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """One invoice line as printed: texts ready to show, and the stored amount."""

    description: str
    period: str | None
    quantity: str
    unit_amount: str | None
    amount: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything the PDF shows, read from one invoice and its lines."""

    platform_name: str
    logo: str | None
    invoice_id: int
    number: str | None
    status: str
    status_label: str
    issued_on: str
    paid_on: str | None
    organization_name: str
    organization_code: str
    period: str | None
    currency: str
    lines: tuple[DocumentLine, ...]
    subtotal: str
    credit_applied: str | None
    total: str
    amount_due: str
    credited_to_account: str | None
    """What a negative total leaves on the organization's account (SUB-5), or None."""
    billed_to: tuple[str, ...] = ()
    """INV-7: the billing details (legal name, address lines, country), when given."""
    tax_id: str | None = None
    adjustments: tuple[DocumentLine, ...] = ()
    """INV-6, INV-7: the discount and tax lines, printed with the totals."""
    tax_total: str | None = None
    reverse_charge: bool = False
    taxes_included: bool = False

    @property
    def title(self) -> str:
        return f"Invoice {self.number}" if self.number else f"Draft invoice {self.invoice_id}"

    @property
    def filename(self) -> str:
        """`INV-000001.pdf`; a draft without a number: `invoice-<id>.pdf`."""
        return f"{self.number}.pdf" if self.number else f"invoice-{self.invoice_id}.pdf"


def invoice_document(
    session: Session, platform_id: int, invoice_id: int, *, logo: str | None = None
) -> InvoiceDocument:
    """Read the invoice `invoice_id` of the platform; NotFound when it is not the
    platform's. `logo` is an image `data:` URL (PNG, JPEG or SVG) shown instead of the
    platform's name."""
    if logo is not None and not logo.startswith(LOGO_PREFIXES):
        raise InvalidInput("logo: expected a data: URL of a PNG, JPEG or SVG image")
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.platform_id != platform_id:
        raise NotFound("No such invoice.")
    platform = session.get(Platform, platform_id)
    organization = session.get(Organization, invoice.organization_id)
    assert platform is not None and organization is not None
    rows = session.scalars(
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.position)
    )
    currency = Currency.of(invoice.currency)
    found = list(rows)
    lines = tuple(_line(row, currency) for row in found if row.kind not in _ADJUSTMENTS)
    adjustments = tuple(_line(row, currency) for row in found if row.kind in _ADJUSTMENTS)
    subtotal, _, tax = breakdown((row.kind, row.amount_minor, row.details) for row in found)
    taxes = [row for row in found if row.kind == "tax"]
    details = billing_details_of(session, organization.id)
    return InvoiceDocument(
        platform_name=platform.name,
        logo=logo,
        invoice_id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        status_label=STATUS_LABELS.get(invoice.status, invoice.status.title()),
        issued_on=format_day(invoice.issued_at),
        paid_on=None if invoice.paid_at is None else format_day(invoice.paid_at),
        organization_name=organization.name,
        organization_code=organization.code,
        period=format_period(invoice.period_start, invoice.period_end),
        currency=currency.code,
        lines=lines,
        subtotal=format_amount(subtotal, currency),
        credit_applied=(
            format_amount(-invoice.credit_applied_minor, currency)
            if invoice.credit_applied_minor
            else None
        ),
        total=format_amount(invoice.total_minor, currency),
        amount_due=format_amount(invoice.amount_due_minor, currency),
        credited_to_account=(
            format_amount(-invoice.total_minor, currency) if invoice.total_minor < 0 else None
        ),
        billed_to=() if details is None else _billed_to(details),
        tax_id=None if details is None else details.tax_id,
        adjustments=adjustments,
        tax_total=format_amount(tax, currency) if taxes else None,
        reverse_charge=any(row.details.get("reverse_charge") for row in taxes),
        taxes_included=any(row.details.get("included_minor") is not None for row in taxes),
    )


_ADJUSTMENTS = ("discount", "tax")


def _billed_to(details: BillingDetailsRow) -> tuple[str, ...]:
    """INV-7: the legal name, the address's lines and the country's name."""
    country = Locale("en").territories.get(details.country, details.country)
    return (details.legal_name, *details.address.splitlines(), country)


def _line(row: InvoiceLine, currency: Currency) -> DocumentLine:
    return DocumentLine(
        description=row.description,
        period=format_period(row.period_start, row.period_end),
        quantity=format_quantity(row.quantity),
        unit_amount=None
        if row.unit_amount is None
        else format_unit_amount(row.unit_amount, currency),
        amount=format_amount(row.amount_minor, currency),
        amount_minor=row.amount_minor,
    )


def invoice_html(document: InvoiceDocument) -> str:
    """The HTML the PDF is printed from (templates/invoice.html and invoice.css)."""
    return document_html("invoice.html", invoice=document)


def render_invoice_pdf(document: InvoiceDocument) -> bytes:
    """The PDF of `document`; nothing is fetched but `data:` URLs."""
    return print_pdf(invoice_html(document))


def invoice_pdf(session: Session, platform_id: int, invoice_id: int) -> bytes:
    """INV-3: the PDF of the platform's invoice `invoice_id`; NotFound when the invoice is
    not the platform's."""
    return render_invoice_pdf(invoice_document(session, platform_id, invoice_id))


def caller_document(session: Session, caller: Caller, invoice_id: int) -> InvoiceDocument:
    """The invoice as `caller` may read it (ACL-1, ACL-3): Forbidden without billing
    rights; NotFound for an invoice of an organization the caller does not see."""
    caller.require_billing()
    invoice = session.get(Invoice, invoice_id)
    organization = None if invoice is None else session.get(Organization, invoice.organization_id)
    if organization is None or not caller.sees(organization):
        raise NotFound("No such invoice.")
    return invoice_document(session, caller.platform_id, invoice_id)


def invoice_pdf_for(session: Session, caller: Caller, invoice_id: int) -> bytes:
    """INV-3 for a caller: the PDF of an invoice the caller may read (`caller_document`)."""
    return render_invoice_pdf(caller_document(session, caller, invoice_id))
