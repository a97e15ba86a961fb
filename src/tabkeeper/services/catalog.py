"""Platforms, their billing terms, and catalog import (CAT-6: versions, never rewrites)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tabkeeper.db.catalogs import latest_version, platform_by_code
from tabkeeper.db.tables import CatalogVersion, Platform
from tabkeeper.domain import fields
from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.terms import build_terms, check_terms_with_catalog


def ensure_platform(
    session: Session, code: str, name: str, now: datetime, settings: Mapping[str, Any] | None = None
) -> Platform:
    """The platform `code`, created when missing; `settings` (validated) replace its terms."""
    fields.name(code, "platform")
    if settings is not None:
        build_terms(settings)
    platform = platform_by_code(session, code)
    if platform is None:
        platform = Platform(code=code, name=name, created_at=now, settings=dict(settings or {}))
        session.add(platform)
        session.flush()
    elif settings is not None:
        platform.settings = dict(settings)
    return platform


def import_catalog(
    session: Session, platform: Platform, document: Mapping[str, Any], now: datetime
) -> CatalogVersion:
    """Store `document` as the platform's catalog: a new version when it differs from the
    latest (in anything, prices included), else the latest. Validated whole first."""
    terms = build_terms(platform.settings)
    catalog = build_catalog(document, terms.currency, "catalog")
    check_terms_with_catalog(terms, catalog, "settings")
    latest = latest_version(session, platform.id)
    if (
        latest is not None
        and latest.document == document
        and latest.currency == terms.currency.code
    ):
        return latest
    version = CatalogVersion(
        platform_id=platform.id,
        version=1 if latest is None else latest.version + 1,
        currency=terms.currency.code,
        document=dict(document),
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version
