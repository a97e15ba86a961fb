"""The payment provider interface (PAY-1) and the values that cross it (PAY-2).

Everything that moves money goes through a `PaymentProvider`: the built-in sandbox
(`tabkeeper.payments.sandbox`, test cards, nothing outside the machine) or Stripe. The
interface is deliberately small: save a card, charge a saved card off-session, refund
(part of) a charge for a credit note (INV-5), and the hosted checkout that takes the first
payment of a subscription (SUB-3).

A provider is a remote system. Each call stands on its own: what the provider recorded
stays recorded even if the caller's database transaction later rolls back. So callers
never call a provider while they hold an open transaction; they commit their own work
first (or record the intent in the outbox) and make charges safe to repeat with an
idempotency key.

Cards on file carry brand, last 4 digits and expiry only; a whole card number never leaves
the provider and is never stored by tabkeeper (PAY-2).

Errors:

    Refused
    └── CardDeclined        the card was declined ("card_declined")
    InvalidInput
    └── UnknownCard         not a card the provider accepts (the sandbox: its test cards)
    TabkeeperError
    └── ProviderError       the provider is unreachable or failed (an outage)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from tabkeeper.domain.errors import InvalidInput, Refused, TabkeeperError
from tabkeeper.domain.money import Currency, Money

CARD_DECLINED = "card_declined"
"""The failure code of a declined card, on `CardDeclined` and on a failed `ChargeResult`."""

CARD_DECLINED_MESSAGE = "Your card was declined."


class CardDeclined(Refused):
    """The provider declined the card; nothing was saved or charged."""

    code = CARD_DECLINED

    def __init__(self, message: str = CARD_DECLINED_MESSAGE) -> None:
        super().__init__(message)


class UnknownCard(InvalidInput):
    """Not a card this provider accepts (the sandbox accepts only its test cards)."""

    code = "unknown_card"


class ProviderError(TabkeeperError):
    """The payment provider could not be reached or failed; the call may be retried."""

    code = "provider_error"


class CheckoutStatus(StrEnum):
    """Where a hosted checkout stands."""

    OPEN = "open"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class CardOnFile:
    """A saved payment method as the member sees it (PAY-2): never a whole card number."""

    provider: str
    token: str
    """The provider's reference for the saved method ("pm_...")."""
    brand: str
    """"visa", "mastercard", ..."""
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What came of one charge: it succeeded, or it failed with a code and a message."""

    succeeded: bool
    reference: str
    """The provider's charge id ("ch_...")."""
    amount: Money
    failure_code: str | None
    """None when it succeeded; "card_declined", ... when not."""
    failure_message: str | None


@dataclass(frozen=True, slots=True)
class RefundResult:
    """What came of one refund (INV-5): it succeeded, or it failed with a code."""

    succeeded: bool
    reference: str
    """The provider's refund id ("re_..."); "" when none was made."""
    amount: Money
    failure_code: str | None
    failure_message: str | None


@dataclass(frozen=True, slots=True)
class Checkout:
    """A hosted page where the member enters a card for the first payment (SUB-3)."""

    id: str
    url: str
    amount: Money
    status: CheckoutStatus


class PaymentProvider(Protocol):
    """A payment provider (PAY-1). Never call it inside an open database transaction."""

    name: str
    """Short name of the provider, also `CardOnFile.provider`: "sandbox", "stripe"."""

    def attach(self, customer: str, card: str) -> CardOnFile:
        """Save a payment method for `customer` (an organization's id or code).

        `card` is what the provider needs to find the card: for the sandbox a test card's
        name or number. Raises CardDeclined when the card is declined, UnknownCard when the
        provider does not know it.
        """
        ...

    def charge(
        self, customer: str, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge the saved method `token` of `customer` off-session.

        Idempotent: the same `idempotency_key` returns the first result and never charges
        twice, also after a restart. Reusing a key with another customer, token or amount
        raises InvalidInput (code "idempotency_key_reused"). A declined card is a result
        (succeeded False, failure_code "card_declined"), not an exception. `amount` must be
        positive; an unknown token raises InvalidInput (code "unknown_payment_method").
        """
        ...

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        """Refund `amount` of the succeeded charge `reference` (a credit note, INV-5).

        Idempotent like `charge`: the same key returns the first result and never refunds
        twice; reusing a key for another charge or amount raises InvalidInput (code
        "idempotency_key_reused"). More than what is left of the charge to refund, or a
        charge that did not succeed, is a failed result (failure_code
        "refund_exceeds_charge" / "charge_not_refundable"), not an exception. `amount` must
        be positive; an unknown charge raises InvalidInput (code "unknown_charge").
        """
        ...

    def start_checkout(
        self, customer: str, amount: Money, reference: str, return_url: str
    ) -> Checkout:
        """Open a hosted checkout for the first payment of `amount` (SUB-3).

        `reference` is the caller's own reference (a subscription or invoice); the member
        goes to `Checkout.url` and comes back to `return_url`.
        """
        ...

    def checkout(self, checkout_id: str) -> Checkout:
        """The checkout as it stands now; unknown ids raise InvalidInput."""
        ...

    def complete_checkout(self, checkout_id: str, card: str) -> tuple[CardOnFile, ChargeResult]:
        """Attach `card` and charge the checkout's amount, once.

        The sandbox's stand-in for the member paying on the hosted page (with Stripe this
        arrives by webhook). Completing a finished checkout again returns the same result
        and charges nothing. A card declined at once raises CardDeclined (the checkout is
        then declined); a card that attaches but whose charge fails returns the failed
        ChargeResult (the checkout is declined too).
        """
        ...


def require_text(value: object, what: str, max_length: int) -> str:
    """`value` as a non-empty string of at most `max_length` characters, or InvalidInput."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what}: expected a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise InvalidInput(f"{what}: at most {max_length} characters, got {len(value)}")
    return value


def require_charge_amount(amount: object, what: str = "amount") -> Money:
    """`amount` as Money that a provider can charge: positive, of a known ISO currency with
    its own exponent (Currency("USD", 3) is refused), or InvalidInput."""
    if not isinstance(amount, Money):
        raise InvalidInput(f"{what}: expected Money, got {amount!r}")
    if not isinstance(amount.currency, Currency):
        raise InvalidInput(f"{what}: expected a Currency, got {amount.currency!r}")
    known = Currency.of(amount.currency.code)
    if known != amount.currency:
        raise InvalidInput(
            f"{what}: {amount.currency.code} has exponent {known.exponent}, "
            f"not {amount.currency.exponent}"
        )
    if amount.minor <= 0:
        raise InvalidInput(f"{what}: a charge must be positive, got {amount}")
    return amount
