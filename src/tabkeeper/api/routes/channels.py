"""Channels an organization connects (CAT-7): connect, disconnect, list.

Connecting asks the real-time check first (`connect_channel`): a channel the plan lacks is
a 409 `channel_not_in_plan` naming the lowest plan that has it, one over `limits.channels`
a 409 `channel_limit_reached`. A name no plan lists is a 400 `unknown_channel`, a name that
is no channel name at all a 400 `invalid_channel`; disconnecting one that is not connected
a 409 `channel_not_connected`. Owner, billing admin or the platform's key; another
organization is a 404. Nothing changes on a refusal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.schemas import Code, Strict
from tabkeeper.db.tables_channels import ConnectedChannel
from tabkeeper.services import channels as service
from tabkeeper.services.access import organization_for

router = APIRouter(tags=["channels"])


class ChannelIn(Strict):
    organization: Code
    channel: str = Field(
        max_length=1000, description="The channel's name as the catalog's plans list it."
    )


class Channel(BaseModel):
    organization: str
    channel: str
    status: Literal["active", "disconnected"]
    connected_at: datetime
    disconnected_at: datetime | None


class Channels(BaseModel):
    """The channels the organization has connected, the ones its plan allows, and how
    many of its plan's places its family (sub-accounts included) takes."""

    organization: str
    connected: list[Channel]
    allowed: list[str]
    in_use: int
    limit: int | None


def show(organization: str, row: ConnectedChannel) -> Channel:
    return Channel(
        organization=organization,
        channel=row.channel,
        status="active" if row.status == "active" else "disconnected",
        connected_at=row.connected_at,
        disconnected_at=row.disconnected_at,
    )


@router.post("/channels", status_code=status.HTTP_201_CREATED, operation_id="channels.connect")
def connect_channel(body: ChannelIn, api: ApiDep, caller: CallerDep) -> Channel:
    """Connect a channel (CAT-7); 409 `channel_not_in_plan`, `channel_limit_reached` or
    `channel_connected`."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = organization_for(b, caller, body.organization)
        return show(organization.code, service.connect_channel(b, organization, body.channel))


@router.delete("/channels/{channel}", operation_id="channels.disconnect")
def disconnect_channel(
    channel: str, organization: Annotated[str, Query(max_length=64)], api: ApiDep, caller: CallerDep
) -> Channel:
    """Disconnect a channel: it frees its place (SUB-6); 409 `channel_not_connected`."""
    caller.require_billing()
    with api.billing(caller) as b:
        found = organization_for(b, caller, organization)
        return show(found.code, service.disconnect_channel(b, found, channel))


@router.get("/channels", operation_id="channels.list")
def list_channels(
    organization: Annotated[str, Query(max_length=64)], api: ApiDep, caller: CallerDep
) -> Channels:
    caller.require_billing()
    with api.reading(caller) as b:
        found = organization_for(b, caller, organization)
        overview = service.channel_overview(b, found)
        return Channels(
            organization=found.code,
            connected=[show(found.code, row) for row in overview.connected],
            allowed=list(overview.allowed),
            in_use=overview.in_use,
            limit=overview.limit,
        )
