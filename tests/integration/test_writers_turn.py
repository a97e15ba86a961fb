"""Writers of one process take turns (db/engine.py `transaction`): on SQLite at a lock of
the process before BEGIN IMMEDIATE, so a waiting writer is woken when the one before it
commits instead of sleeping in SQLite's busy handler. USE-1/LIM-3 depend on no lost
update: every increment of many threads lands, none fails with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from tabkeeper.db.engine import (
    TurnTaken,
    WriterBusy,
    _turn_of,
    _writers_turn,
    is_sqlite,
    transaction,
    turn_released,
)
from tests.integration.conftest import all_at_once, turn_held

THREADS = 8
EACH = 40


def test_concurrent_writers_lose_nothing(engine: Engine) -> None:
    """USE-1: 8 threads each add 1 forty times to one counter row through `transaction`
    (read, then write; on PostgreSQL the row read FOR UPDATE, as the counters are): the
    row says 320, and no thread saw an error."""
    with transaction(engine) as session:
        session.execute(text("CREATE TABLE turns_probe (id INTEGER PRIMARY KEY, n INTEGER)"))
        session.execute(text("INSERT INTO turns_probe VALUES (1, 0)"))
    read = "SELECT n FROM turns_probe WHERE id = 1" + ("" if is_sqlite(engine) else " FOR UPDATE")

    def add(_thread: int) -> None:
        for _ in range(EACH):
            with transaction(engine) as session:
                n = session.execute(text(read)).scalar_one()
                session.execute(text("UPDATE turns_probe SET n = :n WHERE id = 1"), {"n": n + 1})

    all_at_once(THREADS, add)  # fails with the first error a thread saw
    with transaction(engine) as session:
        assert session.execute(text("SELECT n FROM turns_probe")).scalar_one() == THREADS * EACH
        session.execute(text("DROP TABLE turns_probe"))


def test_a_thread_may_take_its_turn_again_inside_it(engine: Engine) -> None:
    """The turn is re-entrant: a thread that holds it takes it again (a nested use adds no
    deadlock of the lock's own), and gives it back for others when done."""
    with _writers_turn(engine), _writers_turn(engine):
        pass
    taken = threading.Event()

    def other() -> None:
        with _writers_turn(engine):
            taken.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(timeout=60)
    assert taken.is_set()


# -- a write that does not wait (`transaction(wait=False)`, SQLite: Api.write's brief writes)


def _probe(engine: Engine) -> None:
    with transaction(engine) as session:
        session.execute(text("CREATE TABLE turns_probe (id INTEGER PRIMARY KEY, n INTEGER)"))
        session.execute(text("INSERT INTO turns_probe VALUES (1, 0)"))


def _probed(engine: Engine) -> int:
    with transaction(engine) as session:
        found = session.execute(text("SELECT n FROM turns_probe")).scalar_one()
    assert isinstance(found, int)
    return found


def _add_one(engine: Engine, *, wait: bool) -> None:
    read = "SELECT n FROM turns_probe WHERE id = 1" + ("" if is_sqlite(engine) else " FOR UPDATE")
    with transaction(engine, wait=wait) as session:
        n = session.execute(text(read)).scalar_one()
        session.execute(text("UPDATE turns_probe SET n = :n WHERE id = 1"), {"n": n + 1})


def test_a_write_that_does_not_wait_is_refused_while_another_of_the_process_writes_use_1(
    engine: Engine,
) -> None:
    """USE-1, SQLite: while a thread of the process holds the writers' turn, a write with
    `wait=False` raises WriterBusy at once and changes nothing; once the turn is free it
    is done."""
    if not is_sqlite(engine):
        pytest.skip("PostgreSQL writers lock rows, not the database: wait=False is a no-op")
    _probe(engine)
    with turn_held(engine), pytest.raises(TurnTaken):
        _add_one(engine, wait=False)
    assert _probed(engine) == 0
    _add_one(engine, wait=False)
    assert _probed(engine) == 1


def test_a_writer_on_the_event_loop_is_woken_when_the_turn_ends_use_1(engine: Engine) -> None:
    """USE-1, SQLite: a write that may not wait, refused because a thread of the process
    has the turn (TurnTaken), waits for the turn's end on the event loop
    (`turn_released`): woken when the thread commits, not at the end of its wait; it
    then writes, and nothing was lost. Every watcher of the turn is woken and none is
    left behind; a watch begun when the turn is already free ends at once."""
    if not is_sqlite(engine):
        pytest.skip("SQLite only")
    _probe(engine)

    async def write_when_free(release: threading.Event) -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TurnTaken):
            _add_one(engine, wait=False)
        assert await turn_released(engine, 0.01) is False  # no turn ended: its time ran out
        loop.call_later(0.1, release.set)
        started = loop.time()
        ended = await asyncio.gather(turn_released(engine, 60), turn_released(engine, 60))
        waited = loop.time() - started
        assert ended == [True, True]
        _add_one(engine, wait=False)
        return waited

    with turn_held(engine) as release:
        waited = asyncio.run(write_when_free(release))
    assert waited < 30  # woken by the commit, not by the end of the 60 s wait
    assert _turn_of(engine).watchers == []
    assert _probed(engine) == 1
    # a turn that ended before the watch began (nobody holds it now): True at once
    assert asyncio.run(turn_released(engine, 60)) is True
    assert _turn_of(engine).watchers == []


def test_a_write_that_does_not_wait_leaves_the_turn_to_a_writer_waiting_for_it_use_1(
    engine: Engine,
) -> None:
    """Writers that wait go first: while one waits for the turn, a `wait=False` write is
    refused even in the moment the turn is free."""
    if not is_sqlite(engine):
        pytest.skip("SQLite only")
    _probe(engine)
    turn = _turn_of(engine)
    with turn.waiting:
        turn.waiters += 1  # as a writer between counting itself and taking the lock
    try:
        with pytest.raises(WriterBusy):
            _add_one(engine, wait=False)
    finally:
        with turn.waiting:
            turn.waiters -= 1
    assert _probed(engine) == 0


def test_a_write_that_does_not_wait_is_refused_while_another_process_writes_use_1(
    engine: Engine, database_url: str
) -> None:
    """Another process holding SQLite's write lock (here a connection of its own, as a
    `tabkeeper worker` would): WriterBusy at once (SQLite's busy handler is off for that
    BEGIN), nothing changed; the connection's busy timeout is back after, so a write that
    waits still waits for the other process to end, and then lands."""
    if not is_sqlite(engine):
        pytest.skip("SQLite only")
    _probe(engine)
    other = sqlite3.connect(
        make_url(database_url).database or "", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(WriterBusy) as refused:
            _add_one(engine, wait=False)
        assert time.monotonic() - started < 5  # not SQLite's 30 s busy wait
        assert not isinstance(refused.value, TurnTaken)  # another process: not our turn
        ended = threading.Timer(0.3, other.commit)
        ended.start()
        _add_one(engine, wait=True)  # waits for the other process, then writes
        ended.join()
    finally:
        other.close()
    assert _probed(engine) == 1


def test_writes_that_wait_and_writes_that_do_not_lose_nothing_use_1(engine: Engine) -> None:
    """USE-1: 4 threads adding with `wait=True` and 4 adding with `wait=False` (retried
    with `wait=True` when refused, as Api.write does), 40 each: the row says 320."""
    _probe(engine)

    def add(thread: int) -> None:
        for _ in range(EACH):
            if thread % 2:
                _add_one(engine, wait=True)
                continue
            try:
                _add_one(engine, wait=False)
            except WriterBusy:
                _add_one(engine, wait=True)

    all_at_once(THREADS, add)
    assert _probed(engine) == THREADS * EACH
