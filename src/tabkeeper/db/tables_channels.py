"""The channels an organization has connected (CAT-7): one row per (organization,
channel), made on the first connect and kept after a disconnect (`disconnected_at`), so a
reconnect reuses it. Sub-accounts connect their own; they count under the billing
organization's `limits.channels` (SUB-2), like agents.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base


class ConnectedChannel(Base):
    """A channel (webchat, whatsapp, ...) of an organization; connected while
    `status` is active."""

    __tablename__ = "connected_channels"
    __table_args__ = (UniqueConstraint("organization_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    """active | disconnected"""
    connected_at: Mapped[datetime]
    disconnected_at: Mapped[datetime | None]
