"""Usage counters and billing periods (USE-6, DESIGN.md rule 7).

Counters are rows per (billing organization, meter, period start, scope), added to with
`quantity = quantity + :delta` in the transaction that stores the event, so the current
numbers are one indexed read. Scope "" is the whole organization; "org:<id>" a
sub-account; "agent:<code>" an agent (SUB-2). Quantities are millionths (`SCALE`).

How a meter's stored quantity reads as its value (USE-5):
- count, unique_count, max, billable_sessions: quantity / SCALE;
- sum per_event_up: each event stored already rounded up to whole units;
- sum none / total_up: the raw sum in the event's unit (seconds), converted when read,
  and rounded up once for total_up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import case, select, update

from tabkeeper.db.tables_usage import SCALE, BillingPeriod, UsageCounter
from tabkeeper.domain.catalog import Meter, MeterKind, Rounding
from tabkeeper.services.context import Billing
from tabkeeper.services.records import insert_once

TOTAL = ""


def open_period(b: Billing, organization_id: int, start: datetime, end: datetime) -> None:
    """Record a period the organization is billed by (trial, or a paid period)."""
    insert_once(
        b.session, BillingPeriod, {"organization_id": organization_id, "start": start, "end": end}
    )


def start_period(b: Billing, organization_id: int, start: datetime, end: datetime) -> None:
    """A new period starts at `start`: one still running then ends there (a trial turned
    paid, a change to another interval), and the new one is recorded."""
    b.session.execute(
        update(BillingPeriod)
        .where(
            BillingPeriod.organization_id == organization_id,
            BillingPeriod.start < start,
            BillingPeriod.end > start,
        )
        .values(end=start)
    )
    open_period(b, organization_id, start, end)


def period_start_at(b: Billing, organization_id: int, at: datetime) -> datetime | None:
    """The start of the billing period holding `at`, or None outside every period."""
    return b.session.scalar(
        select(BillingPeriod.start)
        .where(
            BillingPeriod.organization_id == organization_id,
            BillingPeriod.start <= at,
            BillingPeriod.end > at,
        )
        .order_by(BillingPeriod.start.desc())
        .limit(1)
    )


def _where(
    organization_id: int, meter: str, period_start: datetime, scope: str
) -> tuple[object, ...]:
    return (
        UsageCounter.organization_id == organization_id,
        UsageCounter.meter == meter,
        UsageCounter.period_start == period_start,
        UsageCounter.scope == scope,
    )


def _ensure(
    b: Billing, organization_id: int, meter: str, period_start: datetime, scope: str
) -> None:
    insert_once(
        b.session,
        UsageCounter,
        {
            "organization_id": organization_id,
            "meter": meter,
            "period_start": period_start,
            "scope": scope,
            "quantity": 0,
            "answered": 0,
        },
    )


def add(
    b: Billing,
    organization_id: int,
    meter: str,
    period_start: datetime,
    scope: str,
    quantity: int,
    answered: int = 0,
    *,
    cap: int | None = None,
) -> bool:
    """Add to a counter. With `cap`, only when the quantity stays at or under it: one
    conditional UPDATE, so concurrent adds never overshoot (LIM-3). False when refused."""
    _ensure(b, organization_id, meter, period_start, scope)
    statement = (
        update(UsageCounter)
        .where(*_where(organization_id, meter, period_start, scope))  # type: ignore[arg-type]
        .values(
            quantity=UsageCounter.quantity + quantity, answered=UsageCounter.answered + answered
        )
    )
    if cap is not None:
        statement = statement.where(UsageCounter.quantity + quantity <= cap)
    result = b.session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


def raise_to(
    b: Billing, organization_id: int, meter: str, period_start: datetime, scope: str, value: int
) -> None:
    """A max meter: the counter becomes `value` when that is larger."""
    _ensure(b, organization_id, meter, period_start, scope)
    b.session.execute(
        update(UsageCounter)
        .where(*_where(organization_id, meter, period_start, scope))  # type: ignore[arg-type]
        .values(quantity=case((UsageCounter.quantity < value, value), else_=UsageCounter.quantity))
    )


@dataclass(frozen=True, slots=True)
class Stored:
    quantity: int
    answered: int


def stored(
    b: Billing, organization_id: int, meter: str, period_start: datetime, scope: str = TOTAL
) -> Stored:
    row = b.session.execute(
        select(UsageCounter.quantity, UsageCounter.answered).where(
            *_where(organization_id, meter, period_start, scope)  # type: ignore[arg-type]
        )
    ).first()
    return Stored(0, 0) if row is None else Stored(int(row[0]), int(row[1]))


def value_of(meter: Meter, found: Stored, answered_only: bool) -> Fraction:
    """What the stored quantity means for `meter` (see the module's docs)."""
    if meter.kind is MeterKind.BILLABLE_SESSIONS:
        return Fraction(found.answered if answered_only else found.quantity, SCALE)
    raw = Fraction(found.quantity, SCALE)
    if meter.kind is not MeterKind.SUM or meter.rounding is Rounding.PER_EVENT_UP:
        return raw
    converted = raw / (meter.unit_seconds or 1)
    return Fraction(math.ceil(converted)) if meter.rounding is Rounding.TOTAL_UP else converted


def used(
    b: Billing,
    organization_id: int,
    meter: Meter,
    period_start: datetime,
    answered_only: bool,
    scope: str = TOTAL,
) -> Fraction:
    """The meter's value in the period: one indexed read (USE-6)."""
    return value_of(
        meter, stored(b, organization_id, meter.code, period_start, scope), answered_only
    )


def scopes(
    b: Billing, organization_id: int, meter: str, period_start: datetime
) -> dict[str, Stored]:
    """Every part of the period's usage of `meter`: sub-accounts and agents (SUB-2)."""
    rows = b.session.execute(
        select(UsageCounter.scope, UsageCounter.quantity, UsageCounter.answered).where(
            UsageCounter.organization_id == organization_id,
            UsageCounter.meter == meter,
            UsageCounter.period_start == period_start,
            UsageCounter.scope != TOTAL,
        )
    ).all()
    return {scope: Stored(int(q), int(a)) for scope, q, a in rows}
