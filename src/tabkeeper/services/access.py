"""Who is calling (ACL-1..3): platform API keys and members' portal sessions.

API keys are shown once and stored as a SHA-256 hash (ACL-3). A portal session is a
short-lived token the platform asks for on behalf of one member of one organization (as a
hosted customer portal works): `ps_<platform id>.<payload>.<signature>`, signed with
HMAC-SHA256 by the platform's own secret over `<platform id>.<payload>`; the payload names
the organization, member, expiry and the member's `sessions` number. The signature is
checked before the payload is decoded, so a forged token is refused without being parsed.
Nothing about a session is stored; a token is tied to the member's current membership:
removing the member, re-adding them and logging out add one to `members.sessions`, and a
token made with another number is refused (ACL-3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from tabkeeper.db import organizations
from tabkeeper.db.access import api_key_by_hash
from tabkeeper.db.accounts import AccountFacts
from tabkeeper.db.tables import Member, Organization, Platform
from tabkeeper.db.tables_access import ApiKey
from tabkeeper.domain import fields
from tabkeeper.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from tabkeeper.services.context import Billing

KEY_PREFIX = "tk_"
SESSION_PREFIX = "ps_"
PORTAL_SESSION_LIFETIME = timedelta(hours=1)
BILLING_ROLES = ("owner", "billing_admin")


@dataclass(frozen=True, slots=True)
class Caller:
    """A platform (by API key) or a member of one organization (by portal session)."""

    platform_id: int
    organization_id: int | None = None
    member: str | None = None
    role: str | None = None

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None

    @property
    def identity(self) -> str:
        if self.is_platform:
            return f"platform:{self.platform_id}"
        return f"member:{self.organization_id}:{self.member}"

    def require_billing(self) -> None:
        """ACL-1: plans, limits, payment, credits, invoices: owner or billing admin."""
        if not self.is_platform and self.role not in BILLING_ROLES:
            raise Forbidden("Managing billing needs the owner or billing admin role.")

    def require_owner(self) -> None:
        """ACL-1: add-ons are the owner's alone."""
        if not self.is_platform and self.role != "owner":
            raise Forbidden("Only the organization's owner may do this.")

    def require_platform(self) -> None:
        if not self.is_platform:
            raise Forbidden("This needs the platform's API key.")

    def sees(self, organization: Organization | AccountFacts) -> bool:
        """ACL-3: a member sees only their own organization (and its sub-accounts)."""
        if organization.platform_id != self.platform_id:
            return False
        return self.is_platform or self.organization_id in (
            organization.id,
            organization.parent_id,
        )

    def require_sees(self, organization: Organization | None) -> Organization:
        if organization is None or not self.sees(organization):
            raise NotFound("No such organization.")
        return organization


def _hash(key: str) -> str:
    return credential_digest(key).hex()


def create_api_key(
    session: Session, platform_id: int, name: str, now: datetime
) -> tuple[ApiKey, str]:
    """A new key for the platform: the row, and the key itself, shown this once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        platform_id=platform_id,
        name=fields.text(name, "name")[:200],
        prefix=key[:10],
        key_hash=_hash(key),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, key


def revoke_api_key(session: Session, platform_id: int, key_id: int, now: datetime) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.platform_id != platform_id:
        raise NotFound("No such API key.")
    row.revoked_at = row.revoked_at or now
    return row


def caller_for_key(session: Session, key: str) -> Caller:
    row = api_key_by_hash(session, _hash(key))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("The API key is not valid.")
    return Caller(row.platform_id)


def _secret(session: Session, platform: Platform) -> bytes:
    if platform.portal_secret is None:
        platform.portal_secret = secrets.token_hex(32)
        session.flush()
    return bytes.fromhex(platform.portal_secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def create_portal_session(
    session: Session,
    platform_id: int,
    organization: Organization,
    member: str,
    now: datetime,
    lifetime: timedelta = PORTAL_SESSION_LIFETIME,
) -> tuple[str, datetime]:
    """A token that acts as `member` of `organization` until it expires."""
    platform = session.get(Platform, platform_id)
    if platform is None or organization.platform_id != platform_id:
        raise NotFound("No such organization.")
    row = member_row(session, organization.id, member)
    if row is None:
        raise NotFound(f"No member {member!r} in {organization.code}.")
    expires_at = now + lifetime
    payload = _b64(
        json.dumps(
            {
                "o": organization.id,
                "m": member,
                "e": int(expires_at.timestamp()),
                "g": row.sessions,
            },
            separators=(",", ":"),
        ).encode()
    )
    signed = f"{platform_id}.{payload}"
    signature = _b64(hmac.new(_secret(session, platform), signed.encode(), "sha256").digest())
    return f"{SESSION_PREFIX}{signed}.{signature}", expires_at


MAX_TOKEN_LENGTH = 2000


def caller_for_session(session: Session, token: str, now: datetime) -> Caller:
    """The member a portal session token acts as; Unauthorized when forged or expired."""
    return session_caller(session, token, now)[0]


def session_caller(session: Session, token: str, now: datetime) -> tuple[Caller, datetime]:
    """The member a portal session token acts as, and when the token expires (the first
    moment it is refused); Unauthorized when forged or expired."""
    invalid = Unauthorized("The portal session is not valid or has expired.")
    # The signature is checked before anything of the payload is decoded: a forged token
    # is refused without parsing what it carries (OPS-4: never a 500).
    parts = token.removeprefix(SESSION_PREFIX).split(".")
    if len(token) > MAX_TOKEN_LENGTH or len(parts) != 3:
        raise invalid
    platform_text, payload, signature = parts
    if not (platform_text.isascii() and platform_text.isdigit() and len(platform_text) < 10):
        raise invalid
    platform = session.get(Platform, int(platform_text))
    if platform is None or platform.portal_secret is None:
        raise invalid
    signed = f"{platform_text}.{payload}".encode()
    expected = hmac.new(bytes.fromhex(platform.portal_secret), signed, "sha256")
    if not hmac.compare_digest(_b64(expected.digest()), signature):
        raise invalid
    try:
        data = json.loads(_unb64(payload))
        organization_id, member = int(data["o"]), str(data["m"])
        expires, generation = int(data["e"]), int(data["g"])
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (ValueError, KeyError, TypeError, OverflowError, OSError, RecursionError):
        raise invalid from None
    if now.timestamp() >= expires:
        raise invalid
    row = member_row(session, organization_id, member)
    if row is None or row.sessions != generation:
        raise invalid  # removed, re-added since, or logged out since (ACL-3)
    return Caller(platform.id, organization_id, member, row.role), expires_at


def end_portal_sessions(session: Session, caller: Caller) -> None:
    """Log out: every portal session of the caller's membership made until now ends."""
    if caller.organization_id is None or caller.member is None:
        raise Forbidden("Only a member's portal session can log out.")
    row = member_row(session, caller.organization_id, caller.member)
    if row is not None:
        row.sessions += 1
        session.flush()


def member_row(session: Session, organization_id: int, member: str) -> Member | None:
    """The member `member` of the organization, unless removed (or never there)."""
    return organizations.current_member(session, organization_id, member)


def credential_of(authorization: str | None) -> str:
    """The API key or portal session of an Authorization header (Bearer <credential>)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("Send Authorization: Bearer <API key or portal session>.")
    credential = authorization.removeprefix("Bearer ").strip()
    if not credential.startswith((SESSION_PREFIX, KEY_PREFIX)):
        raise Unauthorized("The API key is not valid.")
    return credential


def credential_digest(credential: str) -> bytes:
    """The SHA-256 of a credential: what a cache of callers is keyed by (for an API key,
    the stored key hash, as bytes)."""
    return hashlib.sha256(credential.encode("utf-8")).digest()


def authenticate_credential(
    session: Session, credential: str, now: datetime
) -> tuple[Caller, datetime | None]:
    """The caller a credential of `credential_of` stands for, and when it expires (a
    portal session; None for an API key, valid until revoked)."""
    if credential.startswith(SESSION_PREFIX):
        return session_caller(session, credential, now)
    return caller_for_key(session, credential), None


def authenticate(session: Session, authorization: str | None, now: datetime) -> Caller:
    """The caller of a request from its Authorization header (Bearer <key or session>)."""
    return authenticate_credential(session, credential_of(authorization), now)[0]


def set_member_email(session: Session, organization: Organization, member: str, email: str) -> None:
    """Where the member's billing e-mails go (owners and billing admins get notices)."""
    row = member_row(session, organization.id, member)
    if row is None:
        raise NotFound(f"No member {member!r} in {organization.code}.")
    row.email = email


# -- finding a billing object as the caller may see it (ACL-3) ---------------------------
#
# An object of an organization the caller does not see is "not found", exactly like an
# object that does not exist: never a hint that it does. Lists are narrowed the same way:
# to the organization asked for (not found when the caller does not see it), else to every
# organization the caller sees (the platform: all of its own; a member: their organization
# and its sub-accounts). The HTTP routes and the billing tab both use these.


def organization_for(b: Billing, caller: Caller, code: str) -> Organization:
    """The organization `code` as the caller may see it; NotFound for anything else."""
    from tabkeeper.services.organizations import organization_by_code  # imports this module

    try:
        found = organization_by_code(b, code)
    except InvalidInput:
        raise NotFound("No such organization.") from None
    return caller.require_sees(found)


class Owned(Protocol):
    """A row that belongs to one organization."""

    @property
    def organization_id(self) -> int: ...


RowT = TypeVar("RowT", bound=Owned)


def owned(
    b: Billing, caller: Caller, model: type[RowT], row_id: int, what: str
) -> tuple[RowT, Organization]:
    """The row `row_id` of `model` and its organization; NotFound ("No such <what>.")
    when there is none or the caller does not see its organization."""
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
    visible = organizations.visible_ids(caller.platform_id, caller.organization_id)
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
