"""The engine and the one way to open a transaction.

SQLite (the embedded default) runs in WAL mode with foreign keys on; every writing
transaction starts with BEGIN IMMEDIATE, so that a transaction that reads a counter and
then writes it holds the write lock from the start (one writer at a time, no lost
updates). Read-only work (`read_transaction`) starts with a deferred BEGIN instead: it
reads a WAL snapshot and never waits for the writer, nor holds it up.
PostgreSQL is selected by a postgresql:// URL and driven by psycopg 3.

Entry points (HTTP routes, CLI commands, worker ticks) open the transaction with
`transaction(engine)` (or `read_transaction(engine)` for work that only reads) and it
commits when the block ends; nothing below them commits.
"""

from __future__ import annotations

import asyncio
import select
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from tabkeeper.db import loop_writes
from tabkeeper.db.loop_reads import OneStatementSession
from tabkeeper.db.prepared import ONE_STATEMENT


def normalize_url(url: str) -> str:
    """Plain postgresql:// URLs use psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created when missing."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        psycopg = parsed.get_driver_name() == "psycopg"
        engine = create_engine(
            url,
            connect_args=connect_args,
            poolclass=loop_writes.LoopAwarePool if psycopg else None,
        )
        _look_before_use(engine)
        if psycopg:
            loop_writes.install(engine)
        return engine
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=StaticPool if in_memory else None,
    )
    _configure_sqlite(engine, wal=not in_memory)
    return engine


CONNECT_TIMEOUT_SECONDS = 5
"""How long a new PostgreSQL connection may take (unless the URL says `connect_timeout`):
while the database is unreachable a request answers 503 within this, never hangs."""


def _look_before_use(engine: Engine) -> None:
    """A cheap pre-ping (OPS-1, OPS-5): a pooled connection is looked at before each use
    without a round trip. An idle connection has nothing to read; when the server ended it
    (a restart, a failover, `pg_terminate_backend`) its socket is readable (the goodbye
    message, then end of file), or the driver already knows it is closed. Such a connection
    is dropped and the pool opens a fresh one, so the transaction starts on a good
    connection instead of failing on its first statement: the retry of a transaction that
    failed before doing anything, made where it costs nothing. (SQLAlchemy's
    `pool_pre_ping` would send a statement per transaction, on the hot path.) A connection
    that dies silently (a network cut) is still only found by its first statement: that
    request answers 503 `database_unavailable` with Retry-After (api/problems.py)."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
            raise DisconnectionError("the connection was closed")
        fileno = getattr(dbapi_connection, "fileno", None)
        if fileno is None:  # a driver without a socket to look at
            return
        poll = select.poll()  # not select.select: a busy process has descriptors past 1024
        poll.register(fileno(), select.POLLIN)
        if poll.poll(0):
            raise DisconnectionError("the server ended the connection")


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Straight to the driver: a statement of SQLAlchemy's costs more than the BEGIN.
        driver = connection.connection.driver_connection
        options = connection.get_execution_options()
        if options.get(READ_ONLY):
            driver.execute("BEGIN")
        elif options.get(NO_WAIT):
            _begin_at_once(driver)
        else:
            driver.execute("BEGIN IMMEDIATE")


def _begin_at_once(driver: Any) -> None:
    """BEGIN IMMEDIATE if the write lock is free now; WriterBusy if another process holds
    it (SQLite's busy handler, which sleeps and looks again, is off for this BEGIN)."""
    driver.execute("PRAGMA busy_timeout=0")
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if driver.in_transaction:  # pragma: no cover - BEGIN failed after beginning
            driver.execute("ROLLBACK")
        raise WriterBusy(str(error)) from error
    finally:
        driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class WriterBusy(Exception):
    """A write that was not to wait (`transaction(wait=False)`) found another writer at
    work: nothing was done; do it where waiting costs nothing."""


class TurnTaken(WriterBusy):
    """WriterBusy because another writer of this process holds or awaits the writers'
    turn (not another process's lock): `turn_released` tells when it ends its turn."""


NO_WAIT = "tabkeeper_no_wait"
"""Execution option of the engine `transaction(wait=False)` uses (SQLite)."""
BUSY_TIMEOUT_MS = 30_000


READ_ONLY = "tabkeeper_read_only"
"""Execution option of the engines `read_transaction` uses."""

_readers: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def reader(engine: Engine) -> Engine:
    """`engine` for read-only work (the same pool; on SQLite a deferred BEGIN)."""
    found = _readers.get(engine)
    if found is None:
        options: dict[str, Any] = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        found = _readers[engine] = engine.execution_options(**options)
    return found


_statement_readers: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def statement_reader(engine: Engine) -> Engine:
    """`engine` for a read of one statement: on PostgreSQL without BEGIN and COMMIT (in
    autocommit the statement is its own transaction: one round trip instead of three,
    and what it sees is what it would see in a READ COMMITTED transaction); on SQLite
    the same as `reader`."""
    found = _statement_readers.get(engine)
    if found is None:
        if engine.dialect.name == "postgresql":
            found = engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})
        else:
            found = reader(engine)
        _statement_readers[engine] = found
    return found


@contextmanager
def read_transaction(engine: Engine, *, one_statement: bool = False) -> Iterator[Session]:
    """A session for work that only reads. On SQLite it neither waits for a writer nor
    blocks one: it reads the snapshot of its first statement. Writing in it is a bug: on
    PostgreSQL the transaction is READ ONLY (a write fails, so the tests find it), on
    SQLite the write would wait for, or fail against, a busy writer.

    `one_statement`: the work sends one statement (as the check does, once the catalog
    version is cached): on PostgreSQL it goes alone, without BEGIN and COMMIT
    (`statement_reader`), and a prepared read sends it straight to the driver; should
    the work send more, each is its own transaction."""
    if one_statement:
        yield from _one_statement(statement_reader(engine))
        return
    with Session(reader(engine), expire_on_commit=False) as session, session.begin():
        yield session


def _one_statement(bind: Engine) -> Iterator[Session]:
    """A session that begins no transaction until its work uses it: a prepared read
    (db/prepared.py) takes a pooled connection of `bind` for its one statement instead
    (or, on the event loop, a loop connection: `run_on_the_loop`)."""
    with OneStatementSession(bind, expire_on_commit=False, info={ONE_STATEMENT: bind}) as session:
        yield session
        if session.in_transaction():
            session.commit()


@contextmanager
def transaction(engine: Engine, *, wait: bool = True) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back on error.

    `wait=False` (SQLite; for a short write made where waiting would hold up others, such
    as the event loop): WriterBusy, with nothing done, when another writer of this
    process holds or awaits its turn or another process holds SQLite's write lock."""
    waits = wait or engine.dialect.name != "sqlite"
    with (
        _writers_turn(engine) if waits else _turn_now(engine),
        Session(engine if waits else _no_wait(engine), expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


_no_waits: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _no_wait(engine: Engine) -> Engine:
    found = _no_waits.get(engine)
    if found is None:
        found = _no_waits[engine] = engine.execution_options(**{NO_WAIT: True})
    return found


WRITER_WAITS_AT_MOST = 30.0
"""Seconds a writer waits for its turn in this process (as long as SQLite's busy
timeout); past it, it goes on to SQLite's own lock."""
_turns: WeakKeyDictionary[Engine, _Turn] = WeakKeyDictionary()
_turns_made = threading.Lock()


@contextmanager
def _writers_turn(engine: Engine) -> Iterator[None]:
    """On SQLite, the writing transactions of this process take turns at a lock of their
    own before BEGIN IMMEDIATE: a writer that waits is woken the moment the one before it
    ends, where SQLite's busy handler would sleep and look again (up to 100 ms at a time:
    the tail of session starts from 8 clients). Writers of other processes (a `tabkeeper
    worker`, a second `serve`) still meet at SQLite's own lock, which keeps the data
    right either way. Re-entrant, so that it adds no deadlock of its own.
    PostgreSQL: nothing (its writers lock rows, not the database)."""
    if engine.dialect.name != "sqlite":
        yield
        return
    turn = _turn_of(engine)
    with turn.waiting:
        turn.waiters += 1
    try:
        acquired = turn.lock.acquire(timeout=WRITER_WAITS_AT_MOST)
    finally:
        with turn.waiting:
            turn.waiters -= 1
    if not acquired:
        yield
        return
    try:
        yield
    finally:
        turn.end()


@contextmanager
def _turn_now(engine: Engine) -> Iterator[None]:
    """The writers' turn if it is free and no writer awaits it (those go first); else
    WriterBusy."""
    turn = _turn_of(engine)
    if turn.waiters or not turn.lock.acquire(blocking=False):
        raise TurnTaken("another writer of this process is at work")
    try:
        yield
    finally:
        turn.end()


async def turn_released(engine: Engine, at_most: float) -> bool:
    """On the event loop: True when a writer of this process ended its turn, False when
    `at_most` seconds passed first (the caller looks again either way). Waiting here
    costs the loop nothing, where a thread hand-off per write would."""
    turn = _turn_of(engine)
    loop = asyncio.get_running_loop()
    released: asyncio.Future[bool] = loop.create_future()
    with turn.waiting:
        turn.watchers.append((loop, released))
    if not turn.waiters and turn.lock.acquire(blocking=False):
        turn.end()  # it ended before this watch began: every watcher looks again (woken
        # through the loop: the caller never spins on it)
    timer = loop.call_later(at_most, _resolve, released, False)
    try:
        return await released
    finally:
        timer.cancel()
        with turn.waiting:
            if (loop, released) in turn.watchers:
                turn.watchers.remove((loop, released))


class _Turn:
    """The writers' turn of one engine: its lock, how many writers await it (threads),
    and the event loops' writers watching for its end (`turn_released`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.waiting = threading.Lock()
        self.waiters = 0
        self.watchers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []

    def end(self) -> None:
        """End a turn taken (its lock released) and tell the watching writers, each on
        its own loop."""
        self.lock.release()
        if not self.watchers:  # the usual case: nobody watches
            return
        with self.waiting:
            woken, self.watchers = self.watchers, []
        for loop, released in woken:
            with suppress(RuntimeError):  # its loop has ended
                loop.call_soon_threadsafe(_resolve, released)


def _resolve(released: asyncio.Future[bool], ended: bool = True) -> None:
    if not released.done():
        released.set_result(ended)


def _turn_of(engine: Engine) -> _Turn:
    turn = _turns.get(engine)
    if turn is None:  # the engine's first write: made once, under a lock
        with _turns_made:
            turn = _turns.setdefault(engine, _Turn())
    return turn
