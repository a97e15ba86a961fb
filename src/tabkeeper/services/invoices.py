"""Issuing invoices (INV-1, INV-2, INV-4).

An invoice is issued finalized: its lines come from domain/invoicing.py, the account credit
is applied (SUB-5), it takes the platform's next gapless number, and `invoice.issued` goes
to the outbox, all in the caller's transaction. An invoice of nothing but 0.00 lines (a free
plan) is issued paid, with no charge and no `invoice.issued` notice (nor its e-mail); one
whose lines net to 0.00 (a credit and a charge) is still told. `source_key` names what
the invoice is for ("renewal:…", "change:…"); a second invoice for the same source is
impossible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import inspect

from tabkeeper.db import corrections
from tabkeeper.db import invoices as rows
from tabkeeper.db.subscriptions import subscription_of
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.invoicing import LineDraft, settle
from tabkeeper.domain.money import decimal_string
from tabkeeper.services.context import Billing
from tabkeeper.services.discounts import adjusted_lines
from tabkeeper.services.records import moment_key, notify, queue


def next_invoice_number(b: Billing) -> str:
    """The platform's next number, gapless (INV-2): the counter row is updated in the
    invoice's own transaction, so a rolled-back invoice gives its number back."""
    number = rows.next_number(b.session, b.platform)
    return f"{b.terms.invoice_prefix}-{number:06d}"


def find_invoice(b: Billing, source_key: str) -> Invoice | None:
    return rows.invoice_by_source(b.session, b.platform.id, source_key)


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
    lines = adjusted_lines(b, organization, lines, record=True)  # INV-6, INV-7
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
    invoice = rows.insert_invoice(b.session, values)
    if draft.lines:
        rows.insert_lines(
            b.session,
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
    announce_issued(b, invoice, draft.lines, paid=paid)
    return invoice


def announce_issued(
    b: Billing, invoice: Invoice, lines: Sequence[LineDraft], *, paid: bool
) -> None:
    """`invoice.issued` for a finalized invoice (not for one of only 0.00 lines: a free
    plan's invoice sends no e-mail), then `invoice.paid` when nothing is due."""
    if any(line.amount_minor for line in lines):
        notify(
            b,
            invoice.organization_id,
            "invoice.issued",
            f"invoice:{invoice.id}",
            {"invoice": invoice.number, "total_minor": invoice.total_minor},
        )
    if paid:
        mark_paid(b, invoice)


def mark_paid(b: Billing, invoice: Invoice) -> None:
    """The invoice is settled (by a charge, or wholly by account credit): `invoice.paid`."""
    if invoice.status != "paid" and inspect(invoice).persistent:
        rows.set_paid(b.session, invoice, b.now)  # the loaded invoice learns it (no flush)
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
    return rows.open_invoices(b.session, organization_id)


def mark_uncollectible(b: Billing, invoice: Invoice) -> None:
    """INV-5 (and SUB-11 when a suspension runs out): the open `invoice` is written off as
    uncollectible; its pending collections and retries find it no longer open and collect
    nothing; `invoice.uncollectible` is told. The subscription's state is left as it is.
    Refused (`invoice_not_open`, nothing
    changed) unless the invoice is open; the caller holds the invoice (locked, or just
    issued in its transaction)."""
    if invoice.status != "open":
        raise Refused(
            f"Invoice {invoice.number} is {invoice.status}; only an open invoice can be "
            "marked uncollectible.",
            code="invoice_not_open",
        )
    corrections.set_status(b.session, invoice, "uncollectible")
    payload = {"invoice": invoice.number, "amount_minor": invoice.amount_due_minor}
    notify(b, invoice.organization_id, "invoice.uncollectible", f"invoice:{invoice.id}", payload)


def queue_collection(b: Billing, invoice: Invoice, due_at: datetime) -> None:
    """Ask the clock to collect `invoice` at `due_at` (once per invoice and instant); not
    for a subscription the platform invoices for manual payment (CAT-9)."""
    if invoice.status == "open" and invoice.amount_due_minor > 0:
        subscription = subscription_of(b.session, invoice.organization_id, lock=False)
        if subscription is not None and subscription.collection == "invoice":
            return
        key = f"collect:{invoice.id}:{moment_key(due_at)}"
        queue(b, "collect", key, invoice.organization_id, due_at)
