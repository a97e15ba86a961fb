"""The platform puts an organization on a plan (CAT-9): how "Book a demo" ends.

Only the platform's API key may assign (a member's portal session is 403). Any plan of
the current catalog may be assigned, sales-led and private ones included, at the catalog
price or at a negotiated `price` (a decimal string in the catalog's currency, per interval
of the plan). A negotiated price is kept on the subscription with the plan it was agreed
for (`price_minor`, `price_plan`): renewals bill it (services/subscriptions.py `plan_of`),
a later change to another plan bills that plan's catalog price (CAT-6: the subscription
otherwise keeps its price version).

`collection` says how the subscription's invoices are collected:
* `card`: charged to the card on file, like a checkout (SUB-3). The first invoice is
  written first, as a draft, in the transaction that claims the charge (with its payment
  attempt); the card is charged with no transaction open; then, in a third transaction,
  the subscription starts and the invoice is numbered and paid. A declined card starts
  nothing: the draft goes, the organization stays where it was (trial, expired, canceled),
  and the answer is 409 `card_declined`, as a declined checkout is. With no card on file
  the assignment is refused (`payment_method_required`) before anything is written.
* `invoice`: invoiced for manual payment. The subscription is active at once and its
  invoice is open with its amount due; nothing collects it (no charge, no retries, no
  past_due for not paying it): it is settled by "mark paid" (INV-5). Later invoices of the
  subscription (renewals, add-ons) are left open in the same way.

From a trial, an expired or a canceled subscription (or none) the assignment starts a new
period now, anchored now. An organization whose paid subscription is still running
(active, past_due or suspended, a cancellation at period end included) is refused with
409 `already_subscribed`: the platform changes its plan, or lets it end, first. The
organization's pending demo requests for the assigned plan are then `handled`.

Refused with nothing changed (both databases): an unknown organization (404) or plan
(400 `unknown_plan`), a price that is not a plain decimal string in the currency's
decimals, negative, or more than an invoice holds (400 `invalid_price`), a collection
other than card or invoice (400 `invalid_collection`), a sub-account (409 `sub_account`),
a plan whose capacity is below what is in use (409, SUB-6).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from tabkeeper.db import first_invoices as demo_rows
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.domain.catalog import Plan
from tabkeeper.domain.catalog_limits import AMOUNT_MAX
from tabkeeper.domain.cycles import Cycle
from tabkeeper.domain.errors import InvalidInput, Refused, TabkeeperError
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.services.access import Caller, organization_for
from tabkeeper.services.capacity import require_room_for
from tabkeeper.services.context import Billing, UnitOfWork
from tabkeeper.services.first_invoices import (
    drop_draft,
    finalize_first_invoice,
    record_first_payment,
    write_draft,
)
from tabkeeper.services.invoices import issue_invoice, mark_paid
from tabkeeper.services.payment_methods import default_payment_method
from tabkeeper.services.payments import customer_of
from tabkeeper.services.records import moment_key, notify
from tabkeeper.services.subscriptions import (
    PAID_STATES,
    advance_lines,
    negotiated,
    queue_period_end,
    require_billing_level,
    start_paid_subscription,
    subscription_of,
)

COLLECTIONS = ("card", "invoice")


@dataclass(frozen=True, slots=True)
class Assigned:
    """What an assignment did: the subscription, its price, and its first invoice."""

    subscription_id: int
    organization: str
    plan: str
    price: Money
    negotiated: bool
    collection: str
    invoice_id: int
    invoice_number: str | None
    invoice_status: str
    amount_due_minor: int
    demo_requests_handled: int


@dataclass(frozen=True, slots=True)
class _Claim:
    """An assignment charged to the card: checked, its draft and attempt written."""

    organization_id: int
    source_key: str
    attempt_key: str
    customer: str
    token: str
    amount: Money
    description: str


def parse_price(raw: object, currency: Currency) -> Money | None:
    """The negotiated price per interval, or None for the catalog's; InvalidInput
    (`invalid_price`) for anything but a plain non-negative decimal string."""
    if raw is None:
        return None
    try:
        price = Money.parse(raw, currency, "price")
    except InvalidInput as error:
        raise InvalidInput(error.message, code="invalid_price") from None
    if price.minor < 0:
        raise InvalidInput(f"price: must not be negative, got {raw}", code="invalid_price")
    if price.minor > AMOUNT_MAX:
        raise InvalidInput(
            f"price: at most {Money(AMOUNT_MAX, currency).major_str()}, got {raw}",
            code="invalid_price",
        )
    return price


def assign_plan(
    work: UnitOfWork,
    provider: PaymentProvider,
    caller: Caller,
    organization: str,
    plan: str,
    price: object,
    collection: object,
) -> Assigned:
    """CAT-9: put `organization` on `plan` at `price` (None: the catalog's), its invoices
    collected by `collection` ("card" or "invoice"); see the module's docstring."""
    caller.require_platform()
    if not isinstance(collection, str) or collection not in COLLECTIONS:
        raise InvalidInput(
            f"collection: expected card or invoice, got {collection!r}", code="invalid_collection"
        )
    with work() as b:
        found, chosen, agreed = _checked(b, caller, organization, plan, price)
        claim = None if collection == "invoice" else _claim(b, found, chosen, agreed)
        if claim is None:  # invoiced, or nothing to charge (a price of 0, account credit)
            assigned = _start(b, found, chosen, agreed, price is not None, collection, None)
            assert assigned is not None  # checked in this transaction: not subscribed
            return assigned
    try:
        result = provider.charge(
            claim.customer, claim.token, claim.amount, claim.attempt_key, claim.description
        )
    except TabkeeperError:
        with work() as b:
            drop_draft(b, claim.source_key)
        raise
    with work() as b:
        found = _organization(b, claim.organization_id)
        if not result.succeeded:
            drop_draft(b, claim.source_key)
            started = None
        else:
            chosen = b.current_catalog()[1].plan(plan)
            started = _start(b, found, chosen, agreed, price is not None, collection, claim)
            if started is not None:
                started = _record_paid(b, started, claim, provider.name, result.reference)
    if started is not None:
        return started
    if result.succeeded:  # subscribed meanwhile: the payment became account credit
        raise Refused(
            f"{organization} subscribed meanwhile; the payment was kept as account credit.",
            code="already_subscribed",
        )
    raise Refused(result.failure_message or "The card was declined.", code="card_declined")


def _checked(
    b: Billing, caller: Caller, organization: str, plan_code: str, price: object
) -> tuple[Organization, Plan, Money]:
    found = organization_for(b, caller, organization)
    require_billing_level(found)
    _, catalog = b.current_catalog()
    chosen = catalog.plan(plan_code)
    negotiated_price = parse_price(price, b.terms.currency)
    agreed = chosen.price if negotiated_price is None else negotiated_price
    current = subscription_of(b, found)
    if current is not None and State(current.state) in PAID_STATES:
        raise Refused(
            f"{found.code} is already subscribed to {current.plan_code} ({current.state}); "
            "change its plan, or let the subscription end, before assigning a plan.",
            code="already_subscribed",
        )
    require_room_for(b, found, chosen, catalog, {})
    return found, chosen, agreed


def _source_key(organization: Organization, b: Billing) -> str:
    return f"assign:{organization.id}:{moment_key(b.now)}"


def _claim(b: Billing, organization: Organization, plan: Plan, agreed: Money) -> _Claim | None:
    """The draft invoice and its attempt, written before the card is charged; None when
    the invoice would owe nothing (no charge then)."""
    method = default_payment_method(b, organization.id)
    if method is None:
        raise Refused(
            "There is no card on file to charge; add one, or assign with collection: invoice.",
            code="payment_method_required",
        )
    _, catalog = b.current_catalog()
    period = Cycle.start(plan.code, plan.interval, b.now, count=plan.interval_count).period
    lines = advance_lines(catalog, negotiated(plan, agreed), {}, period)
    source_key = _source_key(organization, b)
    # A key of its own per try: after a declined card, a new try (another card, the same
    # instant in a simulation) must not get the first answer back from the provider.
    attempt_key = f"tk_{b.platform.code}_a{organization.id}_{secrets.token_hex(6)}"  # <= 100
    draft = write_draft(
        b,
        organization,
        source_key,
        lines,
        attempt_key=attempt_key,
        provider=method.provider,
        payment_method_id=method.id,
    )
    if draft.amount_due_minor <= 0:
        drop_draft(b, source_key)
        return None
    return _Claim(
        organization_id=organization.id,
        source_key=source_key,
        attempt_key=attempt_key,
        customer=customer_of(organization),
        token=method.token,
        amount=Money(draft.amount_due_minor, b.terms.currency),
        description=f"assign:{organization.code}:{plan.code}",
    )


def _start(
    b: Billing,
    organization: Organization,
    plan: Plan,
    agreed: Money,
    is_negotiated: bool,
    collection: str,
    claim: _Claim | None,
) -> Assigned | None:
    """The subscription starts on `plan` at `agreed`, its first invoice issued (a draft
    finalized when the card was charged), the demo requests for the plan handled. None
    when the organization subscribed meanwhile (its payment is then account credit)."""
    version, catalog = b.current_catalog()
    current = subscription_of(b, organization)
    if current is not None and State(current.state) in PAID_STATES:  # subscribed meanwhile
        if claim is not None:
            _credit(b, organization, claim)
        return None
    subscription, period = start_paid_subscription(b, organization, current, version.id, plan, {})
    subscription.collection = collection
    if is_negotiated:
        subscription.price_minor, subscription.price_plan = agreed.minor, plan.code
    lines = advance_lines(catalog, negotiated(plan, agreed), {}, period)
    source_key = claim.source_key if claim else _source_key(organization, b)
    if claim is None:
        invoice = issue_invoice(
            b, organization, source_key, lines, period_start=period.start, period_end=period.end
        )
    else:
        invoice = finalize_first_invoice(
            b, organization, source_key, lines, period_start=period.start, period_end=period.end
        )
    queue_period_end(b, subscription)
    handled = demo_rows.handle_demo_requests(b.session, organization.id, plan.code, b.now)
    return Assigned(
        subscription_id=subscription.id,
        organization=organization.code,
        plan=plan.code,
        price=agreed,
        negotiated=is_negotiated,
        collection=collection,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        invoice_status=invoice.status,
        amount_due_minor=invoice.amount_due_minor,
        demo_requests_handled=handled,
    )


def _record_paid(
    b: Billing, started: Assigned, claim: _Claim, provider: str, reference: str
) -> Assigned:
    invoice = b.session.get(Invoice, started.invoice_id)
    assert invoice is not None
    owed = invoice.status == "open"
    if owed:
        mark_paid(b, invoice)
    record_first_payment(b, invoice, claim.attempt_key, provider, reference, insert=owed)
    return replace(started, invoice_status=invoice.status)


def _credit(b: Billing, organization: Organization, claim: _Claim) -> None:
    """Subscribed by another path while the card was charged: the money is not lost, it
    becomes account credit (as a second checkout's does)."""
    drop_draft(b, claim.source_key)
    organization.account_credit_minor += claim.amount.minor
    notify(
        b,
        organization.id,
        "payment.credited",
        claim.source_key,
        {"amount_minor": claim.amount.minor, "reason": "already_subscribed"},
    )


def _organization(b: Billing, organization_id: int) -> Organization:
    found = b.session.get(Organization, organization_id)
    assert found is not None
    return found
