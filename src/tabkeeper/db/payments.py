"""The SQL of payment methods, payment attempts and checkout sessions (PAY-1, PAY-2, SUB-8,
INV-4).

Lookups return the ORM rows the services read or change. Statements of fixed shape are
built once per process, the values as parameters (building them is a good part of a
collection's time); the ORM's bulk write on payment methods (whose effect on the rows
loaded in the session the ORM works out from the statement) is built per call. The
attempt is written and its outcome recorded with plain (Core) statements: nothing reads
the attempt back from the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from tabkeeper.db.records import table_of
from tabkeeper.db.tables import CheckoutSession, Invoice, PaymentAttempt, PaymentMethod

_DEFAULT_METHOD = (
    select(PaymentMethod)
    .where(PaymentMethod.organization_id == bindparam("organization_id"), PaymentMethod.is_default)
    .order_by(PaymentMethod.id.desc())
    .limit(1)
)
_ATTEMPTS_OF = (
    select(PaymentAttempt)
    .where(PaymentAttempt.invoice_id == bindparam("invoice_id"))
    .order_by(PaymentAttempt.id)
)
_ATTEMPTS = table_of(PaymentAttempt)
_NEW_ATTEMPT = insert(_ATTEMPTS).returning(_ATTEMPTS.c.id)
_INVOICE_FOR_UPDATE = (
    select(Invoice)
    .where(Invoice.id == bindparam("invoice_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_RECORD_ATTEMPT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("attempt_id"), _ATTEMPTS.c.status == "processing")
    .values(
        status=bindparam("outcome"),
        provider_reference=bindparam("reference"),
        failure_code=bindparam("code"),
        failure_message=bindparam("message"),
    )
    .returning(_ATTEMPTS.c.id)
)
"""The outcome goes onto the attempt only while it is unfinished: one conditional UPDATE
(the row stays locked until the transaction ends), so of two workers recording the same
attempt one writes it and the other is told it was already written."""
_CHECKOUT = select(CheckoutSession).where(
    CheckoutSession.provider_checkout_id == bindparam("checkout_id")
)


def clear_default_methods(session: Session, organization_id: int) -> None:
    """None of the organization's payment methods is its default any more."""
    session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.organization_id == organization_id)
        .values(is_default=False)
    )


def default_method(session: Session, organization_id: int) -> PaymentMethod | None:
    """The organization's default payment method (the newest, should there be several)."""
    return session.scalars(_DEFAULT_METHOD, {"organization_id": organization_id}).first()


def locked_invoice(session: Session, invoice_id: int) -> Invoice | None:
    """session.get(Invoice, id, with_for_update=True), with a statement built once: the
    invoice locked for the transaction and read again from the database."""
    return session.scalars(_INVOICE_FOR_UPDATE, {"invoice_id": invoice_id}).first()


def attempts_of(session: Session, invoice_id: int) -> Sequence[PaymentAttempt]:
    """The invoice's payment attempts, oldest first."""
    return session.scalars(_ATTEMPTS_OF, {"invoice_id": invoice_id}).all()


def insert_attempt(session: Session, values: dict[str, Any]) -> int:
    """A new payment attempt (a plain INSERT); its id."""
    attempt_id: int = session.execute(_NEW_ATTEMPT, values).scalar_one()
    return attempt_id


def record_attempt(
    session: Session,
    attempt_id: int,
    outcome: str,
    reference: str | None,
    code: str | None,
    message: str | None,
) -> bool:
    """The outcome of the attempt, written while it is unfinished; False when it was
    already written (by another worker)."""
    recorded = session.execute(
        _RECORD_ATTEMPT,
        {
            "attempt_id": attempt_id,
            "outcome": outcome,
            "reference": reference,
            "code": code,
            "message": message,
        },
    ).first()
    return recorded is not None


def checkout_session(session: Session, checkout_id: str) -> CheckoutSession:
    """The checkout session the provider knows as `checkout_id` (exactly one)."""
    return session.scalars(_CHECKOUT, {"checkout_id": checkout_id}).one()
