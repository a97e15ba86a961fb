"""The billing context of one platform within one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, object_session

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import CatalogVersion, Platform
from tabkeeper.domain.catalog import Catalog, build_catalog
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Currency
from tabkeeper.domain.terms import BillingTerms, build_terms
from tabkeeper.domain.utc import require_utc


class CatalogStore:
    """Parsed catalog versions, kept once per process: a version never changes (CAT-6).

    Kept per database (engine): two databases in one process (tests, the simulator beside
    a server) may both have a version 1 with other contents."""

    def __init__(self) -> None:
        self._catalogs: WeakKeyDictionary[object, dict[int, Catalog]] = WeakKeyDictionary()
        self._terms: dict[tuple[int, str], BillingTerms] = {}
        self._lock = Lock()

    def catalog(self, version: CatalogVersion) -> Catalog:
        session = object_session(version)
        database: object = session.get_bind() if session is not None else self
        with self._lock:
            found = self._catalogs.get(database, {}).get(version.id)
        if found is None:
            found = build_catalog(version.document, Currency.of(version.currency), "catalog")
            with self._lock:
                self._catalogs.setdefault(database, {})[version.id] = found
        return found

    def terms(self, platform: Platform) -> BillingTerms:
        key = (platform.id, repr(sorted(platform.settings.items())))
        with self._lock:
            found = self._terms.get(key)
        if found is None:
            found = build_terms(platform.settings)
            with self._lock:
                self._terms[key] = found
        return found


CATALOGS = CatalogStore()


@dataclass
class Billing:
    """What a service needs: the open transaction, the time of the work, the platform."""

    session: Session
    now: datetime
    platform: Platform
    terms: BillingTerms
    store: CatalogStore

    def catalog_version(self, version_id: int) -> CatalogVersion:
        version = self.session.get(CatalogVersion, version_id)
        if version is None or version.platform_id != self.platform.id:
            raise InvalidInput(f"unknown catalog version {version_id}")
        return version

    def catalog_of(self, version_id: int) -> Catalog:
        return self.store.catalog(self.catalog_version(version_id))

    def current_version(self) -> CatalogVersion:
        version = self.session.scalars(
            select(CatalogVersion)
            .where(CatalogVersion.platform_id == self.platform.id)
            .order_by(CatalogVersion.version.desc())
            .limit(1)
        ).first()
        if version is None:
            raise InvalidInput("this platform has no catalog yet; import one first")
        return version

    def current_catalog(self) -> tuple[CatalogVersion, Catalog]:
        version = self.current_version()
        return version, self.store.catalog(version)


def billing_for(
    session: Session, platform_id: int, now: datetime, store: CatalogStore = CATALOGS
) -> Billing:
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise InvalidInput(f"unknown platform {platform_id}")
    return Billing(session, require_utc(now), platform, store.terms(platform), store)


@contextmanager
def billing(
    engine: Engine, platform_id: int, now: datetime, store: CatalogStore = CATALOGS
) -> Iterator[Billing]:
    """A Billing context in its own transaction, committed when the block ends."""
    with transaction(engine) as session:
        yield billing_for(session, platform_id, now, store)
