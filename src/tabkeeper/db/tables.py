"""The tables. Mapped classes use lazy="raise" so that no query hides in an attribute.

Constraint names follow one convention, so that migrations name them the same way on
SQLite and PostgreSQL. Unique constraints carry the idempotency of the billing clock
(INV-4): one invoice per source (`invoices.source_key`), one charge per attempt
(`payment_attempts.idempotency_key`), one notice per event (`notices.dedupe_key`), one due
item per piece of work (`due_work.subject_key`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tabkeeper.db.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}  # noqa: RUF012


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


class Platform(Base):
    """A business that runs tabkeeper: it holds API keys, a catalog and billing terms."""

    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The `settings` document (domain/terms.py reads it)."""
    portal_secret: Mapped[str | None] = mapped_column(String(64))
    """Signs the platform's portal sessions (hex of 32 random bytes, made on first use)."""
    last_invoice_number: Mapped[int] = mapped_column(default=0)
    """Invoice numbers are gapless per platform (INV-2): the next is this plus one,
    taken by an UPDATE of this row in the invoice's own transaction."""
    last_credit_note_number: Mapped[int] = mapped_column(default=0, server_default="0")
    """Credit note numbers are gapless per platform too (INV-5), taken the same way."""


class CatalogVersion(Base):
    """A catalog as imported (CAT-6): a change makes a new version; subscriptions keep
    the version they were priced with until a change is applied to them."""

    __tablename__ = "catalog_versions"
    __table_args__ = (UniqueConstraint("platform_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(_fk("platforms.id"))
    version: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Organization(Base):
    """A platform's customer (tenant). Sub-accounts share their parent's subscription."""

    __tablename__ = "organizations"
    __table_args__ = (UniqueConstraint("platform_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(_fk("platforms.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(_fk("organizations.id"), index=True)
    created_at: Mapped[datetime]
    account_credit_minor: Mapped[int] = mapped_column(default=0)
    """Money owed back to the organization (SUB-5), applied to its next invoices."""
    trial_used: Mapped[bool] = mapped_column(Boolean, default=False)
    """TRI-4: one trial per organization, ever."""
    purged_at: Mapped[datetime | None]


class Member(Base):
    """A person of an organization with a role (ACL-1): owner, billing_admin, member."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    code: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    sessions: Mapped[int] = mapped_column(server_default="0")
    """The number of this member's current portal sessions: a token made with another is
    refused. Removing, re-adding and logging out add one (ACL-3; migration 0014)."""


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    """active | archived"""
    created_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (UniqueConstraint("organization_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    """active | released"""
    added_at: Mapped[datetime]
    released_at: Mapped[datetime | None]


class PaymentMethod(Base):
    """A saved card: brand and last 4 only, never a whole number (PAY-2)."""

    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(128))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int]
    exp_year: Mapped[int]
    is_default: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class Subscription(Base):
    """An organization's subscription: one row per organization, reused when it subscribes
    again; its history says what happened."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    plan_code: Mapped[str] = mapped_column(String(64))
    catalog_version_id: Mapped[int] = mapped_column(ForeignKey("catalog_versions.id"))
    anchor: Mapped[datetime]
    period_index: Mapped[int]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    trial_ends_at: Mapped[datetime | None]
    trial_sessions: Mapped[int | None]
    grace_ends_at: Mapped[datetime | None]
    retention_ends_at: Mapped[datetime | None]
    session_limit: Mapped[int | None]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(20))
    """Why it ended (domain/lifecycle.py ENDED_REASONS): canceled, unpaid, trial_ended."""
    # CAT-9: a price the platform negotiated for the plan `price_plan` (it holds while the
    # subscription is on that plan; otherwise, and when None, the catalog's price of
    # `catalog_version_id`), and how invoices are collected: "card" (charged to the card
    # on file) or "invoice" (left open until marked paid).
    price_minor: Mapped[int | None]
    price_plan: Mapped[str | None] = mapped_column(String(64))
    collection: Mapped[str] = mapped_column(String(20), default="card", server_default="card")
    # -- issue 17 (SUB-15): in a plan's own trial, converting into it at its end (0020)
    trial_converts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SubscriptionAddon(Base):
    """Add-on slots of a subscription; removals wait for the next billing date (ADD-3)."""

    __tablename__ = "subscription_addons"
    __table_args__ = (UniqueConstraint("subscription_id", "addon_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(_fk("subscriptions.id"))
    addon_code: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    quantity_next_period: Mapped[int]


class ScheduledChange(Base):
    """A plan change waiting for its time or for approval (SUB-4): the Upcoming card."""

    __tablename__ = "scheduled_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(_fk("subscriptions.id"), index=True)
    plan_code: Mapped[str] = mapped_column(String(64))
    catalog_version_id: Mapped[int] = mapped_column(ForeignKey("catalog_versions.id"))
    timing: Mapped[str] = mapped_column(String(20))
    effective_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))
    """awaiting_approval | scheduled | applied | canceled | failed"""
    is_upgrade: Mapped[bool] = mapped_column(Boolean)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class SubscriptionHistory(Base):
    __tablename__ = "subscription_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(_fk("subscriptions.id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    plan_code: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(40))


class Invoice(Base):
    """An invoice (INV-2). Finalized invoices have a gapless number and never change but
    for their status; `source_key` makes a second invoice for the same thing impossible."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("platform_id", "source_key"),
        UniqueConstraint("platform_id", "number"),
        Index("ix_invoices_organization_status", "organization_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(_fk("platforms.id"))
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    source_key: Mapped[str] = mapped_column(String(200))
    number: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    """draft | open | paid | void | uncollectible"""
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int]
    credit_applied_minor: Mapped[int]
    amount_due_minor: Mapped[int]
    issued_at: Mapped[datetime]
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    paid_via: Mapped[str | None] = mapped_column(String(20))
    """How a paid invoice was settled when not by the provider or account credit (INV-5):
    "out_of_band" (marked paid by the platform), "credit_note" (credited down to nothing
    due); None otherwise."""
    disputed_at: Mapped[datetime | None]
    """PAY-3: when the provider reported a dispute of its payment (charge.dispute.created)."""


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(_fk("invoices.id"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[str] = mapped_column(String(40))
    unit_amount: Mapped[str | None] = mapped_column(String(40))
    amount_minor: Mapped[int]
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    details: Mapped[dict[str, Any]]


class PaymentAttempt(Base):
    """One try to collect an invoice. The idempotency key goes to the provider, so a rerun
    after a crash gets the first result back instead of charging again (INV-4)."""

    __tablename__ = "payment_attempts"
    __table_args__ = (UniqueConstraint("invoice_id", "attempt_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(_fk("invoices.id"))
    attempt_no: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    """processing | succeeded | failed"""
    amount_minor: Mapped[int]
    provider: Mapped[str | None] = mapped_column(String(32))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(300))
    attempted_at: Mapped[datetime]


class DueWork(Base):
    """Work the billing clock must do at `due_at` (renewal, trial end, retry, ...).

    Found by query, claimed (PostgreSQL: FOR UPDATE SKIP LOCKED), done in the same
    transaction as its effects; `subject_key` is unique so the same work is never queued
    twice."""

    __tablename__ = "due_work"
    __table_args__ = (Index("ix_due_work_status_due_at_id", "status", "due_at", "id"),)
    """The claim reads pending work in (due_at, id) order straight from this index."""

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject_key: Mapped[str] = mapped_column(String(200), unique=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"), index=True)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    """pending | running | done | canceled"""
    claimed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class Notice(Base):
    """The outbox (NOT-1): written in the transaction of the change it tells about; sent
    by the dispatcher. One per (organization, kind, dedupe key)."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("organization_id", "kind", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(_fk("platforms.id"))
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    kind: Mapped[str] = mapped_column(String(60))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    fanned_out_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the dispatcher made this notice's delivery rows (None: not yet)."""


class UsageEventRow(Base):
    """A usage event (USE-1), append-only, keyed by (organization, client event id)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("organization_id", "client_id"),
        Index("ix_events_organization_type_time", "organization_id", "type", "time"),
        Index("ix_events_organization_conversation_time", "organization_id", "conversation",
              "time"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"))
    client_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    conversation: Mapped[str | None] = mapped_column(String(200))
    time: Mapped[datetime]
    properties: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Left out of billable sessions: the message arrived before its conversation's
    lateness floor (domain/conversations.py); every other meter counts it."""


class DemoRequest(Base):
    """A request for a sales-led plan (CAT-2: "Book a demo")."""

    __tablename__ = "demo_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"), index=True)
    plan_code: Mapped[str] = mapped_column(String(64))
    member: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # CAT-9: "pending" until the organization is assigned the plan, then "handled".
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    handled_at: Mapped[datetime | None]


class CheckoutSession(Base):
    """Subscribing to a paid plan goes through the provider's checkout (SUB-3)."""

    __tablename__ = "checkout_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id"), index=True)
    plan_code: Mapped[str] = mapped_column(String(64))
    catalog_version_id: Mapped[int] = mapped_column(ForeignKey("catalog_versions.id"))
    addons: Mapped[dict[str, Any]]
    provider: Mapped[str] = mapped_column(String(32))
    provider_checkout_id: Mapped[str] = mapped_column(String(128), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    amount_minor: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    """open | completed | declined | expired"""
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    anchor_day: Mapped[int | None] = mapped_column(SmallInteger)
    """SUB-16: the billing anchor asked for (a day of the month), or none (0020)."""
