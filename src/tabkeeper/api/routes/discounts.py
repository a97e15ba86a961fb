"""Coupons applied to subscriptions (INV-6) and organizations' billing details (INV-7).

`POST /v1/subscriptions/{id}/discounts` redeems a coupon of the current catalog for the
subscription's (billing) organization: its next invoices carry a `discount` line, from
the next one that starts a period (see domain/discounts.py). Refusals, nothing changed:
404 `unknown_coupon`; 409 `coupon_expired`, `coupon_exhausted` (its `max_redemptions`),
`coupon_not_applicable` (its `applies_to` names neither the plan nor an add-on of the
subscription), `coupon_already_applied` (one runs until its periods are covered).

`GET/PUT /v1/organizations/{code}/billing_details`: legal name, address, country (ISO
3166-1 alpha-2) and tax ID (an EU VAT number by pattern for an EU country), printed on the
invoices and deciding their taxes from the next invoice on. 400 `invalid_country`,
`invalid_tax_id`, `invalid_input`; 422 for a body of the wrong shape.

Who: the owner, a billing admin or the platform's key (ACL-1; plain members 403); another
organization's subscription or organization is a 404 (ACL-3).
"""

from __future__ import annotations

from fastapi import APIRouter, status

from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.schemas import ObjectId
from tabkeeper.api.schemas_discounts import BillingDetails, BillingDetailsIn, Discount, DiscountIn
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.db.tables_discounts import BillingDetailsRow, CouponRedemption
from tabkeeper.domain.billing_details import BillingDetails as Details
from tabkeeper.domain.money import decimal_string
from tabkeeper.services import discounts as service
from tabkeeper.services.access import organization_for, owned
from tabkeeper.services.context import Billing

router = APIRouter(tags=["discounts"])


def show_discount(b: Billing, organization: Organization, row: CouponRedemption) -> Discount:
    coupon = service.coupon_of(b, row)
    return Discount(
        id=row.id,
        organization=organization.code,
        coupon=coupon.code,
        name=coupon.name,
        percent_off=None if coupon.percent_off is None else decimal_string(coupon.percent_off),
        amount_off_minor=None if coupon.amount_off is None else coupon.amount_off.minor,
        periods=coupon.periods,
        periods_used=row.periods_used,
        redeemed_at=row.redeemed_at,
    )


def show_details(organization: Organization, row: BillingDetailsRow | None) -> BillingDetails:
    return BillingDetails(
        organization=organization.code,
        legal_name=None if row is None else row.legal_name,
        address=None if row is None else row.address,
        country=None if row is None else row.country,
        tax_id=None if row is None else row.tax_id,
    )


@router.post(
    "/subscriptions/{subscription_id}/discounts",
    operation_id="discounts.create",
    status_code=status.HTTP_201_CREATED,
)
def apply_discount(
    subscription_id: ObjectId, body: DiscountIn, api: ApiDep, caller: CallerDep
) -> Discount:
    """Apply a coupon to the subscription (INV-6)."""
    caller.require_billing()
    with api.billing(caller) as b:
        _, organization = owned(b, caller, Subscription, subscription_id, "subscription")
        row = service.redeem_coupon(b, organization, body.coupon, member=caller.member)
        return show_discount(b, organization, row)


@router.get("/organizations/{code}/billing_details", operation_id="billing_details.get")
def get_billing_details(code: str, api: ApiDep, caller: CallerDep) -> BillingDetails:
    """The organization's billing details (INV-7)."""
    caller.require_billing()
    with api.reading(caller) as b:
        organization = organization_for(b, caller, code)
        return show_details(organization, service.billing_details(b, organization))


@router.put("/organizations/{code}/billing_details", operation_id="billing_details.update")
def put_billing_details(
    code: str, body: BillingDetailsIn, api: ApiDep, caller: CallerDep
) -> BillingDetails:
    """Set the organization's billing details (INV-7); they hold from the next invoice."""
    caller.require_billing()
    details = Details.read(body.legal_name, body.country, body.tax_id, body.address)
    with api.billing(caller) as b:
        organization = organization_for(b, caller, code)
        row = service.save_billing_details(b, organization, details, caller.member)
        return show_details(organization, row)
