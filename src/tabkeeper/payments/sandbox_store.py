"""The sandbox payment provider's queries on its own tables (PAY-1).

The tables (prefix `sandbox_`, kept apart from tabkeeper's billing tables because the
sandbox plays a remote provider) are defined with the rest of the schema in
db/tables_sandbox.py; their names are re-exported here for the provider.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tabkeeper.db.tables_sandbox import (
    CUSTOMER_LENGTH,
    DESCRIPTION_LENGTH,
    ID_LENGTH,
    IDEMPOTENCY_KEY_LENGTH,
    REFERENCE_LENGTH,
    URL_LENGTH,
    SandboxCharge,
    SandboxCheckout,
    SandboxPaymentMethod,
    SandboxRefund,
)

__all__ = [
    "CUSTOMER_LENGTH",
    "DESCRIPTION_LENGTH",
    "IDEMPOTENCY_KEY_LENGTH",
    "ID_LENGTH",
    "REFERENCE_LENGTH",
    "URL_LENGTH",
    "SandboxCharge",
    "SandboxCheckout",
    "SandboxPaymentMethod",
    "SandboxRefund",
    "charge_by_id",
    "charge_by_key",
    "charge_or_none",
    "charges_of",
    "checkout",
    "payment_method",
    "refund_by_key",
    "refunded_of",
    "refunds_of",
    "saved_payment_method",
]


def payment_method(session: Session, token: str) -> SandboxPaymentMethod | None:
    return session.scalars(
        select(SandboxPaymentMethod).where(SandboxPaymentMethod.token == token)
    ).one_or_none()


def saved_payment_method(session: Session, token: str) -> SandboxPaymentMethod:
    """The payment method `token` that a charge or checkout refers to (it exists)."""
    return session.scalars(
        select(SandboxPaymentMethod).where(SandboxPaymentMethod.token == token)
    ).one()


def charge_by_key(session: Session, idempotency_key: str) -> SandboxCharge | None:
    return session.scalars(
        select(SandboxCharge).where(SandboxCharge.idempotency_key == idempotency_key)
    ).one_or_none()


def charge_by_id(session: Session, charge_id: str) -> SandboxCharge:
    return session.scalars(select(SandboxCharge).where(SandboxCharge.charge_id == charge_id)).one()


def charges_of(session: Session, customer: str) -> list[SandboxCharge]:
    return list(
        session.scalars(
            select(SandboxCharge)
            .where(SandboxCharge.customer == customer)
            .order_by(SandboxCharge.id)
        )
    )


def checkout(
    session: Session, checkout_id: str, *, for_update: bool = False
) -> SandboxCheckout | None:
    """The checkout `checkout_id`; `for_update` locks its row until the transaction ends
    (PostgreSQL; SQLite's BEGIN IMMEDIATE already lets one writer in at a time)."""
    query = select(SandboxCheckout).where(SandboxCheckout.checkout_id == checkout_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def charge_or_none(session: Session, charge_id: str) -> SandboxCharge | None:
    return session.scalars(
        select(SandboxCharge).where(SandboxCharge.charge_id == charge_id)
    ).one_or_none()


def refund_by_key(session: Session, idempotency_key: str) -> SandboxRefund | None:
    return session.scalars(
        select(SandboxRefund).where(SandboxRefund.idempotency_key == idempotency_key)
    ).one_or_none()


def refunded_of(session: Session, charge_id: str) -> int:
    """How much of the charge `charge_id` was refunded so far, in minor units."""
    refunded = session.scalar(
        select(func.coalesce(func.sum(SandboxRefund.amount_minor), 0)).where(
            SandboxRefund.charge_id == charge_id
        )
    )
    return int(refunded or 0)


def refunds_of(session: Session, charge_id: str) -> list[SandboxRefund]:
    return list(
        session.scalars(
            select(SandboxRefund)
            .where(SandboxRefund.charge_id == charge_id)
            .order_by(SandboxRefund.id)
        )
    )
