"""Shapes of the metering API: usage events (USE-1, USE-2), the real-time check and
session starts (LIM-1, LIM-3), the session limit (LIM-4) and the current period's usage
(USE-6, USE-7, SUB-2).

Events are taken as plain JSON objects and checked one by one by the service, so that a
bad event is refused with its index and reason while the good ones of the batch are kept
(USE-2); only the batch itself (1 to `MAX_EVENTS` events) is checked by the schema.
Quantities are decimal strings, exact (domain/metering.py `quantity_string`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.domain.decisions import Action, Reason

MAX_EVENTS = 1_000
"""The most events one batch may carry (USE-1)."""

EVENT_EXAMPLE: dict[str, Any] = {
    "id": "m1",
    "type": "message",
    "org": "acme",
    "agent": "support-bot",
    "conversation": "k1",
    "time": "2026-01-05T09:00:00Z",
    "properties": {"direction": "inbound"},
}


class EventsIn(Strict):
    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_EVENTS)] = Field(
        description=(
            f"1 to {MAX_EVENTS:,} usage events, each `{{id, type, org, agent, conversation, "
            "time, properties}}`: `id` is the client's id of the event (a duplicate is "
            "accepted and counted once, USE-1); `time` defaults to now; `message` events "
            "need `conversation` and `properties.direction` (inbound: from the end user, "
            "outbound: from the agent); `call.ended` needs `properties.duration_seconds`."
        ),
        examples=[[EVENT_EXAMPLE]],
    )


class RefusedEvent(BaseModel):
    index: int = Field(description="The event's position in the batch, from 0.")
    reason: str


class SkippedEvent(BaseModel):
    index: int = Field(description="The event's position in the batch, from 0.")
    meter: str = Field(description="The meter the event is left out of.")
    reason: str


class EventsResult(BaseModel):
    """What became of a batch: the good events are kept even when others are refused."""

    accepted: int = Field(description="Events stored and counted now.")
    duplicates: int = Field(description="Events whose id was already stored: counted once.")
    refused: list[RefusedEvent]
    skipped: list[SkippedEvent] | None = Field(
        default=None,
        description="Present only when some event was accepted and counted but left out "
        "of one meter: the event lacks the field that meter reads, or a message arrived "
        "beyond the late-events horizon (left out of billable sessions).",
    )


class CheckIn(Strict):
    organization: Code
    action: Action
    feature: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The AI feature, for `use_ai` only."
    )


class Decision(BaseModel):
    """The answer of the real-time check (LIM-1): allowed or not, the reason code, the
    message for a person, and the numbers behind it."""

    allowed: bool
    reason: Reason
    message: str
    numbers: dict[str, int | str | None]


class SessionStartIn(Strict):
    organization: Code
    agent: Code
    conversation: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SessionLimitIn(Strict):
    limit: StrictInt | StrictFloat = Field(
        description="A whole number greater than zero: the most billable sessions this "
        "period, across all agents (LIM-4).",
        json_schema_extra={"examples": [500]},
    )


class SessionLimit(BaseModel):
    """The Session limit card (LIM-4)."""

    subscription: int
    organization: str
    limit: int | None = Field(description="The limit an owner or billing admin set; null: none.")
    base_limit: int | None = Field(
        description="The plan's base limit (its included sessions): what Reset limit restores."
    )
    used: int = Field(description="Billable sessions this period (USE-3).")
    period_start: datetime
    period_end: datetime


class MeterUsage(BaseModel):
    used: str
    included: str | None
    remaining: str | None = Field(description="Included minus used, never below 0.")
    level: str | None = Field(description="ok | watch | consider_upgrade | over (USE-7).")
    overage: bool = Field(description="Use over `included` is billed (else a hard stop).")
    sub_accounts: dict[str, str] = Field(description="Use per sub-account, by its code (SUB-2).")
    agents: dict[str, str] = Field(description="Use per agent, by its code.")


class Usage(BaseModel):
    """The current billing period's usage per meter, read from the counters (USE-6)."""

    organization: str
    plan: str
    period_start: datetime
    period_end: datetime
    meters: dict[str, MeterUsage]
