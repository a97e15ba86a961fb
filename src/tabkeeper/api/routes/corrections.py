"""Corrections of invoices (INV-5), by the platform's API key only (ACL-1).

- `POST /v1/invoices/{id}/void`: an open invoice of which nothing was collected;
- `POST /v1/invoices/{id}/mark_uncollectible`: an open invoice written off;
- `POST /v1/invoices/{id}/mark_paid`: an open invoice collected outside the provider
  (`paid_via` "out_of_band"); the subscription is restored as after a payment;
- `POST /v1/invoices/{id}/credit_notes`: a credit note (201) with its own gapless number
  (`CN-000001`) on an open or paid invoice, crediting `amount_minor` or `lines`, refunded
  through the provider or credited to the account; the refund runs with no transaction
  open (services/credit_notes.py);
- `POST /v1/credit_notes/{id}/finish_refund`: a refund left processing (provider outage)
  sent again with its own idempotency key;
- `POST /v1/organizations/{code}/account_credit`: goodwill account credit.
Refusals are 409 problems with nothing changed (`invoice_not_open`,
`invoice_payment_collected`, `credit_note_exceeds_invoice`, ...); another platform's
invoice or credit note is 404. Every POST takes an `Idempotency-Key` (api/idempotency.py).

Credit notes are read like invoices, by the platform or an owner or billing admin of
their organization: `GET /v1/credit_notes`, `GET /v1/credit_notes/{id}`, and
`GET /v1/credit_notes/{id}.pdf` (declared before `{id}` so `.pdf` is never read as an id).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from tabkeeper.api import schemas_corrections as schemas
from tabkeeper.api.context import Api, ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.routes.invoices import _with_lines
from tabkeeper.api.schemas import ObjectId
from tabkeeper.api.schemas_billing import Invoice as InvoiceOut
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice
from tabkeeper.db.tables_corrections import CreditNote, CreditNoteLine
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.pdf.credit_note import caller_credit_note, render_credit_note_pdf
from tabkeeper.services import corrections, credit_notes
from tabkeeper.services.access import (
    Caller,
    OrganizationCodes,
    organization_for,
    owned,
    scoped,
)
from tabkeeper.services.context import Billing

router = APIRouter(tags=["corrections"])

PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The credit note as a PDF (INV-5).",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def show_credit_note(
    b: Billing, organization: str, row: CreditNote, *, with_lines: bool = False
) -> schemas.CreditNote:
    invoice = b.session.get(Invoice, row.invoice_id)
    lines = None
    if with_lines:
        lines = [
            schemas.CreditNoteLine(
                line=line.invoice_line, description=line.description, amount_minor=line.amount_minor
            )
            for line in b.session.scalars(
                select(CreditNoteLine)
                .where(CreditNoteLine.credit_note_id == row.id)
                .order_by(CreditNoteLine.position)
            )
        ]
    return schemas.CreditNote(
        id=row.id,
        number=row.number,
        organization=organization,
        invoice_id=row.invoice_id,
        invoice=None if invoice is None else invoice.number,
        currency=row.currency,
        total_minor=row.total_minor,
        refund_minor=row.refund_minor,
        credited_minor=row.credited_minor,
        applied_minor=row.applied_minor,
        refund_status=row.refund_status,
        reason=row.reason,
        issued_at=row.issued_at,
        pdf_url=f"/v1/credit_notes/{row.id}.pdf",
        lines=lines,
    )


def _invoice_action(
    api: Api, caller: Caller, invoice_id: int, action: Callable[[Billing, int], Invoice]
) -> InvoiceOut:
    """`action` on the invoice `invoice_id` (platform key only), answered with its lines."""
    caller.require_platform()
    with api.billing(caller) as b:
        _, organization = owned(b, caller, Invoice, invoice_id, "invoice")
        row = action(b, invoice_id)
        return _with_lines(b, organization.code, row)


@router.post("/invoices/{invoice_id}/void", operation_id="invoices.void")
def void_invoice(invoice_id: ObjectId, api: ApiDep, caller: CallerDep) -> InvoiceOut:
    """INV-5: void an open invoice of which nothing was collected (platform key only)."""
    return _invoice_action(api, caller, invoice_id, corrections.void_invoice)


@router.post(
    "/invoices/{invoice_id}/mark_uncollectible", operation_id="invoices.mark_uncollectible"
)
def mark_uncollectible(invoice_id: ObjectId, api: ApiDep, caller: CallerDep) -> InvoiceOut:
    """INV-5: write an open invoice off as uncollectible (platform key only)."""
    return _invoice_action(api, caller, invoice_id, corrections.write_off)


@router.post("/invoices/{invoice_id}/mark_paid", operation_id="invoices.mark_paid")
def mark_paid(invoice_id: ObjectId, api: ApiDep, caller: CallerDep) -> InvoiceOut:
    """INV-5: an open invoice collected outside the provider is paid (platform key only)."""
    return _invoice_action(api, caller, invoice_id, corrections.mark_paid_out_of_band)


@router.post(
    "/invoices/{invoice_id}/credit_notes", operation_id="credit_notes.create", status_code=201
)
def issue_credit_note(
    invoice_id: ObjectId, body: schemas.CreditNoteIn, api: ApiDep, caller: CallerDep
) -> schemas.CreditNote:
    """INV-5: a credit note on an open or paid invoice (platform key only)."""
    caller.require_platform()
    with api.billing(caller) as b:
        owned(b, caller, Invoice, invoice_id, "invoice")
    request = CreditRequest(
        amount_minor=body.amount_minor,
        lines=None
        if body.lines is None
        else tuple((line.line, line.amount_minor) for line in body.lines),
        refund=body.refund,
        reason=body.reason,
    )
    note_id = credit_notes.credit_invoice(
        partial(api.billing, caller), api.provider, invoice_id, request
    )
    with api.billing(caller) as b:
        row, organization = owned(b, caller, CreditNote, note_id, "credit note")
        return show_credit_note(b, organization.code, row, with_lines=True)


@router.post(
    "/credit_notes/{credit_note_id}/finish_refund", operation_id="credit_notes.finish_refund"
)
def finish_refund(credit_note_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.CreditNote:
    """INV-5: send a refund left processing again, with its own idempotency key."""
    caller.require_platform()
    with api.billing(caller) as b:
        owned(b, caller, CreditNote, credit_note_id, "credit note")
    credit_notes.finish_refund(partial(api.billing, caller), api.provider, credit_note_id)
    with api.billing(caller) as b:
        row, organization = owned(b, caller, CreditNote, credit_note_id, "credit note")
        return show_credit_note(b, organization.code, row, with_lines=True)


@router.get("/credit_notes", operation_id="credit_notes.list")
def list_credit_notes(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    invoice: int | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.CreditNote]:
    """Credit notes, oldest first, without their lines; `invoice` narrows them to one."""
    caller.require_billing()
    with api.reading(caller) as b:
        query = select(CreditNote).where(CreditNote.platform_id == caller.platform_id)
        query = scoped(b, caller, query, CreditNote.organization_id, organization)
        if invoice is not None:
            query = query.where(CreditNote.invoice_id == invoice)
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            CreditNote.id,
            limit,
            cursor,
            lambda row: show_credit_note(b, codes(row.organization_id), row),
        )


@router.get(
    "/credit_notes/{credit_note_id}.pdf",
    operation_id="credit_notes.get_pdf",
    response_class=Response,
    responses=PDF_RESPONSE,
    summary="Download a credit note as a PDF",
)
def get_credit_note_pdf(credit_note_id: ObjectId, api: ApiDep, caller: CallerDep) -> Response:
    """INV-5: the credit note as a PDF with the same lines and total (`CN-000001.pdf`)."""
    with transaction(api.engine) as session:
        document = caller_credit_note(session, caller, credit_note_id)
    return Response(
        content=render_credit_note_pdf(document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{document.filename}"'},
    )


@router.get("/credit_notes/{credit_note_id}", operation_id="credit_notes.get")
def get_credit_note(credit_note_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.CreditNote:
    """The credit note with its lines (INV-5)."""
    caller.require_billing()
    with api.reading(caller) as b:
        row, organization = owned(b, caller, CreditNote, credit_note_id, "credit note")
        return show_credit_note(b, organization.code, row, with_lines=True)


@router.post(
    "/organizations/{code}/account_credit", operation_id="organizations.grant_account_credit"
)
def grant_account_credit(
    code: str, body: schemas.AccountCreditIn, api: ApiDep, caller: CallerDep
) -> schemas.AccountCredit:
    """INV-5: goodwill account credit, applied to the organization's next invoices
    (platform key only)."""
    caller.require_platform()
    with api.billing(caller) as b:
        organization = organization_for(b, caller, code)
        balance = corrections.grant_account_credit(b, organization, body.amount_minor, body.reason)
        return schemas.AccountCredit(organization=organization.code, credit_minor=balance)
