"""Writers of one process take turns (db/engine.py `transaction`): on SQLite at a lock of
the process before BEGIN IMMEDIATE, so a waiting writer is woken when the one before it
commits instead of sleeping in SQLite's busy handler. USE-1/LIM-3 depend on no lost
update: every increment of many threads lands, none fails with "database is locked"."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, text

from tabkeeper.db.engine import _writers_turn, is_sqlite, transaction
from tests.integration.conftest import all_at_once

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
