"""The sandbox payment provider's own tables (PAY-1), and the queries on them.

The sandbox plays a remote provider, so it keeps its records apart from tabkeeper's
billing tables (prefix `sandbox_`): saved payment methods, charges and hosted checkouts.
A payment method stores brand and last 4 digits only, never a whole card number (PAY-2).
Money is integer minor units plus an ISO currency code. Each table has an integer key
that orders rows as they were written, and the provider's public id ("pm_sbx_...",
"ch_sbx_...", "cs_sbx_...") as a unique column. `sandbox_charges.idempotency_key` is
UNIQUE: that is what makes a second charge for the same key impossible, even when two
processes race (DESIGN.md rule 6).

These tables join `tabkeeper.db.tables.Base.metadata` when this module is imported.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tabkeeper.db.tables import Base

ID_LENGTH = 64
"""Of the provider's ids: tokens, charge ids, checkout ids."""
CUSTOMER_LENGTH = 200
IDEMPOTENCY_KEY_LENGTH = 255
DESCRIPTION_LENGTH = 500
REFERENCE_LENGTH = 200
URL_LENGTH = 2000


class SandboxPaymentMethod(Base):
    """A test card saved for a customer: which kind of test card, brand, last 4, expiry."""

    __tablename__ = "sandbox_payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    customer: Mapped[str] = mapped_column(String(CUSTOMER_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int]
    exp_year: Mapped[int]
    created_at: Mapped[datetime]


class SandboxCharge(Base):
    """One charge of a saved payment method, succeeded or declined; one per idempotency key."""

    __tablename__ = "sandbox_charges"

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH), unique=True)
    customer: Mapped[str] = mapped_column(String(CUSTOMER_LENGTH), index=True)
    token: Mapped[str] = mapped_column(ForeignKey("sandbox_payment_methods.token"))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_LENGTH))
    succeeded: Mapped[bool]
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class SandboxCheckout(Base):
    """A hosted checkout: open until completed, declined, or past `expires_at`."""

    __tablename__ = "sandbox_checkouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkout_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    customer: Mapped[str] = mapped_column(String(CUSTOMER_LENGTH), index=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(REFERENCE_LENGTH))
    return_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    token: Mapped[str | None] = mapped_column(ForeignKey("sandbox_payment_methods.token"))
    charge_id: Mapped[str | None] = mapped_column(ForeignKey("sandbox_charges.charge_id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


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
