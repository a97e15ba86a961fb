"""The spend cap (LIM-6) and auto top-up (CRD-6).

- `GET /credits/spend_cap?organization=` and `PUT /credits/spend_cap {organization,
  amount}`: the cap on what is charged beyond the plan this billing period (overage at its
  price, credit purchases, auto top-ups), a decimal string in the platform's currency
  ("50.00"); `amount: null` resets it (no cap). The answer says what counts against it now.
- `GET /credits/auto_top_up?organization=` and `PUT /credits/auto_top_up {organization,
  threshold, credits}`: buy `credits` (at the catalog's credit price, off-session with the
  card on file) whenever a use takes the balance below `threshold`; both null turn it off.

Who: the owner, a billing admin or the platform's key (ACL-1: a billing right); a plain
member 403; another platform's organization 404 (ACL-3); a sub-account 409 `sub_account`.
Bad input is 400 (`invalid_spend_cap`, `invalid_auto_top_up`, a catalog with no credit
price `price_required`) with nothing changed. A top-up past the cap is refused by
`POST /credits/top-up` with 409 `spend_cap_reached`.
"""

from __future__ import annotations

from fastapi import APIRouter

from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.schemas_spend import AutoTopUpIn, AutoTopUpOut, SpendCapIn, SpendCapOut
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Money
from tabkeeper.services import auto_top_ups, spend_caps
from tabkeeper.services.access import organization_for
from tabkeeper.services.context import Billing

router = APIRouter(tags=["credits"])


def _cap(b: Billing, code: str, found: spend_caps.SpendCap) -> SpendCapOut:
    currency = b.terms.currency
    return SpendCapOut(
        organization=code,
        amount=None if found.cap is None else Money(found.cap, currency).major_str(),
        spent=Money(found.spent, currency).major_str(),
        currency=currency.code,
        percent=found.percent,
    )


def _auto(code: str, found: auto_top_ups.AutoTopUp) -> AutoTopUpOut:
    return AutoTopUpOut(
        organization=code,
        threshold=found.threshold,
        credits=found.credits,
        in_flight=found.in_flight,
        balance=found.balance,
    )


@router.get("/credits/spend_cap", operation_id="credits.get_spend_cap")
def get_spend_cap(organization: str, api: ApiDep, caller: CallerDep) -> SpendCapOut:
    """LIM-6: the spend cap and what counts against it this billing period."""
    with api.billing(caller) as b:
        found = organization_for(b, caller, organization)
        caller.require_billing()
        return _cap(b, found.code, spend_caps.spend_of(b, found))


@router.put("/credits/spend_cap", operation_id="credits.set_spend_cap")
def put_spend_cap(body: SpendCapIn, api: ApiDep, caller: CallerDep) -> SpendCapOut:
    """LIM-6: set the spend cap, or with `amount: null` reset it. At the cap, usage billed
    as overage stops (the check answers `spend_cap_reached`) and top-ups are refused;
    `spend_cap_80` and `spend_cap_100` are told once per period."""
    with api.billing(caller) as b:
        found = organization_for(b, caller, body.organization)
        caller.require_billing()
        made = spend_caps.set_spend_cap(b, found, body.amount, caller.member)
        return _cap(b, found.code, made)


@router.get("/credits/auto_top_up", operation_id="credits.get_auto_top_up")
def get_auto_top_up(organization: str, api: ApiDep, caller: CallerDep) -> AutoTopUpOut:
    """CRD-6: the auto top-up's settings, and whether one is being bought now."""
    with api.billing(caller) as b:
        found = organization_for(b, caller, organization)
        caller.require_billing()
        return _auto(found.code, auto_top_ups.auto_top_up_of(b, found))


@router.put("/credits/auto_top_up", operation_id="credits.set_auto_top_up")
def put_auto_top_up(body: AutoTopUpIn, api: ApiDep, caller: CallerDep) -> AutoTopUpOut:
    """CRD-6: buy `credits` whenever a use takes the balance below `threshold`, one at a
    time, off-session with the card on file; both null turn it off. A declined charge
    turns it off and tells `credits.auto_top_up_failed`."""
    with api.billing(caller) as b:
        found = organization_for(b, caller, body.organization)
        caller.require_billing()
        if (body.threshold is None) != (body.credits is None):
            raise InvalidInput(
                "threshold and credits: give both to turn auto top-up on, or both null to "
                "turn it off",
                code="invalid_auto_top_up",
            )
        if body.threshold is None:
            made = auto_top_ups.disable_auto_top_up(b, found, caller.member)
        else:
            made = auto_top_ups.set_auto_top_up(
                b, found, body.threshold, body.credits, caller.member
            )
        return _auto(found.code, made)
