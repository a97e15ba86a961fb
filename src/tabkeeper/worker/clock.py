"""The billing clock (DESIGN.md rule 6).

Due work is found by a query on `due_work` (status pending, due_at reached), claimed with
the row lock of the transaction that does it (PostgreSQL: FOR UPDATE SKIP LOCKED, so two
workers never take the same row; SQLite: one writer at a time), done, and marked done in
that same transaction. A crash rolls all of it back and leaves the work pending.

Collecting an invoice crosses the payment provider, so it is claimed (marked running) in
one transaction, charged outside, and recorded in another: the steps of
services/payments.py (`claim_attempt`, then `settle`), the same the API and the simulator
take through `collect`. A collection left running by a crash is taken over after `lease`;
the provider's idempotency key makes the second charge return the first one's result.

Work is done as of its due time: a renewal's invoice is issued at the period boundary even
when the worker runs later.

What keeps it fast (docs/benchmarks.md, "Renewals"): the statements are built once; the
work comes with its organization and platform in one query; work left running by a dead
worker is looked for every lease / STALE_CHECKS_PER_LEASE rather than before each piece
of work while there is pending work; and on SQLite, renewals due at the same moment are
done up to WORK_PER_TRANSACTION to a transaction, in the order and with the result one
transaction each would give, and so are the claims of their collections
(`BillingClock._batch_after`). A batch that fails is rolled back whole and done again one
piece of work at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from functools import partial
from time import perf_counter

from sqlalchemy import Engine, Row, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from tabkeeper.clock import Clock, SimulatedClock
from tabkeeper.db.engine import is_sqlite, transaction
from tabkeeper.db.records import set_work_status, table_of
from tabkeeper.db.tables import DueWork, Organization, Platform
from tabkeeper.db.types import UtcDateTime
from tabkeeper.domain.utc import require_utc
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.services import auto_top_ups
from tabkeeper.services.auto_fire import WORK as AUTO_TOP_UP
from tabkeeper.services.context import CATALOGS, Billing, CatalogStore, UnitOfWork, billing_for
from tabkeeper.services.payments import LEASE, ClaimedAttempt, claim_attempt, settle
from tabkeeper.services.renewals import HANDLERS

Checkpoint = Callable[[str], None]
log = logging.getLogger("tabkeeper.worker")

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
    select(DueWork, Organization, Platform)
    .join(Organization, Organization.id == DueWork.organization_id)
    .join(Platform, Platform.id == Organization.platform_id)
    .where(DueWork.due_at <= _UNTIL, *conditions)
    .order_by(DueWork.due_at, DueWork.id)
    .limit(1)
    .with_for_update(of=DueWork, skip_locked=True)
    for conditions in (
        (DueWork.status == "pending",),
        (
            DueWork.status == "running",
            DueWork.claimed_at <= bindparam("stale", type_=UtcDateTime()),
        ),
    )
)
"""The earliest pending work, and the earliest running work whose lease ran out, each with
its organization and platform (loaded with it, so that the handlers and the Billing find
them in the session instead of querying again; only the work row is locked). Two queries
rather than one with OR: each is read in order from the index on (status, due_at, id),
where the OR made the database read and sort every due row for each claim."""
STALE_CHECKS_PER_LEASE = 30
"""While there is pending work, work left running by a dead worker is looked for this many
times per lease (every 10 s with the 5-minute lease) rather than before each piece of
work: it then waits at most that much longer than its lease to be taken over."""


_WORK = table_of(DueWork)
WORK_PER_TRANSACTION = 20
"""On SQLite, renewals due at the same moment, one after the other in the order of the
work, are done this many to a transaction (the billing clock's usual load: every
subscription anchored at the start of a month renews at the same moment), and so are the
claims of their collections. See `BillingClock._batch_after`."""
BATCHED = ("period_end", "collect")
_SAME_MOMENT = (
    select(DueWork, Organization, Platform)
    .join(Organization, Organization.id == DueWork.organization_id)
    .join(Platform, Platform.id == Organization.platform_id)
    .where(
        DueWork.status == "pending",
        DueWork.due_at == bindparam("due_at", type_=UtcDateTime()),
        DueWork.id > bindparam("after_id"),
    )
    .order_by(DueWork.id)
    .limit(WORK_PER_TRANSACTION - 1)
)
"""The pending work due at the same moment as a piece of work and after it, in order."""
_STATUS = select(_WORK.c.status).where(_WORK.c.id == bindparam("work_id"))
_HAND_BACK = (
    update(_WORK)
    .where(_WORK.c.id.in_(bindparam("work_ids", expanding=True)), _WORK.c.status == "running")
    .values(status="pending", claimed_at=None)
)


Found = tuple[DueWork, Organization, Platform]
"""A row of _NEXT_PENDING or _NEXT_STALE. Held while the work is done: the session only
keeps what is referenced, and its get() then finds the organization and platform."""


def _found(row: Row[DueWork, Organization, Platform] | None) -> Found | None:
    return None if row is None else (row[0], row[1], row[2])


def _still_pending(session: Session, work: DueWork) -> bool:
    return session.execute(_STATUS, {"work_id": work.id}).scalar() == "pending"


def _log_done(done: list[Found], seconds: float, now: datetime) -> None:
    """A JSON line per piece of work done (OPS-3; tabkeeper/logs.py): its kind, id,
    organization, how late it was done and how long its transaction took (shared out
    over a batch). A collection's line says it was claimed; its charge follows."""
    for work, organization, _platform in done:
        log.info(
            "%s %s done",
            work.kind,
            work.subject_key,
            extra={
                "work_id": work.id,
                "kind": work.kind,
                "subject": work.subject_key,
                "organization": organization.code,
                "outcome": "claimed" if work.kind == "collect" else "done",
                "lag_s": round(max(0.0, (now - work.due_at).total_seconds()), 3),
                "duration_ms": round(seconds * 1000 / len(done), 3),
            },
        )


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
        self._stale_checked_at: datetime | None = None
        self._alone = 0
        """How many next pieces of work to do one at a time (after a failed batch)."""
        self.stopping: Callable[[], bool] = lambda: False
        """Asked before each next piece of work: True stops `run_until` there (SIGTERM to
        `tabkeeper worker` or `serve`: the piece of work being done is finished first)."""

    def _due(self, until: datetime) -> dict[str, datetime]:
        """The values of the parameters of _DUE."""
        return {"until": until, "stale": self.clock.now() - self.lease}

    def next_due_at(self, until: datetime) -> datetime | None:
        """When the earliest work due by `until` is due (None when there is none)."""
        with self.engine.connect() as connection:
            return connection.execute(_NEXT_DUE_AT, self._due(until)).scalar()

    def _next_work(self, session: Session, until: datetime) -> Found | None:
        """The earliest work due by `until` that no other worker holds, locked. Work whose
        lease ran out is looked for when there is no pending work, and otherwise every
        lease / STALE_CHECKS_PER_LEASE (see there)."""
        pending = _found(session.execute(_NEXT_PENDING, {"until": until}).first())
        now, checked = self.clock.now(), self._stale_checked_at
        recently = checked is not None and now - checked < self.lease / STALE_CHECKS_PER_LEASE
        if pending is not None and recently:
            return pending
        self._stale_checked_at = now
        stale = _found(session.execute(_NEXT_STALE, self._due(until)).first())
        found = [row for row in (stale, pending) if row is not None]
        return min(found, key=lambda row: (row[0].due_at, row[0].id), default=None)

    def run_one(self, until: datetime) -> bool:
        """Claim and do the earliest work due by `until`; False when there was none."""
        return self._run_next(until, together=False) > 0

    def _run_next(self, until: datetime, *, together: bool) -> int:
        """Claim and do the earliest work due by `until`; with `together`, on SQLite, a
        renewal or a collection with those that follow it (`_batch_after`). How many
        pieces of work were done (0: none was due)."""
        batch: list[Found] = []
        claims: list[tuple[Billing, ClaimedAttempt]] = []
        done = 0
        started = perf_counter()
        try:
            with transaction(self.engine) as session:
                found = self._next_work(session, until)
                if found is None:
                    return 0
                kind, batch = found[0].kind, [found]
                if together and kind in BATCHED and is_sqlite(self.engine):
                    batch.extend(self._batch_after(session, found))
                for work, organization, _platform in batch:
                    if done and not _still_pending(session, work):
                        continue  # one before it in this batch changed it
                    if kind in ("collect", AUTO_TOP_UP):
                        now = self.clock.now()
                        b = billing_for(session, organization.platform_id, now, self.store)
                        if kind == AUTO_TOP_UP:  # CRD-6: the invoice, then its attempt
                            claim = auto_top_ups.claim(b, work)
                        else:
                            invoice_id = int(work.subject_key.split(":")[1])
                            claim = claim_attempt(b, invoice_id, work)
                        if claim is not None:
                            claims.append((b, claim))
                    else:
                        b = billing_for(session, organization.platform_id, work.due_at, self.store)
                        HANDLERS[kind](b, work)
                        set_work_status(session, work, "done", b.now)
                    done += 1
        except Exception:
            if len(batch) < 2:
                raise
            # One piece of work of the batch failed, and the whole batch was rolled back:
            # they are done again one at a time, so that those before it are done and it
            # fails alone, as without batches.
            self._alone = len(batch)
            return self._step(until)
        _log_done(batch[:done], perf_counter() - started, self.clock.now())
        for _done in range(done):
            self.checkpoint(kind)
        for position, (b, claim) in enumerate(claims):
            rest = [later.work_id for _b, later in claims[position + 1 :] if later.work_id]
            # The guard wraps the charge and the record, not the checkpoints: a crash, unlike
            # an error, hands nothing back.
            settle(
                self._recording(b),
                self.provider,
                claim,
                checkpoint=self.checkpoint,
                guard=partial(self._handing_back, rest),
            )
        return done

    def _recording(self, claimed: Billing) -> UnitOfWork:
        """The transactions in which the outcome of a claim made in `claimed` is recorded:
        with the platform and terms as the claim read them (no query for them again)."""

        @contextmanager
        def work() -> Iterator[Billing]:
            with transaction(self.engine) as session:
                platform = session.merge(claimed.platform, load=False)
                now = require_utc(self.clock.now())
                yield Billing(session, now, platform, claimed.terms, self.store)

        return work

    @contextmanager
    def _handing_back(self, work_ids: list[int]) -> Iterator[None]:
        """When the provider or the database fails for a collection of a batch, the
        collections claimed after it and not charged (`work_ids`) are made pending again,
        to be claimed by the next tick rather than after their lease. Their attempts stay
        unfinished: the next claim takes the same attempt, and key, again."""
        try:
            yield
        except Exception:
            if work_ids:  # should this fail too (no database), their lease hands them back
                with suppress(Exception), transaction(self.engine) as session:
                    session.execute(_HAND_BACK, {"work_ids": work_ids})
            raise

    def _batch_after(self, session: Session, first: Found) -> list[Found]:
        """The work to do in the transaction of `first`, after it: what would be taken
        next anyway, one by one. That is the pending work due at the same moment and after
        it in order, up to the first that is not of the same kind, or is for an
        organization already in the batch, and at most WORK_PER_TRANSACTION in all.

        Renewals done so, in that order and as of that same moment, make what one
        transaction each would make, in the same order: a renewal queues work only at or
        after its own moment, so nothing it queues comes before the next one, and it
        changes no work of another organization (each is checked to be still pending all
        the same). A crash or an error rolls the batch back whole, leaving each pending.

        Collections are claimed so (their attempts written, their work marked running),
        then charged and recorded one by one, each in its own transaction as before: the
        outcome of one changes nothing of another organization's claim. A crash after the
        claims leaves the uncharged ones running until their lease runs out (without a
        batch, only the one being charged); a provider or database error hands them back
        at once (`_hand_back`). Their idempotency keys make a charge happen once either
        way.

        SQLite only: there writers take turns anyway (BEGIN IMMEDIATE), so a batch changes
        nothing but how long another writer waits for it. On PostgreSQL a batch of
        renewals would hold the platform's invoice counter while it locks the next
        subscriptions: the reverse of the order the API takes them in (the subscription,
        then the counter), so a request changing a subscription of the batch could
        deadlock with it. There it stays one piece of work to a transaction."""
        work, organization, _platform = first
        parameters = {"due_at": work.due_at, "after_id": work.id}
        batch, seen = [], {organization.id}
        for row in session.execute(_SAME_MOMENT, parameters):
            if row[0].kind != work.kind or row[1].id in seen:
                break
            seen.add(row[1].id)
            batch.append((row[0], row[1], row[2]))
        return batch

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
            if self.stopping():
                break
            count = self._step(until)
            if count == 0:
                break
            done += count
        return done

    def _step(self, until: datetime) -> int:
        """The next piece of work, with the renewals that follow it unless they are being
        done again one at a time."""
        if self._alone > 0:
            self._alone -= 1
            return self._run_next(until, together=False)
        return self._run_next(until, together=True)

    def tick(self) -> int:
        """Do everything due now."""
        return self.run_until(self.clock.now())
