"""Shapes of the metering API: usage events (USE-1, USE-2), the real-time check and
session starts (LIM-1, LIM-3), the session limit (LIM-4) and the current period's usage
(USE-6, USE-7, SUB-2).

Events are taken as plain JSON objects and checked one by one by the service, so that a
bad event is refused with its index and reason while the good ones of the batch are kept
(USE-2); only the batch itself (1 to `MAX_EVENTS` events) is checked by the schema.
Quantities are decimal strings, exact (domain/metering.py `quantity_string`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.domain.decisions import Action, Reason
from tabkeeper.domain.event_checks import MAX_DEPTH, UnreadableEvent

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


def read_events_body(body: bytes) -> Any:
    """The JSON of `POST /events`. A body too deeply nested for the JSON reader (which
    would refuse the whole batch) is read element by element: an event of `events` that
    cannot be read alone becomes an UnreadableEvent, refused by its index (USE-2).
    Malformed JSON raises ValueError (json.JSONDecodeError)."""
    try:
        return json.loads(body)
    except RecursionError:
        pass
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    position = _expect(text, _blank(text, 0), "{")
    if text[_blank(text, position)] == "}":
        return found
    while True:
        key, position = decoder.raw_decode(text, _blank(text, position))
        position = _blank(text, _expect(text, _blank(text, position), ":"))
        end = _value_end(text, position)
        if key == "events" and text[position] == "[":
            found[key] = _elements(text, position + 1)
        else:
            found[key] = _one(text[position:end])
        position = _blank(text, end)
        if text[position : position + 1] == ",":
            position += 1
            continue
        _expect(text, position, "}")
        return found


def _blank(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _expect(text: str, position: int, mark: str) -> int:
    if text[position : position + 1] != mark:
        raise json.JSONDecodeError(f"expected {mark!r}", text, position)
    return position + 1


def _value_end(text: str, position: int) -> int:
    """Where the JSON value starting at `position` ends, found without recursion."""
    depth, index, quoted = 0, position, False
    while index < len(text):
        mark = text[index]
        if quoted:
            if mark == "\\":
                index += 2
                continue
            if mark == '"':
                quoted = False
                if depth == 0:
                    return index + 1
        elif mark == '"':
            quoted = True
        elif depth == 0 and (mark in ",]}" or mark in " \t\r\n"):
            return index
        elif mark in "[{":
            depth += 1
        elif mark in "]}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    if depth or quoted:
        raise json.JSONDecodeError("unterminated value", text, position)
    return index


def _elements(text: str, position: int) -> list[object]:
    items: list[object] = []
    position = _blank(text, position)
    if text[position : position + 1] == "]":
        return items
    while True:
        end = _value_end(text, position)
        items.append(_one(text[position:end]))
        position = _blank(text, end)
        if text[position : position + 1] == "]":
            return items
        position = _blank(text, _expect(text, position, ","))


def _one(text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:
        return UnreadableEvent(f"nested more than {MAX_DEPTH} levels deep")


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
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The channel, for `connect_channel` only (CAT-7)."
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
