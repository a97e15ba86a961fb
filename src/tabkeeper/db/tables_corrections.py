"""The tables of corrections (INV-5): credit notes, their lines, and refunds.

A credit note is a finalized document like an invoice: a gapless number per platform
(`platforms.last_credit_note_number`, taken in the credit note's own transaction), lines
whose amounts add up exactly to its total, and it never changes afterwards but for the
outcome of its refund. Its total is split three ways, each an integer in minor units:
`refund_minor` (back to the card through the provider), `credited_minor` (to the
organization's account credit, SUB-5) and `applied_minor` (taken off the amount due of
the open invoice it credits); the three add up to `total_minor`.

A refund crosses the provider, so it is written like a payment (services/payments.py):
the row is claimed with its idempotency key in the credit note's transaction, the
provider is called with no transaction open, and the outcome is recorded after.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


class CreditNote(Base):
    """A credit note against one finalized invoice (INV-5)."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("platform_id", "number"),
        Index("ix_credit_notes_invoice_id", "invoice_id"),
        Index("ix_credit_notes_organization_id", "organization_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(_fk("platforms.id"))
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    invoice_id: Mapped[int] = mapped_column(_fk("invoices.id"))
    number: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int]
    refund_minor: Mapped[int]
    """Refunded through the provider (0 when nothing is, or when the refund failed)."""
    credited_minor: Mapped[int]
    """Added to the organization's account credit."""
    applied_minor: Mapped[int]
    """Taken off the amount due of the (open) invoice."""
    refund_status: Mapped[str | None] = mapped_column(String(20))
    """None (no refund asked) | processing | succeeded | failed"""
    reason: Mapped[str | None] = mapped_column(String(300))
    issued_at: Mapped[datetime]


class CreditNoteLine(Base):
    """One line of a credit note: an amount credited against one invoice line (its
    0-based `invoice_line`), or against the invoice as a whole (`invoice_line` None)."""

    __tablename__ = "credit_note_lines"
    __table_args__ = (UniqueConstraint("credit_note_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_note_id: Mapped[int] = mapped_column(_fk("credit_notes.id"))
    position: Mapped[int]
    invoice_line: Mapped[int | None]
    description: Mapped[str] = mapped_column(String(300))
    amount_minor: Mapped[int]


class Refund(Base):
    """The refund of a credit note through the provider, claimed before the provider is
    called (its idempotency key goes to the provider: a rerun never refunds twice)."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_note_id: Mapped[int] = mapped_column(_fk("credit_notes.id"), unique=True)
    invoice_id: Mapped[int] = mapped_column(_fk("invoices.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    """processing | succeeded | failed"""
    amount_minor: Mapped[int]
    charge_reference: Mapped[str] = mapped_column(String(128))
    """The provider's id of the charge refunded."""
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(300))
    attempted_at: Mapped[datetime]


class AccountCreditGrant(Base):
    """Goodwill account credit the platform granted (INV-5): how much, and why."""

    __tablename__ = "account_credit_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"), index=True)
    amount_minor: Mapped[int]
    reason: Mapped[str | None] = mapped_column(String(300))
    granted_at: Mapped[datetime]
