"""Small writes every service shares: notices (the outbox), due work, history.

Inserts that must happen once use INSERT … ON CONFLICT DO NOTHING on the unique key, so
a rerun of the same work is a no-op instead of an error (INV-4, NOT-1).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Executable, Table, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tabkeeper.db.tables import DueWork, Notice, Subscription, SubscriptionHistory
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.context import Billing


def insert_once(session: Session, table: Any, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same unique key exists; True when inserted."""
    statement = _insert_ignoring(table.__table__, session.get_bind().dialect.name)
    # RETURNING says for sure whether a row went in; a driver's rowcount does not (with
    # an implicit RETURNING, psycopg reports -1).
    return session.execute(statement, values).first() is not None


@cache
def _insert_ignoring(target: Table, dialect: str) -> Executable:
    """INSERT … ON CONFLICT DO NOTHING into `target`, built once per table (the values
    come as parameters): building statements is a good part of a renewal's time."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(target).on_conflict_do_nothing().returning(target.c.id)


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


def record_history(
    b: Billing, subscription: Subscription, from_state: str | None, event: str
) -> None:
    b.session.add(
        SubscriptionHistory(
            subscription_id=subscription.id,
            at=b.now,
            from_state=from_state,
            to_state=subscription.state,
            plan_code=subscription.plan_code,
            event=event,
        )
    )


def moment_key(moment: datetime) -> str:
    return format_instant(moment)
