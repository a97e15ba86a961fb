"""The SQL of organizations and what they hold: members, agents, phone numbers, and the
family of an organization and its sub-accounts (SUB-2, ACL-1, CAT-1, SUB-7).

Lookups return the ORM rows the services change (a member's role, an agent's status); the
statements of fixed shape are built once per process, the values come as parameters.
Statements over a family (`ids`) are built per call, as the ORM's bulk writes need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from tabkeeper.db.tables import Agent, Member, Organization, PhoneNumber, UsageEventRow
from tabkeeper.db.tables_usage import Conversation, UsageCounter, UsageUniqueValue

_ORGANIZATION = select(Organization).where(
    Organization.platform_id == bindparam("platform"), Organization.code == bindparam("code")
)
_ORGANIZATION_ID = select(Organization.id).where(
    Organization.platform_id == bindparam("platform"), Organization.code == bindparam("code")
)
_CHILDREN = select(Organization.id).where(Organization.parent_id == bindparam("organization"))
_MEMBER = select(Member).where(
    Member.organization_id == bindparam("organization"), Member.code == bindparam("code")
)
_CURRENT_MEMBER = _MEMBER.where(Member.removed_at.is_(None))
_OWNERS = select(func.count()).where(
    Member.organization_id == bindparam("organization"),
    Member.role == "owner",
    Member.removed_at.is_(None),
)
_AGENT = select(Agent).where(
    Agent.organization_id == bindparam("organization"), Agent.code == bindparam("code")
)
_ACTIVE_AGENT = _AGENT.where(Agent.status == "active")
_NUMBER = select(PhoneNumber).where(
    PhoneNumber.organization_id == bindparam("organization"),
    PhoneNumber.number == bindparam("number"),
)
_ACTIVE_NUMBER = _NUMBER.where(PhoneNumber.status == "active")


def organization_by_code(session: Session, platform_id: int, code: str) -> Organization | None:
    """The platform's organization `code` (None when unknown)."""
    return session.scalars(_ORGANIZATION, {"platform": platform_id, "code": code}).first()


def organization_exists(session: Session, platform_id: int, code: str) -> bool:
    found = session.scalars(_ORGANIZATION_ID, {"platform": platform_id, "code": code}).first()
    return bool(found)


def family_ids(session: Session, organization_id: int) -> list[int]:
    """The organization and its sub-accounts: they share one subscription (SUB-2)."""
    children = session.scalars(_CHILDREN, {"organization": organization_id}).all()
    return [organization_id, *children]


def visible_ids(platform_id: int, organization_id: int | None) -> Select[Any]:
    """The ids of the platform's organizations (of one organization and its sub-accounts
    when `organization_id` is given), as a subquery to narrow a list with (ACL-3)."""
    visible = select(Organization.id).where(Organization.platform_id == platform_id)
    if organization_id is not None:
        visible = visible.where(
            (Organization.id == organization_id) | (Organization.parent_id == organization_id)
        )
    return visible


def member(session: Session, organization_id: int, code: str) -> Member | None:
    """The member `code` of the organization, removed ones included."""
    return session.scalars(_MEMBER, {"organization": organization_id, "code": code}).first()


def current_member(session: Session, organization_id: int, code: str) -> Member | None:
    """The member `code` of the organization, unless removed (or never there)."""
    values = {"organization": organization_id, "code": code}
    return session.scalars(_CURRENT_MEMBER, values).first()


def count_owners(session: Session, organization_id: int) -> int:
    """The organization's owners not removed."""
    return session.scalar(_OWNERS, {"organization": organization_id}) or 0


def agent(
    session: Session, organization_id: int, code: str, *, active: bool = False
) -> Agent | None:
    """The agent `code` of the organization (only an active one when `active`)."""
    statement = _ACTIVE_AGENT if active else _AGENT
    return session.scalars(statement, {"organization": organization_id, "code": code}).first()


def phone_number(
    session: Session, organization_id: int, number: str, *, active: bool = False
) -> PhoneNumber | None:
    """The organization's phone number `number` (only one in use when `active`)."""
    statement = _ACTIVE_NUMBER if active else _NUMBER
    return session.scalars(statement, {"organization": organization_id, "number": number}).first()


def active_phone_numbers(session: Session, ids: Sequence[int]) -> list[str]:
    """The numbers the organizations `ids` use now, in order."""
    return list(
        session.scalars(
            select(PhoneNumber.number)
            .where(PhoneNumber.organization_id.in_(ids), PhoneNumber.status == "active")
            .order_by(PhoneNumber.number)
        ).all()
    )


def release_phone_numbers(session: Session, ids: Sequence[int], at: datetime) -> None:
    """Every number the organizations `ids` use is released at `at`."""
    session.execute(
        update(PhoneNumber)
        .where(PhoneNumber.organization_id.in_(ids), PhoneNumber.status == "active")
        .values(status="released", released_at=at)
    )


def in_use(session: Session, ids: Sequence[int]) -> tuple[int, int, int]:
    """What the organizations `ids` use now: active agents, members not removed, phone
    numbers in use (one statement each)."""
    agents = session.scalar(
        select(func.count()).where(Agent.organization_id.in_(ids), Agent.status == "active")
    )
    members = session.scalar(
        select(func.count()).where(Member.organization_id.in_(ids), Member.removed_at.is_(None))
    )
    numbers = session.scalar(
        select(func.count()).where(
            PhoneNumber.organization_id.in_(ids), PhoneNumber.status == "active"
        )
    )
    return agents or 0, members or 0, numbers or 0


def purge_usage(session: Session, ids: Sequence[int]) -> None:
    """The usage data of the organizations `ids` goes (events, conversations, counters,
    unique values); invoices stay (SUB-7)."""
    session.execute(delete(UsageEventRow).where(UsageEventRow.organization_id.in_(ids)))
    for table in (Conversation, UsageCounter, UsageUniqueValue):
        session.execute(delete(table).where(table.organization_id.in_(ids)))
