"""The SQL of platforms and their catalog versions (CAT-6: versions, never rewrites).

Statements are built once per process, the values as parameters; they return the ORM rows
the services work with.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tabkeeper.db.tables import CatalogVersion, Platform

_PLATFORM = select(Platform).where(Platform.code == bindparam("code"))
_LATEST = (
    select(CatalogVersion)
    .where(CatalogVersion.platform_id == bindparam("platform"))
    .order_by(CatalogVersion.version.desc())
    .limit(1)
)


def platform_by_code(session: Session, code: str) -> Platform | None:
    """The platform `code` (None when there is none)."""
    return session.scalars(_PLATFORM, {"code": code}).first()


def latest_version(session: Session, platform_id: int) -> CatalogVersion | None:
    """The platform's latest catalog version (None before its first import)."""
    return session.scalars(_LATEST, {"platform": platform_id}).first()
