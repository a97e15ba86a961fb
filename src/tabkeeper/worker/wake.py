"""When the worker next has something to do, and the alarm that wakes it sooner.

The worker's loop (worker/loop.py) does not poll: it asks the database once when the next
work is due (`next_due_at`: one statement of five index lookups, in a read transaction
that on SQLite never waits for the writer), sleeps until then, and is woken earlier by
its `Alarm`, which every committed write of its own process rings (`ring_on_commit`): a
request that queues work or writes a notice is seen at once. Work written by another
process (another `serve` or a `tabkeeper tick`) is seen at the next look, at most the
loop's `interval` later.

What is due: pending billing work (`due_work.due_at`), billing work left running by a
dead worker (its `claimed_at` + the clock's lease), a notice not fanned out yet (now), a
pending delivery (`next_attempt_at`) and a delivery left sending by a dead worker (its
`claimed_at` + the dispatcher's lease).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select

from tabkeeper.db.engine import READ_ONLY, read_transaction
from tabkeeper.db.tables import DueWork, Notice
from tabkeeper.db.tables_notify import Delivery


class Alarm:
    """A flag the worker sleeps on: `ring` from any thread wakes its `wait` at once."""

    def __init__(self) -> None:
        self._rung = threading.Event()

    def ring(self) -> None:
        if not self._rung.is_set():
            self._rung.set()

    def clear(self) -> None:
        self._rung.clear()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when rung (before or meanwhile)."""
        return self._rung.wait(max(seconds, 0.0))


_CHANGES = "tabkeeper_changes_at_begin"


def ring_on_commit(engine: Engine, alarm: Alarm) -> Callable[[], None]:
    """Ring `alarm` after every commit of a writing transaction on `engine` (read
    transactions leave it be; on SQLite, so does a transaction that changed no row, such
    as a check). Returns the function that stops it."""
    sqlite = engine.dialect.name == "sqlite"

    def began(connection: Any) -> None:
        if sqlite:
            connection.info[_CHANGES] = _changes(connection)

    def committed(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            return
        if sqlite and connection.info.get(_CHANGES) == _changes(connection):
            return
        alarm.ring()

    event.listen(engine, "begin", began)
    event.listen(engine, "commit", committed)

    def stop() -> None:
        event.remove(engine, "commit", committed)
        event.remove(engine, "begin", began)

    return stop


def _changes(connection: Any) -> int:
    """How many rows the SQLite connection has changed since it was opened."""
    changes: int = connection.connection.dbapi_connection.total_changes
    return changes


_NEXT = select(
    select(func.min(DueWork.due_at)).where(DueWork.status == "pending").scalar_subquery(),
    select(func.min(DueWork.claimed_at)).where(DueWork.status == "running").scalar_subquery(),
    select(Notice.id).where(Notice.fanned_out_at.is_(None)).limit(1).scalar_subquery(),
    select(func.min(Delivery.next_attempt_at))
    .where(Delivery.status == "pending")
    .scalar_subquery(),
    select(func.min(Delivery.claimed_at)).where(Delivery.status == "sending").scalar_subquery(),
)
"""Built once; each part is read from an index (due_work (status, due_at, id), notices
(fanned_out_at), deliveries (status, next_attempt_at))."""


def next_due_at(
    engine: Engine, now: datetime, work_lease: timedelta, delivery_lease: timedelta
) -> datetime | None:
    """When the billing clock or the dispatcher next has something to do (`now` or
    earlier when something is due already); None when nothing is waiting at all."""
    with read_transaction(engine) as session:
        row = session.execute(_NEXT).one()
    pending, running, unsent_notice, retry, sending = row
    moments = [
        pending,
        None if running is None else running + work_lease,
        None if unsent_notice is None else now,
        retry,
        None if sending is None else sending + delivery_lease,
    ]
    return min((moment for moment in moments if moment is not None), default=None)
