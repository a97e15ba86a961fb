"""Tables of prepaid AI credits (CRD-1..4): the balance of each billing organization, its
grants, and the append-only ledger of entries (domain/ledger.py).

`credit_balances` holds one row per billing organization, so that a use is one
conditional `UPDATE … WHERE balance >= cost RETURNING` (CRD-3: never below zero, also
under concurrent uses); the row also says until when nothing is due (`period_key`,
`refresh_at`), so the common use needs no other read. The balance always equals the sum
of the organization's entries and the sum of `remaining` over its unexpired grants.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base


class CreditBalance(Base):
    """The credit balance of a billing organization (CRD-1)."""

    __tablename__ = "credit_balances"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[int] = mapped_column(default=0)
    """How many grants there have been: an exhaustion is told once per epoch."""
    period_key: Mapped[str] = mapped_column(String(100), default="")
    """The subscription period whose included credits were last looked at ("" none)."""
    refresh_at: Mapped[datetime | None]
    """When a grant next expires (None: none will); until then nothing is due."""
    owed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """CRD-5: what settles above the balance left unpaid; the next top-up repays it first."""
    low_threshold: Mapped[int | None] = mapped_column(BigInteger)
    held: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """CRD-5: the credits open holds reserve (not in `balance`), shown apart."""
    """CRD-7: `credits.low` is told when the balance falls below it (None: no alert)."""
    spend_cap: Mapped[int | None] = mapped_column(BigInteger)
    """LIM-6: the cap on what is charged beyond the plan in a period, in minor units of the
    platform's currency (None: no cap)."""
    spend_key: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """LIM-6: the subscription period the spend counters below are for ("" none yet)."""
    spent_overage: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """LIM-6: overage accrued in that period at its price (kept while a cap is set)."""
    spent_purchases: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """LIM-6: credit purchases and auto top-ups charged in that period."""
    auto_threshold: Mapped[int | None] = mapped_column(BigInteger)
    """CRD-6: a use taking the balance below it buys `auto_credits` (None: off)."""
    auto_credits: Mapped[int | None] = mapped_column(BigInteger)
    auto_pending: Mapped[str | None] = mapped_column(String(100))
    """CRD-6: the key of the one auto top-up in flight (None: none)."""


class CreditGrant(Base):
    """Credits granted at once: a top-up, a period's included credits, an adjustment.
    `remaining` is what is left of them, never below zero."""

    __tablename__ = "credit_grants"
    __table_args__ = (UniqueConstraint("organization_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    """purchased | included | adjustment"""
    source_key: Mapped[str] = mapped_column(String(200))
    """What the grant is for: "top_up:<n>", "included:<subscription>:<period start>"."""
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    priority: Mapped[int]
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(String(200))


class CreditEntry(Base):
    """One change of a balance, never changed afterwards (CRD-2): a grant (+), a use (−)
    or an expiry (−). A use names its feature, agent and the organization that used it
    (a sub-account, or the billing organization itself), and `parts` the grants that paid
    for it ([[grant id, credits], …])."""

    __tablename__ = "credit_entries"
    __table_args__ = (
        UniqueConstraint("organization_id", "entry_key"),
        Index("ix_credit_entries_organization_id_at", "organization_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(String(250))
    """Unique per organization: "use:<org id>:<use id>", "grant:<grant id>",
    "expiry:<grant id>"; a use reported twice is taken once."""
    kind: Mapped[str] = mapped_column(String(20))
    """grant | use | expiry | hold | release | repayment"""
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("credit_grants.id", ondelete="CASCADE"))
    """The grant of a grant or expiry entry; the first grant that paid for a use."""
    parts: Mapped[list[Any] | None] = mapped_column(JSON)
    feature: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    uses: Mapped[int | None]
    used_by_id: Mapped[int | None]
    """The organization whose agent used the credits (a sub-account shares its parent's)."""
    shortfall: Mapped[int | None] = mapped_column(BigInteger)
    """CRD-5: on the use entry of a settle, the credits the balance could not cover."""


class CreditHold(Base):
    """CRD-5: credits reserved for an AI call of unknown cost. Its credits left the
    balance (and the grants in `parts`, [[grant id, credits], …]) when it was made, with a
    `hold` entry; a settle or a release puts them back (a `release` entry) and a settle
    then takes the real cost (a `use` entry). `state`: held | settled | released | expired."""

    __tablename__ = "credit_holds"
    __table_args__ = (Index("ix_credit_holds_organization_id_state", "organization_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    """The billing organization whose credits are held."""
    used_by_id: Mapped[int]
    feature: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    credits: Mapped[int] = mapped_column(BigInteger)
    parts: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    settled_credits: Mapped[int | None] = mapped_column(BigInteger)
    shortfall: Mapped[int | None] = mapped_column(BigInteger)
