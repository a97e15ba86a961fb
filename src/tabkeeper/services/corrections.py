"""The platform corrects an invoice (INV-5): void it, mark it uncollectible, mark it paid
when it was collected outside the provider, and grant goodwill account credit.

Only the platform does these (its API key, or a `simulate` step of the platform); the
entry points check that (ACL-1). Each works on the invoice locked for its transaction and
either changes it or refuses with nothing changed:
- void: an open invoice of which nothing was collected (no payment attempt succeeded or
  is running, no credit note). It owes nothing from then on: the account credit it used
  goes back to the account, its pending collections and retries collect nothing (they
  find it no longer open), `invoice.voided` is told, and a past_due or suspended
  subscription with nothing else open is active again (as after a payment);
- uncollectible: an open invoice is written off (services/invoices.py
  `mark_uncollectible`, shared with the end of a suspension, SUB-11); the subscription's
  state is left as it is;
- mark paid: an open invoice collected outside the provider (bank transfer, cheque) is
  paid, `paid_via` "out_of_band", `invoice.paid` is told, and the subscription is restored
  exactly as a successful charge of its last open invoice restores it
  (services/payments.py `restore_when_nothing_owed`);
- goodwill credit: a positive amount in minor units added to the organization's account
  credit (SUB-5), applied to its next invoices.
"""

from __future__ import annotations

from tabkeeper.db import corrections as rows
from tabkeeper.db import payments as payment_rows
from tabkeeper.db.subscriptions import subscription_of
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.domain.corrections import granted_balance
from tabkeeper.domain.errors import InvalidInput, NotFound, Refused
from tabkeeper.services.context import Billing
from tabkeeper.services.invoices import mark_paid, mark_uncollectible
from tabkeeper.services.payments import billed, restore_when_nothing_owed
from tabkeeper.services.records import notify

REASON_LENGTH = 300


def locked_invoice(b: Billing, invoice_id: int) -> Invoice:
    """The platform's invoice `invoice_id`, locked for the transaction; NotFound otherwise."""
    invoice = payment_rows.locked_invoice(b.session, invoice_id)
    if invoice is None or invoice.platform_id != b.platform_id:
        raise NotFound("No such invoice.")
    return invoice


def invoice_id_by_number(b: Billing, number: str) -> int:
    """The id of the platform's invoice numbered `number` ("INV-000001"); NotFound."""
    invoice = rows.invoice_by_number(b.session, b.platform_id, number)
    if invoice is None:
        raise NotFound(f"No such invoice {number!r}.", code="unknown_invoice")
    return invoice.id


def void_invoice(b: Billing, invoice_id: int) -> Invoice:
    """Void the open invoice `invoice_id` of which nothing was collected (INV-5)."""
    invoice = locked_invoice(b, invoice_id)
    if invoice.status != "open":
        raise Refused(
            f"Invoice {invoice.number} is {invoice.status}; only an open invoice can be "
            "voided (a finalized invoice is corrected by a credit note).",
            code="invoice_not_open",
        )
    attempts = payment_rows.attempts_of(b.session, invoice.id)
    if any(attempt.status in ("succeeded", "processing") for attempt in attempts):
        raise Refused(
            f"Invoice {invoice.number} has a payment that succeeded or is under way; it "
            "cannot be voided (issue a credit note instead).",
            code="invoice_payment_collected",
        )
    if rows.credit_notes_of(b.session, invoice.id):
        raise Refused(
            f"Invoice {invoice.number} has credit notes; it cannot be voided.",
            code="invoice_has_credit_notes",
        )
    subscription = subscription_of(b.session, invoice.organization_id, lock=True)
    rows.set_status(b.session, invoice, "void")
    organization = _organization(b, invoice.organization_id)
    if invoice.credit_applied_minor > 0:
        rows.add_account_credit(b.session, organization, invoice.credit_applied_minor)
    notify(
        b,
        invoice.organization_id,
        "invoice.voided",
        f"invoice:{invoice.id}",
        {"invoice": invoice.number, "total_minor": invoice.total_minor},
    )
    restore_when_nothing_owed(b, invoice.organization_id, subscription, f"void:{invoice.id}")
    return invoice


def write_off(b: Billing, invoice_id: int) -> Invoice:
    """Mark the open invoice `invoice_id` uncollectible (INV-5)."""
    invoice = locked_invoice(b, invoice_id)
    mark_uncollectible(b, invoice)
    return invoice


def mark_paid_out_of_band(b: Billing, invoice_id: int) -> Invoice:
    """The open invoice `invoice_id` was collected outside the provider (INV-5): paid,
    `paid_via` "out_of_band"; the subscription restored as after a payment."""
    invoice = locked_invoice(b, invoice_id)
    if invoice.status != "open":
        raise Refused(
            f"Invoice {invoice.number} is {invoice.status}; only an open invoice can be "
            "marked paid.",
            code="invoice_not_open",
        )
    if any(a.status == "processing" for a in payment_rows.attempts_of(b.session, invoice.id)):
        raise Refused(
            f"A payment of invoice {invoice.number} is under way; wait for its outcome.",
            code="payment_in_progress",
        )
    subscription = subscription_of(b.session, invoice.organization_id, lock=True)
    rows.set_status(b.session, invoice, "paid", paid_at=b.now, paid_via="out_of_band")
    mark_paid(b, invoice)  # already paid: tells `invoice.paid`
    restore_when_nothing_owed(
        b, invoice.organization_id, subscription, f"paid_out_of_band:{invoice.id}"
    )
    return invoice


def grant_account_credit(
    b: Billing, organization: Organization, amount_minor: int, reason: str | None = None
) -> int:
    """Goodwill credit (INV-5): `amount_minor` (positive) added to the account credit of
    `organization` (SUB-5; a sub-account is refused: billing is at its parent), kept with
    its `reason` (at most 300 characters); the new balance."""
    billed(organization)
    granted_balance(organization.account_credit_minor, amount_minor)
    if reason is not None and len(reason) > REASON_LENGTH:
        raise InvalidInput(f"reason: at most {REASON_LENGTH} characters, got {len(reason)}")
    values = {"organization_id": organization.id, "amount_minor": amount_minor}
    rows.insert_grant(b.session, {**values, "reason": reason, "granted_at": b.now})
    return rows.add_account_credit(b.session, organization, amount_minor)


def _organization(b: Billing, organization_id: int) -> Organization:
    organization = b.session.get(Organization, organization_id)
    assert organization is not None
    return organization
