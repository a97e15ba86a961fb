"""Subscribing with a card in one call: quote, hosted checkout, completion (SUB-3).

The pieces (services/subscriptions.py) are what the HTTP API and the billing tab use
across a browser round trip; this puts them together for callers that hold the card
already: the simulator, the demo, tests. Each step is its own transaction and the
provider is called between them, never inside one.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tabkeeper.clock import Clock
from tabkeeper.db.tables import CheckoutSession, Subscription
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.money import Money
from tabkeeper.payments.provider import CardDeclined, ChargeResult, PaymentProvider
from tabkeeper.services.context import CATALOGS, CatalogStore, billing
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payments import customer_of
from tabkeeper.services.subscriptions import (
    complete_subscription,
    quote_subscription,
    record_checkout,
)


def subscribe_with_card(
    engine: Engine,
    platform_id: int,
    clock: Clock,
    provider: PaymentProvider,
    organization: str,
    plan: str,
    card: str | None,
    addons: Mapping[str, int] | None = None,
    store: CatalogStore = CATALOGS,
) -> int:
    """Subscribe `organization` to `plan`, paying the first invoice with `card` (a test
    card of the sandbox, or None when there is none); returns the subscription's id.

    Refused with nothing started: the checks of `quote_subscription`, no card for a plan
    that costs something (payment_method_required), a declined card (card_declined)."""
    with billing(engine, platform_id, clock.now(), store) as b:
        org = organization_by_code(b, organization)
        quote = quote_subscription(b, org, plan, addons or {})
        customer = customer_of(org)
        currency = b.terms.currency
    if quote.amount_due_minor == 0:
        with billing(engine, platform_id, clock.now(), store) as b:
            key = f"free_{quote.organization_id}_{clock.now().isoformat()}"
            checkout = record_checkout(b, quote, "none", key, "")
            return _started(complete_subscription(b, checkout, None, None))
    if card is None:
        raise Refused("There is no card to pay the checkout with.", code="payment_method_required")
    amount = Money(quote.amount_due_minor, currency)
    started = provider.start_checkout(customer, amount, f"subscribe:{organization}:{plan}", "/")
    with billing(engine, platform_id, clock.now(), store) as b:
        record_checkout(b, quote, provider.name, started.id, started.url)
    try:
        card_on_file, result = provider.complete_checkout(started.id, card)
    except CardDeclined:
        declined = ChargeResult(False, "", amount, "card_declined", "Your card was declined.")
        with billing(engine, platform_id, clock.now(), store) as b:
            complete_subscription(b, _checkout(b.session, started.id), None, declined)
        raise
    with billing(engine, platform_id, clock.now(), store) as b:
        subscription = complete_subscription(
            b, _checkout(b.session, started.id), card_on_file, result
        )
    if not result.succeeded or subscription is None:
        raise Refused(result.failure_message or "Your card was declined.", code="card_declined")
    return subscription.id


def _checkout(session: Session, checkout_id: str) -> CheckoutSession:
    return session.scalars(
        select(CheckoutSession).where(CheckoutSession.provider_checkout_id == checkout_id)
    ).one()


def _started(subscription: Subscription | None) -> int:
    if subscription is None:
        raise Refused("The subscription could not be started.", code="checkout_failed")
    return subscription.id
