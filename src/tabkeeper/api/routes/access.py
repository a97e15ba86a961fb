"""Portal sessions (a member's signed, short-lived access) and the platform's API keys."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.schemas import ObjectId
from tabkeeper.db.tables_access import ApiKey
from tabkeeper.services.access import (
    create_api_key,
    create_portal_session,
    organization_for,
    revoke_api_key,
)

router = APIRouter(tags=["access"])


def show_key(row: ApiKey, key: str | None = None) -> schemas.ApiKey:
    return schemas.ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        key=key,
    )


@router.post(
    "/portal_sessions", operation_id="portal_sessions.create", status_code=status.HTTP_201_CREATED
)
def create_session(
    body: schemas.PortalSessionIn, api: ApiDep, caller: CallerDep
) -> schemas.PortalSession:
    """A short-lived signed URL for one member of one organization: requests made with
    its token act as that member, and the member's role decides what is allowed (ACL-1).
    Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        organization = organization_for(b, caller, body.organization)
        token, expires_at = create_portal_session(
            b.session, caller.platform_id, organization, body.member, b.now
        )
    url = f"{api.settings.public_url.rstrip('/')}/portal/enter?token={token}"
    return schemas.PortalSession(url=url, token=token, expires_at=expires_at)


@router.post("/api_keys", operation_id="api_keys.create", status_code=status.HTTP_201_CREATED)
def create_key(body: schemas.ApiKeyIn, api: ApiDep, caller: CallerDep) -> schemas.ApiKey:
    """A new API key of the platform, shown this once; stored hashed (ACL-3)."""
    caller.require_platform()
    with api.billing(caller) as b:
        row, key = create_api_key(b.session, caller.platform_id, body.name, b.now)
        return show_key(row, key)


@router.get("/api_keys", operation_id="api_keys.list")
def list_keys(
    api: ApiDep, caller: CallerDep, limit: LimitQuery = 20, cursor: CursorQuery = None
) -> Page[schemas.ApiKey]:
    caller.require_platform()
    with api.reading(caller) as b:
        query = select(ApiKey).where(ApiKey.platform_id == caller.platform_id)
        return page(b.session, query, ApiKey.id, limit, cursor, show_key)


@router.delete("/api_keys/{key_id}", operation_id="api_keys.revoke")
def revoke_key(key_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.ApiKey:
    caller.require_platform()
    with api.billing(caller) as b:
        shown = show_key(revoke_api_key(b.session, caller.platform_id, key_id, b.now))
    api.callers.forget_all()  # the key stops working now (elsewhere within CALLER_TTL)
    return shown
