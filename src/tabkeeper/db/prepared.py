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

On the event loop (PostgreSQL), a `PreparedRead` inside db/loop_reads.py's
`run_on_the_loop` is sent on a loop connection and awaited.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from threading import Lock
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Select, Table, bindparam
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ValuesBase

from tabkeeper.db.driver_errors import driver_errors
from tabkeeper.db.loop_reads import NotOnLoop, await_here, reads_here

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
        on_the_loop = reads_here()
        if on_the_loop is not None:  # run_on_the_loop: the greenlet waits, the loop serves
            if not on_the_loop.serves(engine):
                raise NotOnLoop("a read of another engine")
            return compiled.rows(await_here(on_the_loop.fetch(engine, compiled.sql, arguments)))
        pooled = engine.raw_connection()
        try:
            with (
                driver_errors(
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
        with driver_errors(
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
