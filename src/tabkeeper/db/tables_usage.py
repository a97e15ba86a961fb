"""Tables of metered usage (USE-1..7, LIM-3, LIM-4): counters kept up to date as events
arrive, so that current numbers are read in constant time (DESIGN.md rule 7).

Quantities are integers of millionths of a unit (`SCALE`), so that counters can be added
to atomically (`quantity = quantity + :delta`) on SQLite and PostgreSQL alike and stay
exact. Events carry at most six decimals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base
from tabkeeper.domain.ingestion import SCALE

__all__ = ["SCALE", "BillingPeriod", "Conversation", "UsageCounter", "UsageUniqueValue"]


class BillingPeriod(Base):
    """A period an organization was billed by: its trial, then each paid period. Usage
    counts in the period that contains it (USE-6), also when it arrives late."""

    __tablename__ = "billing_periods"
    __table_args__ = (UniqueConstraint("organization_id", "start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    start: Mapped[datetime]
    end: Mapped[datetime]


class UsageCounter(Base):
    """One meter's quantity in one period, for the whole organization (scope "") or a
    part of it: a sub-account ("org:<id>") or an agent ("agent:<code>") (SUB-2, CRD-4).

    `quantity` is in millionths; for billable sessions it counts every window and
    `answered` the answered ones (USE-4)."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("organization_id", "meter", "period_start", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    meter: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime]
    scope: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    answered: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageUniqueValue(Base):
    """The values a unique-count meter has seen in a period (CAT-3)."""

    __tablename__ = "usage_unique_values"
    __table_args__ = (UniqueConstraint("organization_id", "meter", "period_start", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    meter: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime]
    value: Mapped[str] = mapped_column(String(200))


class Conversation(Base):
    """A conversation's billable windows (USE-3): domain/conversations.py's bounded state
    (a lateness floor and the windows that may still change), stored, so that each
    message updates the count without reading the history."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("organization_id", "conversation"),
        Index("ix_conversations_billing_organization_id", "billing_organization_id"),
        Index(
            "ix_conversations_billing_organization_held", "billing_organization_id", "held_since"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    billing_organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    conversation: Mapped[str] = mapped_column(String(200))
    agent: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    held_since: Mapped[datetime | None]
    """LIM-7: on an answered-only plan, the start of the latest window while it has no
    reply yet (it holds a place under the session limit until start + 24 h)."""
