"""The SQL of first invoices written before the charge (issue 12 item 7) and of demo
requests handled by an assignment (CAT-9).

A first invoice (checkout, assignment charged to the card) is written as a draft, with no
number, in the transaction that claims the charge; the provider is called after it is
committed. The draft is finalized (numbered) when the payment succeeds, or removed, with
its lines and attempt, when it fails: a draft has no number, so no gap is left.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from tabkeeper.db.records import table_of
from tabkeeper.db.tables import DemoRequest, Invoice, InvoiceLine, PaymentAttempt
from tabkeeper.db.types import UtcDateTime


def attempt_of(session: Session, invoice_id: int, key: str) -> PaymentAttempt | None:
    """The attempt with idempotency key `key` on invoice `invoice_id`."""
    return session.scalars(
        select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.idempotency_key == key
        )
    ).first()


def delete_lines(session: Session, invoice_id: int) -> None:
    """The lines of a draft, to be written again (its period moved)."""
    session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id))


def delete_draft(session: Session, invoice: Invoice) -> None:
    """A draft invoice, its lines and attempts: the charge it was written for failed."""
    assert invoice.status == "draft" and invoice.number is None
    session.execute(delete(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
    session.delete(invoice)
    session.flush()


_REQUESTS = table_of(DemoRequest)
_HANDLED = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.organization_id == bindparam("organization"),
        _REQUESTS.c.plan_code == bindparam("plan"),
        _REQUESTS.c.status == "pending",
    )
    .values(status="handled", handled_at=bindparam("at", type_=UtcDateTime()))
    .returning(_REQUESTS.c.id)
)


def handle_demo_requests(session: Session, organization_id: int, plan: str, at: datetime) -> int:
    """CAT-9: the organization's pending requests for `plan` are handled; how many."""
    values = {"organization": organization_id, "plan": plan, "at": at}
    return len(session.execute(_HANDLED, values).all())
