"""Events the hot-path benches send, and what the bare database writes for them.

Message events (the demo catalog's `sessions` and `interactions` meters): each client
writes to conversations of its own, about 10 messages each, alternating inbound and
outbound, one millisecond apart. Call events (`minutes`, a sum meter with unit_seconds
60, rounded up per event): `call.ended` of 30 to 329 seconds. Every event has an agent
(`a<client>`), so each one feeds the whole organization's counter and the agent's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hotpath_bare import Bare, CounterKey

KINDS = ("message", "call")
METERS = {"message": ("sessions", "interactions"), "call": ("minutes",)}


@dataclass(frozen=True, slots=True)
class Event:
    body: dict[str, Any]
    """As the API takes it."""
    at: datetime


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def events(kind: str, org: str, agent: str, prefix: str, n: int, first: datetime) -> list[Event]:
    """`n` events of `kind` for `org` by `agent`, ids starting with `prefix`."""
    found = []
    conversations = max(1, n // 10)
    for i in range(n):
        at = first + timedelta(milliseconds=i)
        if kind == "message":
            inbound = (i // conversations) % 2 == 0
            body = {
                "id": f"{prefix}-{i}", "type": "message", "org": org, "agent": agent,
                "conversation": f"{prefix}-k{i % conversations}", "time": iso(at),
                "properties": {"direction": "inbound" if inbound else "outbound"},
            }  # fmt: skip
        else:
            body = {
                "id": f"{prefix}-{i}", "type": "call.ended", "org": org, "agent": agent,
                "time": iso(at), "properties": {"duration_seconds": 30 + i % 300},
            }  # fmt: skip
        found.append(Event(body, at))
    return found


def batches(found: list[Event], size: int) -> list[list[Event]]:
    return [found[i : i + size] for i in range(0, len(found), size)]


def bodies(batch: list[Event]) -> list[dict[str, Any]]:
    return [event.body for event in batch]


def counter_changes(
    batch: list[Event], organization_id: int, period_start: datetime, seen: set[str]
) -> dict[CounterKey, tuple[int, int]]:
    """The counters the batch changes, whole and for the agent, with (quantity, answered)
    in millionths, as tabkeeper counts them; `seen` holds the conversations met before
    (a conversation's first message opens its one window)."""
    scale = 1_000_000
    change: dict[tuple[str, str], tuple[int, int]] = {}

    def add(meter: str, agent: str, quantity: int, answered: int = 0) -> None:
        for scope in ("", f"agent:{agent}"):
            q, a = change.get((meter, scope), (0, 0))
            change[(meter, scope)] = (q + quantity, a + answered)

    for event in batch:
        body = event.body
        if body["type"] == "call.ended":
            minutes = math.ceil(body["properties"]["duration_seconds"] / 60)
            add("minutes", body["agent"], minutes * scale)
            continue
        inbound = body["properties"]["direction"] == "inbound"
        if inbound:
            add("interactions", body["agent"], scale)
        if body["conversation"] not in seen:
            seen.add(body["conversation"])
            add("sessions", body["agent"], scale, scale if inbound else 0)
    return {
        (organization_id, meter, period_start, scope): value
        for (meter, scope), value in change.items()
    }


def counter_keys(
    organization_id: int, period_start: datetime, agents: list[str]
) -> list[CounterKey]:
    """Every counter a bare organization's events may change (created before a run)."""
    return [
        (organization_id, meter, period_start, scope)
        for meter in ("sessions", "interactions", "minutes")
        for scope in ("", *(f"agent:{agent}" for agent in agents))
    ]


@dataclass
class BarePlan:
    """A batch's bare work, prepared before the timer: its rows and counter changes."""

    rows: list[tuple[Any, ...]]
    counters: dict[CounterKey, tuple[int, int]]


def bare_plans(
    bare: Bare, found: list[list[Event]], organization_id: int, period_start: datetime
) -> list[BarePlan]:
    """The same batches, as rows of the bare organization `organization_id`."""
    seen: set[str] = set()
    received = found[0][0].at if found and found[0] else period_start
    plans = []
    for batch in found:
        rows = []
        for event in batch:
            body = {**event.body, "time_at": event.at, "id": "bare-" + event.body["id"]}
            rows.append(bare.event_row(organization_id, body, received))
        plans.append(BarePlan(rows, counter_changes(batch, organization_id, period_start, seen)))
    return plans
