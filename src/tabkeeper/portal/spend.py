"""The forms of the billing tab's "AI spend" card (LIM-6, CRD-5..7; what it shows:
portal/spend_card.py): the credit balance and the credits
held by AI calls in progress, the spend cap with a bar of what counts against it this
period, auto top-up and the low-balance alert, each set with a plain form (the CSRF token
as every form of the tab; no JavaScript needed) through the same services and checks as
the API's `PUT /v1/credits/spend_cap`, `PUT /v1/credits/auto_top_up` and
`PUT /v1/credits/low_balance_alert`.

Success: 303 back to the card with the message; a refusal: the page again with the
service's message next to the form (role=alert) and the answer's status, nothing changed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tabkeeper.api.context import Api
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.portal import views
from tabkeeper.portal.actions import OptionalText, Outcome, _act, limit_value
from tabkeeper.portal.web import Flash, PortalRoute
from tabkeeper.services import auto_top_ups, credit_alerts, spend_caps
from tabkeeper.services.access import Caller, organization_for

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

AREA = "spend"
CAP_SET = "Spend cap saved."
CAP_RESET = "Spend cap removed."
AUTO_ON = "Auto top-up turned on."
AUTO_OFF = "Auto top-up turned off."
LOW_SET = "Low-balance alert saved."
LOW_OFF = "Low-balance alert turned off."


def _credits(text: str, what: str) -> int:
    value = limit_value(text)
    if not isinstance(value, int) or value < 1:
        raise InvalidInput(f"Enter the {what} as a whole number of credits greater than zero.")
    return value


@router.post("/spend_cap")
def set_cap(request: Request, amount: OptionalText = "") -> Response:
    """LIM-6: the owner or a billing admin sets the cap in the platform's currency."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        text = amount.strip()
        if not text:
            raise InvalidInput('Enter the spend cap as an amount such as "50.00".')
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            caller.require_billing()
            spend_caps.set_spend_cap(b, organization, text, caller.member)
        return Flash(AREA, CAP_SET)

    return _act(request, AREA, do, values={"amount": amount})


@router.post("/spend_cap/reset")
def reset_cap(request: Request) -> Response:
    """LIM-6: no cap."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            caller.require_billing()
            spend_caps.reset_spend_cap(b, organization, caller.member)
        return Flash(AREA, CAP_RESET)

    return _act(request, AREA, do)


@router.post("/auto_top_up")
def set_auto(
    request: Request, threshold: OptionalText = "", credits: OptionalText = ""
) -> Response:
    """CRD-6: buy `credits` whenever the balance falls below `threshold`."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        below = _credits(threshold, "threshold")
        count = _credits(credits, "credits to buy")
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            caller.require_billing()
            auto_top_ups.set_auto_top_up(b, organization, below, count, caller.member)
        return Flash(AREA, AUTO_ON)

    return _act(request, AREA, do, values={"threshold": threshold, "auto_credits": credits})


@router.post("/auto_top_up/off")
def auto_off(request: Request) -> Response:
    """CRD-6: off."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            caller.require_billing()
            auto_top_ups.disable_auto_top_up(b, organization, caller.member)
        return Flash(AREA, AUTO_OFF)

    return _act(request, AREA, do)


@router.post("/low_balance")
def set_low(request: Request, threshold: OptionalText = "") -> Response:
    """CRD-7: `credits.low` when the balance falls below `threshold`."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        below = _credits(threshold, "low-balance threshold")
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            credit_alerts.set_low_alert(b, organization, below, caller.member)
        return Flash(AREA, LOW_SET)

    return _act(request, AREA, do, values={"low_threshold": threshold})


@router.post("/low_balance/off")
def low_off(request: Request) -> Response:
    """CRD-7: no low-balance alert."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            credit_alerts.set_low_alert(b, organization, None, caller.member)
        return Flash(AREA, LOW_OFF)

    return _act(request, AREA, do)
