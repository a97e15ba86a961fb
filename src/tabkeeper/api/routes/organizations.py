"""Organizations and sub-accounts (SUB-2), and their members (ACL-1)."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.schemas import ObjectId
from tabkeeper.db.tables import Member, Organization
from tabkeeper.domain.errors import NotFound
from tabkeeper.services import organizations as service
from tabkeeper.services.access import organization_for, set_member_email
from tabkeeper.services.context import Billing

router = APIRouter(tags=["organizations"])


def show_organization(b: Billing, row: Organization) -> schemas.Organization:
    parent = b.session.get(Organization, row.parent_id) if row.parent_id else None
    return schemas.Organization(
        id=row.id,
        code=row.code,
        name=row.name,
        parent=parent.code if parent else None,
        created_at=row.created_at,
        account_credit_minor=row.account_credit_minor,
    )


def show_member(organization: Organization, row: Member) -> schemas.Member:
    return schemas.Member(
        id=row.id,
        organization=organization.code,
        code=row.code,
        email=row.email,
        role=row.role,
        created_at=row.created_at,
    )


@router.post(
    "/organizations", operation_id="organizations.create", status_code=status.HTTP_201_CREATED
)
def create_organization(
    body: schemas.OrganizationIn, api: ApiDep, caller: CallerDep
) -> schemas.Organization:
    """A new organization (it starts on the platform's free trial, TRI-1), or a
    sub-account with `parent`. Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        row = service.create_organization(
            b,
            body.code,
            {member.code: member.role for member in body.members} or {"owner": "owner"},
            name=body.name,
            parent=body.parent,
        )
        for member in body.members:
            if member.email:
                set_member_email(b.session, row, member.code, member.email)
        return show_organization(b, row)


@router.get("/organizations", operation_id="organizations.list")
def list_organizations(
    api: ApiDep, caller: CallerDep, limit: LimitQuery = 20, cursor: CursorQuery = None
) -> Page[schemas.Organization]:
    with api.reading(caller) as b:
        query = select(Organization).where(Organization.platform_id == caller.platform_id)
        if not caller.is_platform:
            query = query.where(
                (Organization.id == caller.organization_id)
                | (Organization.parent_id == caller.organization_id)
            )
        return page(
            b.session, query, Organization.id, limit, cursor, lambda row: show_organization(b, row)
        )


@router.get("/organizations/{code}", operation_id="organizations.get")
def get_organization(code: str, api: ApiDep, caller: CallerDep) -> schemas.Organization:
    with api.reading(caller) as b:
        return show_organization(b, organization_for(b, caller, code))


@router.post("/members", operation_id="members.add", status_code=status.HTTP_201_CREATED)
def add_member(body: schemas.NewMember, api: ApiDep, caller: CallerDep) -> schemas.Member:
    """A new member takes a team seat: refused when the seats are full (ADD-4). The
    platform or the organization's owner may add members."""
    with api.billing(caller) as b:
        organization = organization_for(b, caller, body.organization)
        caller.require_owner()
        row = service.add_member(b, organization, body.code, body.role)
        if body.email:
            set_member_email(b.session, organization, body.code, body.email)
        return show_member(organization, row)


@router.get("/members", operation_id="members.list")
def list_members(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.Member]:
    with api.reading(caller) as b:
        query = (
            select(Member)
            .join(Organization, Organization.id == Member.organization_id)
            .where(Organization.platform_id == caller.platform_id, Member.removed_at.is_(None))
        )
        if organization is not None:
            query = query.where(
                Member.organization_id == organization_for(b, caller, organization).id
            )
        elif not caller.is_platform:
            query = query.where(Member.organization_id == caller.organization_id)
        orgs: dict[int, Organization] = {}

        def show(row: Member) -> schemas.Member:
            org = orgs.get(row.organization_id) or b.session.get(Organization, row.organization_id)
            assert org is not None
            orgs[org.id] = org
            return show_member(org, row)

        return page(b.session, query, Member.id, limit, cursor, show)


@router.delete("/members/{member_id}", operation_id="members.remove")
def remove_member(member_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Deleted:
    with api.billing(caller) as b:
        row = b.session.get(Member, member_id)
        organization = b.session.get(Organization, row.organization_id) if row else None
        if row is None or row.removed_at is not None or organization is None:
            raise NotFound("No such member.")
        if not caller.sees(organization):
            raise NotFound("No such member.")
        caller.require_owner()
        service.remove_member(b, organization, row.code)
    api.callers.forget_all()  # the member's portal sessions stop working now
    return schemas.Deleted(id=member_id)
