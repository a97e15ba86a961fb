"""The billing clock (DESIGN.md rule 6).

Due work is found by a query on `due_work` (status pending, due_at reached), claimed with
the row lock of the transaction that does it (PostgreSQL: FOR UPDATE SKIP LOCKED, so two
workers never take the same row; SQLite: one writer at a time), done, and marked done in
that same transaction. A crash rolls all of it back and leaves the work pending.

Collecting an invoice crosses the payment provider, so it is claimed (marked running) in
one transaction, charged outside, and recorded in another (services/payments.py). A
collection left running by a crash is taken over after `lease`; the provider's
idempotency key makes the second charge return the first one's result.

Work is done as of its due time: a renewal's invoice is issued at the period boundary even
when the worker runs later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from tabkeeper.clock import Clock, SimulatedClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Organization
from tabkeeper.db.types import UtcDateTime
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.services.context import CATALOGS, CatalogStore, billing_for
from tabkeeper.services.payments import LEASE, charge, claim_attempt, record_outcome
from tabkeeper.services.renewals import HANDLERS

Checkpoint = Callable[[str], None]

_DUE = and_(
    DueWork.due_at <= bindparam("until", type_=UtcDateTime()),
    or_(
        DueWork.status == "pending",
        and_(
            DueWork.status == "running",
            DueWork.claimed_at <= bindparam("stale", type_=UtcDateTime()),
        ),
    ),
)
"""Work due by `until`: pending, or running but claimed before `stale` (its lease ran out).
Built once (the statements below too): building them is a good part of a renewal's time."""
_NEXT_DUE_AT = select(DueWork.due_at).where(_DUE).order_by(DueWork.due_at, DueWork.id).limit(1)
_UNTIL = bindparam("until", type_=UtcDateTime())
_NEXT_PENDING, _NEXT_STALE = (
    select(DueWork)
    .where(DueWork.due_at <= _UNTIL, *conditions)
    .order_by(DueWork.due_at, DueWork.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    for conditions in (
        (DueWork.status == "pending",),
        (
            DueWork.status == "running",
            DueWork.claimed_at <= bindparam("stale", type_=UtcDateTime()),
        ),
    )
)
"""The earliest pending work, and the earliest running work whose lease ran out. Two
queries rather than one with OR: each is read in order from the index on (status,
due_at), where the OR made the database read and sort every due row for each claim."""


class BillingClock:
    """Runs due work. `checkpoint(name)` is called between the steps of a piece of work
    ("period_end" after a renewal commits, "charged" after the provider answered, ...):
    tests raise from it to stop the worker there, as a crash would."""

    def __init__(
        self,
        engine: Engine,
        provider: PaymentProvider,
        clock: Clock,
        *,
        lease: timedelta = LEASE,
        store: CatalogStore = CATALOGS,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.engine = engine
        self.provider = provider
        self.clock = clock
        self.lease = lease
        self.store = store
        self.checkpoint = checkpoint or (lambda _name: None)

    def _due(self, until: datetime) -> dict[str, datetime]:
        """The values of the parameters of _DUE."""
        return {"until": until, "stale": self.clock.now() - self.lease}

    def next_due_at(self, until: datetime) -> datetime | None:
        """When the earliest work due by `until` is due (None when there is none)."""
        with self.engine.connect() as connection:
            return connection.execute(_NEXT_DUE_AT, self._due(until)).scalar()

    def _next_work(self, session: Session, until: datetime) -> DueWork | None:
        """The earliest work due by `until` that no other worker holds, locked."""
        found = [
            work
            for query in (_NEXT_STALE, _NEXT_PENDING)
            if (work := session.scalars(query, self._due(until)).first()) is not None
        ]
        return min(found, key=lambda work: (work.due_at, work.id), default=None)

    def run_one(self, until: datetime) -> bool:
        """Claim and do the earliest work due by `until`; False when there was none."""
        claim = None
        with transaction(self.engine) as session:
            work = self._next_work(session, until)
            if work is None:
                return False
            # The entity, not just its platform: the handlers' get() then finds it loaded.
            organization = session.get(Organization, work.organization_id)
            assert organization is not None
            platform_id = organization.platform_id
            kind = work.kind
            if kind == "collect":
                b = billing_for(session, platform_id, self.clock.now(), self.store)
                invoice_id = int(work.subject_key.split(":")[1])
                claim = claim_attempt(b, invoice_id, work)
            else:
                b = billing_for(session, platform_id, work.due_at, self.store)
                HANDLERS[kind](b, work)
                work.status, work.done_at = "done", b.now
        self.checkpoint(kind)
        if claim is not None:
            result = charge(self.provider, claim)
            self.checkpoint("charged")
            with transaction(self.engine) as session:
                b = billing_for(session, platform_id, self.clock.now(), self.store)
                record_outcome(b, claim, result)
            self.checkpoint("recorded")
        return True

    def run_until(self, until: datetime) -> int:
        """Do all work due by `until`, earliest first. On a SimulatedClock the clock is
        moved to each work's due time first, so the run is what real time would give."""
        done = 0
        while True:
            # Once the clock is at `until`, nothing can move it: skip the query for the time.
            if isinstance(self.clock, SimulatedClock) and until > self.clock.now():
                due_at = self.next_due_at(until)
                if due_at is None:
                    break
                if due_at > self.clock.now():
                    self.clock.set(due_at)
            if not self.run_one(until):
                break
            done += 1
        return done

    def tick(self) -> int:
        """Do everything due now."""
        return self.run_until(self.clock.now())
