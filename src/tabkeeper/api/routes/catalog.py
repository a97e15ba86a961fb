"""The platform's catalog: read the current version, import a new one (CAT-6)."""

from __future__ import annotations

from fastapi import APIRouter, status

from tabkeeper.api import schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.db.tables import CatalogVersion, Platform
from tabkeeper.domain.errors import InvalidInput, NotFound
from tabkeeper.domain.terms import build_terms
from tabkeeper.services.catalog import import_catalog

router = APIRouter(tags=["catalog"])


def show_catalog(version: CatalogVersion, platform: Platform) -> schemas.Catalog:
    return schemas.Catalog(
        version=version.version,
        currency=version.currency,
        created_at=version.created_at,
        catalog=version.document,
        settings=platform.settings,
    )


@router.get("/catalog", operation_id="catalog.get")
def get_catalog(api: ApiDep, caller: CallerDep) -> schemas.Catalog:
    """The current catalog version: meters, plans, add-ons, AI feature rates."""
    with api.reading(caller) as b:
        try:
            version = b.current_version()
        except InvalidInput:
            raise NotFound("This platform has no catalog yet.") from None
        return show_catalog(version, b.platform)


@router.post("/catalog", operation_id="catalog.publish", status_code=status.HTTP_201_CREATED)
def put_catalog(body: schemas.CatalogIn, api: ApiDep, caller: CallerDep) -> schemas.Catalog:
    """Import a catalog (and the billing terms in `settings`). A change makes a new
    version; subscriptions keep theirs until a change is applied to them (CAT-6).
    Validated whole; errors name the path. Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        if body.settings is not None:
            build_terms(body.settings)
            b.platform.settings = dict(body.settings)
        version = import_catalog(b.session, b.platform, body.catalog, b.now)
        return show_catalog(version, b.platform)
