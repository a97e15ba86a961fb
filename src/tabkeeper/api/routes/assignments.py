"""The platform puts an organization on a plan (CAT-9), sales-led plans included: how
"Book a demo" ends. Platform API key only (a member's portal session is 403).

`POST /v1/organizations/{organization}/assign_plan` with `plan`, an optional negotiated
`price` and `collection` (`card` or `invoice`); services/assignments.py says what each
does and what is refused.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, status

from tabkeeper.api import schemas_assignments as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.schemas import Code
from tabkeeper.api.subscription_view import show_subscription
from tabkeeper.db.tables import Subscription
from tabkeeper.services import assignments

router = APIRouter(tags=["subscriptions"])


@router.post(
    "/organizations/{organization}/assign_plan",
    operation_id="organizations.assign_plan",
    status_code=status.HTTP_201_CREATED,
)
def assign_plan(
    organization: Code, body: schemas.AssignPlanIn, api: ApiDep, caller: CallerDep
) -> schemas.Assigned:
    """Put the organization on `plan` (CAT-9) at the catalog or a negotiated price: the
    subscription starts now; its first invoice is charged to the card on file
    (`collection: card`; 409 `card_declined` starts nothing) or left open for manual
    payment (`collection: invoice`). Its pending demo requests for the plan become
    handled. 409 `already_subscribed` while a paid subscription runs."""
    done = assignments.assign_plan(
        partial(api.billing, caller),
        api.provider,
        caller,
        organization,
        body.plan,
        body.price,
        body.collection,
    )
    with api.reading(caller) as b:
        row = b.session.get(Subscription, done.subscription_id)
        assert row is not None
        return schemas.Assigned(
            organization=done.organization,
            plan=done.plan,
            price_minor=done.price.minor,
            currency=done.price.currency.code,
            negotiated=done.negotiated,
            collection=done.collection,
            invoice=schemas.AssignedInvoice(
                id=done.invoice_id,
                number=done.invoice_number,
                status=done.invoice_status,
                amount_due_minor=done.amount_due_minor,
            ),
            demo_requests_handled=done.demo_requests_handled,
            subscription=show_subscription(b, row),
        )
