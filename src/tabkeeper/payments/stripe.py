"""The Stripe payment provider (PAY-4), on the official `stripe` library.

How tabkeeper's payments map onto Stripe (docs/payments.md):

    tabkeeper customer "org_<id>"  ->  a Stripe Customer, created on its first card and
                                       kept in `stripe_customers` (payments/stripe_store.py)
    attach (a saved card)          ->  a SetupIntent (usage off_session) confirmed with the
                                       PaymentMethod ("pm_...") Stripe.js collected; brand,
                                       last 4 and expiry come back, never a card number
    charge (an invoice's attempt)  ->  a PaymentIntent created with confirm=true,
                                       off_session=true and the attempt's idempotency key
                                       as Stripe's Idempotency-Key; ChargeResult.reference
                                       is the PaymentIntent's id ("pi_...")
    refund (a credit note)         ->  a Refund of that PaymentIntent, keyed likewise
    checkout (the first payment)   ->  a PaymentIntent (setup_future_usage off_session)

Outcomes: a declined card is a failed ChargeResult whose failure_code is Stripe's decline
code ("insufficient_funds", ...; "card_declined" when Stripe gives none); a charge that
needs the member (3-D Secure) is a failed result with failure_code
"authentication_required" and the PaymentIntent as reference, completed later by the
member and reported by the `payment_intent.succeeded` webhook (services/provider_events).
Stripe unreachable, timing out, rate limiting or failing (5xx) raises ProviderError: the
attempt stays unfinished and is retried later with the same key, which Stripe answers
with the first result, so a charge is never made twice. The library itself retries
connection errors (MAX_NETWORK_RETRIES), with the same key too.

Like the sandbox, each call stands on its own; never call it inside an open transaction.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import stripe as stripe_lib
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from tabkeeper.clock import Clock
from tabkeeper.db.engine import transaction
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments import stripe_store as store
from tabkeeper.payments.provider import (
    CARD_DECLINED,
    CARD_DECLINED_MESSAGE,
    CardDeclined,
    CardOnFile,
    ChargeResult,
    Checkout,
    CheckoutStatus,
    PaymentProvider,
    ProviderError,
    RefundResult,
    UnknownCard,
    require_charge_amount,
    require_text,
)

if TYPE_CHECKING:
    from tabkeeper.settings import Settings

AUTHENTICATION_REQUIRED = "authentication_required"
"""The failure code of an off-session charge that needs the member (3-D Secure)."""
MAX_NETWORK_RETRIES = 2
"""How often the library retries a request that did not get an answer (same key)."""
TIMEOUT_SECONDS = 30.0
STRIPE_JS = "https://js.stripe.com/v3/"
WEBHOOK_TOLERANCE_SECONDS = 300
"""How old a signed webhook may be (Stripe's own default: 5 minutes; against replays)."""
ATTEMPT_METADATA = "tabkeeper_attempt"
"""The PaymentIntent's metadata key holding the attempt's idempotency key: how a
webhook finds the attempt (services/provider_events.py)."""
CUSTOMER_METADATA = "tabkeeper_customer"
RETURN_URL_METADATA = "tabkeeper_return_url"
"""Where the hosted page sends the member after paying (Stripe keeps at most 500
characters a value: a longer one is not kept, and the member stays on the page)."""
DESCRIPTION_METADATA = "tabkeeper_description"
"""The charge's description ("Invoice ...") goes in metadata (Stripe's `description` field
is not known to every Stripe-compatible server, localstripe among them)."""
_CHECKOUT_STATUS = {
    "succeeded": CheckoutStatus.COMPLETED,
    "canceled": CheckoutStatus.EXPIRED,
}


def checkout_url(checkout_id: str) -> str:
    """Where the hosted page (Stripe.js) of the checkout `checkout_id` will live."""
    return f"/stripe/checkout/{checkout_id}"


class StripeProvider:
    """The Stripe PaymentProvider. `http_client` replaces the library's HTTP client
    (tests: recorded HTTP); `api_base` Stripe's address (tests: a fake Stripe)."""

    name = "stripe"

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        secret_key: str,
        publishable_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        http_client: stripe_lib.HTTPClient | None = None,
        max_network_retries: int = MAX_NETWORK_RETRIES,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._api_base = api_base.rstrip("/") if api_base else None
        self.publishable_key = publishable_key
        self.webhook_secret = webhook_secret
        self._client = stripe_lib.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=http_client or stripe_lib.RequestsClient(timeout=TIMEOUT_SECONDS),
            max_network_retries=max_network_retries,
        )

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine, clock: Clock) -> StripeProvider:
        """The provider of TABKEEPER_STRIPE_* (checked whole by Settings)."""
        secret, webhook = settings.stripe_secret_key, settings.stripe_webhook_secret
        assert secret is not None and webhook is not None and settings.stripe_publishable_key
        return cls(
            engine,
            clock,
            secret_key=secret.get_secret_value(),
            publishable_key=settings.stripe_publishable_key,
            webhook_secret=webhook.get_secret_value(),
            api_base=settings.stripe_api_base,
        )

    # -- customers ---------------------------------------------------------------------

    def stripe_customer(self, customer: str) -> str:
        """The Stripe customer of `customer`, created (once) when there is none yet."""
        customer = require_text(customer, "customer", store.CUSTOMER_LENGTH)
        with transaction(self._engine) as session:
            found = store.stripe_customer_id(session, customer)
        if found is not None:
            return found
        try:
            created = self._client.v1.customers.create(
                params={"metadata": {CUSTOMER_METADATA: customer}},
                options={"idempotency_key": f"tk_customer_{customer}"},
            )
        except stripe_lib.StripeError as error:
            _raise_for(error)
        try:
            with transaction(self._engine) as session:
                store.add_stripe_customer(session, customer, created.id, self._clock.now())
        except IntegrityError:  # another call saved one first: keep that one
            with transaction(self._engine) as session:
                kept = store.stripe_customer_id(session, customer)
            assert kept is not None
            return kept
        return created.id

    # -- callbacks (PAY-3) ---------------------------------------------------------------

    def verify_event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """The event Stripe signed (`Stripe-Signature`, with the endpoint's secret, at most
        WEBHOOK_TOLERANCE_SECONDS old), as a dict; InvalidInput ("invalid_signature") when
        the signature does not match, is too old, or the body is not an event."""
        try:
            stripe_lib.Webhook.construct_event(
                payload, signature, self.webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            event: dict[str, Any] = json.loads(payload)
        except (stripe_lib.SignatureVerificationError, ValueError):
            raise InvalidInput(
                "Stripe-Signature: not a valid signature of this body with the endpoint's "
                "signing secret (or older than 5 minutes)",
                code="invalid_signature",
            ) from None
        data = event.get("data") if isinstance(event, dict) else None
        if (
            not isinstance(event.get("id"), str)
            or not isinstance(data, dict)
            or not (isinstance(data.get("object"), dict) and isinstance(event.get("type"), str))
        ):
            raise InvalidInput("body: not a Stripe event", code="invalid_event")
        return event

    # -- the PaymentProvider ----------------------------------------------------------

    def attach(self, customer: str, card: str) -> CardOnFile:
        """Save the PaymentMethod `card` ("pm_...", from Stripe.js) for `customer` through
        a SetupIntent confirmed for off-session use; CardDeclined when declined,
        UnknownCard when Stripe does not know it, Refused ("authentication_required")
        when the bank wants the member first (the hosted page does that)."""
        card = require_text(card, "card", store.STRIPE_ID_LENGTH)
        stripe_customer = self.stripe_customer(customer)
        try:
            created = self._client.v1.setup_intents.create(
                params={
                    "customer": stripe_customer,
                    "usage": "off_session",
                    "metadata": {CUSTOMER_METADATA: customer},
                }
            )
            intent = self._client.v1.setup_intents.confirm(
                created.id, params={"payment_method": card}
            )
        except stripe_lib.CardError as error:
            raise CardDeclined(_decline_message(error)) from None
        except stripe_lib.InvalidRequestError as error:
            raise UnknownCard(_not_accepted(error)) from None
        except stripe_lib.StripeError as error:
            _raise_for(error)
        if intent.status != "succeeded":
            raise Refused(
                "The bank asks the member to confirm this card first.",
                code=AUTHENTICATION_REQUIRED,
            )
        return self.card_on_file(card)

    def card_on_file(self, token: str) -> CardOnFile:
        """The saved PaymentMethod `token` as the member sees it (PAY-2)."""
        try:
            method = self._client.v1.payment_methods.retrieve(token)
        except stripe_lib.InvalidRequestError:
            raise UnknownCard("card: Stripe does not know this payment method") from None
        except stripe_lib.StripeError as error:
            _raise_for(error)
        return card_of(self.name, method)

    def charge(
        self, customer: str, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        """One off-session PaymentIntent per key; see PaymentProvider.charge."""
        amount = require_charge_amount(amount)
        token = require_text(token, "token", store.STRIPE_ID_LENGTH)
        key = require_text(idempotency_key, "idempotency_key", 255)
        description = require_text(description, "description", 500)
        stripe_customer = self.stripe_customer(customer)
        try:
            intent = self._client.v1.payment_intents.create(
                params={
                    "amount": amount.minor,
                    "currency": amount.currency.code.lower(),
                    "customer": stripe_customer,
                    "payment_method": token,
                    "confirm": True,
                    "off_session": True,
                    "metadata": {
                        ATTEMPT_METADATA: key,
                        CUSTOMER_METADATA: customer,
                        DESCRIPTION_METADATA: description,
                    },
                },
                options={"idempotency_key": key},
            )
        except stripe_lib.CardError as error:
            return _failed_charge(error, amount)
        except stripe_lib.IdempotencyError:
            raise InvalidInput(
                f"idempotency_key: {key!r} was already used for another charge; use a new "
                "key for a new charge",
                code="idempotency_key_reused",
            ) from None
        except stripe_lib.InvalidRequestError as error:
            if error.code == "resource_missing":
                raise InvalidInput(
                    f"token: {token!r} is not a payment method of customer {customer!r}",
                    code="unknown_payment_method",
                ) from None
            _raise_for(error)
        except stripe_lib.StripeError as error:
            _raise_for(error)
        return _charge_result(intent, amount)

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        """A Refund of the PaymentIntent `reference`, once per key (INV-5)."""
        reference = require_text(reference, "reference", store.STRIPE_ID_LENGTH)
        amount = require_charge_amount(amount)
        key = require_text(idempotency_key, "idempotency_key", 255)
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": reference, "amount": amount.minor},
                options={"idempotency_key": key},
            )
        except stripe_lib.IdempotencyError:
            raise InvalidInput(
                f"idempotency_key: {key!r} was already used for another refund",
                code="idempotency_key_reused",
            ) from None
        except stripe_lib.InvalidRequestError as error:
            if error.code == "resource_missing":
                raise InvalidInput(
                    f"reference: no charge {reference!r}", code="unknown_charge"
                ) from None
            code = (
                "refund_exceeds_charge"
                if error.code == "charge_already_refunded" or error.param == "amount"
                else "charge_not_refundable"
            )
            return RefundResult(False, "", amount, code, error.user_message or str(error))
        except stripe_lib.StripeError as error:
            _raise_for(error)
        if refund.status == "failed":
            message = "Stripe could not make the refund."
            return RefundResult(False, refund.id, amount, "refund_failed", message)
        return RefundResult(True, refund.id, amount, None, None)

    def start_checkout(
        self, customer: str, amount: Money, reference: str, return_url: str
    ) -> Checkout:
        """A PaymentIntent for the first payment (the hosted page confirms it with the card,
        which it saves for off-session charges with a SetupIntent)."""
        amount = require_charge_amount(amount)
        reference = require_text(reference, "reference", 200)
        return_url = require_text(return_url, "return_url", 2000)
        stripe_customer = self.stripe_customer(customer)
        try:
            intent = self._client.v1.payment_intents.create(
                params={
                    "amount": amount.minor,
                    "currency": amount.currency.code.lower(),
                    "customer": stripe_customer,
                    "metadata": {
                        "tabkeeper_reference": reference,
                        CUSTOMER_METADATA: customer,
                        **({RETURN_URL_METADATA: return_url} if len(return_url) <= 500 else {}),
                    },
                }
            )
        except stripe_lib.StripeError as error:
            _raise_for(error)
        return _checkout(intent)

    def checkout(self, checkout_id: str) -> Checkout:
        """The checkout's PaymentIntent as it stands."""
        checkout_id = require_text(checkout_id, "checkout_id", store.STRIPE_ID_LENGTH)
        return _checkout(self._intent(checkout_id))

    def complete_checkout(self, checkout_id: str, card: str) -> tuple[CardOnFile, ChargeResult]:
        """Pay the checkout's PaymentIntent with the PaymentMethod `card`, once: the card is
        saved for off-session charges first (a SetupIntent, as `attach`: CardDeclined when
        declined there), then the intent confirmed with it (a decline then is a failed
        result). What the hosted page does with Stripe.js; the webhook reports it too."""
        intent = self._intent(require_text(checkout_id, "checkout_id", store.STRIPE_ID_LENGTH))
        amount = Money(intent.amount, Currency.of(intent.currency.upper()))
        if intent.status in ("succeeded", "processing") and intent.payment_method:
            return self.card_on_file(_id_of(intent.payment_method)), _charge_result(intent, amount)
        metadata: Any = intent.metadata  # a StripeObject: `in` and [] but no .get
        customer = (
            metadata[CUSTOMER_METADATA] if metadata and CUSTOMER_METADATA in metadata else None
        )
        if not customer:
            raise InvalidInput(f"checkout_id: {checkout_id!r} is not a checkout of tabkeeper")
        return self._pay_checkout(intent, amount, self.attach(customer, card))

    def complete_checkout_with_setup(
        self, checkout_id: str, setup_intent_id: str
    ) -> tuple[CardOnFile, ChargeResult]:
        """Pay the checkout with the card the hosted page saved through the SetupIntent
        `setup_intent_id` (Stripe.js confirmed it, 3-D Secure included); it must be a
        succeeded SetupIntent of the checkout's customer, else InvalidInput."""
        intent = self._intent(require_text(checkout_id, "checkout_id", store.STRIPE_ID_LENGTH))
        amount = Money(intent.amount, Currency.of(intent.currency.upper()))
        setup_intent_id = require_text(setup_intent_id, "setup_intent", store.STRIPE_ID_LENGTH)
        try:
            setup = self._client.v1.setup_intents.retrieve(setup_intent_id)
        except stripe_lib.InvalidRequestError:
            raise InvalidInput("setup_intent: no such SetupIntent") from None
        except stripe_lib.StripeError as error:
            _raise_for(error)
        if intent.status in ("succeeded", "processing") and intent.payment_method:
            return self.card_on_file(_id_of(intent.payment_method)), _charge_result(intent, amount)
        if setup.status != "succeeded" or setup.payment_method is None:
            raise InvalidInput("setup_intent: the card was not saved", code="card_not_saved")
        if _id_of(setup.customer) != _id_of(intent.customer):
            raise InvalidInput("setup_intent: not of this checkout's customer")
        return self._pay_checkout(intent, amount, self.card_on_file(_id_of(setup.payment_method)))

    def _pay_checkout(
        self, intent: stripe_lib.PaymentIntent, amount: Money, saved: CardOnFile
    ) -> tuple[CardOnFile, ChargeResult]:
        """Confirm the checkout's PaymentIntent with the saved card (declined: a result)."""
        try:
            self._client.v1.payment_intents.update(
                intent.id, params={"payment_method": saved.token}
            )
            intent = self._client.v1.payment_intents.confirm(intent.id)
        except stripe_lib.CardError as error:
            return saved, _failed_charge(error, amount)
        except stripe_lib.StripeError as error:
            _raise_for(error)
        return saved, _charge_result(intent, amount)

    # -- for the hosted pages (payments/stripe_page.py) ---------------------------------

    @property
    def stripe_js_url(self) -> str:
        """Where the page loads Stripe.js from (a fake Stripe serves its own copy)."""
        return f"{self._api_base}/js.stripe.com/v3/" if self._api_base else STRIPE_JS

    def setup_for(self, customer: str) -> str:
        """A SetupIntent for the hosted page to save a card of `customer` with; its client
        secret (what Stripe.js confirms)."""
        stripe_customer = self.stripe_customer(customer)
        try:
            setup = self._client.v1.setup_intents.create(
                params={
                    "customer": stripe_customer,
                    "usage": "off_session",
                    "metadata": {CUSTOMER_METADATA: customer},
                }
            )
        except stripe_lib.StripeError as error:
            _raise_for(error)
        assert setup.client_secret is not None
        return setup.client_secret

    def payment(self, intent_id: str) -> stripe_lib.PaymentIntent:
        """The PaymentIntent `intent_id` (InvalidInput when Stripe does not know it)."""
        return self._intent(require_text(intent_id, "payment", store.STRIPE_ID_LENGTH))

    def _intent(self, intent_id: str) -> stripe_lib.PaymentIntent:
        try:
            return self._client.v1.payment_intents.retrieve(intent_id)
        except stripe_lib.InvalidRequestError:
            raise InvalidInput(
                f"checkout_id: no checkout {intent_id!r}", code="unknown_checkout"
            ) from None
        except stripe_lib.StripeError as error:
            _raise_for(error)


def _id_of(found: Any) -> str:
    """The id of an expandable field: the id itself, or the object's."""
    return found if isinstance(found, str) else str(getattr(found, "id", ""))


def card_of(provider: str, method: stripe_lib.PaymentMethod) -> CardOnFile:
    """A Stripe PaymentMethod as a card on file: brand, last 4, expiry only (PAY-2)."""
    card = method.card
    if card is None:
        raise UnknownCard("card: only cards can be saved")
    return CardOnFile(provider, method.id, card.brand, card.last4, card.exp_month, card.exp_year)


def _charge_result(intent: stripe_lib.PaymentIntent, amount: Money) -> ChargeResult:
    if intent.status == "succeeded":
        return ChargeResult(True, intent.id, amount, None, None)
    if intent.status in ("requires_action", "requires_confirmation"):
        message = "The bank asks the member to confirm this payment."
        return ChargeResult(False, intent.id, amount, AUTHENTICATION_REQUIRED, message)
    if intent.status == "processing":  # not final: the webhook says how it ends
        raise ProviderError(f"The payment {intent.id} is still processing at Stripe.")
    error = intent.last_payment_error
    code = (error.decline_code or error.code) if error else None
    message = (error.message if error else None) or CARD_DECLINED_MESSAGE
    return ChargeResult(False, intent.id, amount, code or CARD_DECLINED, message)


def _failed_charge(error: stripe_lib.CardError, amount: Money) -> ChargeResult:
    """A CardError (402) as a failed charge: declined, or authentication required."""
    detail = error.error
    intent = detail.payment_intent if detail is not None else None
    reference = intent.id if intent is not None else ""
    if error.code == AUTHENTICATION_REQUIRED or (
        intent is not None and intent.status == "requires_action"
    ):
        message = "The bank asks the member to confirm this payment."
        return ChargeResult(False, reference, amount, AUTHENTICATION_REQUIRED, message)
    code = (detail.decline_code if detail is not None else None) or error.code or CARD_DECLINED
    return ChargeResult(False, reference, amount, code, _decline_message(error))


def _not_accepted(error: stripe_lib.StripeError) -> str:
    return f"card: Stripe does not accept it ({error.user_message or error.code})"


def _decline_message(error: stripe_lib.StripeError) -> str:
    return error.user_message or CARD_DECLINED_MESSAGE


def _checkout(intent: stripe_lib.PaymentIntent) -> Checkout:
    status = _CHECKOUT_STATUS.get(intent.status, CheckoutStatus.OPEN)
    amount = Money(intent.amount, Currency.of(intent.currency.upper()))
    return Checkout(intent.id, checkout_url(intent.id), amount, status)


def _raise_for(error: stripe_lib.StripeError) -> NoReturn:
    """Any other Stripe error: an outage to retry later (ProviderError), never a result
    that could make a caller charge again under a new key."""
    kind = type(error).__name__
    detail: Any = error.user_message or str(error) or kind
    raise ProviderError(f"Stripe failed ({kind}): {detail}") from error


if TYPE_CHECKING:

    def _is_a_payment_provider(provider: StripeProvider) -> PaymentProvider:
        return provider
