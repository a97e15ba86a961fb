"""Invoices (INV-1, INV-2): list, read with lines and totals, pay an open one now.

An invoice is issued finalized with a gapless number; its lines (kind, description,
quantity, unit amount, amount, period, details) add up exactly to its total. Paying now
collects it with the default card through the provider (services.collections.pay_invoice,
in transactions of the request's platform opened around the provider call): a success
marks it paid and, when nothing else is owed, makes a past_due or suspended subscription
active again (SUB-8, SUB-9, SUB-12); a decline is a 409 `payment_failed` whose `reason` is
the provider's code; no card on file a 409 `payment_method_required`, nothing written.

`GET /v1/invoices/{id}.pdf` downloads the invoice as a PDF with the same lines and totals
(INV-3, tabkeeper.pdf); it is declared before `GET /v1/invoices/{id}` so that the `.pdf`
path is never read as an id. The PDF is rendered after the transaction closed.

Owner, billing admin or the platform's key (ACL-1); another organization's invoice 404.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.schemas import ObjectId
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, InvoiceLine
from tabkeeper.domain.errors import Refused
from tabkeeper.pdf.invoice import caller_document, render_invoice_pdf
from tabkeeper.services.access import OrganizationCodes, owned, scoped
from tabkeeper.services.collections import pay_invoice as pay_invoice_now
from tabkeeper.services.context import Billing

router = APIRouter(tags=["invoices"])

PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The invoice as a PDF (INV-3).",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def pdf_url(invoice_id: int) -> str:
    """Where the invoice's PDF downloads (INV-3)."""
    return f"/v1/invoices/{invoice_id}.pdf"


class PaymentFailed(Refused):
    """Collecting the invoice failed; `reason` is the provider's failure code."""

    code = "payment_failed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.problem_fields = {"reason": reason}


def show_invoice(
    organization: str, row: Invoice, lines: list[InvoiceLine] | None = None
) -> schemas.Invoice:
    return schemas.Invoice(
        id=row.id,
        number=row.number,
        organization=organization,
        status=schemas.InvoiceStatus(row.status),
        currency=row.currency,
        total_minor=row.total_minor,
        credit_applied_minor=row.credit_applied_minor,
        amount_due_minor=row.amount_due_minor,
        issued_at=row.issued_at,
        period_start=row.period_start,
        period_end=row.period_end,
        paid_at=row.paid_at,
        paid_via=row.paid_via,
        pdf_url=pdf_url(row.id),
        lines=None if lines is None else [show_line(line) for line in lines],
        disputed_at=row.disputed_at,  # PAY-3
    )


def show_line(line: InvoiceLine) -> schemas.InvoiceLine:
    return schemas.InvoiceLine(
        kind=line.kind,
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        amount_minor=line.amount_minor,
        period_start=line.period_start,
        period_end=line.period_end,
        details=line.details,
    )


def _with_lines(b: Billing, organization: str, row: Invoice) -> schemas.Invoice:
    lines = b.session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == row.id).order_by(InvoiceLine.position)
    )
    return show_invoice(organization, row, list(lines))


@router.get("/invoices", operation_id="invoices.list")
def list_invoices(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    status: schemas.InvoiceStatus | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.Invoice]:
    """Invoices, oldest first, without their lines; `status` narrows them."""
    caller.require_billing()
    with api.reading(caller) as b:
        query = select(Invoice).where(Invoice.platform_id == caller.platform_id)
        query = scoped(b, caller, query, Invoice.organization_id, organization)
        if status is not None:
            query = query.where(Invoice.status == status.value)
        else:  # a first invoice waiting for its payment (services/first_invoices.py)
            query = query.where(Invoice.status != "draft")
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            Invoice.id,
            limit,
            cursor,
            lambda row: show_invoice(codes(row.organization_id), row),
        )


@router.get(
    "/invoices/{invoice_id}.pdf",
    operation_id="invoices.get_pdf",
    response_class=Response,
    responses=PDF_RESPONSE,
    summary="Download an invoice as a PDF",
)
def get_invoice_pdf(invoice_id: ObjectId, api: ApiDep, caller: CallerDep) -> Response:
    """INV-3: the invoice as a PDF showing the same lines and totals, as an attachment
    named after its number (`INV-000001.pdf`)."""
    with transaction(api.engine) as session:
        document = caller_document(session, caller, invoice_id)
    return Response(
        content=render_invoice_pdf(document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{document.filename}"'},
    )


@router.get("/invoices/{invoice_id}", operation_id="invoices.get")
def get_invoice(invoice_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Invoice:
    """The invoice with its lines and totals (INV-2)."""
    caller.require_billing()
    with api.reading(caller) as b:
        row, organization = owned(b, caller, Invoice, invoice_id, "invoice")
        return _with_lines(b, organization.code, row)


@router.post("/invoices/{invoice_id}/pay", operation_id="invoices.pay")
def pay_invoice(invoice_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Invoice:
    """Collect an open invoice now with the default card on file (SUB-12, the tab's
    "Pay now" on an invoice row: services.collections.pay_invoice). No card on file is a
    409 `payment_method_required` with nothing written."""
    read = partial(api.reading, caller)
    done = pay_invoice_now(partial(api.billing, caller), api.provider, caller, invoice_id, read)
    with read() as b:
        row, organization = owned(b, caller, Invoice, invoice_id, "invoice")
        if done.failed is not None:
            reason = done.failure_code or "declined"
            message = done.failure_message or "The payment was declined."
            raise PaymentFailed(reason, f"Invoice {row.number} was not paid: {message}")
        if not done.paid:  # another payment settled it in between
            raise _not_open(row)
        return _with_lines(b, organization.code, row)


def _not_open(row: Invoice) -> Refused:
    return Refused(
        f"Invoice {row.number} is {row.status}; only an open invoice with an amount due "
        "can be paid.",
        code="invoice_not_open",
    )
