"""PAY-4, INV-4: the Stripe provider's charges are PaymentIntents keyed by the payment
attempt's idempotency key: a charge retried after a timeout carries the same key and never
makes a second PaymentIntent; Stripe's answers map onto the provider interface's outcomes.

Stripe here is recorded HTTP: `RecordedStripe` is a `stripe.HTTPClient` (the library takes
one) that records every request (method, path, Idempotency-Key, form) and answers as Stripe
does, including its idempotency: a key seen before gets the first answer again, marked
`Idempotent-Replayed`. It can lose the answer of a request after doing it (the timeout of
a request that reached Stripe), which is the case a retry must survive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, PaymentAttempt
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.provider import CardOnFile, ProviderError
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.payments import customer_of
from tests.integration.conftest import FEB_1, World

USD = Currency.of("USD")


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    key: str | None
    form: dict[str, str]


@dataclass
class RecordedStripe(stripe.HTTPClient):
    """Recorded HTTP for the stripe library: requests kept, answers as Stripe's."""

    name = "recorded"
    lose_answers: int = 0
    """How many PaymentIntent answers to lose after the PaymentIntent was made."""
    card_error: dict[str, Any] | None = None
    """When set, a PaymentIntent is answered 402 with this error (its intent made)."""
    fail_with: int | None = None
    """When set, every request is answered with this HTTP status (an outage)."""
    sent: list[Sent] = field(default_factory=list)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _answers: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return 0.0  # the library's pause between its own retries: none in tests

    def request(
        self,
        method: str,
        url: str,
        headers: Any,
        post_data: Any = None,
        *,
        _usage: Any = None,
    ) -> tuple[str, int, dict[str, str]]:
        path = urlsplit(url).path
        form = dict(parse_qsl(post_data or ""))
        key = headers.get("Idempotency-Key") if headers else None
        self.sent.append(Sent(method, path, key, form))
        if key is not None and key in self._answers:
            body, status = self._answers[key]
            return body, status, {"Idempotent-Replayed": "true"}
        if self.fail_with is not None:
            error = {"error": {"type": "api_error", "message": "Stripe is down."}}
            return json.dumps(error), self.fail_with, {}
        body, status = self._answer(method, path, form)
        if key is not None:
            self._answers[key] = (body, status)
        if path == "/v1/payment_intents" and self.lose_answers > 0:
            self.lose_answers -= 1
            raise stripe.APIConnectionError("Request timed out", should_retry=True)
        return body, status, {}

    def _answer(self, method: str, path: str, form: dict[str, str]) -> tuple[str, int]:
        if path == "/v1/customers":
            return json.dumps({"id": f"cus_rec_{len(self.sent)}", "object": "customer"}), 200
        if path == "/v1/payment_intents":
            number = len(self.intents) + 1
            pi = {"id": f"pi_rec_{number}", "object": "payment_intent",
                  "amount": int(form["amount"]), "currency": form["currency"],
                  "status": "succeeded", "metadata": {}}  # fmt: skip
            self.intents[pi["id"]] = pi
            if self.card_error is not None:
                pi["status"] = "requires_payment_method"
                error = {**self.card_error, "type": "card_error", "payment_intent": pi}
                return json.dumps({"error": error}), 402
            return json.dumps(pi), 200
        if path == "/v1/refunds":
            refund = {"id": "re_rec_1", "object": "refund", "status": "succeeded",
                      "amount": int(form["amount"])}  # fmt: skip
            return json.dumps(refund), 200
        raise AssertionError(f"not recorded: {method} {path}")

    def intent_posts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "post" and s.path == "/v1/payment_intents"]


def stripe_on(world: World, http: RecordedStripe, retries: int = 0) -> StripeProvider:
    return StripeProvider(
        world.engine,
        world.clock,
        secret_key="sk_test_recorded",
        publishable_key="pk_test_recorded",
        webhook_secret="whsec_recorded",
        http_client=http,
        max_network_retries=retries,
    )


def renewal_charged_by_stripe(world: World, provider: StripeProvider) -> None:
    """acme subscribed (through the sandbox), then its card on file a Stripe card and the
    billing clock charging through `provider`."""
    world.organization("acme")
    world.subscribe("acme")
    card = CardOnFile("stripe", "pm_rec_visa", "visa", "4242", 12, 2030)
    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, "acme"), card)
    world.provider = provider  # type: ignore[assignment]
    world.clock.set(FEB_1)


def _renewal(world: World) -> tuple[Invoice, list[PaymentAttempt]]:
    with transaction(world.engine) as session:
        invoice = session.scalars(select(Invoice).order_by(Invoice.id.desc())).first()
        assert invoice is not None
        attempts = session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)
        ).all()
        return invoice, list(attempts)


def test_pay4_a_charge_retried_after_a_timeout_carries_the_same_key_and_makes_one_intent(
    world: World,
) -> None:
    """PAY-4, INV-4: the renewal's PaymentIntent reached Stripe but its answer was lost:
    the clock's tick fails (ProviderError), the attempt stays unfinished; after the lease
    the attempt is taken again and its charge sent with the same Idempotency-Key; Stripe
    answers with the first PaymentIntent. One PaymentIntent, one attempt, the invoice paid."""
    http = RecordedStripe(lose_answers=1)
    renewal_charged_by_stripe(world, stripe_on(world, http))
    with pytest.raises(ProviderError):
        world.worker().tick()
    invoice, [attempt] = _renewal(world)
    assert (invoice.status, attempt.status) == ("open", "processing")
    world.clock.advance(timedelta(minutes=6))  # past the lease
    world.worker().tick()
    invoice, [attempt] = _renewal(world)
    assert (invoice.status, attempt.status) == ("paid", "succeeded")
    posts = http.intent_posts()
    assert len(posts) == 2
    assert {post.key for post in posts} == {attempt.idempotency_key}
    assert len(http.intents) == 1  # Stripe made one PaymentIntent
    assert attempt.provider_reference == "pi_rec_1"
    sent = posts[0].form
    assert (sent["confirm"], sent["off_session"], sent["amount"]) == (
        "true", "true", str(invoice.total_minor))  # fmt: skip
    assert sent["metadata[tabkeeper_attempt]"] == attempt.idempotency_key
    assert world.notices("invoice.paid") == 2


def test_pay4_the_librarys_own_retry_after_a_timeout_keeps_the_key(world: World) -> None:
    """PAY-4: with the library's network retries on (as in production), a lost answer is
    retried at once with the same key: one PaymentIntent, the charge succeeds."""
    http = RecordedStripe(lose_answers=1)
    provider = stripe_on(world, http, retries=2)
    world.organization("acme")
    with world.billing() as b:
        customer = customer_of(organization_by_code(b, "acme"))
    result = provider.charge(customer, "pm_rec_visa", Money(4900, USD), "tk_key_1", "Invoice 1")
    assert (result.succeeded, result.reference) == (True, "pi_rec_1")
    assert [post.key for post in http.intent_posts()] == ["tk_key_1", "tk_key_1"]
    assert len(http.intents) == 1
    again = provider.charge(customer, "pm_rec_visa", Money(4900, USD), "tk_key_1", "Invoice 1")
    assert again == result
    assert len(http.intents) == 1
    # The Stripe customer was made once, and kept (no second POST /v1/customers).
    assert [s.path for s in http.sent].count("/v1/customers") == 1


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        ({"code": "card_declined", "decline_code": "insufficient_funds",
          "message": "Your card has insufficient funds."},
         "insufficient_funds", "Your card has insufficient funds."),
        ({"code": "card_declined", "message": "Your card was declined."},
         "card_declined", "Your card was declined."),
        ({"code": "authentication_required", "message": "Authentication required."},
         "authentication_required", "The bank asks the member to confirm this payment."),
    ],
)  # fmt: skip
def test_pay4_card_errors_are_failed_charges_with_their_code(
    world: World, error: dict[str, Any], code: str, message: str
) -> None:
    """PAY-4: a declined off-session charge is a failed result with Stripe's decline code,
    the PaymentIntent as reference; one needing 3-D Secure is `authentication_required`."""
    http = RecordedStripe(card_error=error)
    provider = stripe_on(world, http)
    world.organization("acme")
    result = provider.charge("org_1", "pm_rec_visa", Money(4900, USD), "tk_key_2", "Invoice 2")
    assert (result.succeeded, result.failure_code, result.failure_message) == (
        False, code, message)  # fmt: skip
    assert result.reference == "pi_rec_1"


def test_pay4_an_outage_is_a_provider_error_never_a_result(world: World) -> None:
    """PAY-4: Stripe failing (500) raises ProviderError (retried later with the same key);
    it is never turned into a failed charge that would be retried under a new key."""
    http = RecordedStripe()
    provider = stripe_on(world, http)
    provider.stripe_customer("org_1")
    http.fail_with = 500
    with pytest.raises(ProviderError, match="Stripe failed"):
        provider.charge("org_1", "pm_rec_visa", Money(4900, USD), "tk_key_3", "Invoice 3")


def test_pay4_refunds_are_keyed_and_bad_input_is_refused_before_stripe(world: World) -> None:
    """PAY-4, INV-5: a refund of a PaymentIntent goes with its key; bad amounts and empty
    references are refused before any request."""
    http = RecordedStripe()
    provider = stripe_on(world, http)
    refunded = provider.refund("pi_rec_1", Money(1000, USD), "tk_refund_1")
    assert (refunded.succeeded, refunded.reference) == (True, "re_rec_1")
    assert http.sent[-1] == Sent(
        "post", "/v1/refunds", "tk_refund_1", {"payment_intent": "pi_rec_1", "amount": "1000"}
    )
    count = len(http.sent)
    for bad in (Money(0, USD), Money(-5, USD), Money(100, Currency("USD", 3))):
        with pytest.raises(InvalidInput):
            provider.refund("pi_rec_1", bad, "tk_refund_2")
    with pytest.raises(InvalidInput):
        provider.refund("", Money(100, USD), "tk_refund_3")
    with pytest.raises(InvalidInput):
        provider.charge("org_1", "pm_rec_visa", Money(100, USD), "", "Invoice")
    assert len(http.sent) == count
