"""Notices (NOT-1): the outbox as the API shows it, oldest first: when, which
organization, which kind (SCENARIOS.md names the kinds: `invoice.issued`,
`subscription.past_due`, `trial.days_7`, ...), and the payload.

Owner, billing admin or the platform's key (ACL-1); a member sees only their own
organization's notices (ACL-3).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.db.tables import Notice
from tabkeeper.services.access import OrganizationCodes, scoped

router = APIRouter(tags=["notices"])

KindQuery = Annotated[str | None, Query(max_length=60, description="Only notices of this kind.")]


@router.get("/notices", operation_id="notices.list")
def list_notices(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    kind: KindQuery = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.Notice]:
    caller.require_billing()
    with api.reading(caller) as b:
        query = select(Notice).where(Notice.platform_id == caller.platform_id)
        query = scoped(b, caller, query, Notice.organization_id, organization)
        if kind is not None:
            query = query.where(Notice.kind == kind)
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            Notice.id,
            limit,
            cursor,
            lambda row: schemas.Notice(
                id=row.id,
                at=row.created_at,
                organization=codes(row.organization_id),
                kind=row.kind,
                payload=row.payload,
            ),
        )
