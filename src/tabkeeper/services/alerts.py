"""Members' subscriptions to usage alerts (LIM-5).

The usage alerts are the notices usage.<meter>_50, _80 and _100 that metering raises
once per period when a meter with included units passes that share (USE-7). The owner
and billing admins always get them (notify/fanout.py); any member, plain members too,
may subscribe to the alerts of chosen meters, which sends those notices to their e-mail
address as well. A member's choice is a set of meter codes of the platform's catalog,
set as a whole (what is left out is unsubscribed); it belongs to the member's own
organization, whose usage notices it follows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from tabkeeper.db import alerts
from tabkeeper.db.tables import Member, Organization
from tabkeeper.db.tables_notify import UsageAlertSubscription
from tabkeeper.domain.errors import InvalidInput, NotFound
from tabkeeper.notify.email import can_receive
from tabkeeper.services.context import Billing
from tabkeeper.services.organizations import current_member


class UnknownMeter(InvalidInput):
    code = "unknown_meter"


def _member(b: Billing, organization: Organization, member: str) -> Member:
    found = current_member(b, organization, member)
    if found is None:
        raise NotFound(f"No member {member!r} in {organization.code}.")
    return found


def alert_meters(b: Billing, organization: Organization, member: str) -> list[str]:
    """The meters whose usage alerts `member` subscribed to, in code order."""
    row = _member(b, organization, member)
    return alerts.alert_meters(b.session, row.id)


def set_alert_meters(
    b: Billing, organization: Organization, member: str, meters: Sequence[object]
) -> list[str]:
    """LIM-5: `member` gets the usage alerts of exactly `meters` from now on. Refused, with
    nothing changed: a value that is not a meter code of the catalog (named), a member
    who is not in the organization."""
    row = _member(b, organization, member)
    _, catalog = b.current_catalog()
    wanted: set[str] = set()
    for index, meter in enumerate(meters):
        if not isinstance(meter, str) or meter not in catalog.meters:
            known = ", ".join(sorted(catalog.meters)) or "none"
            raise UnknownMeter(f"meters[{index}]: {meter!r} is not a meter (meters: {known}).")
        wanted.add(meter)
    have = set(alert_meters(b, organization, member))
    if have - wanted:
        alerts.drop_alert_meters(b.session, row.id, sorted(have - wanted))
    for meter in sorted(wanted - have):
        b.session.add(
            UsageAlertSubscription(
                organization_id=organization.id, member_id=row.id, meter=meter, created_at=b.now
            )
        )
    b.session.flush()
    return sorted(wanted)


def alert_subscribers(session: Session, organization_id: int, meter: str) -> list[str]:
    """The e-mail addresses of the organization's members subscribed to `meter`'s alerts
    (members removed since, or without an address, get nothing)."""
    addresses = alerts.subscriber_addresses(session, organization_id, meter)
    return [address.strip() for address in addresses if address and can_receive(address.strip())]
