"""The one place the payment provider is chosen (PAY-1, PAY-4): by
TABKEEPER_PAYMENT_PROVIDER (`sandbox`, the default, or `stripe`; settings.py checks that
the chosen one is configured whole). Entry points (`serve`, `worker`, `tick`, the API
app) get their provider here; the billing tab asks here which test cards to offer, so
nothing outside payments/ names the sandbox."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from tabkeeper.clock import Clock
from tabkeeper.payments.checkout_html import BEHAVIOUR
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.payments.sandbox import TEST_CARDS, SandboxProvider
from tabkeeper.settings import Settings


def payment_provider(settings: Settings, engine: Engine, clock: Clock) -> PaymentProvider:
    """The provider TABKEEPER_PAYMENT_PROVIDER names, on `engine` and `clock`."""
    if settings.payment_provider == "stripe":
        from tabkeeper.payments.stripe import StripeProvider  # only when chosen

        return StripeProvider.from_settings(settings, engine, clock)
    return SandboxProvider(engine, clock)


def offered_cards(provider: PaymentProvider) -> list[tuple[str, str]]:
    """The test cards (value, label) a member may pick on the billing tab's card form:
    the sandbox's; none with a real provider (its hosted page takes the card)."""
    if not isinstance(provider, SandboxProvider):
        return []
    return [
        (card.number, f"{card.brand.capitalize()} ending in {card.last4}: {BEHAVIOUR[card.kind]}")
        for card in TEST_CARDS
    ]


@dataclass(frozen=True, slots=True)
class HostedCardForm:
    """What the billing tab's card form needs to take a card with Stripe.js (PAY-2,
    PAY-4): the publishable key, where Stripe.js is, and a SetupIntent's client secret."""

    publishable_key: str
    stripe_js_url: str
    client_secret: str


def hosted_card_form(provider: PaymentProvider, customer: str) -> HostedCardForm | None:
    """The Stripe.js card form for `customer`, with a fresh SetupIntent; None with the
    sandbox (its test cards are offered instead). Calls the provider: never inside an
    open transaction."""
    from tabkeeper.payments.stripe import StripeProvider

    if not isinstance(provider, StripeProvider):
        return None
    secret = provider.setup_for(customer)
    return HostedCardForm(provider.publishable_key, provider.stripe_js_url, secret)
