"""Finding a billing object as the caller may see it (ACL-3), for every billing router.

An object of an organization the caller does not see answers 404, exactly like an object
that does not exist: never a hint that it does. Lists are narrowed the same way: to the
`?organization=` asked for (404 when the caller does not see it), else to every
organization the caller sees (the platform: all of its own; a member: their organization
and its sub-accounts).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tabkeeper.api.routes.organizations import organization_for
from tabkeeper.db.tables import Organization
from tabkeeper.domain.errors import NotFound
from tabkeeper.services.access import Caller
from tabkeeper.services.context import Billing


class Owned(Protocol):
    """A row that belongs to one organization."""

    @property
    def organization_id(self) -> int: ...


RowT = TypeVar("RowT", bound=Owned)


def owned(
    b: Billing, caller: Caller, model: type[RowT], row_id: int, what: str
) -> tuple[RowT, Organization]:
    """The row `row_id` of `model` and its organization; NotFound ("No such <what>.")
    when there is none or the caller does not see its organization (ACL-3)."""
    row = b.session.get(model, row_id)
    organization = None if row is None else b.session.get(Organization, row.organization_id)
    if row is None or organization is None or not caller.sees(organization):
        raise NotFound(f"No such {what}.")
    return row, organization


def scoped(
    b: Billing, caller: Caller, query: Select[Any], organization_id: Any, organization: str | None
) -> Select[Any]:
    """`query` narrowed to what the caller sees, or to the one organization asked for."""
    if organization is not None:
        return query.where(organization_id == organization_for(b, caller, organization).id)
    visible = select(Organization.id).where(Organization.platform_id == caller.platform_id)
    if not caller.is_platform:
        visible = visible.where(
            (Organization.id == caller.organization_id)
            | (Organization.parent_id == caller.organization_id)
        )
    return query.where(organization_id.in_(visible))


class OrganizationCodes:
    """The code of an organization by id, each loaded once per request."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._codes: dict[int, str] = {}

    def __call__(self, organization_id: int) -> str:
        code = self._codes.get(organization_id)
        if code is None:
            organization = self._session.get(Organization, organization_id)
            assert organization is not None
            code = self._codes[organization_id] = organization.code
        return code
