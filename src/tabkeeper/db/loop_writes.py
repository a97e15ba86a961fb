"""Short writes on the event loop on PostgreSQL (LIM-3, USE-1: a session start, a few events).

In a worker thread a session start on PostgreSQL cost twice its own CPU: the hand-off,
and eight threads taking turns at the interpreter while each waits for seven round trips
(docs/benchmarks.md, 3.1 ms of server CPU a start over HTTP against 1.4 ms in-process).
Here the same synchronous work (the ORM session, the prepared writes, the engine's pool
and listeners, unchanged) runs in a greenlet on the event loop (db/loop_reads.py
`run_on_the_loop(waits=True)`), and its driver connection, a `LoopAwareConnection`, awaits
the server's answers on the loop instead of blocking the thread: while one start waits for
PostgreSQL, the loop serves the other requests.

- Only when another short write is under way (`LONE_WRITES_IN_A_THREAD`): alone, a
  thread's blocking waits cost less CPU than the loop's, and no thread competes with it.
- The engine's connections are `LoopAwareConnection`s (`make_engine` installs it): outside
  such a greenlet (threads, the worker, the CLI) they behave exactly as psycopg's own.
- The loop never waits on the pool (`LoopAwarePool`): on the loop a write takes an idle
  connection of the pool or none; finding none (threads hold them all, or none was ever
  opened) it raises `NotOnLoop` before any I/O and the write is done in a thread. So the
  pool's first connection, whose set-up SQLAlchemy runs under a lock of its own, is never
  opened on the loop (a greenlet suspended there holding that lock would stop the loop).
- A connection lost and opened again on the loop is opened in a thread (connecting may
  take up to the connect timeout).
- At most `LOOP_WRITERS` such writes run at once per engine and process; the next ones wait
  on the loop for a place (first come, first served).
- A write, once begun, runs to its end even if the request is cancelled (a client gone):
  as a write in a thread does; the request's task waits for it, shielded.
- The connection's socket is watched by the loop from its first wait to the end of the
  write (`_Watch`: one reader added and removed a write, not one a round trip as psycopg's
  `wait_async` does, nor a timer each): 8 clients' starts, 10-13% less server CPU
  (docs/benchmarks.md, seventh session). The watch ends when the connection goes back to
  the pool, is closed, or an exchange is interrupted; when the server ends the
  connection, libpq closes the socket first, inside the greenlet, and the watch ends
  before the loop polls again.
"""

from __future__ import annotations

import asyncio
import select
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
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util.queue import Empty

from tabkeeper.db.loop_reads import NotOnLoop, await_here, run_on_the_loop, waits_here

T = TypeVar("T")

LOOP_WRITERS = 5
"""The most short writes of one engine on the event loop at once, in one process (as many
connections as SQLAlchemy's pool keeps; it may open 10 more for threads)."""
LONE_WRITES_IN_A_THREAD = True
"""A short write with no other under way in the process is done in a worker thread: alone,
a thread's blocking wait for each answer costs less CPU than the loop's (a future and two
greenlet switches per answer, a loop turn): one event a request from 1 client, 1.55-1.59
-> 1.87-1.88 ms of server CPU on the loop (measured with `_Watch`). With others under
way the loop saves more than that (threads taking turns at the interpreter): 8 clients'
starts, 2.2 -> 1.7 ms."""
WAIT_INTERVAL = 0.1
"""As psycopg's own connections: how often a wait looks up from the socket (in threads,
and for a wait with a timeout on the loop)."""


class LoopAwareConnection(psycopg.Connection[Any]):
    """psycopg's connection, whose waits for the server are awaited on the event loop when
    it is used inside `run_on_the_loop(waits=True)`; elsewhere psycopg's own."""

    _watch: _Watch | None = None

    def wait(self, gen: Any, interval: float = WAIT_INTERVAL, timeout: float | None = None) -> Any:
        if not waits_here():
            return super().wait(gen, interval, timeout)
        try:
            if timeout is None:
                return self._wait_on_the_loop(gen)
            self.stop_watching()  # psycopg's wait takes the socket's reader for itself
            return await_here(
                waiting.wait_async(gen, self.pgconn.socket, interval=interval, timeout=timeout)
            )
        except (Exception, GeneratorExit):
            raise
        except BaseException:  # interrupted mid-exchange: the connection is not to be trusted
            self.stop_watching()
            self.pgconn.finish()
            raise

    def _wait_on_the_loop(self, gen: Any) -> Any:
        """Drive psycopg's generator: a write the socket takes now is sent at once; for an
        answer the greenlet waits on the loop, which watches the socket (`_Watch`)."""
        fileno = self.pgconn.socket
        try:
            state = next(gen)
            while True:
                ready = _ready_now(fileno, state) if state & waiting.WAIT_W else 0
                if not ready:
                    ready = self._await_ready(fileno, state)
                state = gen.send(ready)
        except StopIteration as done:
            return done.value
        except OSError as error:  # as psycopg's own waits: the socket was closed
            raise psycopg.OperationalError("connection socket closed") from error

    def _await_ready(self, fileno: int, state: int) -> int:
        loop = asyncio.get_running_loop()
        watch = self._watch
        if watch is None or watch.fileno != fileno or watch.loop is not loop:
            self.stop_watching()
            watch = self._watch = _Watch(loop, fileno)
        try:
            ready: int = await_here(watch.until_ready(state))
        finally:
            watch.waiter = None
        return ready

    def stop_watching(self) -> None:
        """The loop no longer watches this connection's socket (before it is closed, or
        when the connection goes back to the pool)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()

    def close(self) -> None:
        self.stop_watching()
        super().close()


class _Watch:
    """A connection's socket watched by the event loop for the length of a write: the
    reader stays registered between its round trips while the write waits on nothing
    else, and each wait takes a future. A report the loop queued before the answer was
    read (asyncio's loop polls once more before the greenlet resumes) is dropped unless
    the socket is readable now; a report while no wait is under way (the write awaits
    something else) pauses the watch until the next wait, so the loop never spins on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fileno: int) -> None:
        self.loop = loop
        self.fileno = fileno
        self.waiter: asyncio.Future[int] | None = None
        self.reading = False
        self.writing = False

    def _ready(self, state: int) -> None:
        waiter = self.waiter
        if waiter is None:
            self._stop_reading()
        elif not waiter.done():
            if state == waiting.READY_R and not _ready_now(self.fileno, waiting.WAIT_R):
                return
            waiter.set_result(state)

    def until_ready(self, state: int) -> asyncio.Future[int]:
        """A future of what the socket is ready for, once it is ready for `state` (a
        write waits only when the socket's buffer is full)."""
        self.waiter = waiter = self.loop.create_future()
        if not self.reading:
            self.loop.add_reader(self.fileno, self._ready, waiting.READY_R)
            self.reading = True
        if state & waiting.WAIT_W:
            self.loop.add_writer(self.fileno, self._ready, waiting.READY_W)
            self.writing = True
            waiter.add_done_callback(self._written)
        return waiter

    def _written(self, _waiter: asyncio.Future[int]) -> None:
        self._stop_writing()

    def _stop_writing(self) -> None:
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.fileno)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.fileno)

    def _end(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.cancel()
        self._stop_reading()
        self._stop_writing()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._end()
        else:  # pragma: no cover - a write's connection goes back to the pool on its loop
            self.loop.call_soon_threadsafe(self._end)


def _ready_now(fileno: int, state: int) -> int:
    """What the socket is ready for right now, without waiting (poll: any descriptor
    number, as psycopg's own waits)."""
    poll = select.poll()
    poll.register(fileno, (select.POLLIN if state & waiting.WAIT_R else 0) | select.POLLOUT)
    ready = 0
    for _fileno, events in poll.poll(0):
        if events & (select.POLLIN | select.POLLERR | select.POLLHUP):
            ready |= waiting.READY_R if state & waiting.WAIT_R else 0
        if events & select.POLLOUT:
            ready |= waiting.READY_W if state & waiting.WAIT_W else 0
    return ready


def install(engine: Engine) -> None:
    """Make `engine`'s new connections `LoopAwareConnection`s (PostgreSQL through psycopg);
    its pool must be a `LoopAwarePool` (`make_engine`)."""
    assert isinstance(engine.pool, LoopAwarePool)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, arguments: Any, options: Any) -> Any:
        if waits_here():  # on the loop: connecting may take seconds, the loop must not
            return await_here(asyncio.to_thread(LoopAwareConnection.connect, *arguments, **options))
        return LoopAwareConnection.connect(*arguments, **options)

    @event.listens_for(engine.pool, "checkin")
    def _checkin(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, LoopAwareConnection):
            dbapi_connection.stop_watching()

    _writers[engine] = _Writes()


def writes_on_the_loop(engine: Engine) -> bool:
    """Whether short writes of `engine` may run on the event loop (`install`ed)."""
    return engine in _writers


async def write_on_the_loop(engine: Engine, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` (a whole transaction, synchronous code) on the event loop, its driver
    waits awaited there, when another such write is under way; alone, or when the pool
    has no idle connection (see the module docstring), in a worker thread. Run to its end
    even if the caller is cancelled."""
    writes = _writers[engine]
    if not writes.begin() and LONE_WRITES_IN_A_THREAD:
        try:
            return await anyio.to_thread.run_sync(partial(work, *args))
        finally:
            writes.end()
    try:
        await writes.places.take()
    except BaseException:
        writes.end()
        raise
    task = asyncio.ensure_future(_run(work, *args))
    task.add_done_callback(partial(_ended, writes))
    return await asyncio.shield(task)


class _Writes:
    """An engine's short writes in this process: how many are under way (anywhere), and
    the places on the loop."""

    def __init__(self) -> None:
        self.places = Places(LOOP_WRITERS)
        self.under_way = 0
        self._lock = threading.Lock()

    def begin(self) -> bool:
        """One more under way; whether another was already."""
        with self._lock:
            self.under_way += 1
            return self.under_way > 1

    def end(self) -> None:
        with self._lock:
            self.under_way -= 1


async def _run(work: Callable[..., T], *args: Any) -> T:
    try:
        return await run_on_the_loop(None, work, *args, waits=True)
    except NotOnLoop:  # no idle connection: nothing was sent
        return await anyio.to_thread.run_sync(partial(work, *args))


def _ended(writes: _Writes, task: asyncio.Task[Any]) -> None:
    """A write's task ended (or was cancelled before it began): its place goes on, and its
    error, which its caller may no longer be there to take, is taken."""
    writes.places.give_back()
    writes.end()
    if not task.cancelled():
        task.exception()


class LoopAwarePool(QueuePool):
    """SQLAlchemy's QueuePool, which inside `run_on_the_loop(waits=True)` gives an idle
    connection or raises `NotOnLoop` (never waits for one, never opens one)."""

    def _do_get(self) -> ConnectionPoolEntry:
        if not waits_here():
            return super()._do_get()
        try:
            return self._pool.get(False)
        except Empty:
            raise NotOnLoop("no idle connection in the pool") from None


class Places:
    """A count of places, taken and given back from any thread; who finds none waits on
    its own event loop for one, first come first served (a cancelled waiter's place goes
    to the next)."""

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


def _hand_over(places: Places, waiter: asyncio.Future[None]) -> None:
    if waiter.done():  # cancelled meanwhile: the place goes on
        places.give_back()
    else:
        waiter.set_result(None)


_writers: WeakKeyDictionary[Engine, _Writes] = WeakKeyDictionary()
