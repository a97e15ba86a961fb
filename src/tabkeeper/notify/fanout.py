"""Fan-out: one notice of the outbox becomes one delivery row per destination (NOT-1,
ACL-1).

E-mail goes to every owner and billing admin of the notice's organization (a sub-account's
own members for a sub-account's notice) who has an e-mail address and was not removed;
plain members get none (ACL-1: no billing rights), except the usage alerts of the meters
they subscribed to (LIM-5, services/alerts.py). Addresses that differ only in case
are one destination. No e-mail deliveries are made while e-mail is off (no SMTP host).
A webhook goes to every enabled endpoint of the platform whose kind filter takes the
notice's kind.

Rows are inserted with ON CONFLICT DO NOTHING on UNIQUE(notice, channel, destination), so
fanning out the same notice twice (a crash between the insert and the mark, two
dispatchers) makes each delivery once. Each row's `message_id` is fixed here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.db.records import insert_once
from tabkeeper.db.tables import Member, Notice
from tabkeeper.db.tables_notify import Delivery, WebhookEndpoint
from tabkeeper.notify.email import can_receive, new_message_id
from tabkeeper.notify.kinds import matches, usage_kind
from tabkeeper.notify.webhooks import new_webhook_id
from tabkeeper.services.alerts import alert_subscribers
from tabkeeper.settings import Settings

BILLING_ROLES = ("owner", "billing_admin")


def recipients(session: Session, organization_id: int, kind: str | None = None) -> list[str]:
    """The e-mail addresses of the organization's owners and billing admins (ACL-1), and
    for a usage alert of `kind` the members subscribed to its meter (LIM-5)."""
    addresses = session.scalars(
        select(Member.email)
        .where(
            Member.organization_id == organization_id,
            Member.role.in_(BILLING_ROLES),
            Member.removed_at.is_(None),
            Member.email.is_not(None),
        )
        .order_by(Member.id)
    )
    usage = usage_kind(kind) if kind is not None else None
    subscribed = alert_subscribers(session, organization_id, usage[0]) if usage else []
    chosen: dict[str, str] = {}
    for address in [*addresses, *subscribed]:
        if address is not None and can_receive(address.strip()):
            chosen.setdefault(address.strip().lower(), address.strip())
    return list(chosen.values())


def endpoints_for(session: Session, platform_id: int, kind: str) -> list[WebhookEndpoint]:
    """The platform's enabled endpoints that want notices of `kind`."""
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.platform_id == platform_id, WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    )
    return [endpoint for endpoint in endpoints if matches(endpoint.kinds, kind)]


def fan_out(session: Session, notice: Notice, settings: Settings, now: datetime) -> int:
    """Make the notice's deliveries and mark it fanned out; the number of rows made."""
    rows: list[dict[str, Any]] = []
    if settings.smtp_host is not None:
        for address in recipients(session, notice.organization_id, notice.kind):
            rows.append(_row(notice, "email", address, None, new_message_id(settings), now))
    for endpoint in endpoints_for(session, notice.platform_id, notice.kind):
        rows.append(_row(notice, "webhook", str(endpoint.id), endpoint.id, new_webhook_id(), now))
    made = sum(insert_once(session, Delivery, row) for row in rows)
    notice.fanned_out_at = now
    return made


def _row(
    notice: Notice,
    channel: str,
    destination: str,
    endpoint_id: int | None,
    message_id: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "notice_id": notice.id,
        "platform_id": notice.platform_id,
        "channel": channel,
        "destination": destination,
        "endpoint_id": endpoint_id,
        "message_id": message_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
