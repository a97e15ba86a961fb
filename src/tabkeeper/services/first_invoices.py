"""First invoices are written before the charge (issue 12 item 7: never charge before the
books can hold it).

A subscription's first payment (a checkout, SUB-3; an assignment charged to the card on
file, CAT-9) is taken before the subscription exists. Its invoice is written first, as a
draft with no number, in the transaction that claims the charge (the checkout recorded,
the payment attempt written): whatever the invoice needs is stored before the provider
is called, so a failure to write it means no charge. When the payment succeeds the draft
is finalized in the transaction that starts the subscription: its lines written again
for the period that then starts, numbered (INV-2: the number is taken only now, so a
failed payment leaves no gap), and settled; when it fails the draft is removed.

Drafts are not invoices anyone is asked to pay: listings show finalized invoices only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tabkeeper.db import first_invoices as store
from tabkeeper.db import invoices as rows
from tabkeeper.db.payments import insert_attempt
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.domain.invoicing import LineDraft, settle
from tabkeeper.domain.money import decimal_string
from tabkeeper.services.context import Billing
from tabkeeper.services.discounts import adjusted_lines
from tabkeeper.services.invoices import (
    announce_issued,
    find_invoice,
    issue_invoice,
    next_invoice_number,
)


def line_rows(invoice_id: int, lines: Sequence[LineDraft]) -> list[dict[str, Any]]:
    """The rows of an invoice's lines, as services/invoices.py writes them."""
    return [
        {
            "invoice_id": invoice_id,
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
        for position, line in enumerate(lines)
    ]


def write_draft(
    b: Billing,
    organization: Organization,
    source_key: str,
    lines: Sequence[LineDraft],
    *,
    attempt_key: str,
    provider: str | None,
    payment_method_id: int | None = None,
) -> Invoice:
    """The draft of the first invoice for `source_key`, with its lines, and the payment
    attempt `attempt_key` (processing) for its amount due: written in the caller's
    transaction, which commits before the provider is called."""
    existing = find_invoice(b, source_key)
    if existing is not None:
        return existing
    lines = adjusted_lines(b, organization, lines, record=False)  # INV-6, INV-7: as quoted
    draft = settle(b.terms.currency, lines, organization.account_credit_minor)
    starts = [line.period_start for line in lines if line.period_start is not None]
    ends = [line.period_end for line in lines if line.period_end is not None]
    invoice = rows.insert_invoice(
        b.session,
        {
            "platform_id": b.platform.id,
            "organization_id": organization.id,
            "source_key": source_key,
            "number": None,
            "status": "draft",
            "currency": b.terms.currency.code,
            "total_minor": draft.total_minor,
            "credit_applied_minor": draft.credit_applied_minor,
            "amount_due_minor": draft.amount_due_minor,
            "issued_at": b.now,
            "period_start": min(starts, default=None),
            "period_end": max(ends, default=None),
            "paid_at": None,
        },
    )
    if draft.lines:
        rows.insert_lines(b.session, line_rows(invoice.id, draft.lines))
    insert_attempt(
        b.session,
        {
            "invoice_id": invoice.id,
            "attempt_no": 1,
            "idempotency_key": attempt_key,
            "status": "processing",
            "amount_minor": draft.amount_due_minor,
            "provider": provider,
            "payment_method_id": payment_method_id,
            "attempted_at": b.now,
        },
    )
    return invoice


def finalize_first_invoice(
    b: Billing,
    organization: Organization,
    source_key: str,
    lines: Sequence[LineDraft],
    *,
    period_start: datetime,
    period_end: datetime,
) -> Invoice:
    """The first invoice for `source_key`, issued: its draft finalized (lines written
    again for the period that starts now, account credit applied, numbered), or, with no
    draft (a plan that costs nothing), issued as services/invoices.py does."""
    existing = find_invoice(b, source_key)
    if existing is None or existing.status != "draft":
        return issue_invoice(
            b, organization, source_key, lines, period_start=period_start, period_end=period_end
        )
    lines = adjusted_lines(b, organization, lines, record=True)  # INV-6, INV-7
    draft = settle(b.terms.currency, lines, organization.account_credit_minor)
    if draft.account_credit_after_minor != organization.account_credit_minor:
        organization.account_credit_minor = draft.account_credit_after_minor
    store.delete_lines(b.session, existing.id)
    if draft.lines:
        rows.insert_lines(b.session, line_rows(existing.id, draft.lines))
    paid = draft.amount_due_minor == 0
    existing.number = next_invoice_number(b)
    existing.status = "paid" if paid else "open"
    existing.total_minor = draft.total_minor
    existing.credit_applied_minor = draft.credit_applied_minor
    existing.amount_due_minor = draft.amount_due_minor
    existing.issued_at, existing.paid_at = b.now, (b.now if paid else None)
    existing.period_start, existing.period_end = period_start, period_end
    b.session.flush()
    announce_issued(b, existing, draft.lines, paid=paid)
    return existing


def record_first_payment(
    b: Billing,
    invoice: Invoice,
    key: str,
    provider: str | None,
    reference: str,
    *,
    insert: bool = True,
) -> None:
    """The attempt `key` of the first invoice succeeded (written when there was none and
    `insert`)."""
    attempt = store.attempt_of(b.session, invoice.id, key)
    if attempt is None and not insert:
        return
    if attempt is None:
        insert_attempt(
            b.session,
            {
                "invoice_id": invoice.id,
                "attempt_no": 1,
                "idempotency_key": key,
                "status": "succeeded",
                "amount_minor": invoice.amount_due_minor,
                "provider": provider,
                "provider_reference": reference,
                "attempted_at": b.now,
            },
        )
        return
    attempt.status, attempt.provider_reference = "succeeded", reference
    b.session.flush()


def drop_draft(b: Billing, source_key: str) -> None:
    """The first payment failed (or was not needed): its draft goes, leaving no gap."""
    existing = find_invoice(b, source_key)
    if existing is not None and existing.status == "draft":
        store.delete_draft(b.session, existing)
