"""The worker's loop waits for due work instead of polling (worker/loop.py, wake.py):
idle it runs one look and sleeps; a commit of its own process wakes it, and work that has
come due is done then (INV-4: once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, select

from tabkeeper.db.engine import read_transaction, transaction
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.settings import Settings
from tabkeeper.worker.loop import run_worker
from tabkeeper.worker.wake import Alarm, next_due_at, ring_on_commit
from tests.integration.conftest import FEB_1, JAN_1, World

LEASE = timedelta(minutes=5)


def _eventually(condition: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@contextmanager
def _loop(world: World, interval: float) -> Iterator[list[str]]:
    """The loop in a thread over the world; yields the statements it ran."""
    statements: list[str] = []
    name = "worker-under-test"

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == name:
            statements.append(statement)

    event.listen(world.engine, "before_cursor_execute", seen)
    stop, alarm = threading.Event(), Alarm()
    thread = threading.Thread(
        target=run_worker,
        args=(world.engine, Settings(), world.provider, interval, stop, world.clock, alarm),
        name=name,
        daemon=True,
    )
    thread.start()
    try:
        yield statements
    finally:
        stop.set()
        alarm.ring()
        thread.join(timeout=20)
        event.remove(world.engine, "before_cursor_execute", seen)
    assert not thread.is_alive()


def test_next_due_at_names_the_earliest_work(world: World) -> None:
    """Nothing queued: None. A subscription writes notices (due now, to be fanned out)
    and queues its renewal at the period's end."""
    assert next_due_at(world.engine, JAN_1, LEASE, LEASE) is None
    world.organization("acme")
    world.subscribe("acme")
    assert next_due_at(world.engine, JAN_1, LEASE, LEASE) == JAN_1
    Dispatcher(world.engine, world.clock, Settings()).tick()
    assert next_due_at(world.engine, JAN_1, LEASE, LEASE) == FEB_1


def test_idle_loop_looks_once_and_sleeps_until_woken(world: World, engine: Engine) -> None:
    """INV-4: with nothing due, the loop runs its one look and then nothing (no polling);
    a commit in this process wakes it, and the renewal that came due is done once."""
    world.organization("acme")
    world.subscribe("acme")
    Dispatcher(world.engine, world.clock, Settings()).tick()  # the notices, due now
    invoices = world.invoices()
    with _loop(world, interval=3600) as statements:
        assert _eventually(lambda: len(statements) > 0)
        time.sleep(1)
        looks = list(statements)
        assert not any("UPDATE" in s or "INSERT" in s for s in looks), looks
        assert world.invoices() == invoices  # FEB_1 is a month away: nothing done
        world.clock.set(FEB_1)
        world.organization("globex")  # any commit of this process rings the alarm
        assert _eventually(lambda: world.invoices() == invoices + 1)
        assert _eventually(lambda: world.charges() == 2)  # the checkout and the renewal
    assert world.invoices() == invoices + 1
    assert len(looks) <= 3  # BEGIN, the look, COMMIT: nothing more while asleep


def test_only_a_commit_that_wrote_rings_the_alarm(world: World) -> None:
    """A write transaction rings the alarm when it changed rows; a read transaction never
    does, nor (on SQLite, where the driver counts changes) one that changed nothing."""
    alarm = Alarm()
    stop = ring_on_commit(world.engine, alarm)
    try:
        with read_transaction(world.engine) as session:
            session.execute(select(1))
        assert not alarm.wait(0)
        with transaction(world.engine) as session:
            session.execute(select(1))
        assert alarm.wait(0) == (world.engine.dialect.name != "sqlite")
        alarm.clear()
        world.organization("acme")
        assert alarm.wait(0)
    finally:
        stop()
