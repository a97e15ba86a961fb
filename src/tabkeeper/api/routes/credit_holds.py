"""Credit holds (CRD-5) and the low-balance alert (CRD-7).

- `POST /credits/holds` (platform key only): reserve an estimate for an AI call at once;
  409 `credits_exhausted` when the balance cannot cover it (nothing held), the check's
  other refusals as a consumption's (services/credit_holds.py).
- `POST /credits/holds/{id}/settle {credits}`: the real cost taken, the rest returned; a
  cost above the balance takes it to zero and records a shortfall, repaid first by the
  next top-up. `POST /credits/holds/{id}/release`: the estimate returned. A hold that has
  ended (settled, released, expired) is 409 `hold_closed`; another platform's hold, or
  another organization's when `organization` is given, is 404. Platform key only.
- `PUT /credits/low_balance_alert {organization, threshold}`: the owner, a billing admin
  or the platform's key set (or, with null, turn off) the threshold below which
  `credits.low` is told, once per crossing.
Every POST takes an `Idempotency-Key` (api/idempotency.py).
"""

from __future__ import annotations

from fastapi import APIRouter

from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.schemas import ObjectId
from tabkeeper.api.schemas_holds import (
    HoldIn,
    HoldOut,
    LowAlertIn,
    LowAlertOut,
    ReleaseIn,
    SettleIn,
)
from tabkeeper.db.tables import Organization
from tabkeeper.services import credit_alerts, credit_holds
from tabkeeper.services.access import organization_for
from tabkeeper.services.context import Billing

router = APIRouter(tags=["credits"])


def _out(b: Billing, found: credit_holds.Hold) -> HoldOut:
    organization = b.session.get(Organization, found.organization_id)
    assert organization is not None
    return HoldOut(
        id=found.id,
        organization=organization.code,
        feature=found.feature,
        agent=found.agent,
        credits=found.credits,
        state=found.state.value,
        expires_at=found.expires_at,
        settled_credits=found.settled_credits,
        shortfall=found.shortfall,
        balance=found.balance,
        held=credit_holds.held_credits(b, found.organization_id),
    )


@router.post("/credits/holds", status_code=201, operation_id="credits.hold")
def create_hold(body: HoldIn, api: ApiDep, caller: CallerDep) -> HoldOut:
    """CRD-5: reserve `credits` for a call of `feature` at once (they leave the balance);
    409 `credits_exhausted` when the balance cannot cover them. Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        made = credit_holds.hold_by_code(
            b, body.organization, body.feature, body.credits, agent=body.agent,
            timeout=body.timeout_seconds,
        )  # fmt: skip
        return _out(b, made)


@router.post("/credits/holds/{hold_id}/settle", operation_id="credits.settle_hold")
def settle_hold(hold_id: ObjectId, body: SettleIn, api: ApiDep, caller: CallerDep) -> HoldOut:
    """CRD-5: the call cost `credits`: taken, the rest of the estimate returned; above the
    balance, a shortfall is recorded (the next top-up repays it first). Platform key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        owner = (
            None if body.organization is None else organization_for(b, caller, body.organization)
        )
        return _out(b, credit_holds.settle(b, hold_id, body.credits, owner))


@router.post("/credits/holds/{hold_id}/release", operation_id="credits.release_hold")
def release_hold(
    hold_id: ObjectId, api: ApiDep, caller: CallerDep, body: ReleaseIn | None = None
) -> HoldOut:
    """CRD-5: the call did not happen: the estimate returned. Platform key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        code = None if body is None else body.organization
        owner = None if code is None else organization_for(b, caller, code)
        return _out(b, credit_holds.release(b, hold_id, owner))


@router.put("/credits/low_balance_alert", operation_id="credits.set_low_balance_alert")
def put_low_alert(body: LowAlertIn, api: ApiDep, caller: CallerDep) -> LowAlertOut:
    """CRD-7: `credits.low` once each time the balance falls below `threshold` (null: off).
    The owner, a billing admin or the platform's key."""
    with api.billing(caller) as b:
        found = organization_for(b, caller, body.organization)
        caller.require_billing()
        alert = credit_alerts.set_low_alert(b, found, body.threshold, caller.member)
        return LowAlertOut(
            organization=found.code, threshold=alert.threshold, balance=alert.balance
        )
