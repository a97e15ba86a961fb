"""Usage alerts in the billing tab (LIM-5): `/portal/alerts`, where any member, plain
members too, chooses the meters whose usage alerts (50%, 80% and 100% of what the plan
includes, once per period each) are e-mailed to them; the same service and checks as the
API's `PUT /v1/usage/alerts` for oneself (services/alerts.py).

The billing tab links here from its usage card; a member without the billing tab finds
the link on the page that says why there is no tab (ACL-2: alerts carry no billing data
beyond the usage share). A post must come from this origin; an unknown meter is refused
with nothing changed (400, next to the form).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tabkeeper.api.context import Api, get_api
from tabkeeper.db.tables import Organization
from tabkeeper.domain.errors import InvalidInput, NotFound
from tabkeeper.portal import views
from tabkeeper.portal.web import (
    Flash,
    PortalRoute,
    back,
    caller_of,
    clear_flash,
    render,
    require_same_origin,
    status_of,
    take_flash,
)
from tabkeeper.services import alerts as service
from tabkeeper.services.access import Caller
from tabkeeper.services.context import Billing
from tabkeeper.services.organizations import current_member

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
MeterList = Annotated[list[str] | None, Form()]
MAX_METERS = 100
"""As many as the API's `PUT /v1/usage/alerts` takes."""


def _organization(b: Billing, caller: Caller) -> Organization:
    assert caller.organization_id is not None
    found = b.session.get(Organization, caller.organization_id)
    if found is None:
        raise NotFound("No such organization.")
    return found


def _page(
    api: Api,
    caller: Caller,
    flash: Flash | None = None,
    status_code: int = 200,
    error: str | None = None,
    chosen: list[str] | None = None,
) -> Response:
    assert caller.member is not None
    with api.billing(caller) as b:
        organization = _organization(b, caller)
        subscribed = (
            chosen if chosen is not None else service.alert_meters(b, organization, caller.member)
        )
        _, catalog = b.current_catalog()
        meters = [(code, views.meter_label(code), code in subscribed) for code in catalog.meters]
        member = current_member(b, organization, caller.member)
        try:
            views.viewer_of(b, caller)
            has_tab = True
        except views.BillingHidden:
            has_tab = False
        context: dict[str, Any] = {
            "title": "Usage alerts",
            "organization": organization.name,
            "meters": meters,
            "email": None if member is None else member.email,
            "billing": has_tab,
            "flash": flash,
            "error": error,
        }
    return render("alerts.html", status_code, **context)


@router.get("/alerts")
def alerts_page(request: Request) -> Response:
    """LIM-5: the member's usage alerts, one checkbox per meter."""
    api = get_api(request)
    response = _page(api, caller_of(request, api), take_flash(request))
    return clear_flash(request, response)


@router.post("/alerts")
def set_alerts(request: Request, meters: MeterList = None) -> Response:
    """LIM-5: the member gets exactly the checked meters' alerts from now on."""
    require_same_origin(request)
    api = get_api(request)
    caller = caller_of(request, api)
    assert caller.member is not None
    chosen = list(meters or [])
    try:
        with api.billing(caller) as b:
            organization = _organization(b, caller)
            if len(chosen) > MAX_METERS:
                raise InvalidInput(f"Choose at most {MAX_METERS} meters.")
            saved = service.set_alert_meters(b, organization, caller.member, chosen)
    except InvalidInput as error:
        return _page(api, caller, None, status_of(error), error.message, chosen)
    if saved:
        names = ", ".join(views.meter_label(code) for code in saved)
        text = f"Usage alerts saved: you get the e-mails of {names}."
    else:
        text = "Usage alerts saved: you get none."
    return back(request, Flash("alerts", text), "/portal/alerts")
