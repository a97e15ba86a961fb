"""The SQL of the small writes every service shares: notices (the outbox), due work for the
billing clock, a subscription's history (INV-4, NOT-1).

Inserts that must happen once use INSERT … ON CONFLICT DO NOTHING on the unique key
(db/inserts.py), so a rerun of the same work is a no-op instead of an error. Statements
of fixed shape are built once per process; the values come as parameters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tabkeeper.db.inserts import insert_ignoring
from tabkeeper.db.tables import DueWork, SubscriptionHistory
from tabkeeper.db.types import UtcDateTime


def table_of(model: Any) -> Table:
    """The table of a mapped class, for plain (Core) statements built once."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_once(session: Session, table: Any, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same unique key exists; True when inserted
    (db/inserts.py, whose multi-row form batches use)."""
    statement = insert_ignoring(table.__table__, session.get_bind().dialect.name)
    # RETURNING says for sure whether a row went in; a driver's rowcount does not (with
    # an implicit RETURNING, psycopg reports -1). Through the session: it flushes first.
    return session.execute(statement, values).first() is not None


_WORK = table_of(DueWork)
_SET_WORK = {
    column: update(_WORK)
    .where(_WORK.c.id == bindparam("work_id"))
    .values({"status": bindparam("new_status"), column: bindparam("at", type_=UtcDateTime())})
    for column in ("claimed_at", "done_at")
}
_PENDING = (
    select(DueWork)
    .where(
        DueWork.organization_id == bindparam("organization"),
        DueWork.kind == bindparam("kind"),
        DueWork.status == "pending",
    )
    .order_by(DueWork.due_at, DueWork.id)
)
_NEW_HISTORY = insert(table_of(SubscriptionHistory))


def set_work_status(session: Session, work: DueWork | int, status: str, at: datetime) -> None:
    """Due work is now "running" (claimed at `at`) or "done" (at `at`). One plain UPDATE
    (no flush of the session, which costs more than the statement); a loaded DueWork
    learns the new values as if it had been read again. An id that is not there (the
    work was deleted) changes nothing."""
    column = "claimed_at" if status == "running" else "done_at"
    work_id = work if isinstance(work, int) else work.id
    session.execute(_SET_WORK[column], {"work_id": work_id, "new_status": status, "at": at})
    if not isinstance(work, int):
        set_committed_value(work, "status", status)
        set_committed_value(work, column, at)


def cancel_pending(
    session: Session, organization_id: int, kind: str, at: datetime, key_prefix: str = ""
) -> None:
    """Pending work of `kind` for the organization (optionally by key prefix) is canceled
    at `at`."""
    statement = (
        update(DueWork)
        .where(
            DueWork.organization_id == organization_id,
            DueWork.kind == kind,
            DueWork.status == "pending",
        )
        .values(status="canceled", done_at=at)
    )
    if key_prefix:
        statement = statement.where(DueWork.subject_key.startswith(key_prefix))
    session.execute(statement)


def pending_work(session: Session, organization_id: int, kind: str) -> list[DueWork]:
    """The organization's pending work of `kind`, in due order."""
    return list(session.scalars(_PENDING, {"organization": organization_id, "kind": kind}))


def insert_history(session: Session, values: dict[str, Any]) -> None:
    """A line of a subscription's history, written at once (a plain INSERT: the session
    never reads it back)."""
    session.execute(_NEW_HISTORY, values)
