"""Subscribing through the provider's hosted checkout (SUB-3).

`open_checkout` is the first half, what the HTTP API and the billing tab do: the member
is sent to the checkout's page and the subscription starts when they pay there (the
sandbox's page: payments/checkout_page.py). `subscribe_with_card` does it all in one
call for callers that hold the card already: the simulator, the demo, tests. Each step is
its own transaction and the provider is called between them, never inside one.

The first invoice is written before any money moves (issue 12 item 7): the transaction
that records the checkout also writes it, as a draft with its lines and payment attempt
(services/first_invoices.py, from `record_checkout`); the member pays (or the card is
charged) only after that commits, and the draft is numbered when the payment succeeds or
removed when it is declined.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from tabkeeper.db.payments import checkout_session
from tabkeeper.db.tables import Subscription
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.money import Money
from tabkeeper.payments.provider import (
    CardDeclined,
    ChargeResult,
    CheckoutStatus,
    PaymentProvider,
)
from tabkeeper.services.access import Caller, organization_for
from tabkeeper.services.context import UnitOfWork
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import default_payment_method, save_payment_method
from tabkeeper.services.payments import customer_of
from tabkeeper.services.plan_trials import start_trial_checkout
from tabkeeper.services.subscriptions import (
    complete_subscription,
    quote_subscription,
    record_checkout,
)

TRIAL_NEEDS_CARD = "A trial of this plan begins with a payment method: add a card first."

CHECKOUT_ID = "{CHECKOUT_ID}"
"""In a `return_url`: replaced by the checkout's id when the member is sent back."""


@dataclass(frozen=True, slots=True)
class OpenedCheckout:
    """Where the member pays; or, for a plan that costs nothing, the subscription that
    started at once (its checkout completed, with no URL)."""

    checkout_id: str
    url: str | None
    amount: Money
    status: CheckoutStatus
    subscription_id: int | None


def absolute(public_url: str, url: str) -> str:
    """A URL of this server (a path) made absolute with the server's public URL."""
    return public_url.rstrip("/") + url if url.startswith("/") else url


def open_checkout(
    work: UnitOfWork,
    provider: PaymentProvider,
    caller: Caller,
    organization: str,
    plan: str,
    addons: Mapping[str, int],
    return_url: str | None,
    public_url: str,
    anchor: int | None = None,
) -> OpenedCheckout:
    """SUB-3: the checkout of `plan` for the organization `organization` (as the caller
    sees it; owner, billing admin or the platform, ACL-1): checked and priced in one
    transaction, opened at the provider with none open, recorded in a second one. Without
    `return_url` the member comes back to the sandbox's page of the checkout. `anchor`:
    the day of the month periods start on (SUB-16). A plan with its own trial (SUB-15)
    needs a payment method on file and begins the trial at once (no checkout page)."""
    caller.require_billing()
    with work() as b:
        found = organization_for(b, caller, organization)
        quote = quote_subscription(b, found, plan, addons, anchor)
        currency = b.terms.currency
        if quote.trial_days is not None:  # SUB-15: the card on file begins the trial
            if default_payment_method(b, found.id) is None:
                raise Refused(TRIAL_NEEDS_CARD, code="payment_method_required")
            checkout_id, subscription_id = start_trial_checkout(b, found, quote)
            return OpenedCheckout(
                checkout_id, None, Money(0, currency), CheckoutStatus.COMPLETED, subscription_id
            )
        if quote.amount_due_minor == 0:
            checkout = record_checkout(b, quote, "none", f"free_{secrets.token_hex(12)}", "")
            started = complete_subscription(b, checkout, None, None)
            if started is None:  # pragma: no cover - a free checkout is never declined
                raise Refused("The subscription could not be started.", code="checkout_failed")
            return OpenedCheckout(
                checkout.provider_checkout_id,
                None,
                Money(0, currency),
                CheckoutStatus.COMPLETED,
                started.id,
            )
        customer, code = customer_of(found), found.code
    # Without one: the provider's own page of the checkout (/sandbox/..., /stripe/...).
    return_url = return_url or absolute(public_url, f"/{provider.name}/checkout/{CHECKOUT_ID}")
    amount = Money(quote.amount_due_minor, currency)
    opened = provider.start_checkout(customer, amount, f"subscribe:{code}:{quote.plan}", return_url)
    url = absolute(public_url, opened.url)
    with work() as b:
        record_checkout(b, quote, provider.name, opened.id, url)
    return OpenedCheckout(opened.id, url, amount, opened.status, None)


def subscribe_with_card(
    work: UnitOfWork,
    provider: PaymentProvider,
    organization: str,
    plan: str,
    card: str | None,
    addons: Mapping[str, int] | None = None,
    anchor: int | None = None,
) -> int:
    """Subscribe `organization` to `plan`, paying the first invoice with `card` (a test
    card of the sandbox, or None when there is none); returns the subscription's id. Each
    transaction is opened by `work`; the provider is called with none open.

    Refused with nothing started: the checks of `quote_subscription`, no card for a plan
    that costs something (payment_method_required), a declined card (card_declined)."""
    with work() as b:
        org = organization_by_code(b, organization)
        quote = quote_subscription(b, org, plan, addons or {}, anchor)
        customer = customer_of(org)
        currency = b.terms.currency
    if quote.trial_days is not None:  # SUB-15: save the card, charge nothing, begin the trial
        if card is None:
            raise Refused(TRIAL_NEEDS_CARD, code="payment_method_required")
        try:
            card_on_file = provider.attach(customer, card)
        except CardDeclined:
            raise Refused("Your card was declined.", code="card_declined") from None
        with work() as b:
            org = organization_by_code(b, organization)
            save_payment_method(b, org, card_on_file)
            return start_trial_checkout(b, org, quote)[1]
    if quote.amount_due_minor == 0:
        with work() as b:
            key = f"free_{quote.organization_id}_{b.now.isoformat()}"
            checkout = record_checkout(b, quote, "none", key, "")
            return _started(complete_subscription(b, checkout, None, None))
    if card is None:
        raise Refused("There is no card to pay the checkout with.", code="payment_method_required")
    amount = Money(quote.amount_due_minor, currency)
    started = provider.start_checkout(customer, amount, f"subscribe:{organization}:{plan}", "/")
    with work() as b:
        record_checkout(b, quote, provider.name, started.id, started.url)
    try:
        card_on_file, result = provider.complete_checkout(started.id, card)
    except CardDeclined:
        declined = ChargeResult(False, "", amount, "card_declined", "Your card was declined.")
        with work() as b:
            complete_subscription(b, checkout_session(b.session, started.id), None, declined)
        raise
    with work() as b:
        subscription = complete_subscription(
            b, checkout_session(b.session, started.id), card_on_file, result
        )
    if not result.succeeded or subscription is None:
        raise Refused(result.failure_message or "Your card was declined.", code="card_declined")
    return subscription.id


def _started(subscription: Subscription | None) -> int:
    if subscription is None:
        raise Refused("The subscription could not be started.", code="checkout_failed")
    return subscription.id
