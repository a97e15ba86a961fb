"""Organizations, sub-accounts, members, agents and phone numbers (SUB-2, ACL-1, CAT-1).

Adding an agent, a member (a team seat) or a phone number asks the real-time check first
(LIM-1): a full capacity is refused with the check's answer ("Buy more seats", ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tabkeeper.db import organizations as rows
from tabkeeper.db.tables import Agent, Member, Organization, PhoneNumber
from tabkeeper.domain import fields
from tabkeeper.domain.decisions import (
    BUY_MORE_SEATS_MESSAGE,
    UPGRADE_TO_USE_TEAM_MESSAGE,
    Action,
    Reason,
)
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.services.access import member_row
from tabkeeper.services.context import Billing
from tabkeeper.services.limits import check
from tabkeeper.services.subscriptions import start_trial

ROLES = ("owner", "billing_admin", "member")


def organization_by_code(b: Billing, code: str) -> Organization:
    found = rows.organization_by_code(b.session, b.platform_id, code)
    if found is None:
        raise InvalidInput(f"unknown organization {code!r}", code="unknown_organization")
    return found


def create_organization(
    b: Billing,
    code: str,
    members: Mapping[str, str],
    *,
    name: str | None = None,
    parent: str | None = None,
    created_at: datetime | None = None,
) -> Organization:
    """A new organization with its members; it starts on the free trial (TRI-1). A
    sub-account (SUB-2) has a parent and shares its subscription."""
    fields.name(code, "organization")
    if rows.organization_exists(b.session, b.platform.id, code):
        raise Refused(f"The organization {code!r} exists already.", code="organization_exists")
    if not any(role == "owner" for role in members.values()):
        raise InvalidInput("an organization needs at least one owner")
    parent_id = None
    if parent is not None:
        parent_row = organization_by_code(b, parent)
        if parent_row.parent_id is not None:
            raise InvalidInput("a sub-account cannot have sub-accounts of its own")
        parent_id = parent_row.id
    organization = Organization(
        platform_id=b.platform.id,
        code=code,
        name=name or code,
        parent_id=parent_id,
        created_at=created_at or b.now,
    )
    b.session.add(organization)
    b.session.flush()
    for member, role in members.items():
        _add_member_row(b, organization, member, role)
    start_trial(b, organization)
    _require_seats_for_members(b, organization)
    return organization


def _require_seats_for_members(b: Billing, organization: Organization) -> None:
    """SUB-13: the members an organization is created with take seats as `add_member`'s
    do (its holder aside): beyond the plan's seats, or what a waiting reduction will
    leave, the creation is refused (the caller's transaction keeps nothing). A
    sub-account's first member is its holder, as the organization's is: it can always be
    made, and its other members count against the shared seats (SUB-2). An organization
    with no plan yet (no trial, no parent's subscription) has no limit."""
    decision = check(b, organization, Action.ADD_SEAT)
    numbers = decision.numbers
    in_use, limit = numbers.get("in_use"), numbers.get("limit")
    scheduled = numbers.get("scheduled_limit")
    if not isinstance(in_use, int):
        return
    if organization.parent_id is not None:
        in_use -= 1  # the sub-account's holder
    if isinstance(limit, int) and in_use > limit:
        raise Refused(
            f"The plan allows {limit} team {'seat' if limit == 1 else 'seats'} besides the "
            f"owner and {in_use} {'was' if in_use == 1 else 'were'} given. "
            f"{_seat_advice(limit)}",
            code=Reason.CAPACITY_FULL.value,
        )
    if isinstance(scheduled, int) and in_use > scheduled:
        raise Refused(decision.message, code=Reason.SCHEDULED_CHANGE_LIMIT.value)


def _seat_advice(limit: int) -> str:
    return f"{UPGRADE_TO_USE_TEAM_MESSAGE}." if limit == 0 else f"{BUY_MORE_SEATS_MESSAGE}."


def _add_member_row(b: Billing, organization: Organization, member: str, role: str) -> Member:
    fields.name(member, "member")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    row = rows.member(b.session, organization.id, member)
    if row is not None and row.removed_at is None:
        raise Refused(f"{member} is a member already.", code="member_exists")
    if row is None:
        row = Member(organization_id=organization.id, code=member, role=role, created_at=b.now)
        b.session.add(row)
    else:  # a new membership (ACL-3): the old one's e-mail and portal sessions end
        row.role, row.removed_at, row.email = role, None, None
        row.sessions += 1
    b.session.flush()
    return row


def _require_allowed(b: Billing, organization: Organization, action: Action) -> None:
    decision = check(b, organization, action)
    if not decision.allowed:
        raise Refused(decision.message, code=decision.reason.value)


def add_member(b: Billing, organization: Organization, member: str, role: str) -> Member:
    """A new team member takes a seat (ADD-4: "Upgrade to use team", "Buy more seats")."""
    _require_allowed(b, organization, Action.ADD_SEAT)
    return _add_member_row(b, organization, member, role)


def current_member(b: Billing, organization: Organization, member: str) -> Member | None:
    """The member `member` of the organization, unless removed (or never there)."""
    return member_row(b.session, organization.id, member)


def remove_member(b: Billing, organization: Organization, member: str) -> None:
    row = current_member(b, organization, member)
    if row is None:
        raise Refused(f"{member} is not a member.", code="unknown_member")
    if row.role == "owner" and rows.count_owners(b.session, organization.id) <= 1:
        raise Refused("The last owner cannot be removed.", code="last_owner")
    row.removed_at = b.now
    row.sessions += 1


def create_agent(b: Billing, organization: Organization, agent: str) -> Agent:
    fields.name(agent, "agent")
    row = rows.agent(b.session, organization.id, agent)
    if row is not None and row.status == "active":
        raise Refused(f"The agent {agent} exists already.", code="agent_exists")
    _require_allowed(b, organization, Action.ADD_AGENT)
    if row is None:
        row = Agent(organization_id=organization.id, code=agent, status="active", created_at=b.now)
        b.session.add(row)
    else:
        row.status, row.archived_at = "active", None
    b.session.flush()
    return row


def archive_agent(b: Billing, organization: Organization, agent: str) -> None:
    row = rows.agent(b.session, organization.id, agent, active=True)
    if row is None:
        raise Refused(f"There is no active agent {agent}.", code="unknown_agent")
    row.status, row.archived_at = "archived", b.now


def add_phone_number(b: Billing, organization: Organization, number: str) -> PhoneNumber:
    if not isinstance(number, str) or not 3 <= len(number) <= 32:
        raise InvalidInput(f"{number!r} is not a phone number")
    row = rows.phone_number(b.session, organization.id, number)
    if row is not None and row.status == "active":
        raise Refused(f"{number} is in use already.", code="phone_number_exists")
    _require_allowed(b, organization, Action.ADD_PHONE_NUMBER)
    if row is None:
        row = PhoneNumber(
            organization_id=organization.id, number=number, status="active", added_at=b.now
        )
        b.session.add(row)
    else:
        row.status, row.released_at, row.added_at = "active", None, b.now
    b.session.flush()
    return row


def release_phone_number(b: Billing, organization: Organization, number: str) -> None:
    row = rows.phone_number(b.session, organization.id, number, active=True)
    if row is None:
        raise Refused(f"{number} is not in use.", code="unknown_phone_number")
    row.status, row.released_at = "released", b.now
