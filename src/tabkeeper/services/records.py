"""Small writes every service shares: notices (the outbox), due work, history.

Inserts that must happen once use INSERT … ON CONFLICT DO NOTHING on the unique key, so
a rerun of the same work is a no-op instead of an error (INV-4, NOT-1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tabkeeper.db.inserts import insert_ignoring
from tabkeeper.db.tables import DueWork, Notice, Subscription, SubscriptionHistory
from tabkeeper.db.types import UtcDateTime
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.context import Billing


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


def notify(
    b: Billing,
    organization_id: int,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Write a notice to the outbox, once per (organization, kind, dedupe key) (NOT-1)."""
    return insert_once(
        b.session,
        Notice,
        {
            "platform_id": b.platform.id,
            "organization_id": organization_id,
            "kind": kind,
            "dedupe_key": dedupe_key,
            "payload": payload or {},
            "created_at": b.now,
        },
    )


def queue(b: Billing, kind: str, subject_key: str, organization_id: int, due_at: datetime) -> None:
    """Queue work for the billing clock, once per subject key."""
    insert_once(
        b.session,
        DueWork,
        {
            "kind": kind,
            "subject_key": subject_key,
            "organization_id": organization_id,
            "due_at": due_at,
            "status": "pending",
        },
    )


_WORK = table_of(DueWork)
_SET_WORK = {
    column: update(_WORK)
    .where(_WORK.c.id == bindparam("work_id"))
    .values({"status": bindparam("new_status"), column: bindparam("at", type_=UtcDateTime())})
    for column in ("claimed_at", "done_at")
}


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


def cancel_queued(b: Billing, organization_id: int, kind: str, key_prefix: str = "") -> None:
    """Cancel pending work of `kind` for the organization (optionally by key prefix)."""
    statement = (
        update(DueWork)
        .where(
            DueWork.organization_id == organization_id,
            DueWork.kind == kind,
            DueWork.status == "pending",
        )
        .values(status="canceled", done_at=b.now)
    )
    if key_prefix:
        statement = statement.where(DueWork.subject_key.startswith(key_prefix))
    b.session.execute(statement)


def pending_work(b: Billing, organization_id: int, kind: str) -> list[DueWork]:
    return list(
        b.session.scalars(
            select(DueWork)
            .where(
                DueWork.organization_id == organization_id,
                DueWork.kind == kind,
                DueWork.status == "pending",
            )
            .order_by(DueWork.due_at, DueWork.id)
        )
    )


_NEW_HISTORY = insert(table_of(SubscriptionHistory))


def record_history(
    b: Billing, subscription: Subscription, from_state: str | None, event: str
) -> None:
    """A line of the subscription's history, written at once (a plain INSERT: the session
    never reads it back). The subscription must have been flushed."""
    b.session.execute(
        _NEW_HISTORY,
        {
            "subscription_id": subscription.id,
            "at": b.now,
            "from_state": from_state,
            "to_state": subscription.state,
            "plan_code": subscription.plan_code,
            "event": event,
        },
    )


def moment_key(moment: datetime) -> str:
    return format_instant(moment)
