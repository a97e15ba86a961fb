"""Demo requests for sales-led plans (CAT-2): "Book a demo" creates a request record the
platform sees, and the member sees "Request received".

Asking: the owner, a billing admin or the platform's key (plain members 403). Listing:
the platform's key only (the platform's sales team follows up).
"""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.db.tables import DemoRequest
from tabkeeper.services.access import OrganizationCodes, organization_for, scoped
from tabkeeper.services.subscriptions import request_demo

router = APIRouter(tags=["subscriptions"])


@router.post(
    "/demo_requests", operation_id="demo_requests.create", status_code=status.HTTP_201_CREATED
)
def book_demo(body: schemas.DemoRequestIn, api: ApiDep, caller: CallerDep) -> schemas.DemoRequested:
    """Ask for a demo of a sales-led plan (CAT-2); 409 `not_sales_led` for a plan that can
    be subscribed to directly."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = organization_for(b, caller, body.organization)
        return schemas.DemoRequested(
            message=request_demo(b, organization, body.plan, caller.member)
        )


@router.get("/demo_requests", operation_id="demo_requests.list")
def list_demo_requests(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.DemoRequest]:
    caller.require_platform()
    with api.reading(caller) as b:
        query = scoped(b, caller, select(DemoRequest), DemoRequest.organization_id, organization)
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            DemoRequest.id,
            limit,
            cursor,
            lambda row: schemas.DemoRequest(
                id=row.id,
                organization=codes(row.organization_id),
                plan=row.plan_code,
                member=row.member,
                created_at=row.created_at,
                status=row.status,
                handled_at=row.handled_at,
            ),
        )
