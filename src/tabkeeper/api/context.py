"""What every request needs: the engine, the clock, the payment provider, the caller.

Routes open their transaction themselves (`api.billing(caller)`), commit when the block
ends, and never hold a transaction while they call the payment provider (DESIGN.md: the
entry point opens the transaction).

One transaction, one thread hand-off per request: the dependencies here are async, and
the caller comes from `Callers`, a short-lived in-process cache of who a credential is
(keyed by its SHA-256), so that on a hit authenticating costs no database work and no
thread. On a miss the credential is checked once, in a read transaction (it never waits
for SQLite's writer), and kept for `CALLER_TTL`. The sync endpoint is then the one hand-off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from tabkeeper.clock import Clock
from tabkeeper.db.engine import (
    TurnTaken,
    WriterBusy,
    read_transaction,
    turn_released,
)
from tabkeeper.db.loop_reads import NotOnLoop, loop_reads, run_on_the_loop
from tabkeeper.db.loop_writes import Places, write_on_the_loop, writes_on_the_loop
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.services.access import (
    Caller,
    authenticate_credential,
    credential_digest,
    credential_of,
)
from tabkeeper.services.context import Billing, CatalogStore, billing, billing_for
from tabkeeper.settings import Settings

bearer = HTTPBearer(
    auto_error=False,
    description="A platform API key (tk_...) or a member's portal session (ps_...).",
)

T = TypeVar("T")

CALLER_TTL = timedelta(seconds=5)
"""How long a credential found valid is taken on trust without asking the database: an
API key revoked, or a member removed, by another process stops working within this time
(in this process, revoking a key or removing a member forgets every cached caller at
once). A portal session is never trusted past its own expiry, to the second."""
CALLER_CACHE_SIZE = 1024
"""The most credentials kept at once; past it the oldest entry makes room."""
BRIEF_WAITS_ON_THE_LOOP = 0.25
"""Seconds a brief write waits on the event loop for the writers' turn (woken at each
turn's end); past them it joins the writers waiting in line, in a thread."""


class Callers:
    """Who recently authenticated credentials are: SHA-256 of the credential → the caller
    and until when to trust it. Used from the event loop and from threads (a lock)."""

    def __init__(self, ttl: timedelta = CALLER_TTL, size: int = CALLER_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[bytes, tuple[Caller, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes, now: datetime) -> Caller | None:
        """The cached caller of a credential, unless missing or out of date."""
        found = self._entries.get(digest)
        if found is None:
            return None
        if now < found[1]:
            return found[0]
        with self._lock:
            if self._entries.get(digest) is found:
                del self._entries[digest]
        return None

    def authenticate(self, engine: Engine, credential: str, now: datetime) -> Caller:
        """Check `credential` in the database (Unauthorized when it is not valid) and
        keep its caller until `ttl` from now, or the credential's own expiry if sooner."""
        with read_transaction(engine) as session:
            caller, expires_at = authenticate_credential(session, credential, now)
        until = now + self.ttl
        if expires_at is not None and expires_at < until:
            until = expires_at
        self.keep(credential_digest(credential), caller, until)
        return caller

    def keep(self, digest: bytes, caller: Caller, until: datetime) -> None:
        """Trust `caller` for the credential until `until` (the oldest entry makes room)."""
        with self._lock:
            self._entries.pop(digest, None)
            while len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
            self._entries[digest] = (caller, until)

    def __len__(self) -> int:
        return len(self._entries)

    def forget_all(self) -> None:
        """After a key was revoked or a member removed: ask the database again."""
        with self._lock:
            self._entries.clear()


@dataclass
class Api:
    settings: Settings
    engine: Engine
    clock: Clock
    provider: PaymentProvider
    store: CatalogStore
    callers: Callers = field(default_factory=Callers)
    _heavy_turn: Places = field(default_factory=lambda: Places(1), repr=False)

    def billing(self, caller: Caller, *, wait: bool = True) -> AbstractContextManager[Billing]:
        """A transaction of the caller's platform, committed when the block ends (`wait`:
        see db/engine.py `transaction`)."""
        return billing(self.engine, caller.platform_id, self.clock.now(), self.store, wait=wait)

    @contextmanager
    def reading(self, caller: Caller, *, one_statement: bool = False) -> Iterator[Billing]:
        """A read-only transaction of the caller's platform (never waits for a writer on
        SQLite): for answers that change nothing, such as the check. `one_statement`: see
        `read_transaction`."""
        with read_transaction(self.engine, one_statement=one_statement) as session:
            yield billing_for(session, caller.platform_id, self.clock.now(), self.store)

    async def read_one(self, caller: Caller, work: Callable[[Billing], T]) -> T:
        """`work`, a read of one statement (the check), from an async route; run once
        more on a fresh connection when the first was lost (OPS-1). On SQLite it
        runs right here on the event loop: a read of a local file never waits for the
        writer (WAL) and takes a fraction of a millisecond, less than handing it to a
        thread. On PostgreSQL it runs on the event loop too, its prepared read awaited
        (db/prepared.py `run_on_the_loop`: a slow answer never holds up other requests),
        as one round trip (no BEGIN/COMMIT); in a worker thread when it needs more (a
        catalog version not cached yet)."""
        if self._inline_reads:
            return self._read_one(caller, work)
        on_the_loop = loop_reads(self.engine)
        if on_the_loop is not None:
            with suppress(NotOnLoop):
                return await run_on_the_loop(on_the_loop, self._read_one, caller, work)
        return await anyio.to_thread.run_sync(self._read_one, caller, work)

    def _read_one(self, caller: Caller, work: Callable[[Billing], T]) -> T:
        try:
            with self.reading(caller, one_statement=True) as b:
                return work(b)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        with self.reading(caller, one_statement=True) as b:  # once more (OPS-1): a read
            return work(b)

    async def write(
        self,
        caller: Caller,
        work: Callable[[Billing], T],
        *,
        brief: bool = False,
        heavy: bool = False,
    ) -> T:
        """`work` in a transaction of the caller's platform, committed when it returns, in
        a worker thread (a write may wait for a lock), from an async route; run once more
        on a fresh connection when the first was lost before the commit (OPS-1).

        `brief`: the work is a short write (a session start, a few events). On SQLite it
        is done right here on the event loop when no other writer is at work or waiting
        (the write lock is free now): a local write of a fraction of a millisecond costs
        less than the hand-off to a thread, and eight clients' starts no longer take
        turns at the interpreter in eight threads. While another writer of this process
        has the turn (a write in a thread: the billing clock, a long batch), it waits for
        the end of that turn here on the loop (`turn_released`) and looks again: sent to
        a thread instead, a start would hold the turn there while the next starts found
        it taken and followed it, 41% of the starts of 8 clients. Still finding the turn
        taken after BRIEF_WAITS_ON_THE_LOOP (writers waiting in line go first), it joins
        the line in a thread, so a stream of long writes never keeps it waiting on the
        loop. When another process holds the write lock it goes to a thread and waits
        there, as any write. On PostgreSQL, while another short write is under way, it is
        done on the event loop too, its driver awaiting each answer there
        (db/loop_writes.py): in threads, eight clients' starts took turns at the
        interpreter (2.2 ms of server CPU a start, 1.7 on the loop); a lone one is done
        in a thread, whose blocking waits cost less than the loop's.

        `heavy`: the work is long and bound by the interpreter (a batch of many events).
        On PostgreSQL such writes of this process take turns (waited for on the loop),
        each in a thread: two at once finish no sooner, and leave the event loop a third
        of the interpreter instead of half. Under two clients' batches of 1,000 the
        check's p99 went from 21-42 ms to 12-19 ms, the checks answered meanwhile from
        181-341 to 355-619 a second, the events stored meanwhile from 2,503-4,125 to
        1,621-2,549 a second; 4 clients sending batches alone stored as many as before
        (docs/benchmarks.md). On SQLite writers take turns anyway."""
        if brief and self._inline_reads:
            give_up = None
            while True:
                try:
                    with self.billing(caller, wait=False) as b:
                        return work(b)
                except TurnTaken:  # another writer of this process: wait for its turn's end
                    now = monotonic()
                    give_up = give_up or now + BRIEF_WAITS_ON_THE_LOOP
                    if now >= give_up:
                        break  # a line of long writes: join it, in a thread
                    await turn_released(self.engine, give_up - now)
                except WriterBusy:  # another process holds the lock: wait in a thread
                    break
        elif brief and writes_on_the_loop(self.engine):
            return await write_on_the_loop(self.engine, self._write, caller, work)
        elif heavy and not self._inline_reads:
            await self._heavy_turn.take()  # waited for on the loop, holding no thread
            try:
                return await anyio.to_thread.run_sync(self._write, caller, work)
            finally:
                self._heavy_turn.give_back()
        return await anyio.to_thread.run_sync(self._write, caller, work)

    def _write(self, caller: Caller, work: Callable[[Billing], T]) -> T:
        committing = False
        try:
            with self.billing(caller) as b:
                done = work(b)
                committing = True
            return done
        except DBAPIError as error:
            # The connection was lost before the commit was sent: the database rolled the
            # transaction back, nothing of it stayed; the work runs once more on a fresh
            # connection (OPS-1). Lost during the commit, the outcome is unknown: the
            # client gets the 503 and retries with its own Idempotency-Key or event ids.
            if committing or not error.connection_invalidated:
                raise
        with self.billing(caller) as b:
            return work(b)

    @property
    def _inline_reads(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def get_api(request: Request) -> Api:
    api = request.app.state.api
    assert isinstance(api, Api)
    return api


async def _api(request: Request) -> Api:
    """get_api as a dependency that runs on the event loop (no thread hand-off)."""
    return get_api(request)


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """Who calls: 401 (problem+json) without a valid API key or portal session."""
    header = None if credentials is None else f"Bearer {credentials.credentials}"
    return await _caller(request, header)


async def get_caller_of(request: Request) -> Caller:
    """get_caller for api/lean.py: the Authorization header read as HTTPBearer reads it
    (scheme `Bearer` in any case, then the credential)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    header = f"Bearer {credential}" if scheme.lower() == "bearer" and credential else None
    return await _caller(request, header)


async def _caller(request: Request, header: str | None) -> Caller:
    api = get_api(request)
    credential = credential_of(header)
    now = api.clock.now()
    caller = api.callers.get(credential_digest(credential), now)
    if caller is None:
        caller = await anyio.to_thread.run_sync(
            api.callers.authenticate, api.engine, credential, now
        )
    request.state.caller = caller
    return caller


ApiDep = Annotated[Api, Depends(_api)]
CallerDep = Annotated[Caller, Depends(get_caller)]
