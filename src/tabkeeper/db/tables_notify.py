"""Tables of notice delivery (NOT-1, NOT-2): webhook endpoints, and one delivery row per
notice and destination, so that nothing is sent twice to the same place for the same
notice and every try is on record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base


class WebhookEndpoint(Base):
    """A URL of the platform's that receives signed notices (Standard Webhooks)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    """"whsec_" + base64 of 24 random bytes; shown to the platform when created."""
    kinds: Mapped[str | None] = mapped_column(String(2000))
    """Space-separated notice kinds it wants; None for all."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Delivery(Base):
    """One notice to one destination: an e-mail address or a webhook endpoint.

    `message_id` is fixed when the row is made (the webhook-id header, the e-mail's
    Message-ID), so a resend after a crash carries the same id and the receiver can drop
    the duplicate."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notice_id", "channel", "destination"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    """email | webhook"""
    destination: Mapped[str] = mapped_column(String(2000))
    """The e-mail address, or the endpoint id for a webhook."""
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    """pending | sending | delivered | failed (gave up)"""
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class UsageAlertSubscription(Base):
    """A member who asked for the usage alerts of one meter (LIM-5): the notices
    usage.<meter>_50|80|100 of the member's organization also go to their address."""

    __tablename__ = "usage_alert_subscriptions"
    __table_args__ = (UniqueConstraint("member_id", "meter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    meter: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
