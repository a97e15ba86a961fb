"""Small writes every service shares: notices (the outbox), due work, history.

Inserts that must happen once use INSERT … ON CONFLICT DO NOTHING on the unique key, so
a rerun of the same work is a no-op instead of an error (INV-4, NOT-1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tabkeeper.db import records
from tabkeeper.db.records import insert_once
from tabkeeper.db.tables import DueWork, Notice, Subscription
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.context import Billing


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
    records.cancel_pending(b.session, organization_id, kind, b.now, key_prefix)


def pending_work(b: Billing, organization_id: int, kind: str) -> list[DueWork]:
    return records.pending_work(b.session, organization_id, kind)


def record_history(
    b: Billing, subscription: Subscription, from_state: str | None, event: str
) -> None:
    """A line of the subscription's history, written at once (a plain INSERT: the session
    never reads it back). The subscription must have been flushed."""
    records.insert_history(
        b.session,
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
