"""Subscriptions: subscribe through checkout (SUB-3), change the plan with a timing,
cancel a scheduled change, approve a held downgrade (SUB-4), cancel and resume (SUB-7).

Subscribing to a plan that costs something opens the provider's hosted checkout: the
request is checked and priced in one transaction, the provider is called with no
transaction open, and the checkout is recorded in a second one; the subscription starts
when the member pays on the checkout page (payments/checkout_page.py). A plan that costs
nothing (after account credit) starts at once.

Who: the owner, a billing admin or the platform's key (ACL-1; plain members 403);
approving a held downgrade is the operator's, the platform key's alone. Another
organization's subscription is 404 (ACL-3). A subscription belongs to the organization
that is billed (SUB-2); a sub-account's members do not see it.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.schemas import ObjectId
from tabkeeper.api.subscription_view import show_change, show_subscription
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.services import changes, checkout
from tabkeeper.services import subscriptions as service
from tabkeeper.services.access import Caller, owned, scoped
from tabkeeper.services.context import Billing

router = APIRouter(tags=["subscriptions"])


def _subscription(b: Billing, caller: Caller, subscription_id: ObjectId) -> Organization:
    """The billed organization of subscription `subscription_id`, as the caller sees it."""
    _, organization = owned(b, caller, Subscription, subscription_id, "subscription")
    return organization


@router.get("/subscriptions", operation_id="subscriptions.list")
def list_subscriptions(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.Subscription]:
    caller.require_billing()
    with api.reading(caller) as b:
        query = scoped(b, caller, select(Subscription), Subscription.organization_id, organization)
        return page(
            b.session,
            query,
            Subscription.id,
            limit,
            cursor,
            lambda row: show_subscription(b, row),
        )


@router.get("/subscriptions/{subscription_id}", operation_id="subscriptions.get")
def get_subscription(
    subscription_id: ObjectId, api: ApiDep, caller: CallerDep
) -> schemas.Subscription:
    """The subscription card (SUB-1): state, badge, "Payment pending" banner, plan,
    period, trial counters, add-ons, the upcoming change, and usage per meter."""
    caller.require_billing()
    with api.reading(caller) as b:
        row, _ = owned(b, caller, Subscription, subscription_id, "subscription")
        return show_subscription(b, row)


@router.post(
    "/subscriptions", operation_id="subscriptions.create", status_code=status.HTTP_201_CREATED
)
def subscribe(body: schemas.SubscribeIn, api: ApiDep, caller: CallerDep) -> schemas.Subscribed:
    """Subscribe through the provider's checkout (SUB-3): the answer has the checkout's
    URL, where the member pays; the subscription starts when the payment succeeds. A plan
    that costs nothing starts at once (the answer has the subscription)."""
    opened = checkout.open_checkout(
        partial(api.billing, caller),
        api.provider,
        caller,
        body.organization,
        body.plan,
        body.addons,
        body.return_url,
        api.settings.public_url,
        body.anchor,
    )
    started = None
    if opened.subscription_id is not None:
        with api.billing(caller) as b:
            row = b.session.get(Subscription, opened.subscription_id)
            assert row is not None
            started = show_subscription(b, row)
    return schemas.Subscribed(
        checkout=schemas.Checkout(
            id=opened.checkout_id,
            url=opened.url,
            amount_minor=opened.amount.minor,
            currency=opened.amount.currency.code,
            status=opened.status,
        ),
        subscription=started,
    )


@router.post("/subscriptions/{subscription_id}/change", operation_id="subscriptions.change")
def change_plan(
    subscription_id: ObjectId, body: schemas.ChangeIn, api: ApiDep, caller: CallerDep
) -> schemas.PlanChange:
    """Change the plan (SUB-4): `when` is "immediately", "period_end", a custom date, or
    null for the platform's default. The answer is the change: applied, scheduled, or
    awaiting approval (a downgrade the platform holds for an operator)."""
    caller.require_billing()
    when = changes.parse_when(body.when)
    with api.billing(caller) as b:
        organization = _subscription(b, caller, subscription_id)
        change = changes.change_plan(b, organization, body.plan, when, caller.member)
        return show_change(change)


@router.post(
    "/subscriptions/{subscription_id}/cancel_scheduled_change",
    operation_id="subscriptions.cancel_scheduled_change",
)
def cancel_scheduled_change(
    subscription_id: ObjectId, api: ApiDep, caller: CallerDep
) -> schemas.PlanChange:
    """ "Cancel scheduled plan" (SUB-4): the upcoming change is dropped."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = _subscription(b, caller, subscription_id)
        return show_change(changes.cancel_scheduled_change(b, organization))


@router.post(
    "/subscriptions/{subscription_id}/approve_change", operation_id="subscriptions.approve_change"
)
def approve_change(subscription_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.PlanChange:
    """An operator approves the downgrade that waits for approval (SUB-4): it is carried
    out at its timing. Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        organization = _subscription(b, caller, subscription_id)
        return show_change(changes.approve_change(b, organization))


@router.post("/subscriptions/{subscription_id}/cancel", operation_id="subscriptions.cancel")
def cancel(subscription_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Subscription:
    """Cancel at the period's end (SUB-7): usable until then; a scheduled change is
    dropped; resume undoes it until the period ends."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = _subscription(b, caller, subscription_id)
        return show_subscription(b, service.cancel(b, organization))


@router.post("/subscriptions/{subscription_id}/resume", operation_id="subscriptions.resume")
def resume(subscription_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Subscription:
    """Undo a cancellation before the period ends (SUB-7)."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = _subscription(b, caller, subscription_id)
        return show_subscription(b, service.resume(b, organization))
