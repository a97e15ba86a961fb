"""The SQL of invoices (INV-1, INV-2, INV-4): the platform's gapless number, an invoice
and its lines written with plain INSERTs, an invoice marked paid, the lookups.

Statements are built once, the values as parameters: building them (and the ORM's
bookkeeping for rows nothing reads back, such as the lines) is a good part of a
renewal's time. A row written or changed with a plain statement joins the session (or
its loaded copy learns the new values) as if it had been read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from tabkeeper.db.records import table_of
from tabkeeper.db.tables import Invoice, InvoiceLine, Platform
from tabkeeper.db.types import UtcDateTime

_PLATFORMS = table_of(Platform)
_INVOICES = table_of(Invoice)
_LINES = table_of(InvoiceLine)
_NEXT_NUMBER = (
    update(_PLATFORMS)
    .where(_PLATFORMS.c.id == bindparam("platform_id"))
    .values(last_invoice_number=_PLATFORMS.c.last_invoice_number + 1)
    .returning(_PLATFORMS.c.last_invoice_number)
)
_BY_SOURCE = select(Invoice).where(
    Invoice.platform_id == bindparam("platform_id"),
    Invoice.source_key == bindparam("source_key"),
)
_NEW_INVOICE = insert(_INVOICES).returning(_INVOICES.c.id)
_NEW_LINES = insert(_LINES)
_PAID = (
    update(_INVOICES)
    .where(_INVOICES.c.id == bindparam("invoice_id"))
    .values(status="paid", paid_at=bindparam("paid_at", type_=UtcDateTime()))
)
_OPEN = (
    select(Invoice)
    .where(Invoice.organization_id == bindparam("organization"), Invoice.status == "open")
    .order_by(Invoice.id)
)


def next_number(session: Session, platform: Platform) -> int:
    """The platform's next invoice number (INV-2): the counter row is updated in the
    caller's transaction, so a rolled-back invoice gives its number back."""
    number: int = session.execute(_NEXT_NUMBER, {"platform_id": platform.id}).scalar_one()
    # The loaded platform learns the new count, as if it had been read again.
    set_committed_value(platform, "last_invoice_number", number)
    return number


def invoice_by_source(session: Session, platform_id: int, source_key: str) -> Invoice | None:
    """The platform's invoice for `source_key` (INV-4: there is at most one)."""
    values = {"platform_id": platform_id, "source_key": source_key}
    return session.scalars(_BY_SOURCE, values).first()


def insert_invoice(session: Session, values: dict[str, Any]) -> Invoice:
    """A plain INSERT, then the row joins the session as if it had been read back: the
    same Invoice as an add() and flush() would give, for less than the flush costs."""
    invoice = Invoice(id=session.execute(_NEW_INVOICE, values).scalar_one(), **values)
    make_transient_to_detached(invoice)
    session.add(invoice)
    return invoice


def insert_lines(session: Session, lines: Sequence[dict[str, Any]]) -> None:
    """An invoice's lines, in one plain INSERT (the session never reads them back)."""
    session.execute(_NEW_LINES, list(lines))


def set_paid(session: Session, invoice: Invoice, at: datetime) -> None:
    """A plain UPDATE of a stored invoice, and the loaded one learns it (no flush)."""
    session.execute(_PAID, {"invoice_id": invoice.id, "paid_at": at})
    set_committed_value(invoice, "status", "paid")
    set_committed_value(invoice, "paid_at", at)


def open_invoices(session: Session, organization_id: int) -> list[Invoice]:
    """The organization's open invoices, in id order."""
    return list(session.scalars(_OPEN, {"organization": organization_id}))


def count_by_source_prefix(session: Session, platform_id: int, prefix: str) -> int:
    """How many of the platform's invoices have a source key starting with `prefix`."""
    issued = session.scalar(
        select(func.count())
        .select_from(Invoice)
        .where(
            Invoice.platform_id == platform_id,
            Invoice.source_key.startswith(prefix, autoescape=True),
        )
    )
    return issued or 0
