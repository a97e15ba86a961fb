"""The SQL of connected channels (CAT-7): an organization's row for a channel, and how
many channels a family of organizations has connected (SUB-2)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tabkeeper.db.tables_channels import ConnectedChannel


def channel_row(
    session: Session, organization_id: int, channel: str, *, active: bool = False
) -> ConnectedChannel | None:
    """The organization's row for `channel` (only a connected one when `active`)."""
    query = select(ConnectedChannel).where(
        ConnectedChannel.organization_id == organization_id, ConnectedChannel.channel == channel
    )
    if active:
        query = query.where(ConnectedChannel.status == "active")
    return session.scalars(query).first()


def connected(session: Session, ids: Sequence[int]) -> list[ConnectedChannel]:
    """The channels the organizations `ids` have connected now, oldest first."""
    return list(
        session.scalars(
            select(ConnectedChannel)
            .where(ConnectedChannel.organization_id.in_(ids), ConnectedChannel.status == "active")
            .order_by(ConnectedChannel.connected_at, ConnectedChannel.id)
        )
    )


def count_connected(session: Session, ids: Sequence[int]) -> int:
    """How many channels the organizations `ids` have connected now."""
    found = session.scalar(
        select(func.count()).where(
            ConnectedChannel.organization_id.in_(ids), ConnectedChannel.status == "active"
        )
    )
    return found or 0
