"""The results of a simulation (SCENARIOS.md "The result"), read back from storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.db.tables import (
    Invoice,
    InvoiceLine,
    Notice,
    Organization,
    ScheduledChange,
    Subscription,
    SubscriptionAddon,
    SubscriptionHistory,
)
from tabkeeper.db.tables_corrections import CreditNote, CreditNoteLine
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.taxes import breakdown
from tabkeeper.domain.utc import format_instant
from tabkeeper.services import credit_holds
from tabkeeper.services.context import Billing, CatalogStore, billing_for
from tabkeeper.services.credits import current_balance, holding_of
from tabkeeper.services.subscriptions import plan_of
from tabkeeper.services.usage import usage_report
from tabkeeper.simulation.scenario import Scenario


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


def report(
    session: Session, platform_id: int, scenario: Scenario, store: CatalogStore, now: datetime
) -> dict[str, Any]:
    b = billing_for(session, platform_id, now, store)
    orgs = {
        row.id: row
        for row in session.scalars(
            select(Organization).where(Organization.platform_id == platform_id)
        )
    }
    order = {code: i for i, code in enumerate(scenario.organizations)}
    by_file_order = sorted(orgs.values(), key=lambda org: order.get(org.code, len(order)))
    result: dict[str, Any] = {
        "invoices": _invoices(session, platform_id, orgs),
        "subscriptions": [],
        "accounts": {org.code: {"credit_minor": org.account_credit_minor} for org in orgs.values()},
        "usage": {},
        "credits": {
            org.code: {"balance": _credit_balance(b, org), **_held(b, org)} for org in orgs.values()
        },
        "notices": [
            {
                "at": format_instant(n.created_at),
                "org": orgs[n.organization_id].code,
                "kind": n.kind,
            }
            for n in session.scalars(
                select(Notice).where(Notice.platform_id == platform_id).order_by(Notice.id)
            )
        ],
    }
    credit_notes = _credit_notes(session, platform_id)
    if credit_notes:  # only where there are any: the results of other files stay as they were
        result["credit_notes"] = credit_notes
    for org in by_file_order:
        subscription = session.scalars(
            select(Subscription).where(Subscription.organization_id == org.id)
        ).first()
        if subscription is None:
            continue
        result["subscriptions"].append(_subscription(session, org, subscription))
        if State(subscription.state) is not State.NONE:
            catalog, plan = plan_of(b, subscription)
            result["usage"][org.code] = usage_report(b, org, subscription, catalog, plan)
    return result


def _held(b: Billing, org: Organization) -> dict[str, int]:
    """CRD-5: the credits held apart and the shortfall owed, for an organization that has
    had holds (the results of other files stay as they were)."""
    if org.parent_id is not None or not credit_holds.hold_count(b, org.id):
        return {}
    owed = credit_holds.owed_credits(b, org.id)
    return {"held": credit_holds.held_credits(b, org.id), "owed": owed}


def _credit_balance(b: Billing, org: Organization) -> int:
    """CRD-1: the organization's credits at the end (a sub-account's are its parent's)."""
    return 0 if org.parent_id is not None else current_balance(b, holding_of(b, org))


def _invoices(session: Session, platform_id: int, orgs: dict[int, Organization]) -> list[Any]:
    invoices = list(
        session.scalars(
            select(Invoice).where(Invoice.platform_id == platform_id).order_by(Invoice.id)
        )
    )
    lines: dict[int, list[InvoiceLine]] = {}
    for line in session.scalars(
        select(InvoiceLine)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(Invoice.platform_id == platform_id)
        .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
    ):
        lines.setdefault(line.invoice_id, []).append(line)
    return [
        {
            **_breakdown(lines.get(invoice.id, [])),
            "number": invoice.number,
            "org": orgs[invoice.organization_id].code,
            "issued_at": format_instant(invoice.issued_at),
            "status": invoice.status,
            "currency": invoice.currency,
            "total_minor": invoice.total_minor,
            "amount_due_minor": invoice.amount_due_minor,
            "credit_applied_minor": invoice.credit_applied_minor,
            "lines": [
                {
                    "kind": line.kind,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_amount": line.unit_amount,
                    "amount_minor": line.amount_minor,
                    "period_start": _instant(line.period_start),
                    "period_end": _instant(line.period_end),
                    "details": line.details,
                }
                for line in lines.get(invoice.id, [])
            ],
        }
        for invoice in invoices
    ]


def _breakdown(lines: list[InvoiceLine]) -> dict[str, int]:
    """INV-6, INV-7: subtotal, discount and tax of an invoice that has discount or tax
    lines (left out of the others, so that their results read as before)."""
    if not any(line.kind in ("discount", "tax") for line in lines):
        return {}
    subtotal, discount, tax = breakdown((ln.kind, ln.amount_minor, ln.details) for ln in lines)
    return {"subtotal_minor": subtotal, "discount_minor": discount, "tax_minor": tax}


def _credit_notes(session: Session, platform_id: int) -> list[Any]:
    """INV-5: the platform's credit notes in number order, with their lines."""
    notes = list(
        session.scalars(
            select(CreditNote).where(CreditNote.platform_id == platform_id).order_by(CreditNote.id)
        )
    )
    if not notes:
        return []
    numbers = {
        invoice.id: invoice.number
        for invoice in session.scalars(
            select(Invoice).where(Invoice.id.in_({note.invoice_id for note in notes}))
        )
    }
    lines: dict[int, list[CreditNoteLine]] = {}
    for line in session.scalars(
        select(CreditNoteLine)
        .where(CreditNoteLine.credit_note_id.in_([note.id for note in notes]))
        .order_by(CreditNoteLine.credit_note_id, CreditNoteLine.position)
    ):
        lines.setdefault(line.credit_note_id, []).append(line)
    return [
        {
            "number": note.number,
            "invoice": numbers[note.invoice_id],
            "total_minor": note.total_minor,
            "refund_minor": note.refund_minor,
            "credited_minor": note.credited_minor,
            "lines": [
                {
                    "line": line.invoice_line,
                    "description": line.description,
                    "amount_minor": line.amount_minor,
                }
                for line in lines.get(note.id, [])
            ],
        }
        for note in notes
    ]


def _subscription(session: Session, org: Organization, subscription: Subscription) -> Any:
    change = session.scalars(
        select(ScheduledChange)
        .where(
            ScheduledChange.subscription_id == subscription.id,
            ScheduledChange.status.in_(("awaiting_approval", "scheduled")),
        )
        .order_by(ScheduledChange.id.desc())
    ).first()
    upcoming = None
    if change is not None:
        upcoming = {
            "plan": change.plan_code,
            "starts_at": _instant(change.effective_at),
            "timing": change.timing,
            "status": change.status,
        }
    addons = {
        row.addon_code: row.quantity
        for row in session.scalars(
            select(SubscriptionAddon).where(SubscriptionAddon.subscription_id == subscription.id)
        )
        if row.quantity > 0
    }
    history = [
        {
            "at": format_instant(row.at),
            "from": row.from_state,
            "to": row.to_state,
            "plan": row.plan_code,
            "event": row.event,
        }
        for row in session.scalars(
            select(SubscriptionHistory)
            .where(SubscriptionHistory.subscription_id == subscription.id)
            .order_by(SubscriptionHistory.id)
        )
    ]
    return {
        "org": org.code,
        "state": subscription.state,
        "plan": subscription.plan_code,
        "period_start": format_instant(subscription.period_start),
        "period_end": format_instant(subscription.period_end),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "ended_reason": subscription.ended_reason,
        "trial_ends_at": _instant(subscription.trial_ends_at),
        "grace_ends_at": _instant(subscription.grace_ends_at),
        "upcoming": upcoming,
        "session_limit": subscription.session_limit,
        "addons": addons,
        "history": history,
    }
