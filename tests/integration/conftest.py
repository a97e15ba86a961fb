"""A billing world on the test database: a platform with a catalog, the sandbox provider,
a simulated clock and the billing clock, plus helpers to create and subscribe
organizations through the real services."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, inspect, select, text

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Notice
from tabkeeper.domain.periods import Period
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.payments.sandbox_store import SandboxCharge
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.checkout import subscribe_with_card
from tabkeeper.services.context import Billing, CatalogStore, billing
from tabkeeper.services.organizations import create_organization, organization_by_code
from tabkeeper.services.subscriptions import plan_of, subscription_of
from tabkeeper.services.usage import measure_usage, recount_usage
from tabkeeper.worker.clock import BillingClock, Checkpoint

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)

CATALOG: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "minutes": {
            "kind": "sum", "event": "call.ended", "field": "duration_seconds",
            "unit_seconds": 60, "rounding": "per_event_up",
        },
    },
    "plans": {
        # 3 team seats: test_notify's organization has three members besides its owner
        # (members count against seats on every path, SUB-13).
        "trial": {"name": "Free trial", "price": "0", "includes": {"sessions": 50},
                  "limits": {"agents": 1, "seats": 3}},
        "basic": {"name": "Basic", "price": "30.00", "includes": {"minutes": 100},
                  "overage": {"minutes": {"model": "per_unit", "unit_price": "0.10"}},
                  "limits": {"agents": 1, "seats": 2, "phone_numbers": 1}, "rank": 1},
        "pro": {"name": "Pro", "price": "60.00", "includes": {"minutes": 500},
                "limits": {"agents": 3, "seats": 5, "phone_numbers": 2}, "rank": 2},
    },
}  # fmt: skip


class Crash(Exception):
    """Raised from a checkpoint: the worker stops there, as if the process died."""


@dataclass
class World:
    engine: Engine
    clock: SimulatedClock
    provider: SandboxProvider
    store: CatalogStore
    platform_id: int
    settings: dict[str, Any] = field(default_factory=dict)

    def billing(self) -> AbstractContextManager[Billing]:
        return billing(self.engine, self.platform_id, self.clock.now(), self.store)

    def worker(
        self, *, crash_at: str | None = None, lease: timedelta | None = None
    ) -> BillingClock:
        def checkpoint(name: str) -> None:
            if name == crash_at:
                raise Crash(name)

        hook: Checkpoint | None = checkpoint if crash_at else None
        return BillingClock(
            self.engine, self.provider, self.clock, store=self.store, checkpoint=hook,
            lease=lease if lease is not None else timedelta(minutes=5),
        )  # fmt: skip

    def organization(self, code: str, members: dict[str, str] | None = None) -> None:
        with self.billing() as b:
            create_organization(b, code, members or {"owner": "owner"})

    def subscribe(self, code: str, plan: str = "basic", card: str | None = "card_ok") -> int:
        return subscribe_with_card(self.billing, self.provider, code, plan, card)

    def count(self, model: Any, *where: Any) -> int:
        with transaction(self.engine) as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def charges(self) -> int:
        return self.count(SandboxCharge)

    def invoices(self, *where: Any) -> int:
        return self.count(Invoice, *where)

    def notices(self, kind: str) -> int:
        return self.count(Notice, Notice.kind == kind)

    def usage_and_recount(self, code: str) -> dict[str, tuple[Fraction, Fraction]]:
        """Each meter of `code`'s current period: (what the counters say, the recount of
        its stored events)."""
        with self.billing() as b:
            owner = organization_by_code(b, code)
            subscription = subscription_of(b, owner, lock=False)
            assert subscription is not None
            catalog, plan = plan_of(b, subscription)
            period = Period(subscription.period_start, subscription.period_end, 0)
            return {
                meter.code: (
                    measure_usage(b, owner, meter, period, plan.answered_only),
                    recount_usage(b, owner, meter, period, plan.answered_only),
                )
                for meter in catalog.meters.values()
            }


def make_world(engine: Engine, settings: dict[str, Any] | None = None) -> World:
    clock = SimulatedClock(JAN_1)
    store = CatalogStore()
    settings = {"trial": None, **(settings or {})}
    with transaction(engine) as session:
        platform = ensure_platform(session, "acme-platform", "Acme", clock.now(), settings)
        import_catalog(session, platform, CATALOG, clock.now())
        platform_id = platform.id
    return World(engine, clock, SandboxProvider(engine, clock), store, platform_id, settings)


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    yield make_world(engine)


@contextmanager
def statements_sent(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends inside the block, whitespace collapsed
    (`before_cursor_execute`: what goes through SQLAlchemy; SQLite's BEGIN goes to the
    driver directly and is not among them)."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextmanager
def turn_held(engine: Engine) -> Iterator[threading.Event]:
    """A thread of the process holding the writers' turn (in a transaction of its own,
    db/engine.py) until the event given is set; joined when the block ends."""
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with transaction(engine):
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(60)
        yield release
    finally:
        release.set()
        thread.join(60)


def all_at_once(count: int, work: Callable[[int], object]) -> None:
    """`work(0)` … `work(count - 1)`, each in a thread of its own, released together at a
    barrier; returns when all have ended, and fails with the first error any of them
    raised."""
    gate = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            gate.wait()
            work(index)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def every_row(engine: Engine, *, leave_out: Collection[str] = ()) -> dict[str, list[str]]:
    """Every row of every table but `leave_out`, each as its repr, sorted: what "nothing
    changed" is checked against."""
    with engine.connect() as connection:
        return {
            table: sorted(map(repr, connection.execute(text(f'SELECT * FROM "{table}"')).all()))
            for table in sorted(inspect(engine).get_table_names())
            if table not in leave_out
        }
