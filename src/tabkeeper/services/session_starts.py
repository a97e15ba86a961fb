"""Starting a session (LIM-3) and the monthly session limit (LIM-4).

`start_session` checks and reserves in one step: the lifecycle and quota answer of the
real-time check first, then the billable session is counted with a conditional UPDATE of
the period's counter row (`quantity + 1 <= cap`). On PostgreSQL concurrent starts queue on
that row and each re-reads it; on SQLite writers take turns (BEGIN IMMEDIATE). Either way
a cap is never overshot: with 1 session left and 50 agents starting at once, exactly 1 is
admitted.

A start inside a conversation's open 24-hour window is not a new billable session and is
always admitted (USE-3). On answered-only plans (USE-4) a start reserves nothing: the
session becomes billable, and counts against the limit, when the end user replies.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_usage import SCALE, Conversation
from tabkeeper.domain import fields
from tabkeeper.domain.catalog import MeterKind
from tabkeeper.domain.decisions import (
    OK_MESSAGE,
    SESSION_LIMIT_MESSAGE,
    Action,
    Decision,
    Reason,
)
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.event_checks import CheckedEvent
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.metering import SESSION_STARTED
from tabkeeper.domain.sessions import WINDOW
from tabkeeper.domain.utc import format_instant, parse_instant
from tabkeeper.services.context import Billing
from tabkeeper.services.limits import check
from tabkeeper.services.metering import SessionCapReached, plans_of, record
from tabkeeper.services.subscriptions import (
    billing_organization,
    require_subscription,
)

QUOTA_REASONS = (Reason.SESSION_LIMIT_REACHED, Reason.QUOTA_EXHAUSTED)


def session_cap(b: Billing, organization: Organization) -> int | None:
    """The most billable sessions the current period may count, in millionths: the
    member-set limit, a hard-stop quota, or the trial's sessions, whichever is lowest."""
    found = plans_of(b, billing_organization(b, organization))
    subscription, plan, catalog = found.subscription, found.plan, found.catalog
    if subscription is None or plan is None or catalog is None:
        return None
    caps: list[int] = []
    if subscription.state == State.TRIALING and subscription.trial_sessions:
        caps.append(subscription.trial_sessions)
    if subscription.session_limit:
        caps.append(subscription.session_limit)
    for code, meter in catalog.meters.items():
        if meter.kind is MeterKind.BILLABLE_SESSIONS and plan.is_hard_stop(code):
            caps.append(int(plan.includes[code]))
    return min(caps) * SCALE if caps else None


def start_session(
    b: Billing, organization: Organization, agent: str, conversation: str
) -> Decision:
    """LIM-1, LIM-3: may this agent start a session now? If so it is counted at once."""
    fields.name(agent, "agent")
    if not isinstance(conversation, str) or not 1 <= len(conversation) <= 200:
        raise InvalidInput("conversation: expected a text of 1 to 200 characters")
    decision = check(b, organization, Action.START_SESSION)
    if not decision.allowed:
        if decision.reason in QUOTA_REASONS and _in_open_window(b, organization, conversation):
            return Decision(True, Reason.OK, OK_MESSAGE, decision.numbers)
        return decision
    owner = billing_organization(b, organization)
    event = CheckedEvent(
        client_id=_start_id(conversation, b.now),
        type=SESSION_STARTED,
        org=organization.code,
        agent=agent,
        conversation=conversation,
        time=b.now,
        properties={},
    )
    try:
        with b.session.begin_nested():
            record(b, organization, owner, event, session_cap=session_cap(b, organization))
    except (SessionCapReached, IntegrityError):
        refused = check(b, organization, Action.START_SESSION)
        if refused.allowed:  # the last session was taken meanwhile by another start
            return _at_cap(decision)
        return refused
    return decision


def _start_id(conversation: str, at: datetime) -> str:
    """The event id of a start: one per conversation and instant, within the 200
    characters of an event id (a conversation id over 64 characters by its SHA-256)."""
    if len(conversation) > 64:
        conversation = hashlib.sha256(conversation.encode("utf-8")).hexdigest()
    return f"{SESSION_STARTED}:{conversation}:{format_instant(at)}"


def _in_open_window(b: Billing, organization: Organization, conversation: str) -> bool:
    """USE-3: the conversation's current 24-hour window is still open: not a new session."""
    row = b.session.scalars(
        select(Conversation).where(
            Conversation.organization_id == organization.id,
            Conversation.conversation == conversation,
        )
    ).first()
    if row is None or not row.state["windows"]:
        return False
    last = parse_instant(row.state["windows"][-1])
    return last <= b.now < last + WINDOW


def _at_cap(allowed: Decision) -> Decision:
    numbers = dict(allowed.numbers)
    numbers["remaining"] = 0
    return Decision(False, Reason.SESSION_LIMIT_REACHED, SESSION_LIMIT_MESSAGE, numbers)


def set_session_limit(b: Billing, organization: Organization, limit: object) -> int:
    """LIM-4: a cap on billable sessions this period, across all agents; a whole number
    greater than zero; paid plans only (not the trial)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(
            "The session limit must be a whole number greater than zero.", code="invalid_limit"
        )
    if limit > 1_000_000_000:
        raise InvalidInput("The session limit is too large.", code="invalid_limit")
    subscription = require_subscription(b, organization)
    if subscription.state == State.TRIALING:
        raise Refused(
            "The session limit is for paid plans; the trial has its own sessions.",
            code="not_on_trial",
        )
    if subscription.state not in (State.ACTIVE, State.PAST_DUE):
        raise Refused("The subscription is not active.", code="not_active")
    subscription.session_limit = limit
    return limit


def reset_session_limit(b: Billing, organization: Organization) -> int | None:
    """LIM-4 "Reset limit": back to the plan's base limit (its included sessions)."""
    subscription = require_subscription(b, organization)
    if subscription.state == State.TRIALING:
        raise Refused(
            "The session limit is for paid plans; the trial has its own sessions.",
            code="not_on_trial",
        )
    subscription.session_limit = None
    return None
