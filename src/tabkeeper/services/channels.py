"""Channels an organization connects (CAT-7, SUB-2, SUB-6).

A plan lists the channels it allows (`channels: [webchat, whatsapp]`) and how many may be
connected at once (`limits.channels`). Connecting asks the real-time check first (LIM-1,
`connect_channel`): a channel the plan lacks is refused with `channel_not_in_plan`, naming
the lowest plan that has it; one over the limit with `channel_limit_reached`. Sub-accounts
connect their own channels and count under their organization's limit (SUB-2). The
billing organization's subscription row is locked first, so concurrent connects of one
family take turns and never exceed the limit (on SQLite the write transaction does it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tabkeeper.db import channels as rows
from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_channels import ConnectedChannel
from tabkeeper.domain.catalog import Plan, Resource
from tabkeeper.domain.decisions import Action
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import family_ids
from tabkeeper.services.limits import check
from tabkeeper.services.subscriptions import billing_organization, subscription_of

CHANNEL_MAX = 64
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def channel_name(value: object) -> str:
    """`value` as a channel name (lower-case letters, digits, _ - .; 1 to 64 characters);
    anything else is InvalidInput (`invalid_channel`)."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= CHANNEL_MAX
        or not _CHANNEL.fullmatch(value)
    ):
        raise InvalidInput(
            f"channel: expected a channel name of 1 to {CHANNEL_MAX} lower-case letters, "
            f"digits, _ - or ., got {value!r}",
            code="invalid_channel",
        )
    return value


def known_channel(b: Billing, organization: Organization, channel: object) -> str:
    """A channel some plan of the organization's catalog lists; else `unknown_channel`."""
    name = channel_name(channel)
    subscription = subscription_of(b, organization, lock=False)
    if subscription is not None:
        catalog = b.catalog_of(subscription.catalog_version_id)
    else:
        catalog = b.current_catalog()[1]
    known = catalog.channels()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            f"channel: unknown channel {name!r}; the plans list: {listed}",
            code="unknown_channel",
        )
    return name


def connect_channel(b: Billing, organization: Organization, channel: object) -> ConnectedChannel:
    """CAT-7: connect `channel` for the organization, if its plan allows it and the
    family's connected channels are below `limits.channels`."""
    name = channel_name(channel)
    subscription_of(b, organization, lock=True)  # the family's connects take turns
    name = known_channel(b, organization, name)
    row = rows.channel_row(b.session, organization.id, name)
    if row is not None and row.status == "active":
        raise Refused(f"The {name} channel is connected already.", code="channel_connected")
    decision = check(b, organization, Action.CONNECT_CHANNEL, channel=name)
    if not decision.allowed:
        raise Refused(decision.message, code=decision.reason.value)
    if row is None:
        row = ConnectedChannel(
            organization_id=organization.id, channel=name, status="active", connected_at=b.now
        )
        b.session.add(row)
    else:
        row.status, row.connected_at, row.disconnected_at = "active", b.now, None
    b.session.flush()
    return row


def disconnect_channel(b: Billing, organization: Organization, channel: object) -> ConnectedChannel:
    """Disconnect `channel`: it frees its place (SUB-6). `channel_not_connected` when the
    organization has not connected it."""
    name = channel_name(channel)
    row = rows.channel_row(b.session, organization.id, name, active=True)
    if row is None:
        raise Refused(f"The {name} channel is not connected.", code="channel_not_connected")
    row.status, row.disconnected_at = "disconnected", b.now
    b.session.flush()
    return row


def connected_channels(b: Billing, organization: Organization) -> list[ConnectedChannel]:
    """The channels the organization itself has connected, oldest first."""
    return rows.connected(b.session, [organization.id])


def family_channels(b: Billing, organization: Organization) -> list[ConnectedChannel]:
    """The channels connected in the organization's family (its limit counts them)."""
    return rows.connected(b.session, family_ids(b, billing_organization(b, organization)))


@dataclass(frozen=True, slots=True)
class ChannelOverview:
    """CAT-7: what the organization has connected, what its plan allows, and how many of
    the family's places are taken (`limit` None: no limit beyond the plan's list)."""

    connected: list[ConnectedChannel]
    allowed: tuple[str, ...]
    in_use: int
    limit: int | None


def channel_overview(b: Billing, organization: Organization) -> ChannelOverview:
    subscription = subscription_of(b, organization, lock=False)
    allowed: tuple[str, ...] = ()
    limit = None
    if subscription is not None and subscription.state != "none":
        plan = b.catalog_of(subscription.catalog_version_id).plans.get(subscription.plan_code)
        if plan is not None:
            allowed, limit = plan.channels, plan.limit(Resource.CHANNELS)
    return ChannelOverview(
        connected_channels(b, organization),
        allowed,
        len(family_channels(b, organization)),
        limit,
    )


def require_channels_in(b: Billing, organization: Organization, plan: Plan) -> None:
    """CAT-7, SUB-6: a change to a plan that does not list a channel the family has
    connected is refused (`channel_not_in_plan`) until it is disconnected, naming it."""
    missing = sorted({row.channel for row in family_channels(b, organization)} - set(plan.channels))
    if not missing:
        return
    names = " and ".join(", ".join(missing).rsplit(", ", 1))
    noun = "channel" if len(missing) == 1 else "channels"
    pronoun = "it" if len(missing) == 1 else "them"
    raise Refused(
        f"{plan.name} does not include the {names} {noun}; disconnect {pronoun} first.",
        code="channel_not_in_plan",
    )
