"""Collecting what an organization owes, at once (SUB-12): "Pay now" and a saved card.

`collect_invoices` charges the organization's open invoices (`owed`) with the card on
file, oldest first (by id, the order they were issued), each through `payments.collect`
(claim, charge, record: each step in a transaction of its own that `work` opens, none
open while the provider is called). It stops at the first failure: a later invoice is not
charged while an older one is unpaid. A success that leaves nothing open makes a past_due
or suspended subscription active again at once (`payments.record_outcome`), with no wait
for the next retry. The checks before and the answer after are reads: an entry point
with a read-only unit of work hands it in as `read` (no write lock on SQLite for them).

Used by `pay_now` (the API's `POST /v1/organizations/{code}/pay_now`, the billing tab's
banner "Pay now", the `pay_now` step of `simulate`), `pay_invoice` (one invoice: the
tab's invoice row and `POST /v1/invoices/{id}/pay`), `payments.add_payment_method` after a
card is saved (the tab's "Manage" and `POST /v1/payment_methods`), and the simulation's
`set_payment_method`.

Nothing open is not an error: the answer lists nothing paid. No card on file while
something is open is refused (`payment_method_required`) before any attempt is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tabkeeper.db.subscriptions import subscription_of
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.domain.errors import Refused
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.services.access import Caller, organization_for, owned
from tabkeeper.services.context import Billing, UnitOfWork
from tabkeeper.services.invoices import open_invoices
from tabkeeper.services.payment_methods import default_payment_method
from tabkeeper.services.payments import billed, collect

NO_CARD = "There is no payment method on file: add a card to pay the open invoices."


@dataclass(frozen=True, slots=True)
class Collection:
    """What collecting an organization's open invoices did (SUB-12)."""

    organization: str
    """The organization's code."""
    paid: tuple[int, ...] = ()
    """The invoices paid now, oldest first (ids)."""
    failed: int | None = None
    """The invoice whose charge failed; collection stopped there."""
    failure_code: str | None = None
    failure_message: str | None = None
    still_open: tuple[int, ...] = ()
    """The invoices open afterwards, oldest first (ids)."""
    state: str | None = None
    """The subscription's state afterwards (None without a subscription)."""
    numbers: Mapping[int, str] = field(default_factory=dict)
    """The number of each invoice named here."""

    def named(self, invoice_ids: Iterable[int]) -> list[str]:
        return [self.numbers.get(invoice_id, f"#{invoice_id}") for invoice_id in invoice_ids]

    @property
    def succeeded(self) -> bool:
        return self.failed is None


def owed(b: Billing, organization_id: int) -> tuple[int, ...]:
    """The organization's open invoices with an amount due, oldest first (ids)."""
    return tuple(
        invoice.id for invoice in open_invoices(b, organization_id) if invoice.amount_due_minor > 0
    )


def collect_invoices(
    work: UnitOfWork,
    provider: PaymentProvider,
    organization_id: int,
    invoice_ids: Iterable[int],
    read: UnitOfWork | None = None,
) -> Collection:
    """Charge `invoice_ids` (the organization's, oldest first: `owed`), stopping at the
    first failure (SUB-12); what happened read afterwards in a transaction of `read` (a
    read-only one where the entry point has it), else of `work`."""
    paid: list[int] = []
    failed: int | None = None
    code = message = None
    for invoice_id in invoice_ids:
        result = collect(work, provider, invoice_id)
        if result is None:  # settled in between (another payment, the clock's retry)
            continue
        if not result.succeeded:
            failed, code = invoice_id, result.failure_code or "declined"
            message = result.failure_message or "The payment was declined."
            break
        paid.append(invoice_id)
    with (read or work)() as b:
        subscription = subscription_of(b.session, organization_id, lock=False)
        found = b.session.get(Organization, organization_id)
        assert found is not None
        still_open = tuple(invoice.id for invoice in open_invoices(b, organization_id))
        numbers = {
            invoice_id: _number(b, invoice_id)
            for invoice_id in (*paid, *still_open, *([failed] if failed else []))
        }
        state = None if subscription is None else str(subscription.state)
        return Collection(
            found.code, tuple(paid), failed, code, message, still_open, state, numbers
        )


def _number(b: Billing, invoice_id: int) -> str:
    invoice = b.session.get(Invoice, invoice_id)
    assert invoice is not None
    return invoice.number or f"#{invoice_id}"


def pay_now(
    work: UnitOfWork,
    provider: PaymentProvider,
    caller: Caller,
    organization: str,
    read: UnitOfWork | None = None,
) -> Collection:
    """ "Pay now" (SUB-12): the open invoices of `organization` (as the caller sees it;
    owner, billing admin or the platform, ACL-1) collected at once with the card on file,
    oldest first. A sub-account is refused (`sub_account`: billing is at the organization
    level, SUB-2); something open with no card on file is refused
    (`payment_method_required`); nothing is written by a refusal. The checks and the
    answer are read in transactions of `read` (read-only, where the entry point has one),
    else of `work`; each charge claims and records in transactions of `work`."""
    caller.require_billing()
    with (read or work)() as b:
        found = billed(organization_for(b, caller, organization))
        organization_id, invoice_ids = found.id, owed(b, found.id)
        if invoice_ids and default_payment_method(b, found.id) is None:
            raise Refused(NO_CARD, code="payment_method_required")
    return collect_invoices(work, provider, organization_id, invoice_ids, read)


def pay_invoice(
    work: UnitOfWork,
    provider: PaymentProvider,
    caller: Caller,
    invoice_id: int,
    read: UnitOfWork | None = None,
) -> Collection:
    """ "Pay now" on one open invoice (the billing tab's invoice row; the API's
    `POST /v1/invoices/{id}/pay`): collected at once with the card on file. An invoice
    the caller does not see is not found; one that is not open with an amount due is
    refused (`invoice_not_open`), as is an open one with no card on file
    (`payment_method_required`). `read` as for `pay_now`."""
    caller.require_billing()
    with (read or work)() as b:
        invoice, organization = owned(b, caller, Invoice, invoice_id, "invoice")
        if invoice.status != "open" or invoice.amount_due_minor <= 0:
            raise Refused(
                f"Invoice {invoice.number} is {invoice.status}; only an open invoice with an "
                "amount due can be paid.",
                code="invoice_not_open",
            )
        if default_payment_method(b, organization.id) is None:
            raise Refused(NO_CARD, code="payment_method_required")
        organization_id = organization.id
    return collect_invoices(work, provider, organization_id, (invoice_id,), read)
