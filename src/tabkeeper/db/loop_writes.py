"""Short writes on the event loop on PostgreSQL (LIM-3, USE-1: a session start, a few events).

In a worker thread a session start on PostgreSQL cost twice its own CPU: the hand-off,
and eight threads taking turns at the interpreter while each waits for seven round trips
(docs/benchmarks.md, 3.1 ms of server CPU a start over HTTP against 1.4 ms in-process).
Here the same synchronous work (the ORM session, the prepared writes, the engine's pool
and listeners, unchanged) runs in a greenlet on the event loop (db/loop_reads.py
`run_on_the_loop(waits=True)`), and its driver connection, a `LoopAwareConnection`, awaits
the server's answers on the loop instead of blocking the thread: while one start waits for
PostgreSQL, the loop serves the other requests.

- The engine's connections are `LoopAwareConnection`s (`make_engine` installs it): outside
  such a greenlet (threads, the worker, the CLI) they behave exactly as psycopg's own.
- A new connection opened from the loop is opened in a thread (connecting may take up to
  the connect timeout; the loop must not wait on it).
- At most `LOOP_WRITERS` such writes run at once per engine and process; the next ones wait
  on the loop for a place. When the pool has no connection to give at once (threads hold
  them all), the write goes to a thread: the loop never waits on the pool.
- A write, once begun, runs to its end even if the request is cancelled (a client gone):
  as a write in a thread does; the request's task waits for it, shielded.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
import psycopg
from psycopg import waiting
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from tabkeeper.db.loop_reads import await_here, run_on_the_loop, waits_here

T = TypeVar("T")

LOOP_WRITERS = 5
"""The most short writes of one engine on the event loop at once, in one process (as many
connections as SQLAlchemy's pool keeps; it may open 10 more for threads)."""
WAIT_INTERVAL = 0.1
"""As psycopg's own connections: how often a wait looks up from the socket."""


class LoopAwareConnection(psycopg.Connection[Any]):
    """psycopg's connection, whose waits for the server are awaited on the event loop when
    it is used inside `run_on_the_loop(waits=True)`; elsewhere psycopg's own."""

    def wait(self, gen: Any, interval: float = WAIT_INTERVAL, timeout: float | None = None) -> Any:
        if not waits_here():
            return super().wait(gen, interval, timeout)
        try:
            return await_here(
                waiting.wait_async(gen, self.pgconn.socket, interval=interval, timeout=timeout)
            )
        except (Exception, GeneratorExit):
            raise
        except BaseException:  # interrupted mid-exchange: the connection is not to be trusted
            self.pgconn.finish()
            raise


def install(engine: Engine) -> None:
    """Make `engine`'s new connections `LoopAwareConnection`s (PostgreSQL through psycopg)."""

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, arguments: Any, options: Any) -> Any:
        if waits_here():  # on the loop: connecting may take seconds, the loop must not
            return await_here(asyncio.to_thread(LoopAwareConnection.connect, *arguments, **options))
        return LoopAwareConnection.connect(*arguments, **options)

    _writers[engine] = _Places(LOOP_WRITERS)


def writes_on_the_loop(engine: Engine) -> bool:
    """Whether short writes of `engine` may run on the event loop (`install`ed)."""
    return engine in _writers


async def write_on_the_loop(engine: Engine, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` (a whole transaction, synchronous code) on the event loop, its driver
    waits awaited there; run to its end even if the caller is cancelled. In a worker
    thread instead when the engine's pool has no connection to give at once: waiting for
    one on the loop would stop the loop, and with it the writes there that would give
    theirs back."""
    places = _writers[engine]
    await places.take()
    task = asyncio.ensure_future(_run(engine, places, work, *args))
    return await asyncio.shield(task)


def _pool_has_room(engine: Engine) -> bool:
    """Whether a checkout of the engine's pool would not wait: a connection is idle in
    it, or it may open one more."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return True
    return pool.checkedin() > 0 or pool.overflow() < pool._max_overflow


async def _run(engine: Engine, places: _Places, work: Callable[..., T], *args: Any) -> T:
    if not _pool_has_room(engine):  # looked at just before the work would take one
        places.give_back()
        return await anyio.to_thread.run_sync(partial(work, *args))
    try:
        return await run_on_the_loop(None, work, *args, waits=True)
    finally:
        places.give_back()


class _Places:
    """A count of places; who finds none waits on its own loop for one given back."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._lock = threading.Lock()

    async def take(self) -> None:
        with self._lock:
            if self.free > 0 and not self._waiters:
                self.free -= 1
                return
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter  # given the place of the write that ended
        except BaseException:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # given a place, then cancelled: to the next
            raise

    def give_back(self) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                with suppress(RuntimeError):  # its loop has ended
                    loop.call_soon_threadsafe(_hand_over, self, waiter)
                    return
            self.free += 1


def _hand_over(places: _Places, waiter: asyncio.Future[None]) -> None:
    if waiter.done():  # cancelled meanwhile: the place goes on
        places.give_back()
    else:
        waiter.set_result(None)


_writers: WeakKeyDictionary[Engine, _Places] = WeakKeyDictionary()
