"""Usage alert subscriptions (LIM-5): a member reads and sets the meters whose usage
alerts (usage.<meter>_50|80|100) are also e-mailed to them.

Who: any member, for themselves (plain members too: alerts carry no billing data beyond
the usage share), through their portal session; or the platform's key, naming the member.
A member naming another member is 403; another organization is 404 (ACL-3).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.schemas import Code, Strict
from tabkeeper.domain.errors import Forbidden, InvalidInput
from tabkeeper.notify.kinds import USAGE_THRESHOLDS
from tabkeeper.services import alerts as service
from tabkeeper.services.access import Caller, organization_for

router = APIRouter(tags=["usage"])


class AlertsIn(Strict):
    organization: Code
    member: Code | None = Field(
        default=None, description="The member; only with the platform's key (a member: self)."
    )
    meters: Annotated[list[Code], Field(max_length=100)] = Field(
        description="Meter codes whose alerts the member wants; [] unsubscribes from all."
    )


class Alerts(BaseModel):
    organization: str
    member: str
    meters: list[str]
    thresholds: list[int] = Field(description="The shares of the included units that alert.")


def _member(caller: Caller, member: str | None) -> str:
    if caller.is_platform:
        if member is None:
            raise InvalidInput("Name the member: the platform's key acts for no member.")
        return member
    assert caller.member is not None
    if member is not None and member != caller.member:
        raise Forbidden("A member sets only their own usage alerts.")
    return caller.member


@router.get("/usage/alerts", operation_id="usage_alerts.get")
def get_alerts(
    organization: str, api: ApiDep, caller: CallerDep, member: str | None = None
) -> Alerts:
    """The meters whose usage alerts the member gets by e-mail besides the owner and
    billing admins (LIM-5)."""
    with api.reading(caller) as b:
        found = organization_for(b, caller, organization)
        who = _member(caller, member)
        meters = service.alert_meters(b, found, who)
        return Alerts(
            organization=found.code, member=who, meters=meters, thresholds=[*USAGE_THRESHOLDS]
        )


@router.put("/usage/alerts", operation_id="usage_alerts.set")
def put_alerts(body: AlertsIn, api: ApiDep, caller: CallerDep) -> Alerts:
    """LIM-5: subscribe the member to the usage alerts of exactly these meters (50%, 80%
    and 100% of the included units, once per period each). Unknown meters are refused
    (400 `unknown_meter`, naming it) and nothing changes."""
    with api.billing(caller) as b:
        found = organization_for(b, caller, body.organization)
        who = _member(caller, body.member)
        meters = service.set_alert_meters(b, found, who, body.meters)
        return Alerts(
            organization=found.code, member=who, meters=meters, thresholds=[*USAGE_THRESHOLDS]
        )
