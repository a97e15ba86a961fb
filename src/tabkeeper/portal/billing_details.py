"""The billing tab's "Billing details" card (INV-6, INV-7): the organization's legal name,
address, country and tax ID, and the coupon it redeemed, with two forms that work without
JavaScript: save the details, redeem a coupon by its code.

Each post is the API's own call with the member's portal session as the caller
(PUT /v1/organizations/{code}/billing_details, POST /v1/subscriptions/{id}/discounts,
or the redemption waiting for the first subscription when there is none yet): owner or
billing admin (ACL-1), CSRF token and same origin (portal/web.py), refusals shown next to
the form with nothing changed (portal/actions.py `_act`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tabkeeper.api.context import Api
from tabkeeper.api.schemas_discounts import BillingDetailsIn, DiscountIn
from tabkeeper.db.tables import Organization
from tabkeeper.domain.billing_details import BillingDetails
from tabkeeper.domain.money import decimal_string
from tabkeeper.portal import views
from tabkeeper.portal.actions import Outcome, _act, _body
from tabkeeper.portal.web import Flash, PortalRoute
from tabkeeper.services import discounts
from tabkeeper.services.access import Caller, organization_for
from tabkeeper.services.context import Billing

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
AREA = "billing-details"
COUPON_AREA = "coupon"


@dataclass(frozen=True, slots=True)
class RunningCoupon:
    name: str
    terms: str
    """"20% off for 3 periods (1 used)", "5.00 off each period"."""


@dataclass(frozen=True, slots=True)
class BillingCard:
    legal_name: str
    address: str
    country: str
    tax_id: str
    coupon: RunningCoupon | None
    coupons_offered: bool


def billing_card(b: Billing, organization: Organization) -> BillingCard:
    """What the card shows: the details (empty texts while none were given), the running
    coupon, and whether the catalog has coupons to redeem."""
    details = discounts.billing_details(b, organization)
    row = discounts.running_redemption(b, organization)
    coupon = None
    if row is not None:
        found = discounts.coupon_of(b, row)
        off = (
            f"{decimal_string(found.percent_off)}% off"
            if found.percent_off is not None
            else f"{found.amount_off.major_str() if found.amount_off else ''} off"
        )
        how_long = (
            "each period"
            if found.periods is None
            else f"for {found.periods} period{'s' if found.periods != 1 else ''} "
            f"({row.periods_used} used)"
        )
        coupon = RunningCoupon(found.name, f"{off} {how_long}")
    return BillingCard(
        legal_name="" if details is None else details.legal_name,
        address="" if details is None else details.address,
        country="" if details is None else details.country,
        tax_id="" if details is None or details.tax_id is None else details.tax_id,
        coupon=coupon,
        coupons_offered=bool(b.current_catalog()[1].coupons),
    )


Text = Annotated[str, Form(max_length=1000)]


@router.post("/billing_details")
def save_details(
    request: Request, legal_name: Text = "", address: Text = "", country: Text = "",
    tax_id: Text = "",
) -> Response:  # fmt: skip
    """INV-7: "Save billing details"."""
    values = {"legal_name": legal_name, "address": address, "country": country, "tax_id": tax_id}

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        body = _body(BillingDetailsIn, **{**values, "tax_id": tax_id or None})
        details = BillingDetails.read(body.legal_name, body.country, body.tax_id, body.address)
        caller.require_billing()
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            discounts.save_billing_details(b, organization, details, caller.member)
        return Flash(AREA, "Billing details saved.")

    return _act(request, AREA, do, values)


@router.post("/coupon")
def redeem(request: Request, code: Annotated[str, Form(max_length=200)] = "") -> Response:
    """INV-6: "Redeem" a coupon code."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        body = _body(DiscountIn, coupon=code.strip())
        caller.require_billing()
        with api.billing(caller) as b:
            organization = organization_for(b, caller, viewer.organization.code)
            row = discounts.redeem_coupon(b, organization, body.coupon, member=caller.member)
            name = discounts.coupon_of(b, row).name
        return Flash(COUPON_AREA, f"Coupon {name} applied: it shows on your next invoices.")

    return _act(request, COUPON_AREA, do, {"code": code})
