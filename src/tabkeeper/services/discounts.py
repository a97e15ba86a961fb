"""Coupons redeemed, billing details kept, and the discount and tax lines of every invoice
(SPEC INV-6, INV-7).

`adjusted_lines` is the one place an invoice gains its `discount` line (domain/
discounts.py) and its `tax` lines (domain/taxes.py): every invoice is written through it
(services/invoices.py `issue_invoice`, services/first_invoices.py) and every price shown
before paying (a checkout's quote, a slot quote) is worked out through it too, so what is
quoted is what is billed. Only a written invoice moves the redemption on (`record`).

A coupon is redeemed by the billing organization (a sub-account's parent, SUB-2), by the
platform (`POST /v1/subscriptions/{id}/discounts`) or by a member in the billing tab.
It waits for the organization's next invoice that starts a period when there is no
subscription yet (a subscribe with a coupon). One running redemption per organization:
another is refused (`coupon_already_applied`) until the first has covered all its
periods.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabkeeper.db import discounts as rows
from tabkeeper.db.subscriptions import addon_rows
from tabkeeper.db.subscriptions import subscription_of as subscription_row
from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_discounts import BillingDetailsRow, CouponRedemption
from tabkeeper.domain.billing_details import BillingDetails
from tabkeeper.domain.coupons import Coupon
from tabkeeper.domain.discounts import Redemption, check_redeemable, discount_line
from tabkeeper.domain.errors import Forbidden, NotFound, Refused
from tabkeeper.domain.invoicing import LineDraft
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.taxes import tax_lines
from tabkeeper.services.access import BILLING_ROLES, member_row
from tabkeeper.services.context import Billing

_PAID = (State.ACTIVE, State.PAST_DUE, State.SUSPENDED)
"""As services/subscriptions.py's PAID_STATES."""


def billing_organization(b: Billing, organization: Organization) -> Organization:
    """SUB-2: a sub-account bills through its organization (as services/subscriptions.py;
    not imported from there, which writes invoices through this module)."""
    if organization.parent_id is None:
        return organization
    parent = b.session.get(Organization, organization.parent_id)
    assert parent is not None
    return parent


def require_billing_member(b: Billing, organization: Organization, member: str | None) -> None:
    """ACL-1: coupons and billing details are billing rights: owner or billing admin
    (`member` None: the platform)."""
    if member is None:
        return
    found = member_row(b.session, organization.id, member)
    if found is None or found.role not in BILLING_ROLES:
        raise Forbidden("Coupons and billing details need the owner or billing admin role.")


def coupon_of(b: Billing, redemption: CouponRedemption) -> Coupon:
    """The coupon as it was when redeemed (its catalog version)."""
    return b.catalog_of(redemption.catalog_version_id).coupons[redemption.coupon_code]


def _state(b: Billing, row: CouponRedemption) -> Redemption:
    return Redemption(coupon_of(b, row), row.periods_used, row.covered_start, row.covered_end)


def running_redemption(b: Billing, organization: Organization) -> CouponRedemption | None:
    """The billing organization's redemption that still gives discounts, if any."""
    owner = billing_organization(b, organization)
    row = rows.active_redemption(b.session, owner.id)
    if row is None:
        return None
    state = _state(b, row)
    over = state.covered_end is None or b.now >= state.covered_end
    return None if state.finished and over else row


def redeem_coupon(
    b: Billing,
    organization: Organization,
    code: str,
    *,
    member: str | None = None,
    plan: str | None = None,
) -> CouponRedemption:
    """INV-6: redeem the coupon `code` of the current catalog for the organization's
    subscription (`plan`: the plan about to be subscribed to, when there is none yet).

    Refused with nothing changed: unknown_coupon (404), coupon_expired,
    coupon_exhausted, coupon_not_applicable, coupon_already_applied (409); forbidden
    (403) for a member without billing rights."""
    require_billing_member(b, organization, member)
    owner = billing_organization(b, organization)
    version, catalog = b.current_catalog()
    coupon = catalog.coupons.get(code) if isinstance(code, str) else None
    if coupon is None:
        raise NotFound(f"No coupon {code!r}.", code="unknown_coupon")
    subscription = subscription_row(b.session, owner.id, lock=True)
    addons: list[str] = []
    if plan is None and subscription is not None and State(subscription.state) in _PAID:
        plan = subscription.plan_code
        addons = [r.addon_code for r in addon_rows(b.session, subscription.id) if r.quantity]
    if running_redemption(b, owner) is not None:
        raise Refused(
            "A coupon is already applied to this subscription; it can take another once "
            "the first one has run out.",
            code="coupon_already_applied",
        )
    redeemed = rows.count_redemptions(b.session, b.platform.id, coupon.code)
    check_redeemable(coupon, b.now, redeemed, plan, addons)
    previous = rows.active_redemption(b.session, owner.id)
    if previous is not None:
        previous.status = "finished"
    return rows.insert_redemption(
        b.session,
        CouponRedemption(
            platform_id=b.platform.id,
            organization_id=owner.id,
            coupon_code=coupon.code,
            catalog_version_id=version.id,
            status="active",
            redeemed_at=b.now,
            redeemed_by=member,
            periods_used=0,
            covered_start=None,
            covered_end=None,
        ),
    )


def withdraw_redemption(b: Billing, redemption_id: int) -> None:
    """Undo a redemption no invoice used (a subscribe with a coupon that was refused)."""
    row = b.session.get(CouponRedemption, redemption_id)
    if row is not None and row.periods_used == 0:
        rows.delete_redemption(b.session, row)


def billing_details(b: Billing, organization: Organization) -> BillingDetailsRow | None:
    """INV-7: the billing organization's details (None: none given)."""
    return rows.billing_details_of(b.session, billing_organization(b, organization).id)


def save_billing_details(
    b: Billing, organization: Organization, details: BillingDetails, member: str | None = None
) -> BillingDetailsRow:
    """INV-7: write the details (already checked by BillingDetails) of the billing
    organization; they hold for its invoices from now on."""
    require_billing_member(b, organization, member)
    owner = billing_organization(b, organization)
    return rows.save_billing_details(b.session, owner.id, details.as_dict(), b.now)


def adjusted_lines(
    b: Billing, organization: Organization, lines: Sequence[LineDraft], *, record: bool
) -> list[LineDraft]:
    """`lines` with the discount line of the running coupon and the tax lines of the
    organization's country appended (see the module docstring). `organization` is the
    invoice's (billing) organization; `record`: the invoice is being written, so the
    redemption takes the period it opens."""
    currency = b.terms.currency
    found = list(lines)
    row = rows.active_redemption(b.session, organization.id)
    if row is not None:
        line, after = discount_line(_state(b, row), found, currency)
        if record and (after.periods_used, after.covered_start, after.covered_end) != (
            row.periods_used,
            row.covered_start,
            row.covered_end,
        ):
            row.periods_used = after.periods_used
            row.covered_start, row.covered_end = after.covered_start, after.covered_end
        if line is not None:
            found.append(line)
    taxes = b.terms.taxes
    if taxes.rates:
        details = rows.billing_details_of(b.session, organization.id)
        country = None if details is None else details.country
        reverse = taxes.reverse_charge and details is not None and details.tax_id is not None
        found.extend(tax_lines(found, taxes.rates_for(country), currency, reverse_charge=reverse))
    return found
