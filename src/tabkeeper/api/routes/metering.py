"""Metering and the real-time check: usage events (USE-1, USE-2), the check (LIM-1,
LIM-2), session starts (LIM-3), the monthly session limit (LIM-4) and the current
period's usage (USE-6, USE-7, SUB-2).

Who:
- `POST /events` and `POST /sessions/start`: the platform's key only (its agents report
  usage and start sessions).
- `POST /check`: the platform's key, or a member of the organization (any role) asking
  about their own organization or its sub-accounts.
- the session limit and `GET /usage`: the owner, a billing admin or the platform's key
  (ACL-1); a plain member 403.
Another organization, or its subscription, is 404 (ACL-3), whatever the caller's role.

A refused check or session start is an answer (200 with `allowed: false`), not an error.
A batch of events keeps its good events and refuses each bad one with its index and
reason (USE-2); a batch of more than 1,000 events is refused whole (422), storing nothing.
"""

from __future__ import annotations

from time import perf_counter
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tabkeeper.api import metrics
from tabkeeper.api import schemas_metering as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.lean import LeanRoute
from tabkeeper.api.schemas import ObjectId
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.domain.catalog import MeterKind
from tabkeeper.domain.decisions import Decision
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.event_checks import UnreadableEvent
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.metering import quantity_string
from tabkeeper.services import session_starts
from tabkeeper.services.access import Caller, organization_for, owned
from tabkeeper.services.context import Billing
from tabkeeper.services.limits import CreditsDue, check_by_code
from tabkeeper.services.subscriptions import (
    plan_of,
    require_billing_level,
    require_subscription,
    subscription_of,
)
from tabkeeper.services.usage import MeterReading, current_usage, ingest_batch

router = APIRouter(tags=["metering"], route_class=LeanRoute)  # the hot routes: api/lean.py


def _decision(decision: Decision) -> schemas.Decision:
    return schemas.Decision(
        allowed=decision.allowed,
        reason=decision.reason,
        message=decision.message,
        numbers=dict(decision.numbers),
    )


async def _events(request: Request) -> list[object]:
    """The events of the body, read so that an event nested too deeply for the JSON
    reader is refused by its index rather than the whole batch (schemas.EventsIn's
    checks, with FastAPI's 422 answer, apply to the rest)."""
    body = await request.body()
    try:
        parsed = schemas.read_events_body(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": str(error)}}]
        ) from None  # fmt: skip
    events = parsed.get("events") if isinstance(parsed, dict) else None
    shape = parsed
    if isinstance(events, list):
        readable = [{} if isinstance(e, UnreadableEvent) else e for e in events]
        shape = {**parsed, "events": readable}
    try:
        schemas.EventsIn.model_validate(shape)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        ) from None
    assert isinstance(events, list)
    return events


BRIEF_BATCH = 10
"""Batches of at most this many events are brief writes (`Api.write`): on SQLite they are
stored on the event loop when the write lock is free (about 1-2 ms), larger ones in a
thread."""

_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": schemas.EventsIn.model_json_schema()}},
    }
}


@router.post(
    "/events",
    operation_id="events.ingest",
    response_model_exclude_none=True,
    openapi_extra=_EVENTS_BODY,
)
async def record_events(
    events: Annotated[list[object], Depends(_events)], api: ApiDep, caller: CallerDep
) -> schemas.EventsResult:
    """Report usage (USE-1, USE-2): each event is stored and counted at once; a duplicate
    id is accepted and counted once, also across retries; each bad event is refused with
    its index and reason while the good ones are kept. Platform API key only."""
    caller.require_platform()
    brief = len(events) <= BRIEF_BATCH
    outcome = await api.write(
        caller, lambda b: ingest_batch(b, events), brief=brief, heavy=not brief
    )
    metrics.count_events(outcome.accepted, outcome.duplicates, len(outcome.refused))  # OPS-2
    return schemas.EventsResult(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        refused=[schemas.RefusedEvent(index=i, reason=r) for i, r in outcome.refused],
        skipped=[
            schemas.SkippedEvent(index=s.index, meter=s.meter, reason=s.reason)
            for s in outcome.skipped
        ]
        or None,
    )


@router.post("/check", operation_id="check")
async def check_action(body: schemas.CheckIn, api: ApiDep, caller: CallerDep) -> schemas.Decision:
    """The real-time check (LIM-1, LIM-2): may this organization's agent start a new
    session, use AI feature `feature`, add one more agent, seat or phone number, or connect
    channel `channel` (CAT-7) now?
    Answered from the counters; nothing changes. 200 whether allowed or not."""
    code, action, feature, visible = body.organization, body.action, body.feature, caller.sees
    channel = body.channel  # CAT-7: connect_channel only
    started = perf_counter()  # OPS-2
    try:
        found = await api.read_one(
            caller,
            lambda b: check_by_code(
                b, code, action, feature, visible=visible, refresh=False, channel=channel
            ),
        )
    except CreditsDue:  # a monthly credit grant is due first: written, then answered
        found = await api.write(
            caller,
            lambda b: check_by_code(b, code, action, feature, visible=visible, channel=channel),
        )
    metrics.CHECKS.observe(perf_counter() - started)  # OPS-2
    metrics.count_decision("check", found.reason)
    return _decision(found)


@router.post("/sessions/start", operation_id="sessions.start")
async def start_session(
    body: schemas.SessionStartIn, api: ApiDep, caller: CallerDep
) -> schemas.Decision:
    """Check and start a session in one step (LIM-3): an admitted session is counted at
    once, so concurrent starts never overshoot a limit. A start within the conversation's
    open 24-hour window is not a new billable session (USE-3). 200 whether admitted or
    not. Platform API key only."""
    caller.require_platform()
    code, agent, conversation = body.organization, body.agent, body.conversation

    def start(b: Billing) -> Decision:
        return session_starts.start_session_by_code(
            b, code, agent, conversation, visible=caller.sees
        )

    decision = await api.write(caller, start, brief=True)
    metrics.count_decision("sessions.start", decision.reason)  # OPS-2
    return _decision(decision)


def _billed(b: Billing, caller: Caller, subscription_id: int) -> Organization:
    """The billed organization of the subscription (404 unless the caller sees it), for
    a caller with billing rights (403 otherwise)."""
    _, organization = owned(b, caller, Subscription, subscription_id, "subscription")
    caller.require_billing()
    return organization


def _session_limit(b: Billing, organization: Organization) -> schemas.SessionLimit:
    subscription = require_subscription(b, organization)
    catalog, plan = plan_of(b, subscription)
    readings = current_usage(b, organization, subscription, catalog, plan)
    sessions = [r for r in readings if catalog.meters[r.meter].kind is MeterKind.BILLABLE_SESSIONS]
    base = sessions[0].included if sessions else None
    return schemas.SessionLimit(
        subscription=subscription.id,
        organization=organization.code,
        limit=subscription.session_limit,
        base_limit=None if base is None else int(base),
        used=int(sessions[0].used) if sessions else 0,
        period_start=subscription.period_start,
        period_end=subscription.period_end,
    )


@router.put("/subscriptions/{subscription_id}/session_limit", operation_id="session_limits.set")
def set_session_limit(
    subscription_id: ObjectId, body: schemas.SessionLimitIn, api: ApiDep, caller: CallerDep
) -> schemas.SessionLimit:
    """Set the monthly session limit (LIM-4): a whole number greater than zero (else 400
    `invalid_limit`), a cap on billable sessions this period across all agents; paid
    plans only (the trial: 409 `not_on_trial`; an ended subscription: 409 `not_active`).
    The limit stays until changed; each period counts afresh. Owner, billing admin or
    platform."""
    with api.billing(caller) as b:
        organization = _billed(b, caller, subscription_id)
        session_starts.set_session_limit(b, organization, body.limit)
        return _session_limit(b, organization)


@router.delete(
    "/subscriptions/{subscription_id}/session_limit", operation_id="session_limits.reset"
)
def reset_session_limit(
    subscription_id: ObjectId, api: ApiDep, caller: CallerDep
) -> schemas.SessionLimit:
    """ "Reset limit" (LIM-4): back to the plan's base limit. Owner, billing admin or
    platform."""
    with api.billing(caller) as b:
        organization = _billed(b, caller, subscription_id)
        session_starts.reset_session_limit(b, organization)
        return _session_limit(b, organization)


def _shown(reading: MeterReading) -> schemas.MeterUsage:
    remaining = reading.remaining
    return schemas.MeterUsage(
        used=quantity_string(reading.used),
        included=None if reading.included is None else quantity_string(reading.included),
        remaining=None if remaining is None else quantity_string(remaining),
        level=None if reading.level is None else reading.level.value,
        overage=reading.has_overage,
        sub_accounts={code: quantity_string(v) for code, v in reading.sub_accounts.items()},
        agents={agent: quantity_string(v) for agent, v in reading.agents.items()},
    )


@router.get("/usage", operation_id="usage.get")
def get_usage(organization: str, api: ApiDep, caller: CallerDep) -> schemas.Usage:
    """The current period's usage per meter (USE-6): used, included, remaining and the
    level (USE-7), with the parts per sub-account and per agent (SUB-2). Read from the
    counters, never the event history. Usage is the billed organization's: a
    sub-account's share is in its breakdown (409 `sub_account` for a sub-account).
    Owner, billing admin or platform."""
    with api.reading(caller) as b:
        found = organization_for(b, caller, organization)
        caller.require_billing()
        require_billing_level(found)
        subscription = subscription_of(b, found, lock=False)
        if subscription is None or subscription.state == State.NONE:
            raise Refused("This organization has no subscription.", code="no_subscription")
        catalog, plan = plan_of(b, subscription)
        readings = current_usage(b, found, subscription, catalog, plan)
        return schemas.Usage(
            organization=found.code,
            plan=plan.code,
            period_start=subscription.period_start,
            period_end=subscription.period_end,
            meters={reading.meter: _shown(reading) for reading in readings},
        )
