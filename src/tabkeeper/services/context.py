"""The billing context of one platform within one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from threading import Lock
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.orm import Session, object_session

from tabkeeper.clock import Clock
from tabkeeper.db.catalogs import latest_version
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
        self._catalogs: WeakKeyDictionary[object, dict[int, tuple[int, Catalog]]] = (
            WeakKeyDictionary()
        )
        self._terms: dict[tuple[int, str], BillingTerms] = {}
        self._lock = Lock()

    def _cached(self, database: object, version_id: int) -> tuple[int, Catalog] | None:
        with self._lock:
            return self._catalogs.get(database, {}).get(version_id)

    def _build(self, database: object, version: CatalogVersion) -> Catalog:
        found = build_catalog(version.document, Currency.of(version.currency), "catalog")
        with self._lock:
            self._catalogs.setdefault(database, {})[version.id] = (version.platform_id, found)
        return found

    def catalog(self, version: CatalogVersion) -> Catalog:
        session = object_session(version)
        database: object = session.get_bind() if session is not None else self
        found = self._cached(database, version.id)
        return found[1] if found is not None else self._build(database, version)

    def catalog_by_id(self, session: Session, platform_id: int, version_id: int) -> Catalog:
        """The catalog version `version_id` of the platform, read from the database only
        the first time in this process (the hot path of a use knows only the id)."""
        database: object = session.get_bind()
        found = self._cached(database, version_id)
        if found is not None:
            owner, catalog = found
        else:
            version = session.get(CatalogVersion, version_id)
            if version is None:
                raise InvalidInput(f"unknown catalog version {version_id}")
            owner, catalog = version.platform_id, self._build(database, version)
        if owner != platform_id:
            raise InvalidInput(f"unknown catalog version {version_id}")
        return catalog

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


class Billing:
    """What a service needs: the open transaction, the time of the work, the platform.

    The platform row and its terms are read when first asked for (`platform`, `terms`),
    once per transaction: the hot path of an AI-credit use (services/credits.py) needs
    only the platform's id, which the caller knows. A platform is never deleted, so an
    unknown id is refused at the first look at the row."""

    __slots__ = ("_platform", "_terms", "now", "platform_id", "session", "store")

    def __init__(
        self,
        session: Session,
        now: datetime,
        platform: Platform | int,
        terms: BillingTerms | None = None,
        store: CatalogStore = CATALOGS,
    ) -> None:
        self.session = session
        self.now = now
        self.store = store
        self._platform = None if isinstance(platform, int) else platform
        self.platform_id = platform if isinstance(platform, int) else platform.id
        self._terms = terms

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            found = self.session.get(Platform, self.platform_id)
            if found is None:
                raise InvalidInput(f"unknown platform {self.platform_id}")
            self._platform = found
        return self._platform

    @property
    def terms(self) -> BillingTerms:
        """The platform's billing terms (built once per settings document, CatalogStore)."""
        if self._terms is None:
            self._terms = self.store.terms(self.platform)
        return self._terms

    def catalog_version(self, version_id: int) -> CatalogVersion:
        version = self.session.get(CatalogVersion, version_id)
        if version is None or version.platform_id != self.platform_id:
            raise InvalidInput(f"unknown catalog version {version_id}")
        return version

    def catalog_of(self, version_id: int) -> Catalog:
        return self.store.catalog(self.catalog_version(version_id))

    def current_version(self) -> CatalogVersion:
        version = latest_version(self.session, self.platform_id)
        if version is None:
            raise InvalidInput("this platform has no catalog yet; import one first")
        return version

    def current_catalog(self) -> tuple[CatalogVersion, Catalog]:
        version = self.current_version()
        return version, self.store.catalog(version)


def billing_for(
    session: Session, platform_id: int, now: datetime, store: CatalogStore = CATALOGS
) -> Billing:
    """The billing context of `platform_id` in `session` (its row is read when needed)."""
    return Billing(session, require_utc(now), platform_id, None, store)


@contextmanager
def billing(
    engine: Engine,
    platform_id: int,
    now: datetime,
    store: CatalogStore = CATALOGS,
    *,
    wait: bool = True,
) -> Iterator[Billing]:
    """A Billing context in its own transaction, committed when the block ends (`wait`:
    see db/engine.py `transaction`)."""
    with transaction(engine, wait=wait) as session:
        yield billing_for(session, platform_id, now, store)


UnitOfWork = Callable[[], AbstractContextManager[Billing]]
"""Opens one transaction of one platform (committed when its block ends): what a use case
that must call the payment provider between transactions is given by its entry point."""


def unit_of_work(
    engine: Engine, platform_id: int, clock: Clock, store: CatalogStore = CATALOGS
) -> UnitOfWork:
    """The UnitOfWork of `platform_id` for callers outside a request (the simulator, the
    demo, tests, benchmarks): each call opens a transaction as of the clock's time then."""
    return lambda: billing(engine, platform_id, clock.now(), store)
