"""Agents and phone numbers of an organization (CAT-1 capacity, LIM-1, ACL-1, ACL-3).

Adding one asks the real-time check first: a full capacity is a 409 with the check's
reason code (`capacity_full`) and message ("Buy more ..."). Archiving an agent or
releasing a number frees its slot (SUB-6). Owner, billing admin or the platform's key;
plain members get 403, another organization's objects 404.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.schemas import ObjectId
from tabkeeper.db.tables import Agent, PhoneNumber
from tabkeeper.services import organizations as service
from tabkeeper.services.access import OrganizationCodes, organization_for, owned, scoped

router = APIRouter(tags=["resources"])


def show_agent(organization: str, row: Agent) -> schemas.Agent:
    return schemas.Agent(
        id=row.id,
        organization=organization,
        code=row.code,
        status="archived" if row.status == "archived" else "active",
        created_at=row.created_at,
        archived_at=row.archived_at,
    )


def show_number(organization: str, row: PhoneNumber) -> schemas.PhoneNumber:
    return schemas.PhoneNumber(
        id=row.id,
        organization=organization,
        number=row.number,
        status="released" if row.status == "released" else "active",
        added_at=row.added_at,
        released_at=row.released_at,
    )


@router.post("/agents", operation_id="agents.create", status_code=status.HTTP_201_CREATED)
def create_agent(body: schemas.AgentIn, api: ApiDep, caller: CallerDep) -> schemas.Agent:
    """A new agent (or an archived one made active again); 409 `capacity_full` when the
    plan's agent slots are all in use."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = organization_for(b, caller, body.organization)
        return show_agent(organization.code, service.create_agent(b, organization, body.code))


@router.get("/agents", operation_id="agents.list")
def list_agents(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.Agent]:
    caller.require_billing()
    with api.reading(caller) as b:
        query = scoped(b, caller, select(Agent), Agent.organization_id, organization)
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            Agent.id,
            limit,
            cursor,
            lambda row: show_agent(codes(row.organization_id), row),
        )


@router.get("/agents/{agent_id}", operation_id="agents.get")
def get_agent(agent_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Agent:
    caller.require_billing()
    with api.reading(caller) as b:
        row, organization = owned(b, caller, Agent, agent_id, "agent")
        return show_agent(organization.code, row)


@router.post("/agents/{agent_id}/archive", operation_id="agents.archive")
def archive_agent(agent_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.Agent:
    """Archive an agent: it stops and frees its slot. 409 `unknown_agent` when it is
    archived already."""
    caller.require_billing()
    with api.billing(caller) as b:
        row, organization = owned(b, caller, Agent, agent_id, "agent")
        service.archive_agent(b, organization, row.code)
        return show_agent(organization.code, row)


@router.post(
    "/phone_numbers", operation_id="phone_numbers.add", status_code=status.HTTP_201_CREATED
)
def add_phone_number(
    body: schemas.PhoneNumberIn, api: ApiDep, caller: CallerDep
) -> schemas.PhoneNumber:
    """A phone number for the organization's agents; 409 `capacity_full` when the plan's
    phone numbers are all in use."""
    caller.require_billing()
    with api.billing(caller) as b:
        organization = organization_for(b, caller, body.organization)
        row = service.add_phone_number(b, organization, body.number)
        return show_number(organization.code, row)


@router.get("/phone_numbers", operation_id="phone_numbers.list")
def list_phone_numbers(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.PhoneNumber]:
    caller.require_billing()
    with api.reading(caller) as b:
        query = scoped(b, caller, select(PhoneNumber), PhoneNumber.organization_id, organization)
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            PhoneNumber.id,
            limit,
            cursor,
            lambda row: show_number(codes(row.organization_id), row),
        )


@router.get("/phone_numbers/{number_id}", operation_id="phone_numbers.get")
def get_phone_number(number_id: ObjectId, api: ApiDep, caller: CallerDep) -> schemas.PhoneNumber:
    caller.require_billing()
    with api.reading(caller) as b:
        row, organization = owned(b, caller, PhoneNumber, number_id, "phone number")
        return show_number(organization.code, row)


@router.post("/phone_numbers/{number_id}/release", operation_id="phone_numbers.release")
def release_phone_number(
    number_id: ObjectId, api: ApiDep, caller: CallerDep
) -> schemas.PhoneNumber:
    """Release a number: it frees its slot. 409 `unknown_phone_number` when it is released
    already."""
    caller.require_billing()
    with api.billing(caller) as b:
        row, organization = owned(b, caller, PhoneNumber, number_id, "phone number")
        service.release_phone_number(b, organization, row.number)
        return show_number(organization.code, row)
