"""Metering (USE-1..6): each stored event updates the counters of the meters it feeds, in
the same transaction, so current numbers never need the event history.

- A duplicate event id is accepted and counted once, forever (USE-1): the event row's
  unique key decides.
- Usage counts in the billing period that contains it (USE-6), found in
  `billing_periods`, so late and out-of-order events land where in-order ones would.
- Billable sessions (USE-3, USE-4) keep each conversation's windows
  (domain/sessions.py); a message that moves windows moves their counts between periods.
- After the counters, the thresholds: usage alerts at 50/80/100% of what is included
  (LIM-5), the session limit's 80/100% (LIM-4), the trial's 60/90% and its end by
  sessions (TRI-2, TRI-3) — each notice once per period.
- An `ai.used` event takes its credits (CRD-1) in the same transaction, once per event
  id (services/credits.py); when the credits cannot cover it, or its feature has no
  rate, the event is refused (and not stored) while the rest of its batch is kept.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import select

from tabkeeper.db.tables import Organization, Subscription, UsageEventRow
from tabkeeper.db.tables_usage import SCALE, Conversation, UsageUniqueValue
from tabkeeper.domain.catalog import Catalog, Meter, MeterKind, Plan, Rounding
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.event_checks import CheckedEvent
from tabkeeper.domain.ledger import CreditsExhausted
from tabkeeper.domain.lifecycle import State, TrialSessionsUsedUp
from tabkeeper.domain.metering import SESSION_STARTED
from tabkeeper.domain.sessions import ConversationState, Direction, Message, add_message
from tabkeeper.domain.utc import format_instant, parse_instant
from tabkeeper.services import counters, credits
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import insert_once, notify

AI_USED = "ai.used"
ALERT_PERCENTS = (50, 80, 100)
LIMIT_PERCENTS = (80, 100)
TRIAL_PERCENTS = (60, 90)


@dataclass(frozen=True, slots=True)
class Plans:
    """What the billing organization is on now: its subscription, catalog and plan."""

    owner: Organization
    subscription: Subscription | None
    catalog: Catalog | None
    plan: Plan | None


def plans_of(b: Billing, owner: Organization) -> Plans:
    subscription = b.session.scalars(
        select(Subscription).where(Subscription.organization_id == owner.id)
    ).first()
    if subscription is None or subscription.state == State.NONE:
        return Plans(owner, None, None, None)
    catalog = b.catalog_of(subscription.catalog_version_id)
    return Plans(owner, subscription, catalog, catalog.plans.get(subscription.plan_code))


def record(
    b: Billing,
    organization: Organization,
    owner: Organization,
    event: CheckedEvent,
    *,
    session_cap: int | None = None,
) -> bool:
    """Store one checked event and count it. False for a duplicate id (counted once).

    With `session_cap` (millionths), a new billable session is admitted only while the
    period's count stays within it; otherwise `SessionCapReached` is raised and the
    caller's transaction rolls back (LIM-3)."""
    stored = insert_once(
        b.session,
        UsageEventRow,
        {
            "organization_id": organization.id,
            "client_id": event.client_id,
            "type": event.type,
            "agent": event.agent,
            "conversation": event.conversation,
            "time": event.time,
            "properties": dict(event.properties),
            "received_at": b.now,
        },
    )
    if not stored:
        return False
    found = plans_of(b, owner)
    if event.type == AI_USED:
        catalog = found.catalog or b.current_catalog()[1]
        holding = credits.Holding(owner, found.subscription, catalog, found.plan)
        try:
            credits.consume_reported(
                b, organization, holding, event.client_id, dict(event.properties), event.agent
            )
        except CreditsExhausted as error:
            raise UseRefused(error.message) from None
    if found.catalog is None:
        return True
    period = counters.period_start_at(b, owner.id, event.time)
    scopes = _scopes(organization, owner, event.agent)
    for meter in found.catalog.meters.values():
        if meter.kind is MeterKind.BILLABLE_SESSIONS:
            if event.type in (meter.event, SESSION_STARTED) and event.conversation:
                _count_sessions(b, organization, owner, meter, event, found, session_cap)
            continue
        if period is None or not _selects(meter, event):
            continue
        before = counters.used(b, owner.id, meter, period, False)
        _count(b, owner.id, meter, period, scopes, event)
        _crossed(b, found, meter, period, before)
    return True


class SessionCapReached(InvalidInput):
    code = "session_cap_reached"


class UseRefused(InvalidInput):
    """An `ai.used` event the credits cannot cover (CRD-3): the event is refused alone."""

    code = "credits_exhausted"


def _scopes(organization: Organization, owner: Organization, agent: str | None) -> list[str]:
    found = [counters.TOTAL]
    if organization.id != owner.id:
        found.append(f"org:{organization.id}")
    if agent:
        found.append(f"agent:{agent}")
    return found


def _selects(meter: Meter, event: CheckedEvent) -> bool:
    if event.type != meter.event:
        return False
    for key, wanted in meter.filter.items():
        value = event.properties.get(key)
        if key not in event.properties or isinstance(value, bool) != isinstance(wanted, bool):
            return False
        if value != wanted:
            return False
    return True


def micro(value: object, what: str) -> int:
    """A property's number in millionths, exactly (at most six decimals)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidInput(f"{what}: expected a number")
    number = Decimal(str(value)) * SCALE
    if not number.is_finite() or number != number.to_integral_value() or number < 0:
        raise InvalidInput(f"{what}: expected a number >= 0 with at most six decimals")
    return int(number)


def _count(
    b: Billing,
    owner_id: int,
    meter: Meter,
    period: datetime,
    scopes: list[str],
    event: CheckedEvent,
) -> None:
    if meter.kind is MeterKind.COUNT:
        for scope in scopes:
            counters.add(b, owner_id, meter.code, period, scope, SCALE)
        return
    field = meter.field_name or ""
    value = event.properties.get(field)
    if meter.kind is MeterKind.UNIQUE_COUNT:
        fresh = insert_once(
            b.session,
            UsageUniqueValue,
            {"organization_id": owner_id, "meter": meter.code, "period_start": period,
             "value": str(value)[:200]},
        )  # fmt: skip
        if fresh:
            counters.add(b, owner_id, meter.code, period, counters.TOTAL, SCALE)
        return
    amount = micro(value, f"properties.{field}")
    if meter.kind is MeterKind.MAX:
        for scope in scopes:
            counters.raise_to(b, owner_id, meter.code, period, scope, amount)
        return
    if meter.rounding is Rounding.PER_EVENT_UP:
        amount = math.ceil(Fraction(amount, SCALE) / (meter.unit_seconds or 1)) * SCALE
    for scope in scopes:
        counters.add(b, owner_id, meter.code, period, scope, amount)


def _count_sessions(
    b: Billing,
    organization: Organization,
    owner: Organization,
    meter: Meter,
    event: CheckedEvent,
    found: Plans,
    cap: int | None,
) -> None:
    """USE-3/USE-4: the conversation's windows before and after this message; each
    window counts in the period holding its start."""
    assert event.conversation is not None
    row = _conversation(b, organization, owner, event)
    before = _state(row.state)
    direction = (
        Direction.OUTBOUND
        if event.type == SESSION_STARTED
        else Direction.parse(event.properties.get("direction"))
    )
    after, _ = add_message(before, Message(event.time, direction), answered_only=False)
    row.state, row.updated_at = _stored_state(after), b.now
    if row.agent is None and event.agent:
        row.agent = event.agent
    scopes = _scopes(organization, owner, row.agent)
    change: Counter[tuple[datetime, bool]] = Counter()
    for window in before.windows:
        start = counters.period_start_at(b, owner.id, window.start)
        if start is not None:
            change[(start, window.answered)] -= 1
    for window in after.windows:
        start = counters.period_start_at(b, owner.id, window.start)
        if start is not None:
            change[(start, window.answered)] += 1
    by_period: dict[datetime, tuple[int, int]] = {}
    for (start, answered), delta in change.items():
        windows, replied = by_period.get(start, (0, 0))
        by_period[start] = (windows + delta, replied + (delta if answered else 0))
    answered_only = bool(found.plan and found.plan.answered_only)
    for start, (windows, replied) in sorted(by_period.items()):
        if windows == 0 and replied == 0:
            continue
        before_used = counters.used(b, owner.id, meter, start, answered_only)
        limited = cap is not None and windows > 0 and not answered_only
        admitted = counters.add(
            b, owner.id, meter.code, start, counters.TOTAL, windows * SCALE, replied * SCALE,
            cap=cap if limited else None,
        )  # fmt: skip
        if not admitted:
            raise SessionCapReached("the session limit for this period is reached")
        for scope in scopes[1:]:
            counters.add(b, owner.id, meter.code, start, scope, windows * SCALE, replied * SCALE)
        _crossed(b, found, meter, start, before_used)


def _conversation(
    b: Billing, organization: Organization, owner: Organization, event: CheckedEvent
) -> Conversation:
    insert_once(
        b.session,
        Conversation,
        {
            "organization_id": organization.id,
            "billing_organization_id": owner.id,
            "conversation": event.conversation,
            "agent": event.agent,
            "state": _stored_state(ConversationState.empty()),
            "updated_at": b.now,
        },
    )
    row = b.session.scalars(
        select(Conversation)
        .where(
            Conversation.organization_id == organization.id,
            Conversation.conversation == event.conversation,
        )
        .with_for_update()
    ).one()
    return row


def _stored_state(state: ConversationState) -> dict[str, Any]:
    return {
        "messages": [format_instant(t) for t in state.message_times],
        "inbound": [format_instant(t) for t in state.inbound_times],
        "windows": [format_instant(t) for t in state.window_starts],
        "answered": list(state.window_answered),
    }


def _state(data: dict[str, Any]) -> ConversationState:
    return ConversationState(
        tuple(parse_instant(t) for t in data["messages"]),
        tuple(parse_instant(t) for t in data["inbound"]),
        tuple(parse_instant(t) for t in data["windows"]),
        tuple(bool(a) for a in data["answered"]),
    )


def _crossed(b: Billing, found: Plans, meter: Meter, period: datetime, before: Fraction) -> None:
    """Notices for thresholds this change crossed, each once per period."""
    plan, subscription = found.plan, found.subscription
    if plan is None or subscription is None:
        return
    answered_only = plan.answered_only
    after = counters.used(b, found.owner.id, meter, period, answered_only)
    key = format_instant(period)
    owner_id = found.owner.id
    numbers = {"meter": meter.code, "used": str(after), "period_start": key}
    included = plan.includes.get(meter.code)
    if included:
        for percent in ALERT_PERCENTS:
            if _passes(before, after, Fraction(included) * percent / 100):
                notify(b, owner_id, f"usage.{meter.code}_{percent}", key,
                       {**numbers, "included": str(included), "percent": percent})  # fmt: skip
    if meter.kind is not MeterKind.BILLABLE_SESSIONS or period != subscription.period_start:
        return
    if subscription.state == State.TRIALING and subscription.trial_sessions:
        trial = subscription.trial_sessions
        for percent in TRIAL_PERCENTS:
            if _passes(before, after, Fraction(trial * percent, 100)):
                notify(b, owner_id, f"trial.sessions_{percent}", key,
                       {**numbers, "limit": trial, "percent": percent})  # fmt: skip
        if after >= trial:
            apply_event(b, subscription, found.owner, TrialSessionsUsedUp())
        return
    limit = subscription.session_limit or (int(included) if included else None)
    if limit:
        for percent in LIMIT_PERCENTS:
            if _passes(before, after, Fraction(limit * percent, 100)):
                notify(b, owner_id, f"limit.sessions_{percent}", key,
                       {**numbers, "limit": limit, "percent": percent})  # fmt: skip


def _passes(before: Fraction, after: Fraction, mark: Fraction) -> bool:
    return before < mark <= after
