"""Starting a session (LIM-3) and the monthly session limit (LIM-4).

`start_session` reads the account once (services/accounts.py: the organization, its
billing organization, subscription, the current period's counters and the
conversation's row, one statement), decides from it as the real-time check does
(services/limits.py `decide_for`), then stores and counts the start as a batch of one
(services/metering.py `record_batch`, capped, handed that account): on PostgreSQL the
conversation's row made when missing and locked (one statement; on SQLite the writer
holds the database and the row read with the account is used as it is); the billable
session counted with one conditional upsert of the period's counter row (`quantity + 1
<= cap`) before the event or any counter is written; one insert of the start event; the
conversation's state written back; the other counters (per agent, per sub-account) in
one upsert. On PostgreSQL concurrent starts queue on the counter row and each re-checks
it; on SQLite writers take turns. Either way a cap is never overshot: with 1 session
left and 50 agents starting at once, exactly 1 is admitted.

A start inside a conversation's open 24-hour window is not a new billable session and is
always admitted (USE-3). On answered-only plans (USE-4) the session becomes billable when
the end user replies, but a start holds a place under the limit until its window closes
unanswered (LIM-7): the conditional upsert is made there too, its cap raised by the
period's windows that closed unanswered (services/metering.py `_admit`), so concurrent
starts never overshoot on any plan. A reply turns the held place into the billed session
(counted once); a window that closes unanswered frees it. The answer's numbers are those
after the start's reservation (used and remaining with this start counted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from tabkeeper.db.accounts import AccountFacts
from tabkeeper.db.conversations import ConversationRow
from tabkeeper.db.tables import Organization
from tabkeeper.domain import fields
from tabkeeper.domain.conversations import from_stored
from tabkeeper.domain.decisions import (
    OK_MESSAGE,
    SESSION_LIMIT_MESSAGE,
    Action,
    Decision,
    Reason,
)
from tabkeeper.domain.errors import InvalidInput, NotFound, Refused
from tabkeeper.domain.event_checks import CheckedEvent
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.metering import SESSION_STARTED
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.accounts import BillingAccount, account_by_code, account_of
from tabkeeper.services.context import Billing
from tabkeeper.services.limits import decide_for
from tabkeeper.services.metering import Pending, SessionCapReached, record_batch
from tabkeeper.services.subscriptions import require_subscription

QUOTA_REASONS = (Reason.SESSION_LIMIT_REACHED, Reason.QUOTA_EXHAUSTED, Reason.SPEND_CAP_REACHED)


def start_session(
    b: Billing, organization: Organization, agent: str, conversation: str
) -> Decision:
    """LIM-1, LIM-3: may this agent start a session now? If so it is counted at once."""
    account = account_of(b, organization, counters=True, conversation=_wanted(conversation))
    return _start(b, account, agent, conversation)


def start_session_by_code(
    b: Billing,
    code: str,
    agent: str,
    conversation: str,
    *,
    visible: Callable[[AccountFacts], bool],
) -> Decision:
    """`start_session` for the organization `code`, its account (with its counters and
    the conversation) read in one statement; NotFound unless `visible` says the caller
    may see it (ACL-3)."""
    account = account_by_code(b, code, counters=True, conversation=_wanted(conversation))
    if account is None or not visible(account.facts):
        raise NotFound("No such organization.")
    return _start(b, account, agent, conversation)


def _wanted(conversation: object) -> str | None:
    return conversation if isinstance(conversation, str) else None


def _start(b: Billing, account: BillingAccount, agent: str, conversation: str) -> Decision:
    fields.name(agent, "agent")
    if not isinstance(conversation, str) or not 1 <= len(conversation) <= 200:
        raise InvalidInput("conversation: expected a text of 1 to 200 characters")
    decision = decide_for(b, account, Action.START_SESSION)
    row = account.facts.conversation
    if not decision.allowed:
        if decision.reason in QUOTA_REASONS and _in_open_window(row, b.now):
            return Decision(True, Reason.OK, OK_MESSAGE, decision.numbers)
        return decision
    event = CheckedEvent(
        client_id=_start_id(conversation, b.now),
        type=SESSION_STARTED,
        org=account.facts.code,
        agent=agent,
        conversation=conversation,
        time=b.now,
        properties={},
    )
    used_by = account.organization_id
    try:
        record_batch(
            b, [Pending(0, event, used_by, account.owner_id)], capped=True, accounts=[account],
            conversations={(used_by, conversation): row},
        )  # fmt: skip
    except SessionCapReached:
        again = account_of(b, used_by, counters=True)
        refused = decide_for(b, again, Action.START_SESSION)
        if refused.allowed:  # the last session was taken meanwhile by another start
            return _at_cap(decision)
        return refused
    if _in_open_window(row, b.now):
        return decision
    return _counted(decision)


def _counted(allowed: Decision) -> Decision:
    """The numbers after this start's reservation: one more used, one fewer left."""
    numbers = dict(allowed.numbers)
    used, remaining = numbers.get("used"), numbers.get("remaining")
    if isinstance(used, int):
        numbers["used"] = used + 1
    if isinstance(remaining, int):
        numbers["remaining"] = max(remaining - 1, 0)
    return Decision(allowed.allowed, allowed.reason, allowed.message, numbers)


def _start_id(conversation: str, at: datetime) -> str:
    """The event id of a start: one per conversation and instant, within the 200
    characters of an event id (a conversation id over 64 characters by its SHA-256)."""
    if len(conversation) > 64:
        conversation = hashlib.sha256(conversation.encode("utf-8")).hexdigest()
    return f"{SESSION_STARTED}:{conversation}:{format_instant(at)}"


def _in_open_window(row: ConversationRow | None, now: datetime) -> bool:
    """USE-3: the conversation's current 24-hour window is still open: not a new session."""
    return row is not None and from_stored(dict(row.state)).open_at(now)


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
