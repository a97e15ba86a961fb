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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, update

from tabkeeper.clock import Clock
from tabkeeper.db.tables import (
    DueWork,
    Invoice,
    Organization,
    PaymentAttempt,
    PaymentMethod,
    Subscription,
)
from tabkeeper.domain.lifecycle import PaymentFailed, PaymentSucceeded, State
from tabkeeper.domain.money import Money
from tabkeeper.payments.provider import CardOnFile, ChargeResult, PaymentProvider
from tabkeeper.services.context import CATALOGS, Billing, CatalogStore, billing
from tabkeeper.services.invoices import mark_paid, open_invoices
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import moment_key, notify, queue

Checkpoint = Callable[[str], None]
LEASE = timedelta(minutes=5)
"""How long a claimed collection may run before another worker may take it over."""


def customer_of(organization: Organization) -> str:
    """The organization as the provider's customer."""
    return f"org_{organization.id}"


def save_payment_method(b: Billing, organization: Organization, card: CardOnFile) -> PaymentMethod:
    """Keep `card` as the organization's default method; only brand and last 4 (PAY-2)."""
    b.session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.organization_id == organization.id)
        .values(is_default=False)
    )
    method = PaymentMethod(
        organization_id=organization.id,
        provider=card.provider,
        token=card.token,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=True,
        created_at=b.now,
    )
    b.session.add(method)
    b.session.flush()
    return method


def clear_payment_methods(b: Billing, organization: Organization) -> None:
    b.session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.organization_id == organization.id)
        .values(is_default=False)
    )


def default_payment_method(b: Billing, organization_id: int) -> PaymentMethod | None:
    return b.session.scalars(
        select(PaymentMethod)
        .where(PaymentMethod.organization_id == organization_id, PaymentMethod.is_default)
        .order_by(PaymentMethod.id.desc())
        .limit(1)
    ).first()


def queue_collection(b: Billing, invoice: Invoice, due_at: datetime) -> None:
    """Ask the clock to collect `invoice` at `due_at` (once per invoice and instant)."""
    if invoice.status == "open" and invoice.amount_due_minor > 0:
        key = f"collect:{invoice.id}:{moment_key(due_at)}"
        queue(b, "collect", key, invoice.organization_id, due_at)


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
    invoice = b.session.get(Invoice, invoice_id, with_for_update=True)
    if invoice is None or invoice.status != "open" or invoice.amount_due_minor <= 0:
        if work is not None:
            work.status, work.done_at = "done", b.now
        return None
    attempt = b.session.scalars(
        select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.status == "processing"
        )
    ).first()
    method = default_payment_method(b, invoice.organization_id)
    if attempt is None:
        number = (
            b.session.scalar(
                select(func.max(PaymentAttempt.attempt_no)).where(
                    PaymentAttempt.invoice_id == invoice.id
                )
            )
            or 0
        ) + 1
        attempt = PaymentAttempt(
            invoice_id=invoice.id,
            attempt_no=number,
            idempotency_key=f"tk_{b.platform.code}_{invoice.id}_{number}",
            status="processing",
            amount_minor=invoice.amount_due_minor,
            provider=method.provider if method else None,
            payment_method_id=method.id if method else None,
            attempted_at=b.now,
        )
        b.session.add(attempt)
        b.session.flush()
    if work is not None:
        work.status, work.claimed_at = "running", b.now
    token = None
    if attempt.payment_method_id is not None:
        chosen = b.session.get(PaymentMethod, attempt.payment_method_id)
        token = chosen.token if chosen else None
    organization = b.session.get(Organization, invoice.organization_id)
    assert organization is not None
    return ClaimedAttempt(
        attempt_id=attempt.id,
        invoice_id=invoice.id,
        work_id=work.id if work else None,
        idempotency_key=attempt.idempotency_key,
        customer=customer_of(organization),
        token=token,
        amount=Money(attempt.amount_minor, b.terms.currency),
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
    attempt = b.session.get(PaymentAttempt, claim.attempt_id, with_for_update=True)
    if attempt is None or attempt.status != "processing":
        return False
    invoice = b.session.get(Invoice, claim.invoice_id, with_for_update=True)
    assert invoice is not None
    attempt.status = "succeeded" if result.succeeded else "failed"
    attempt.provider_reference = result.reference or None
    attempt.failure_code = result.failure_code
    attempt.failure_message = result.failure_message
    if claim.work_id is not None:
        work = b.session.get(DueWork, claim.work_id)
        if work is not None:
            work.status, work.done_at = "done", b.now
    organization = b.session.get(Organization, invoice.organization_id)
    assert organization is not None
    subscription = b.session.scalars(
        select(Subscription)
        .where(Subscription.organization_id == organization.id)
        .with_for_update()
    ).first()
    if result.succeeded:
        mark_paid(b, invoice)
        b.session.flush()
        if (
            subscription is not None
            and subscription.state in (State.PAST_DUE, State.SUSPENDED)
            and not open_invoices(b, organization.id)
        ):
            apply_event(
                b, subscription, organization, PaymentSucceeded(), notice_key=claim.idempotency_key
            )
        return True
    b.session.flush()
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
    return True


def collect(
    engine: Engine,
    platform_id: int,
    clock: Clock,
    provider: PaymentProvider,
    invoice_id: int,
    work_id: int | None = None,
    *,
    checkpoint: Checkpoint | None = None,
    store: CatalogStore = CATALOGS,
) -> ChargeResult | None:
    """Collect one invoice now: claim, charge, record (each step safe to rerun)."""
    with billing(engine, platform_id, clock.now(), store) as b:
        work = b.session.get(DueWork, work_id, with_for_update=True) if work_id else None
        claim = claim_attempt(b, invoice_id, work)
    if claim is None:
        return None
    result = charge(provider, claim)
    if checkpoint is not None:
        checkpoint("charged")
    with billing(engine, platform_id, clock.now(), store) as b:
        record_outcome(b, claim, result)
    return result
