"""The sandbox payment provider's own tables (PAY-1).

The sandbox plays a remote provider, so it keeps its records apart from tabkeeper's
billing tables (prefix `sandbox_`): saved payment methods, charges, refunds and hosted
checkouts.
A payment method stores brand and last 4 digits only, never a whole card number (PAY-2).
Money is integer minor units plus an ISO currency code. Each table has an integer key
that orders rows as they were written, and the provider's public id ("pm_sbx_...",
"ch_sbx_...", "cs_sbx_...") as a unique column. `sandbox_charges.idempotency_key` is
UNIQUE: that is what makes a second charge for the same key impossible, even when two
processes race (DESIGN.md rule 6).

They are part of the one schema (db/schema.py) and its migrations; the provider's queries
on them are in payments/sandbox_store.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

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


class SandboxRefund(Base):
    """A refund of (part of) a succeeded charge; one per idempotency key."""

    __tablename__ = "sandbox_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH), unique=True)
    charge_id: Mapped[str] = mapped_column(ForeignKey("sandbox_charges.charge_id"), index=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime]
