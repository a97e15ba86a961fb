"""The built-in sandbox payment provider: test cards, nothing outside the machine (PAY-1).

Test cards (SCENARIOS.md `payment_method`), by name or number, the number with or without
spaces and dashes:

    card_ok           4242 4242 4242 4242  visa        attaches; every charge succeeds
                      5555 5555 5555 4444  mastercard  the same
    card_declined     4000 0000 0000 0002  visa        declined at once: attach raises
                                                       CardDeclined, a checkout is declined
    card_fails_later  4000 0000 0000 0341  visa        attaches; every charge is declined,
                                                       so a checkout with it is declined too

Anything else raises UnknownCard with the list above; the message never repeats a card
number, only its last 4 digits. A saved card keeps brand, last 4 and expiry (PAY-2).

The sandbox behaves like a remote provider: each call runs in its own short transaction
(`transaction(engine)`), so what it recorded stays recorded even if the caller's
transaction rolls back; never call it while holding an open transaction (on SQLite that
would wait for the caller's own write lock). Charges are idempotent by key, in the
database: a repeated key returns the first result, also after a restart, and two racing
calls write one charge (the UNIQUE key decides; the loser reads the winner's row).
Refunds (INV-5) are idempotent by key the same way; a refund never takes back more than
what is left of a succeeded charge (a failed result otherwise, nothing recorded).
Checkouts are open for `CHECKOUT_LIFETIME` (24 hours, like Stripe's), then expired.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tabkeeper.clock import Clock
from tabkeeper.db.engine import transaction
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments import sandbox_store as store
from tabkeeper.payments.provider import (
    CARD_DECLINED,
    CARD_DECLINED_MESSAGE,
    CardDeclined,
    CardOnFile,
    ChargeResult,
    Checkout,
    CheckoutStatus,
    PaymentProvider,
    RefundResult,
    UnknownCard,
    require_charge_amount,
    require_text,
)

CHECKOUT_LIFETIME = timedelta(hours=24)
CARD_YEARS_VALID = 4
"""A saved test card expires in December, this many years after it was saved."""


class SandboxCardKind(StrEnum):
    """How a test card behaves; the names SCENARIOS.md uses for `payment_method`."""

    CARD_OK = "card_ok"
    CARD_DECLINED = "card_declined"
    CARD_FAILS_LATER = "card_fails_later"


@dataclass(frozen=True, slots=True)
class SandboxCard:
    """A test card of the sandbox. Its number is public test data, never stored."""

    kind: SandboxCardKind
    number: str
    brand: str

    @property
    def last4(self) -> str:
        return self.number[-4:]


TEST_CARDS = (
    SandboxCard(SandboxCardKind.CARD_OK, "4242424242424242", "visa"),
    SandboxCard(SandboxCardKind.CARD_DECLINED, "4000000000000002", "visa"),
    SandboxCard(SandboxCardKind.CARD_FAILS_LATER, "4000000000000341", "visa"),
    SandboxCard(SandboxCardKind.CARD_OK, "5555555555554444", "mastercard"),
)
_BY_NUMBER = {card.number: card for card in TEST_CARDS}
_BY_NAME = {kind.value: next(c for c in TEST_CARDS if c.kind is kind) for kind in SandboxCardKind}


def _spaced(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


TEST_CARD_LIST = "; ".join(
    f"{card.kind.value} ({_spaced(card.number)}, {card.brand})" for card in TEST_CARDS
)


def _described(card: object) -> str:
    """What was given, for an error message: a card number only by its last 4 digits."""
    if card is None:
        return "no card (None) is not a sandbox test card"
    if not isinstance(card, str):
        return f"a value of type {type(card).__name__} is not a sandbox test card"
    digits = [c for c in card if c.isdigit()]
    if len(digits) > 4:
        return f"the card number ending in {''.join(digits[-4:])} is not a sandbox test card"
    if not card.strip():
        return "an empty card is not a sandbox test card"
    return f"{card[:40]!r} is not a sandbox test card"


def sandbox_card(card: object) -> SandboxCard:
    """The test card that `card` names: a name ("card_ok") or a number, spaces and dashes
    allowed ("4242 4242 4242 4242", "4242-4242-4242-4242"). Otherwise UnknownCard."""
    if isinstance(card, str):
        text = card.strip()
        found = _BY_NAME.get(text.lower()) or _BY_NUMBER.get(text.replace(" ", "").replace("-", ""))
        if found is not None:
            return found
    raise UnknownCard(f"{_described(card)}; use one of: {TEST_CARD_LIST}")


def checkout_url(checkout_id: str) -> str:
    """Where the sandbox's hosted checkout page for `checkout_id` lives."""
    return f"/sandbox/checkout/{checkout_id}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"


class SandboxProvider:
    """The sandbox PaymentProvider, storing its records in `engine`'s `sandbox_` tables."""

    name = "sandbox"

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def attach(self, customer: str, card: str) -> CardOnFile:
        """Save a test card for `customer`; CardDeclined for card_declined."""
        customer = require_text(customer, "customer", store.CUSTOMER_LENGTH)
        test_card = sandbox_card(card)
        if test_card.kind is SandboxCardKind.CARD_DECLINED:
            raise CardDeclined()
        with transaction(self._engine) as session:
            return self._card_on_file(self._save_card(session, customer, test_card))

    def charge(
        self, customer: str, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge a saved card once per key; see PaymentProvider.charge."""
        customer = require_text(customer, "customer", store.CUSTOMER_LENGTH)
        token = require_text(token, "token", store.ID_LENGTH)
        amount = require_charge_amount(amount)
        key = require_text(idempotency_key, "idempotency_key", store.IDEMPOTENCY_KEY_LENGTH)
        description = require_text(description, "description", store.DESCRIPTION_LENGTH)
        try:
            with transaction(self._engine) as session:
                existing = store.charge_by_key(session, key)
                if existing is not None:
                    return _replayed(existing, customer, token, amount)
                method = store.payment_method(session, token)
                if method is None or method.customer != customer:
                    raise InvalidInput(
                        f"token: {token!r} is not a payment method of customer {customer!r}",
                        code="unknown_payment_method",
                    )
                row = self._record_charge(session, method, amount, key, description)
                session.flush()
                return _charge_result(row)
        except IntegrityError:
            # Another call with the same key committed between our read and our insert.
            with transaction(self._engine) as session:
                existing = store.charge_by_key(session, key)
                if existing is None:  # pragma: no cover - some other constraint failed
                    raise
                return _replayed(existing, customer, token, amount)

    def charges(self, customer: str) -> list[ChargeResult]:
        """Every charge of `customer`, succeeded or declined, oldest first."""
        customer = require_text(customer, "customer", store.CUSTOMER_LENGTH)
        with transaction(self._engine) as session:
            return [_charge_result(row) for row in store.charges_of(session, customer)]

    def refund(self, reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        """Refund part or all of a succeeded charge once per key; see PaymentProvider.refund."""
        reference = require_text(reference, "reference", store.ID_LENGTH)
        amount = require_charge_amount(amount)
        key = require_text(idempotency_key, "idempotency_key", store.IDEMPOTENCY_KEY_LENGTH)
        try:
            with transaction(self._engine) as session:
                existing = store.refund_by_key(session, key)
                if existing is not None:
                    return _replayed_refund(existing, reference, amount)
                charge = store.charge_or_none(session, reference)
                if charge is None:
                    raise InvalidInput(f"reference: no charge {reference!r}", code="unknown_charge")
                failed = _refund_refused(session, charge, amount)
                if failed is not None:
                    return failed
                row = store.SandboxRefund(
                    refund_id=_new_id("re"),
                    idempotency_key=key,
                    charge_id=charge.charge_id,
                    amount_minor=amount.minor,
                    currency=amount.currency.code,
                    created_at=self._clock.now(),
                )
                session.add(row)
                session.flush()
                return _refund_result(row)
        except IntegrityError:
            with transaction(self._engine) as session:
                existing = store.refund_by_key(session, key)
                if existing is None:  # pragma: no cover - some other constraint failed
                    raise
                return _replayed_refund(existing, reference, amount)

    def refunds(self, reference: str) -> list[RefundResult]:
        """Every refund of the charge `reference`, oldest first."""
        with transaction(self._engine) as session:
            return [_refund_result(row) for row in store.refunds_of(session, reference)]

    def start_checkout(
        self, customer: str, amount: Money, reference: str, return_url: str
    ) -> Checkout:
        """Open a checkout for `amount`, open for CHECKOUT_LIFETIME."""
        customer = require_text(customer, "customer", store.CUSTOMER_LENGTH)
        amount = require_charge_amount(amount)
        reference = require_text(reference, "reference", store.REFERENCE_LENGTH)
        return_url = require_text(return_url, "return_url", store.URL_LENGTH)
        now = self._clock.now()
        with transaction(self._engine) as session:
            row = store.SandboxCheckout(
                checkout_id=_new_id("cs"),
                customer=customer,
                amount_minor=amount.minor,
                currency=amount.currency.code,
                reference=reference,
                return_url=return_url,
                status=CheckoutStatus.OPEN.value,
                created_at=now,
                expires_at=now + CHECKOUT_LIFETIME,
            )
            session.add(row)
            return self._checkout(row, now)

    def checkout(self, checkout_id: str) -> Checkout:
        """The checkout as it stands now (an open one past its time reads as expired)."""
        checkout_id = require_text(checkout_id, "checkout_id", store.ID_LENGTH)
        with transaction(self._engine) as session:
            return self._checkout(_existing_checkout(session, checkout_id), self._clock.now())

    def complete_checkout(self, checkout_id: str, card: str) -> tuple[CardOnFile, ChargeResult]:
        """Pay checkout `checkout_id` with `card`, once; see PaymentProvider.complete_checkout.

        A finished checkout returns (or raises) what its completion did, whatever `card`
        is now; a declined checkout stays declined (start a new one to try another card).
        An expired checkout is refused (code "checkout_expired") and changes nothing.
        """
        checkout_id = require_text(checkout_id, "checkout_id", store.ID_LENGTH)
        test_card = sandbox_card(card)
        now = self._clock.now()
        with transaction(self._engine) as session:
            row = _existing_checkout(session, checkout_id, for_update=True)
            if self._checkout(row, now).status is CheckoutStatus.EXPIRED:
                raise Refused(
                    f"checkout {checkout_id} expired at {row.expires_at.isoformat()}",
                    code="checkout_expired",
                )
            if row.status == CheckoutStatus.OPEN:
                self._pay(session, row, test_card)
            if row.token is None or row.charge_id is None:
                outcome = None  # declined at once: no card saved, nothing charged
            else:
                outcome = (
                    self._card_on_file(store.saved_payment_method(session, row.token)),
                    _charge_result(store.charge_by_id(session, row.charge_id)),
                )
        if outcome is None:
            raise CardDeclined()
        return outcome

    def _pay(self, session: Session, row: store.SandboxCheckout, card: SandboxCard) -> None:
        """Finish the open checkout `row` with `card`: declined, or saved and charged."""
        if card.kind is SandboxCardKind.CARD_DECLINED:
            row.status = CheckoutStatus.DECLINED.value
            return
        method = self._save_card(session, row.customer, card)
        charged = self._record_charge(
            session,
            method,
            Money(row.amount_minor, Currency.of(row.currency)),
            f"checkout:{row.checkout_id}",
            f"Checkout {row.checkout_id}: {row.reference}"[: store.DESCRIPTION_LENGTH],
        )
        session.flush()
        row.token, row.charge_id = method.token, charged.charge_id
        status = CheckoutStatus.COMPLETED if charged.succeeded else CheckoutStatus.DECLINED
        row.status = status.value

    def _save_card(
        self, session: Session, customer: str, card: SandboxCard
    ) -> store.SandboxPaymentMethod:
        now = self._clock.now()
        method = store.SandboxPaymentMethod(
            token=_new_id("pm"),
            customer=customer,
            kind=card.kind.value,
            brand=card.brand,
            last4=card.last4,
            exp_month=12,
            exp_year=now.year + CARD_YEARS_VALID,
            created_at=now,
        )
        session.add(method)
        session.flush()  # before a charge that refers to it (no ORM relationship orders them)
        return method

    def _record_charge(
        self,
        session: Session,
        method: store.SandboxPaymentMethod,
        amount: Money,
        key: str,
        description: str,
    ) -> store.SandboxCharge:
        succeeded = method.kind == SandboxCardKind.CARD_OK
        row = store.SandboxCharge(
            charge_id=_new_id("ch"),
            idempotency_key=key,
            customer=method.customer,
            token=method.token,
            amount_minor=amount.minor,
            currency=amount.currency.code,
            description=description,
            succeeded=succeeded,
            failure_code=None if succeeded else CARD_DECLINED,
            failure_message=None if succeeded else CARD_DECLINED_MESSAGE,
            created_at=self._clock.now(),
        )
        session.add(row)
        return row

    def _card_on_file(self, method: store.SandboxPaymentMethod) -> CardOnFile:
        return CardOnFile(
            provider=self.name,
            token=method.token,
            brand=method.brand,
            last4=method.last4,
            exp_month=method.exp_month,
            exp_year=method.exp_year,
        )

    def _checkout(self, row: store.SandboxCheckout, now: datetime) -> Checkout:
        status = CheckoutStatus(row.status)
        if status is CheckoutStatus.OPEN and now >= row.expires_at:
            status = CheckoutStatus.EXPIRED
        return Checkout(
            id=row.checkout_id,
            url=checkout_url(row.checkout_id),
            amount=Money(row.amount_minor, Currency.of(row.currency)),
            status=status,
        )


def _existing_checkout(
    session: Session, checkout_id: str, *, for_update: bool = False
) -> store.SandboxCheckout:
    row = store.checkout(session, checkout_id, for_update=for_update)
    if row is None:
        raise InvalidInput(f"checkout_id: no checkout {checkout_id!r}", code="unknown_checkout")
    return row


def _charge_result(row: store.SandboxCharge) -> ChargeResult:
    return ChargeResult(
        succeeded=row.succeeded,
        reference=row.charge_id,
        amount=Money(row.amount_minor, Currency.of(row.currency)),
        failure_code=row.failure_code,
        failure_message=row.failure_message,
    )


def _refund_refused(
    session: Session, charge: store.SandboxCharge, amount: Money
) -> RefundResult | None:
    """The failed result of a refund the charge cannot give, or None when it can."""
    if not charge.succeeded or charge.currency != amount.currency.code:
        return RefundResult(
            succeeded=False,
            reference="",
            amount=amount,
            failure_code="charge_not_refundable",
            failure_message=f"The charge {charge.charge_id} did not succeed in "
            f"{amount.currency.code}; nothing to refund.",
        )
    left = charge.amount_minor - store.refunded_of(session, charge.charge_id)
    if amount.minor > left:
        return RefundResult(
            succeeded=False,
            reference="",
            amount=amount,
            failure_code="refund_exceeds_charge",
            failure_message=f"Only {left} (minor units) of the charge is left to refund.",
        )
    return None


def _refund_result(row: store.SandboxRefund) -> RefundResult:
    return RefundResult(
        succeeded=True,
        reference=row.refund_id,
        amount=Money(row.amount_minor, Currency.of(row.currency)),
        failure_code=None,
        failure_message=None,
    )


def _replayed_refund(row: store.SandboxRefund, reference: str, amount: Money) -> RefundResult:
    """The first result for a key used again for the same refund; else refused."""
    if (row.charge_id, row.amount_minor, row.currency) != (
        reference,
        amount.minor,
        amount.currency.code,
    ):
        raise InvalidInput(
            f"idempotency_key: {row.idempotency_key!r} was already used for another refund "
            "(another charge or amount); use a new key for a new refund",
            code="idempotency_key_reused",
        )
    return _refund_result(row)


def _replayed(row: store.SandboxCharge, customer: str, token: str, amount: Money) -> ChargeResult:
    """The first result for a key used again, if asked for the same charge; else refused."""
    if (row.customer, row.token, row.amount_minor, row.currency) != (
        customer,
        token,
        amount.minor,
        amount.currency.code,
    ):
        raise InvalidInput(
            f"idempotency_key: {row.idempotency_key!r} was already used for another charge "
            "(another customer, token or amount); use a new key for a new charge",
            code="idempotency_key_reused",
        )
    return _charge_result(row)


if TYPE_CHECKING:

    def _is_a_payment_provider(engine: Engine, clock: Clock) -> PaymentProvider:
        return SandboxProvider(engine, clock)
