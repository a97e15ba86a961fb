"""The figures `/metrics` reads from the database when it is scraped (OPS-2): one statement
each, in one read transaction, so they are exact across every API and worker process
whatever process is scraped (api/metrics.py).

- the oldest due item: the earliest `due_at` of pending billing work due by now, and the
  earliest `next_attempt_at` of a pending delivery due by now (its lag is now minus that);
- the outbox: deliveries waiting (pending or being sent) and deliveries given up (failed);
- payment attempts by outcome (processing, succeeded, failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, func, select

from tabkeeper.db.engine import read_transaction
from tabkeeper.db.tables import DueWork, PaymentAttempt
from tabkeeper.db.tables_notify import Delivery
from tabkeeper.db.types import UtcDateTime

_NOW = bindparam("now", type_=UtcDateTime())
_OLDEST_DUE = select(
    select(func.min(DueWork.due_at))
    .where(DueWork.status == "pending", DueWork.due_at <= _NOW)
    .scalar_subquery(),
    select(func.min(Delivery.next_attempt_at))
    .where(Delivery.status == "pending", Delivery.next_attempt_at <= _NOW)
    .scalar_subquery(),
)
_DELIVERIES = select(Delivery.status, func.count()).group_by(Delivery.status)
_ATTEMPTS = select(PaymentAttempt.status, func.count()).group_by(PaymentAttempt.status)


@dataclass(frozen=True)
class Backlog:
    """What the database holds at one moment (see the module docstring)."""

    oldest_due_work: datetime | None
    oldest_due_delivery: datetime | None
    deliveries: dict[str, int]
    """Deliveries by status: pending, sending, delivered, failed."""
    payment_attempts: dict[str, int]
    """Payment attempts by status: processing, succeeded, failed."""


def read_backlog(engine: Engine, now: datetime) -> Backlog:
    """Three statements, each answered from an index or a count."""
    with read_transaction(engine) as session:
        due_work, due_delivery = session.execute(_OLDEST_DUE, {"now": now}).one()
        deliveries = {status: count for status, count in session.execute(_DELIVERIES)}
        attempts = {status: count for status, count in session.execute(_ATTEMPTS)}
    return Backlog(due_work, due_delivery, deliveries, attempts)
