"""Statements of the hot path sent straight to the driver (LIM-1: the check reads the
account once; LIM-3, USE-1: a session start or a few events write a few rows).

Through SQLAlchemy, a read costs more than the database spends on it: an ORM session,
its transaction, the statement's execution context and its result object came to about
0.15 ms of CPU for the account read of the check on SQLite, against 0.02 ms for the same
statement sent through the driver (docs/benchmarks.md). A `PreparedRead` is a SELECT
compiled once per dialect; `run` sends it on a pooled driver connection with the bind
parameters and result values converted by the columns' own SQLAlchemy types (so a row
reads exactly as through SQLAlchemy: aware UTC datetimes, booleans), and gives rows with
the statement's column names as attributes.

The read is a transaction of its own: on SQLite one statement reads one snapshot
(autocommit; a read never waits for the writer under WAL), on PostgreSQL it goes in
autocommit, one round trip, as `statement_reader` sends it. Used only where a request's
whole transaction is that one statement (`one_statement_reads`), so nothing else would have
seen another snapshot.

The writes of a session start or a small batch of events (the event rows, the counters'
upserts, the conversations) go the same way through `write_rows`: an INSERT … ON CONFLICT
… RETURNING of a few rows compiled once per dialect and number of rows, sent on the
session's connection in its transaction.

On the event loop (PostgreSQL through psycopg, `LoopReads`): a server answers over the
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
from collections import deque, namedtuple
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from threading import Lock
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from greenlet import GreenletExit, getcurrent, greenlet  # type: ignore[import-untyped]
from sqlalchemy import Connection, Dialect, Engine, Select, Table, bindparam, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.dml import ValuesBase

T = TypeVar("T")

ONE_STATEMENT = "tabkeeper_one_statement_engine"
"""`Session.info` key set by `read_transaction(one_statement=True)`: the engine whose
pool a prepared read may take a connection from, instead of opening the session's own
transaction."""

Processor = Callable[[Any], Any] | None


class _Compiled:
    """A statement compiled for one dialect: its SQL, the order (or names) of its
    parameters with their converters, and its result columns' converters."""

    def __init__(self, statement: Select[Any] | ValuesBase, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.positional = compiled.positiontup is not None
        self.names = list(compiled.positiontup or self.defaults)
        self.binds: dict[str, Processor] = {
            name: compiled.binds[name].type._cached_bind_processor(dialect) for name in self.names
        }
        columns = (
            statement.selected_columns
            if isinstance(statement, Select)
            else statement.exported_columns  # what an INSERT returns (none without RETURNING)
        )
        self.returns = bool(columns)
        self.results: list[Processor] = [
            column.type._cached_result_processor(dialect, None) for column in columns
        ]
        names = [str(key) for key, _column in columns.items()] or ["nothing"]
        self.row: Any = namedtuple("Row", names)  # type: ignore[misc]

    def arguments(self, values: dict[str, Any]) -> Any:
        converted = {}
        for name in self.names:
            value = values[name] if name in values else self.defaults[name]
            process = self.binds[name]
            converted[name] = value if process is None else process(value)
        if self.positional:
            return [converted[name] for name in self.names]
        return converted

    def rows(self, found: Sequence[Any]) -> list[Any]:
        results = self.results
        make = self.row._make
        return [
            make(v if p is None else p(v) for p, v in zip(results, raw, strict=True))
            for raw in found
        ]


class PreparedRead:
    """A SELECT sent straight to the driver (see the module docstring)."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._lock = Lock()

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._compiled.setdefault(dialect.name, _Compiled(self.statement, dialect))
        return found

    def run(self, engine: Engine, values: dict[str, Any]) -> list[Any]:
        """The rows of the statement with `values`, read in a transaction of its own.
        A driver error comes out as SQLAlchemy's (a lost connection invalidated and
        flagged, as OPS-1's retry expects)."""
        compiled = self.compiled(engine.dialect)
        arguments = compiled.arguments(values)
        on_the_loop = _loop_reads_here()
        if on_the_loop is not None:  # run_on_the_loop: the greenlet waits, the loop serves
            if not on_the_loop.serves(engine):
                raise NotOnLoop("a read of another engine")
            return compiled.rows(_await(on_the_loop.fetch(engine, compiled.sql, arguments)))
        pooled = engine.raw_connection()
        try:
            with (
                _driver_errors(
                    engine.dialect,
                    compiled.sql,
                    arguments,
                    pooled.dbapi_connection,
                    pooled.invalidate,
                ),  # fmt: skip
                _autocommit_cursor(engine, pooled) as cursor,
            ):
                cursor.execute(compiled.sql, arguments)
                found = cursor.fetchall()
        finally:
            pooled.close()
        return compiled.rows(found)

    def run_in(self, session: Session, values: dict[str, Any]) -> list[Any]:
        """The rows of the statement in `session`'s transaction (begun as usual), sent on
        its connection's driver; listeners of `before_cursor_execute` see it as they see
        SQLAlchemy's statements. A lost connection is invalidated as SQLAlchemy would."""
        session.flush()
        connection = session.connection()
        return _send(connection, self.compiled(connection.dialect), values)


def _send(connection: Connection, compiled: _Compiled, values: dict[str, Any]) -> list[Any]:
    """`compiled` with `values` on the driver of `connection` (in its transaction)."""
    arguments = compiled.arguments(values)
    pooled = connection.connection
    cursor = pooled.cursor()
    try:
        with _driver_errors(
            connection.dialect,
            compiled.sql,
            arguments,
            pooled.dbapi_connection,
            connection.invalidate,
        ):
            connection.dispatch.before_cursor_execute(
                connection, cursor, compiled.sql, arguments, None, False
            )
            cursor.execute(compiled.sql, arguments)
            found = cursor.fetchall() if compiled.returns else []
    finally:
        cursor.close()
    return compiled.rows(found)


ROWS_AT_MOST = 16
"""Inserts of up to this many rows go straight to the driver (`write_rows`); larger ones
(batches of events) through SQLAlchemy, whose cost per row is small beside theirs."""
_written: dict[tuple[Any, str, int, tuple[str, ...]], _Compiled] = {}
_written_lock = Lock()


def write_rows(
    session: Session,
    statement: ValuesBase,
    rows: Sequence[Mapping[str, Any]],
    shared: Mapping[str, Any] | None = None,
) -> list[Any]:
    """`session.connection().execute(statement, rows)` for an INSERT (… ON CONFLICT …
    RETURNING) of the hot path, its rows as a list (none without RETURNING). For up to
    ROWS_AT_MOST rows, all with the same columns, the statement is compiled once per
    dialect and number of rows as one multi-row VALUES and sent straight to the driver
    (about 0.05-0.1 ms of CPU less per statement than SQLAlchemy's execution, measured
    for session starts: docs/benchmarks.md). `shared`: values of the statement's other
    parameters (a cap in its WHERE). Plain statements do not flush the session."""
    connection = session.connection()
    if not 1 <= len(rows) <= ROWS_AT_MOST:
        arguments: Any = [{**row, **(shared or {})} for row in rows]
        found = connection.execute(statement, arguments)
        return list(found) if found.returns_rows else []
    columns = tuple(rows[0])
    key = (statement, connection.dialect.name, len(rows), columns)
    compiled = _written.get(key)
    if compiled is None:
        with _written_lock:
            compiled = _written.get(key)
            if compiled is None:
                compiled = _Compiled(_many(statement, len(rows), columns), connection.dialect)
                unknown = (
                    set(compiled.names)
                    - {f"{name}_{i}" for i in range(len(rows)) for name in columns}
                    - set(shared or ())
                )
                if unknown:  # a column's default (filled in by SQLAlchemy's execution)
                    raise ValueError(f"write_rows: no values for {sorted(unknown)}")
                _written[key] = compiled
    values = {f"{name}_{i}": value for i, row in enumerate(rows) for name, value in row.items()}
    if shared:
        values.update(shared)
    return _send(connection, compiled, values)


def _many(statement: ValuesBase, count: int, columns: tuple[str, ...]) -> ValuesBase:
    """`statement` with `count` rows of VALUES of `columns`, parameters `<column>_<i>`."""
    table = statement.table
    assert isinstance(table, Table)
    return statement.values(
        [
            {name: bindparam(f"{name}_{i}", type_=table.c[name].type) for name in columns}
            for i in range(count)
        ]
    )


def one_statement_engine(session: Session) -> Engine | None:
    """The engine a prepared read may use instead of `session`: set when the session is
    a one-statement read and has not begun a transaction of its own (else None: the read
    goes through the session, in its transaction)."""
    engine = session.info.get(ONE_STATEMENT)
    if engine is None or session.in_transaction():
        return None
    assert isinstance(engine, Engine)
    return engine


@contextmanager
def _driver_errors(
    dialect: Dialect,
    sql: str,
    arguments: Any,
    driver: Any,
    invalidate: Callable[[BaseException], None],
) -> Iterator[None]:
    """A driver error raised as SQLAlchemy's DBAPIError; a lost connection (`driver`,
    the driver's connection, None when it could not be opened) invalidated first and
    flagged (`connection_invalidated`), as OPS-1's retry expects."""
    failure = dialect.loaded_dbapi.Error
    try:
        yield
    except failure as error:
        lost = driver is not None and dialect.is_disconnect(error, driver, None)
        if lost:
            invalidate(error)
        raise DBAPIError.instance(
            sql, arguments, error, failure, connection_invalidated=lost, dialect=dialect
        ) from error


@contextmanager
def _autocommit_cursor(engine: Engine, pooled: Any) -> Iterator[Any]:
    """SQLite's pooled connections are in autocommit already (db/engine.py); a
    PostgreSQL one is put in autocommit for the read and taken out after."""
    postgresql = engine.dialect.name == "postgresql"
    driver = pooled.driver_connection
    if postgresql:
        driver.autocommit = True
    cursor = pooled.cursor()
    try:
        yield cursor
    finally:
        cursor.close()
        if postgresql and not driver.closed:
            driver.autocommit = False


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
        if self._transaction is None and _loop_reads_here() is not None:
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
            with _driver_errors(engine.dialect, sql, arguments, held.driver, _closed_below):
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
            with _driver_errors(engine.dialect, sql, arguments, None, _closed_below):
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
        self.done: _Done | None = None

    def _serve(self, job: tuple[LoopReads, Callable[[], Any]]) -> None:
        while True:
            self.reads, work = job
            try:
                self.done = _Done(work(), None)
            except GreenletExit:  # collected while suspended: let it end
                raise
            except BaseException as error:
                self.done = _Done(None, error)  # raised by run_on_the_loop
            self.reads = None
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


async def run_on_the_loop(reads: LoopReads, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` right here on the event loop, its prepared reads sent through
    `reads` and awaited (see the module docstring); `NotOnLoop` when it needed anything
    else from the database."""
    idle: list[_OnTheLoop] | None = getattr(_idle_greenlets, "idle", None)
    if idle is None:
        idle = _idle_greenlets.idle = []
    child = idle.pop() if idle else _OnTheLoop()
    here = getcurrent()
    child.parent = here
    child.gr_context = here.gr_context  # the request's context variables
    wanted = child.switch((reads, lambda: work(*args)))
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


def _loop_reads_here() -> LoopReads | None:
    reads: LoopReads | None = getattr(getcurrent(), "reads", None)
    return reads


def _await(awaitable: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
    """Inside `run_on_the_loop`: `awaitable`'s result, the event loop serving others
    meanwhile."""
    found: T = getcurrent().parent.switch(awaitable)
    return found
