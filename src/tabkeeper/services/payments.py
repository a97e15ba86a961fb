"""Payment methods and collecting invoices (SUB-8, PAY-1, PAY-2, INV-4).

Collecting an invoice crosses the provider, so it runs in three steps:
1. claim (one transaction): the attempt row is written with its idempotency key, and the
   due work is marked running;
2. the provider charges, outside any transaction, with that key;
3. record (one transaction): the outcome, the invoice's status, the lifecycle event
   (past_due on a failure, active again on a success) and the notices.
A crash between 1 and 3 leaves the work running; after its lease it is claimed again,
the same attempt and key go to the provider, which answers with the first result instead
of charging twice.

The sequence is written once, here: `collect` claims and then `settle`s; the billing clock
claims several collections in one transaction (worker/clock.py) and then `settle`s each.
Nothing here opens or commits a transaction of its own: the entry point hands in the unit
of work (services/context.py) that opens each one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from tabkeeper.db import payments as store
from tabkeeper.db.records import set_work_status
from tabkeeper.db.subscriptions import subscription_of
from tabkeeper.db.tables import DueWork, Organization, PaymentMethod, Subscription
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.lifecycle import PaymentFailed, State
from tabkeeper.domain.money import Money
from tabkeeper.payments.provider import ChargeResult, PaymentProvider
from tabkeeper.services.access import Caller, organization_for
from tabkeeper.services.auto_fire import WORK as AUTO_TOP_UP
from tabkeeper.services.context import Billing, UnitOfWork
from tabkeeper.services.invoices import mark_paid, open_invoices
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.payment_methods import default_payment_method, save_payment_method
from tabkeeper.services.records import notify
from tabkeeper.services.suspension import restore
from tabkeeper.settings import Settings

if TYPE_CHECKING:
    from tabkeeper.services.collections import Collection

Checkpoint = Callable[[str], None]
Guard = Callable[[], AbstractContextManager[object]]
AUTHENTICATION_REQUIRED = "authentication_required"
"""A charge's failure code when the bank wants the member (3-D Secure; payments/stripe.py):
past_due as for a decline, and the owners and billing admins get `payment.action_required`."""
LEASE = timedelta(minutes=5)
"""How long a claimed collection may run before another worker may take it over."""


def customer_of(organization: Organization) -> str:
    """The organization as the provider's customer."""
    return customer_of_id(organization.id)


def customer_of_id(organization_id: int) -> str:
    """The organization `organization_id` as the provider's customer ("org_<id>")."""
    return f"org_{organization_id}"


@dataclass(frozen=True, slots=True)
class ClaimedAttempt:
    attempt_id: int
    invoice_id: int
    work_id: int | None
    idempotency_key: str
    customer: str
    token: str | None
    amount: Money
    description: str


def claim_attempt(b: Billing, invoice_id: int, work: DueWork | None) -> ClaimedAttempt | None:
    """Step 1: the attempt to collect `invoice_id` (an unfinished one is reused)."""
    invoice = store.locked_invoice(b.session, invoice_id)
    if invoice is None or invoice.status != "open" or invoice.amount_due_minor <= 0:
        if work is not None:
            set_work_status(b.session, work, "done", b.now)
        return None
    # The invoice's attempts in one read: the unfinished one, and the last number.
    attempts = store.attempts_of(b.session, invoice.id)
    attempt = next((found for found in attempts if found.status == "processing"), None)
    method = default_payment_method(b, invoice.organization_id)
    if attempt is None:
        number = max((found.attempt_no for found in attempts), default=0) + 1
        key = f"tk_{b.platform.code}_{invoice.id}_{number}"
        amount_minor = invoice.amount_due_minor
        attempt_id = store.insert_attempt(
            b.session,
            {
                "invoice_id": invoice.id,
                "attempt_no": number,
                "idempotency_key": key,
                "status": "processing",
                "amount_minor": amount_minor,
                "provider": method.provider if method else None,
                "payment_method_id": method.id if method else None,
                "attempted_at": b.now,
            },
        )
        token = method.token if method else None
    else:
        attempt_id, key, amount_minor = attempt.id, attempt.idempotency_key, attempt.amount_minor
        token = None
        if attempt.payment_method_id is not None:
            chosen = b.session.get(PaymentMethod, attempt.payment_method_id)
            token = chosen.token if chosen else None
    if work is not None:
        set_work_status(b.session, work, "running", b.now)
    organization = b.session.get(Organization, invoice.organization_id)
    assert organization is not None
    return ClaimedAttempt(
        attempt_id=attempt_id,
        invoice_id=invoice.id,
        work_id=work.id if work else None,
        idempotency_key=key,
        customer=customer_of(organization),
        token=token,
        amount=Money(amount_minor, b.terms.currency),
        description=f"Invoice {invoice.number}",
    )


def charge(provider: PaymentProvider, claim: ClaimedAttempt) -> ChargeResult:
    """Step 2, outside any transaction."""
    if claim.token is None:
        return ChargeResult(
            succeeded=False,
            reference="",
            amount=claim.amount,
            failure_code="no_payment_method",
            failure_message="There is no payment method on file.",
        )
    return provider.charge(
        claim.customer, claim.token, claim.amount, claim.idempotency_key, claim.description
    )


def record_outcome(b: Billing, claim: ClaimedAttempt, result: ChargeResult) -> bool:
    """Step 3: write what the provider answered; False when another worker already did."""
    # Only while the attempt is unfinished (db/payments.py): of two workers recording
    # the same attempt, one writes it and the other is told it was already written.
    if not store.record_attempt(
        b.session,
        claim.attempt_id,
        "succeeded" if result.succeeded else "failed",
        result.reference or None,
        result.failure_code,
        result.failure_message,
    ):
        return False
    invoice = store.locked_invoice(b.session, claim.invoice_id)
    assert invoice is not None
    if claim.work_id is not None:
        set_work_status(b.session, claim.work_id, "done", b.now)
    if invoice.source_key.startswith(AUTO_TOP_UP + ":"):  # CRD-6: services/auto_top_ups.py
        from tabkeeper.services.auto_top_ups import recorded  # imports this module

        recorded(b, invoice, result)
        return True
    subscription = subscription_of(b.session, invoice.organization_id, lock=True)
    if result.succeeded:
        mark_paid(b, invoice)
        b.session.flush()
        restore_when_nothing_owed(b, invoice.organization_id, subscription, claim.idempotency_key)
        return True
    b.session.flush()
    organization = _organization(b, invoice.organization_id)
    payload = {"invoice": invoice.number, "reason": result.failure_code or "declined"}
    if (
        subscription is not None
        and subscription.state
        in (
            State.ACTIVE,
            State.PAST_DUE,
            State.SUSPENDED,
        )
        and not (subscription.state == State.ACTIVE and subscription.cancel_at_period_end)
    ):
        event = PaymentFailed(b.terms.grace_days, b.terms.payment_retry_days)
        apply_event(b, subscription, organization, event, notice_key=claim.idempotency_key)
    else:
        notify(b, organization.id, "payment.failed", claim.idempotency_key, payload)
    if result.failure_code == AUTHENTICATION_REQUIRED:  # PAY-4: the member must confirm it
        page = f"{Settings().public_url.rstrip('/')}/stripe/pay/{result.reference}"
        action = {**payload, "amount_minor": claim.amount.minor, "payment": result.reference,
                  "url": page}  # fmt: skip
        notify(b, organization.id, "payment.action_required", claim.idempotency_key, action)
    return True


def restore_when_nothing_owed(
    b: Billing, organization_id: int, subscription: Subscription | None, notice_key: str
) -> None:
    """SUB-8, SUB-9: once the organization owes nothing (no open invoice), its past_due or
    suspended subscription is active again, as after the payment of its last open invoice.
    Shared by a successful charge and by the platform's corrections (INV-5: an invoice
    marked paid out of band, voided, or credited down to nothing due); `subscription` is
    the organization's, locked by the caller."""
    if (
        subscription is not None
        and subscription.state in (State.PAST_DUE, State.SUSPENDED)
        and not open_invoices(b, organization_id)
    ):
        restore(b, subscription, _organization(b, organization_id), notice_key)


def _organization(b: Billing, organization_id: int) -> Organization:
    organization = b.session.get(Organization, organization_id)
    assert organization is not None
    return organization


def settle(
    work: UnitOfWork,
    provider: PaymentProvider,
    claim: ClaimedAttempt,
    *,
    checkpoint: Checkpoint | None = None,
    guard: Guard = nullcontext,
) -> ChargeResult:
    """Steps 2 and 3 of a claimed attempt: charged with no transaction open, then the
    outcome recorded in a transaction of its own (`work`). `checkpoint` is called after
    each ("charged", "recorded"); `guard()` wraps each step but not the checkpoints (the
    billing clock hands its other claims back when one of them fails)."""
    with guard():
        result = charge(provider, claim)
    if checkpoint is not None:
        checkpoint("charged")
    with guard(), work() as b:
        record_outcome(b, claim, result)
    if checkpoint is not None:
        checkpoint("recorded")
    return result


def collect(work: UnitOfWork, provider: PaymentProvider, invoice_id: int) -> ChargeResult | None:
    """Collect one invoice now: claim, charge, record (each step safe to rerun), each
    transaction opened by `work` and none open while the provider is called. None when
    there was nothing to collect (the invoice is no longer open or owes nothing)."""
    with work() as b:
        claim = claim_attempt(b, invoice_id, None)
    if claim is None:
        return None
    return settle(work, provider, claim)


def billed(organization: Organization) -> Organization:
    """`organization`, when it is the one billed (SUB-2); a sub-account is refused."""
    if organization.parent_id is not None:
        raise Refused(
            "Billing is at the organization level; add the card to the parent organization.",
            code="sub_account",
        )
    return organization


def add_payment_method(
    work: UnitOfWork, provider: PaymentProvider, caller: Caller, organization: str, card: str
) -> tuple[str, PaymentMethod, Collection]:
    """PAY-2: `card` attached at the provider (with no transaction open) and saved as the
    default of the organization `organization` (as the caller sees it; owner, billing
    admin or the platform, ACL-1); its code, the saved method, and what collecting the
    open invoices with it at once did (SUB-12, services/collections.py). A declined or
    unknown card saves nothing."""
    from tabkeeper.services.collections import collect_invoices, owed  # imports this module

    caller.require_billing()
    with work() as b:
        found = billed(organization_for(b, caller, organization))
        organization_id, customer = found.id, customer_of(found)
    attached = provider.attach(customer, card)
    with work() as b:
        found = _organization(b, organization_id)
        code, method = found.code, save_payment_method(b, found, attached)
        invoice_ids = owed(b, organization_id)
    return code, method, collect_invoices(work, provider, organization_id, invoice_ids)
