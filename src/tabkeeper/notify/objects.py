"""What a webhook is about (INT-2): the event's envelope and its `data.object`.

Each webhook body is
`{"id": "evt_…", "type", "created_at", "api_version": "v1", "data": {"object": {…},
"organization": code, …the notice's own fields}}` (docs/webhooks.md). The object is built
by the API's own builders, so it is exactly what the API returns for it:

- `credit_note.issued`: the credit note as `GET /v1/credit_notes/{id}` returns it, with
  its lines (api/routes/corrections.py);
- a notice naming an invoice (`invoice.*`, `payment.failed`): the invoice as
  `GET /v1/invoices/{id}` returns it, with its lines and totals (api/routes/invoices.py);
- a notice about the subscription (`subscription.*`, `trial.*`): the subscription card
  as `GET /v1/subscriptions/{id}` returns it: state, plan, period (api/subscription_view.py);
- a usage threshold (`usage.<meter>_<percent>`): sent as `usage.threshold_crossed` with
  the object `{meter, used, included, percent, period_start}`; the old per-meter kind is
  kept in `legacy_type` for one version (and endpoint filters may still name it);
- any other notice: its own fields (`data.object` is the notice's payload).

The object is read when the delivery is sent (the dispatcher's claim), so a retry carries
the object as it is then; the event id is the notice's and the same on every delivery and
every try of that notice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.api.routes.corrections import show_credit_note
from tabkeeper.api.routes.invoices import show_invoice
from tabkeeper.api.subscription_view import show_subscription
from tabkeeper.db.tables import Invoice, InvoiceLine, Notice, Organization, Subscription
from tabkeeper.db.tables_corrections import CreditNote
from tabkeeper.domain.utc import format_instant
from tabkeeper.notify.kinds import THRESHOLD_CROSSED, usage_kind
from tabkeeper.services.context import Billing

API_VERSION = "v1"
"""The API's major version, as in its URLs: a webhook's fields follow the same rules."""

SUBSCRIPTION_GROUPS = ("subscription", "trial")


def event_id(notice: Notice) -> str:
    """The notice's event id: opaque, stable, the same for every endpoint and try."""
    seed = f"tabkeeper-event:{notice.platform_id}:{notice.id}:{format_instant(notice.created_at)}"
    return "evt_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]


def event_type(kind: str) -> str:
    """The webhook's `type`: the notice's kind, a usage threshold's being one type."""
    return THRESHOLD_CROSSED if usage_kind(kind) is not None else kind


def event_document(
    session: Session, notice: Notice, organization: str, now: datetime
) -> dict[str, Any]:
    """The whole webhook body of a notice, as a JSON-ready mapping."""
    made = event_object(session, notice, organization, now)
    identifier = event_id(notice)
    return envelope(identifier, notice.kind, notice.created_at, notice.payload, organization, made)


def envelope(
    identifier: str,
    kind: str,
    created_at: datetime,
    payload: Mapping[str, Any],
    organization: str,
    made: Mapping[str, Any],
) -> dict[str, Any]:
    """The event around its object: id, type, created_at, api_version, data.object; the
    notice's own fields and `organization` stay in `data`, and `timestamp` (the body's
    time before INT-2) and a threshold's `legacy_type` are kept for one version."""
    document: dict[str, Any] = {
        "id": identifier,
        "type": event_type(kind),
        "created_at": format_instant(created_at),
        "api_version": API_VERSION,
        "data": {**payload, "organization": organization, "object": dict(made)},
        "timestamp": format_instant(created_at),
    }
    if document["type"] != kind:
        document["legacy_type"] = kind
    return document


def event_object(
    session: Session, notice: Notice, organization: str, now: datetime
) -> dict[str, Any]:
    """The object the notice is about, as the API returns it (see the module)."""
    payload = notice.payload
    usage = usage_kind(notice.kind)
    if usage is not None:
        return usage_threshold(payload, usage[0], usage[1])
    note = payload.get("credit_note")
    if isinstance(note, str):
        found = credit_note_object(session, notice.platform_id, note, organization, now)
        if found is not None:
            return found
    number = payload.get("invoice")
    if isinstance(number, str):
        found = invoice_object(session, notice.platform_id, number, organization)
        if found is not None:
            return found
    if notice.kind.split(".")[0] in SUBSCRIPTION_GROUPS:
        found = subscription_object(session, notice, now)
        if found is not None:
            return found
    return dict(payload)


def usage_threshold(payload: Mapping[str, Any], meter: str, percent: int) -> dict[str, Any]:
    """A usage threshold crossed: the meter, its use and what the plan includes (decimal
    strings, as /v1/usage shows them), the percent crossed and the period."""
    return {
        "meter": str(payload.get("meter", meter)),
        "used": payload.get("used"),
        "included": payload.get("included"),
        "percent": int(payload.get("percent", percent)),
        "period_start": payload.get("period_start"),
    }


def invoice_object(
    session: Session, platform_id: int, number: str, organization: str
) -> dict[str, Any] | None:
    """The invoice numbered `number` with its lines, as GET /v1/invoices/{id}."""
    row = session.scalar(
        select(Invoice).where(Invoice.platform_id == platform_id, Invoice.number == number)
    )
    if row is None:
        return None
    lines = session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == row.id).order_by(InvoiceLine.position)
    )
    return show_invoice(organization, row, list(lines)).model_dump(mode="json")


def credit_note_object(
    session: Session, platform_id: int, number: str, organization: str, now: datetime
) -> dict[str, Any] | None:
    """The credit note numbered `number` with its lines, as GET /v1/credit_notes/{id}."""
    row = session.scalar(
        select(CreditNote).where(CreditNote.platform_id == platform_id, CreditNote.number == number)
    )
    if row is None:
        return None
    b = Billing(session, now, platform_id)
    return show_credit_note(b, organization, row, with_lines=True).model_dump(mode="json")


def subscription_object(session: Session, notice: Notice, now: datetime) -> dict[str, Any] | None:
    """The subscription the notice names (or its organization's), as
    GET /v1/subscriptions/{id}."""
    named = notice.payload.get("subscription")
    query = (
        select(Subscription)
        .join(Organization, Organization.id == Subscription.organization_id)
        .where(Organization.platform_id == notice.platform_id)
    )
    if isinstance(named, int):
        query = query.where(Subscription.id == named)
    else:
        query = query.where(Subscription.organization_id == notice.organization_id)
    row = session.scalars(query.limit(1)).first()
    if row is None:
        return None
    b = Billing(session, now, notice.platform_id)
    return show_subscription(b, row).model_dump(mode="json")
