"""Shapes of the API's requests and responses (OpenAPI 3.1 is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$", max_length=64)]
Role = Literal["owner", "billing_admin", "member"]
ObjectId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The object's id.")]
"""An object's id in a path; bounded to the database's INTEGER so nothing overflows."""


class Strict(BaseModel):
    """Request bodies refuse unknown fields: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid")


class MemberIn(Strict):
    code: Code
    email: (
        Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    role: Role = "member"


class OrganizationIn(Strict):
    code: Code
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    parent: Code | None = Field(default=None, description="Makes a sub-account (SUB-2).")
    members: list[MemberIn] = Field(
        default_factory=list, max_length=100, description="At least one owner."
    )


class Organization(BaseModel):
    id: int
    code: str
    name: str
    parent: str | None
    created_at: datetime
    account_credit_minor: int


class NewMember(MemberIn):
    organization: Code


class Member(BaseModel):
    id: int
    organization: str
    code: str
    email: str | None
    role: Role
    created_at: datetime


class PortalSessionIn(Strict):
    organization: Code
    member: Code


class PortalSession(BaseModel):
    url: str
    token: str
    expires_at: datetime


class ApiKeyIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ApiKey(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    key: str | None = Field(default=None, description="Shown once, when the key is made.")


class CatalogIn(Strict):
    catalog: dict[str, Any]
    settings: dict[str, Any] | None = None


class Catalog(BaseModel):
    version: int
    currency: str
    created_at: datetime
    catalog: dict[str, Any]
    settings: dict[str, Any]


class Deleted(BaseModel):
    id: int
    deleted: bool = True
