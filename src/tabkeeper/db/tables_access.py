"""Tables of access to the API: platform API keys and idempotent POSTs (ACL-3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base


class ApiKey(Base):
    """A platform's API key: shown once, stored as a SHA-256 hash with its prefix."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    """The first characters of the key, to tell keys apart in lists; not a secret."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IdempotentRequest(Base):
    """The first response to a POST with an Idempotency-Key, replayed for 24 hours."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (
        UniqueConstraint("caller", "key"),
        Index("ix_idempotent_requests_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(100))
    """Whose key it is: "platform:<id>" or "member:<org id>:<member>"."""
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
