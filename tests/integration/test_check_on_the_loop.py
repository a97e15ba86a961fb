"""The check's one read on PostgreSQL runs on the event loop (LIM-1; db/prepared.py
`run_on_the_loop`, `LoopReads`): no thread hand-off, no pool checkout, and the same
answers and the same safety as the pooled read (OPS-1, OPS-5):

- the rows read on the loop are those read through SQLAlchemy (every prepared kind);
- over HTTP the check's read is sent on a loop connection (not the pool's), and answers
  as before; a connection the server ended between two checks (pg_terminate_backend)
  is seen before use and replaced: the next check answers 200, the same;
- work that needs more than its prepared read (a statement through the session) raises
  `NotOnLoop` before connecting anywhere, and `Api.read_one` answers it from a thread;
- at most `size` connections: a read past them waits for one; a read cancelled in the
  middle never leaves a connection busy; `Engine.dispose` closes them.
On SQLite the read runs inline on the loop as before (`loop_reads` is None)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from tabkeeper.db import accounts
from tabkeeper.db.engine import read_transaction
from tabkeeper.db.loop_reads import LoopReads, NotOnLoop, loop_reads, run_on_the_loop
from tests.api.conftest import make_api_world
from tests.api.test_database_restart import count_backends, end_other_connections
from tests.integration.test_prepared_reads import _world, read_values

CHECK = {"organization": "acme", "action": "start_session"}


def _postgresql(engine: Engine) -> LoopReads:
    reads = loop_reads(engine)
    if reads is None:
        assert engine.dialect.name == "sqlite"
        pytest.skip("reads on the event loop: PostgreSQL (SQLite reads inline)")
    return reads


def _on_the_loop(reads: LoopReads, work: Any, *args: Any) -> Any:
    async def run() -> Any:
        return await run_on_the_loop(reads, work, *args)

    return asyncio.run(run())


def test_lim1_rows_read_on_the_loop_equal_sqlalchemys(engine: Engine) -> None:
    """Every prepared kind, for an organization with usage and credits, one without a
    subscription and one unknown: the same rows as through SQLAlchemy; and the account
    facts of a one-statement read on the loop equal those read in a transaction."""
    reads = _postgresql(engine)
    platform_id = _world(engine)
    with read_transaction(engine) as session:
        acme = accounts.account_by_code(session, platform_id, "acme", counters=True)
        assert acme is not None and acme.counters
    for kind, prepared in accounts._PREPARED.items():
        for key in ("acme", "globex", "nobody"):
            values = read_values(kind, key, platform_id, acme.id)
            with read_transaction(engine) as session:
                statement = accounts._STATEMENTS[kind]
                through = [tuple(r) for r in session.connection().execute(statement, values)]
            looped = _on_the_loop(reads, prepared.run, engine, values)
            assert [tuple(r) for r in looped] == through, (kind, key)
            assert all(list(r._fields) == list(statement.selected_columns.keys()) for r in looped)
            assert through or key != "acme", kind

    def facts() -> Any:
        with read_transaction(engine, one_statement=True) as session:
            found = accounts.account_by_code(session, platform_id, "acme", counters=True)
            assert not session.in_transaction()
            return found

    assert _on_the_loop(reads, facts) == acme


def _loop_connections_seen(engine: Engine) -> tuple[list[bool], Any]:
    """Whether each connection the engine's `checkout` listeners saw was a loop one."""
    import psycopg

    seen: list[bool] = []

    def look(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        seen.append(isinstance(dbapi_connection, psycopg.AsyncConnection))

    event.listen(engine, "checkout", look)
    return seen, look


def test_lim1_ops1_the_check_reads_on_the_loop_and_survives_an_ended_connection(
    engine: Engine,
) -> None:
    """The check over HTTP reads on a loop connection (the catalog already cached);
    after the server ended every connection (pg_terminate_backend, waiting until each
    is gone) the next check is answered 200, the same, on a fresh loop connection."""
    reads = _postgresql(engine)
    api = make_api_world(engine)
    api.world.organization("acme")
    first = api.platform.post("/v1/check", CHECK)
    assert first.status_code == 200, first.text
    seen, look = _loop_connections_seen(engine)
    try:
        again = api.platform.post("/v1/check", CHECK)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert seen == [True]  # one loop connection handed out, none of the pool
        assert end_other_connections(engine)
        seen.clear()
        after = api.platform.post("/v1/check", CHECK)
        assert after.status_code == 200, after.text
        assert after.json() == first.json()
        assert seen and all(seen)  # the ended one seen before use, a fresh one read
    finally:
        event.remove(engine, "checkout", look)
    assert reads._open <= reads.size


def test_lim1_work_needing_more_than_its_read_leaves_the_loop_before_any_io(
    engine: Engine,
) -> None:
    """A statement through the session inside `run_on_the_loop` raises NotOnLoop before
    the session connects (nothing waits on the loop); the check whose catalog is not
    cached yet is such work, and is answered from a thread, the same as the next."""
    reads = _postgresql(engine)
    seen, look = _loop_connections_seen(engine)

    def more() -> Any:
        with read_transaction(engine, one_statement=True) as session:
            return session.execute(text("SELECT 1")).scalar()

    try:
        with pytest.raises(NotOnLoop):
            _on_the_loop(reads, more)
        assert seen == []
        assert more() == 1  # outside the loop, the same work runs
    finally:
        event.remove(engine, "checkout", look)
    api = make_api_world(engine)
    api.world.organization("acme")
    api.world.store._catalogs.clear()  # the catalog version is read through the session
    first = api.platform.post("/v1/check", CHECK)
    second = api.platform.post("/v1/check", CHECK)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()


def _sleeping(admin: Engine) -> bool:
    return count_backends(admin, "state = 'active' AND query LIKE 'SELECT pg_sleep%%'") > 0


def test_lim1_loop_connections_are_bounded_freed_when_cancelled_and_closed_with_the_engine(
    engine: Engine,
) -> None:
    """With `size` reads under way the next waits (on the loop) for a connection; a read
    cancelled while it waits for the server frees its connection, and the waiting read
    gets it and answers; `Engine.dispose` closes the idle ones, and the next read opens a
    fresh one."""
    _postgresql(engine)
    reads = LoopReads(engine, size=1)
    sleep, one = "SELECT pg_sleep(%(seconds)s)", "SELECT %(n)s::int"

    async def run() -> None:
        assert await reads.fetch(engine, one, {"n": 0}) == [(0,)]  # opened, now idle
        slow = asyncio.create_task(reads.fetch(engine, sleep, {"seconds": 30}))
        while not _sleeping(admin):  # until the server runs the slow read
            await asyncio.sleep(0)
        waiting = asyncio.create_task(reads.fetch(engine, one, {"n": 1}))
        while not reads._waiters:
            await asyncio.sleep(0)
        assert not waiting.done() and reads._open == 1
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await waiting == [(1,)]
        assert await reads.fetch(engine, one, {"n": 2}) == [(2,)]
        assert reads._open == 1 and not reads._waiters

    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        asyncio.run(run())
    finally:
        admin.dispose()
    idle = list(reads._idle)
    assert len(idle) == 1
    engine.dispose()
    assert reads._idle == [] and reads._open == 0
    assert idle[0].driver.closed
    assert asyncio.run(reads.fetch(engine, one, {"n": 3})) == [(3,)]
    engine.dispose()
