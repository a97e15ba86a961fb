"""The SQL of members' subscriptions to usage alerts (LIM-5).

Statements of fixed shape are built once per process, the values as parameters; the
ORM's bulk delete is built per call.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from tabkeeper.db.tables import Member
from tabkeeper.db.tables_notify import UsageAlertSubscription

_METERS = (
    select(UsageAlertSubscription.meter)
    .where(UsageAlertSubscription.member_id == bindparam("member"))
    .order_by(UsageAlertSubscription.meter)
)
_ADDRESSES = (
    select(Member.email)
    .join(UsageAlertSubscription, UsageAlertSubscription.member_id == Member.id)
    .where(
        UsageAlertSubscription.organization_id == bindparam("organization"),
        UsageAlertSubscription.meter == bindparam("meter"),
        Member.removed_at.is_(None),
        Member.email.is_not(None),
    )
    .order_by(Member.id)
)


def alert_meters(session: Session, member_id: int) -> list[str]:
    """The meters whose usage alerts the member subscribed to, in code order."""
    return list(session.scalars(_METERS, {"member": member_id}))


def drop_alert_meters(session: Session, member_id: int, meters: Sequence[str]) -> None:
    """The member no longer gets the usage alerts of `meters`."""
    session.execute(
        delete(UsageAlertSubscription).where(
            UsageAlertSubscription.member_id == member_id,
            UsageAlertSubscription.meter.in_(meters),
        )
    )


def subscriber_addresses(session: Session, organization_id: int, meter: str) -> list[str | None]:
    """The e-mail addresses of the organization's members (not removed) subscribed to
    `meter`'s alerts, in member order."""
    values = {"organization": organization_id, "meter": meter}
    return list(session.scalars(_ADDRESSES, values))
