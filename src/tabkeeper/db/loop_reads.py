"""Reads on the event loop (LIM-1: the check on PostgreSQL without a thread hand-off).

On PostgreSQL through psycopg (`LoopReads`) a server answers over the
network, so the check's read cannot run inline on the event loop as it does on SQLite,
and a worker thread cost more than the check itself (the hand-off and the GIL: about
0.15-0.2 ms of CPU a check, plus 0.05 ms for the pool checkout and the autocommit toggle).
`run_on_the_loop` runs the read-only work in a greenlet; a prepared read inside it is
sent on one of a few psycopg async connections kept in autocommit, and the greenlet
waits for the answer while the event loop serves other requests. Nothing else may touch
the database from there (a catalog version not cached yet, any statement through the
session): that raises `NotOnLoop` before any I/O, and the caller runs the work in a
thread as before. A read while every loop connection is busy waits on the loop for one.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from threading import Lock
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from greenlet import GreenletExit, getcurrent, greenlet  # type: ignore[import-untyped]
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, SessionTransaction

from tabkeeper.db.driver_errors import driver_errors

T = TypeVar("T")


class NotOnLoop(Exception):
    """Work run by `run_on_the_loop` wanted more than prepared reads (a statement
    through its session, a read of another engine): raised before any I/O; the caller
    runs the work in a worker thread instead."""


LOOP_CONNECTIONS = 5
"""The most connections an engine keeps for reads on the event loop (in each process;
as many as SQLAlchemy's pool keeps by default): a read holds one for its round trip
only; past them a read waits on the loop for one to be given back."""


class OneStatementSession(Session):
    """The session of a one-statement read (db/engine.py `read_transaction`): inside
    `run_on_the_loop` it raises `NotOnLoop` where it would begin a transaction (every
    statement through a session, `get`, `connection()`, a flush, begins one first), so
    no statement but a prepared read (`PreparedRead.run`) ever waits on the event loop."""

    def _autobegin_t(self, begin: bool = False) -> SessionTransaction:
        if self._transaction is None and reads_here() is not None:
            raise NotOnLoop("a statement through the session")
        return super()._autobegin_t(begin)


class _LoopConnection:
    """A psycopg async connection in autocommit, with its cursor (a read reuses it)."""

    __slots__ = ("cursor", "driver", "generation")

    def __init__(self, driver: Any, generation: int) -> None:
        self.driver = driver
        self.cursor = driver.cursor()
        self.generation = generation


class LoopReads:
    """An engine's connections for prepared reads on the event loop (PostgreSQL
    through psycopg): at most `size`, kept in autocommit (a read is one round trip, no
    checkout, no BEGIN/COMMIT, no autocommit toggle), opened on demand, closed with the
    engine (`Engine.dispose`). Safe as the engine's pool is (OPS-1, OPS-5): before each
    use a connection is shown to the engine's `checkout` listeners, so one the server
    ended is seen without a round trip (db/engine.py `_look_before_use`) and replaced;
    one lost during the read is closed and the error flagged `connection_invalidated`
    (the caller's retry). Used by one request at a time each, from any event loop."""

    def __init__(self, engine: Engine, size: int = LOOP_CONNECTIONS) -> None:
        self.size = size
        self._engine = weakref.ref(engine)
        arguments, options = engine.dialect.create_connect_args(engine.url)
        from tabkeeper.db.engine import CONNECT_TIMEOUT_SECONDS  # engine.py imports this

        options.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        self._connect = (list(arguments), {**options, "autocommit": True})
        self._idle: list[_LoopConnection] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._open = 0
        self._generation = 0
        self._lock = Lock()
        event.listen(engine, "engine_disposed", self._disposed)

    def serves(self, engine: Engine) -> bool:
        """Whether `engine` (or an engine of its options) is this one's engine."""
        own = self._engine()
        return own is not None and engine.pool is own.pool

    async def fetch(self, engine: Engine, sql: str, arguments: Any) -> list[Any]:
        """The rows of `sql` with `arguments` as the driver gives them."""
        held = await self._take(engine, sql, arguments)
        try:
            with driver_errors(engine.dialect, sql, arguments, held.driver, _closed_below):
                await held.cursor.execute(sql, arguments, prepare=True)
                found: list[Any] = await held.cursor.fetchall()
            return found
        finally:
            if _usable(held.driver):  # after an error of the statement alone, too
                self._give_back(held)
            else:  # lost, or cancelled in the middle of the read: never used again
                self._close(held)

    async def _take(self, engine: Engine, sql: str, arguments: Any) -> _LoopConnection:
        """An idle connection the engine's `checkout` listeners found good, else a new
        one; while `size` are open and busy, the first given back (waited for on the
        loop: cheaper than a thread)."""
        look = engine.pool.dispatch.checkout
        ended = 0
        while True:
            waiter = None
            with self._lock:
                held = self._idle.pop() if self._idle else None
                if held is None:
                    if self._open < self.size:
                        self._open += 1
                    else:
                        waiter = asyncio.get_running_loop().create_future()
                        self._waiters.append(waiter)
                generation = self._generation
            if waiter is not None:
                await self._wait(waiter)
                continue
            if held is None:
                held = await self._new(engine, sql, arguments, generation)
            try:
                look(held.driver, None, None)  # the engine's pre-use look (OPS-1, OPS-5)
            except DisconnectionError:
                self._close(held)
                ended += 1
                if ended > self.size:  # each idle one ended, then a fresh one too
                    raise
                continue
            return held

    async def _wait(self, waiter: asyncio.Future[None]) -> None:
        """Until a connection is given back or closed (then `_take` looks again)."""
        try:
            await waiter
        except BaseException:  # cancelled: the wake-up, if it came, goes to the next
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self._wake(1)
            raise

    def _wake(self, count: int) -> None:
        """Wake the first `count` waiters (on their own loop)."""
        if not self._waiters:  # the usual case: nobody waits
            return
        with self._lock:
            woken = [self._waiters.popleft() for _ in range(min(count, len(self._waiters)))]
        here = asyncio._get_running_loop()
        for waiter in woken:
            loop = waiter.get_loop()
            if loop is here:
                _resolve(waiter)
            else:
                with suppress(RuntimeError):  # its loop has ended
                    loop.call_soon_threadsafe(_resolve, waiter)

    async def _new(
        self, engine: Engine, sql: str, arguments: Any, generation: int
    ) -> _LoopConnection:
        from psycopg import AsyncConnection

        driver = None
        try:
            with driver_errors(engine.dialect, sql, arguments, None, _closed_below):
                driver = await AsyncConnection.connect(*self._connect[0], **self._connect[1])
            return _LoopConnection(driver, generation)
        except BaseException:  # not opened (or cancelled): its place goes to a waiter
            with self._lock:
                if generation == self._generation:
                    self._open -= 1
            if driver is not None:
                _finish(driver)
            self._wake(1)
            raise

    def _give_back(self, held: _LoopConnection) -> None:
        with self._lock:
            kept = held.generation == self._generation
            if kept:
                self._idle.append(held)
        if not kept:
            _finish(held.driver)  # opened before the engine was disposed
        self._wake(1)

    def _close(self, held: _LoopConnection) -> None:
        with self._lock:
            if held.generation == self._generation:
                self._open -= 1
        _finish(held.driver)
        self._wake(1)

    def _disposed(self, _engine: Engine) -> None:
        """`Engine.dispose`: idle connections closed now, busy ones when given back."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._open = 0
            self._generation += 1
        for held in idle:
            _finish(held.driver)
        self._wake(self.size)

    def __del__(self) -> None:
        with suppress(Exception):  # at interpreter exit the driver may be gone already
            for held in self._idle:
                _finish(held.driver)


def _usable(driver: Any) -> bool:
    """Open and idle (no statement under way, no transaction: autocommit)."""
    from psycopg.pq import TransactionStatus

    if driver.closed or driver.broken:
        return False
    return bool(driver.pgconn.transaction_status == TransactionStatus.IDLE)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _closed_below(_error: BaseException) -> None:
    """A lost loop connection is closed by `LoopReads.fetch` itself."""


def _finish(driver: Any) -> None:
    """Close a driver connection without waiting (libpq sends its goodbye, if it can)."""
    driver.pgconn.finish()


_loop_reads: WeakKeyDictionary[Engine, LoopReads] = WeakKeyDictionary()
_loop_reads_made = Lock()


def loop_reads(engine: Engine) -> LoopReads | None:
    """The engine's reads on the event loop: PostgreSQL through psycopg (else None)."""
    found = _loop_reads.get(engine)
    if found is None:
        if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
            return None
        with _loop_reads_made:
            found = _loop_reads.get(engine)
            if found is None:
                found = _loop_reads[engine] = LoopReads(engine)
    return found


class _OnTheLoop(greenlet):  # type: ignore[misc]
    """A greenlet that runs the work of `run_on_the_loop`, one work at a time, and is
    kept (per thread) for the next one: a new greenlet per work cost about 25 us more."""

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.reads: LoopReads | None = None
        self.waits = False
        self.done: _Done | None = None

    def _serve(self, job: tuple[LoopReads | None, bool, Callable[[], Any]]) -> None:
        while True:
            self.reads, self.waits, work = job
            try:
                self.done = _Done(work(), None)
            except GreenletExit:  # collected while suspended: let it end
                raise
            except BaseException as error:
                self.done = _Done(None, error)  # raised by run_on_the_loop
            self.reads, self.waits = None, False
            del job, work  # nothing of this work kept while idle
            job = self.parent.switch(_FINISHED)


class _Done:
    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


_FINISHED = object()
"""What an `_OnTheLoop` switches to its parent with when its work is done."""
_idle_greenlets = threading.local()
_IDLE_GREENLETS = 16
"""The most idle `_OnTheLoop` kept per thread."""


async def run_on_the_loop(
    reads: LoopReads | None, work: Callable[..., T], *args: Any, waits: bool = False
) -> T:
    """`work(*args)` right here on the event loop, its prepared reads sent through
    `reads` and awaited (see the module docstring); `NotOnLoop` when it needed anything
    else from the database. `waits` (with `reads` None): every wait of a loop-aware
    driver connection is awaited here instead (db/loop_writes.py)."""
    idle: list[_OnTheLoop] | None = getattr(_idle_greenlets, "idle", None)
    if idle is None:
        idle = _idle_greenlets.idle = []
    child = idle.pop() if idle else _OnTheLoop()
    here = getcurrent()
    child.parent = here
    child.gr_context = here.gr_context  # the request's context variables
    wanted = child.switch((reads, waits, lambda: work(*args)))
    while wanted is not _FINISHED:
        try:
            answer = await wanted
        except BaseException as error:  # thrown into the work, where it awaited
            wanted = child.throw(error)
        else:
            wanted = child.switch(answer)
    done, child.done = child.done, None
    if len(idle) < _IDLE_GREENLETS:
        idle.append(child)
    assert done is not None
    if done.error is not None:
        raise done.error
    found: T = done.value
    return found


def waits_here() -> bool:
    """Whether the work running now may await the event loop for its driver's waits
    (inside `run_on_the_loop(..., waits=True)`)."""
    return bool(getattr(getcurrent(), "waits", False))


def reads_here() -> LoopReads | None:
    """The loop reads of the `run_on_the_loop` work running now (None: not inside one)."""
    reads: LoopReads | None = getattr(getcurrent(), "reads", None)
    return reads


def await_here(awaitable: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
    """Inside `run_on_the_loop`: `awaitable`'s result, the event loop serving others
    meanwhile."""
    found: T = getcurrent().parent.switch(awaitable)
    return found
