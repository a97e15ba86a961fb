"""What a batch of checked events adds to the usage counters (USE-1, USE-5, USE-6, SUB-2).

Pure: the shell reads the billing periods and the conversations once for the batch,
inserts the events and hands the new ones here; the result is one change per counter
key (billing organization, meter, period start, scope), written once per batch.

- Scopes: "" (the whole billing organization), "org:<id>" (a sub-account's share),
  "agent:<code>" (an agent's share) (SUB-2, CRD-4).
- Quantities are millionths of a unit (`SCALE`), exact integers.
- A meter reads its field from the event's properties, or, for the names `agent` and
  `conversation`, from the event's own field of that name when it has one (so a
  unique_count of conversations works on message events). An event without the field
  a meter needs is left out of that meter only (`Skipped`), counted by the others.
  Conversations of different organizations are different conversations: a unique count
  of them keeps "<organization id>:<conversation>" (a sub-account's k1 is not its
  parent's), as the recount does.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from tabkeeper.domain.catalog import EVENT_FIELDS, Meter, MeterKind, Rounding
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.event_checks import CheckedEvent

SCALE = 1_000_000
"""Counters keep millionths of a unit (events carry at most six decimals)."""
TOTAL = ""
UNIQUE_VALUE_LENGTH = 200


@dataclass(frozen=True, slots=True, order=True)
class CounterKey:
    owner_id: int
    meter: str
    period_start: datetime
    scope: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event left out of one meter (it lacks the meter's field, or is late)."""

    index: int
    meter: str
    reason: str


@dataclass(slots=True)
class Changes:
    """The changes of a batch: quantities (and answered windows) to add per counter,
    values a max counter is raised to, unique values seen (with the first event's
    index). `steps` keeps, per whole-organization counter, which event changed it by
    how much: only to tell notices in the order the events crossed them."""

    added: dict[CounterKey, tuple[int, int]] = field(default_factory=dict)
    raised: dict[CounterKey, int] = field(default_factory=dict)
    unique: dict[tuple[int, str, datetime, str], int] = field(default_factory=dict)
    steps: dict[CounterKey, list[tuple[int, int, int]]] = field(default_factory=dict)

    def add(self, key: CounterKey, quantity: int, answered: int = 0, index: int = -1) -> None:
        found = self.added.get(key, (0, 0))
        self.added[key] = (found[0] + quantity, found[1] + answered)
        if key.scope == TOTAL:
            self.steps.setdefault(key, []).append((index, quantity, answered))

    def raise_to(self, key: CounterKey, value: int, index: int = -1) -> None:
        if value > self.raised.get(key, -1):
            self.raised[key] = value
        if key.scope == TOTAL:
            self.steps.setdefault(key, []).append((index, value, 0))


class Periods:
    """The billing periods of some organizations, read once: the period holding an
    instant is found in memory (the latest start at or before it whose end is after)."""

    def __init__(self, rows: Iterable[tuple[int, datetime, datetime]]) -> None:
        by_owner: dict[int, list[tuple[datetime, datetime]]] = {}
        for owner_id, start, end in rows:
            by_owner.setdefault(owner_id, []).append((start, end))
        self._starts: dict[int, list[datetime]] = {}
        self._ends: dict[int, list[datetime]] = {}
        for owner_id, spans in by_owner.items():
            spans.sort()
            self._starts[owner_id] = [start for start, _ in spans]
            self._ends[owner_id] = [end for _, end in spans]

    def start_at(self, owner_id: int, at: datetime) -> datetime | None:
        """The start of the owner's billing period holding `at`, None outside them all."""
        starts = self._starts.get(owner_id)
        if not starts:
            return None
        ends = self._ends[owner_id]
        index = bisect_right(starts, at) - 1
        while index >= 0:
            if ends[index] > at:
                return starts[index]
            index -= 1
        return None


def scopes(used_by_id: int, owner_id: int, agent: str | None) -> list[str]:
    found = [TOTAL]
    if used_by_id != owner_id:
        found.append(f"org:{used_by_id}")
    if agent:
        found.append(f"agent:{agent}")
    return found


def field_value(name: str, event: CheckedEvent) -> object | None:
    """The value of a meter's field `name` in `event` (see the module), None if absent."""
    if name in EVENT_FIELDS:
        own = event.agent if name == "agent" else event.conversation
        if own is not None:
            return own
    return event.properties.get(name)


def selects(meter: Meter, event: CheckedEvent) -> bool:
    """The event is of the meter's type and matches its filter (a flag only a flag)."""
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
    """A number in millionths, exactly (at most six decimals, not negative)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidInput(f"{what}: expected a number")
    try:
        number = Decimal(str(value)) * SCALE
        whole = number.is_finite() and number == number.to_integral_value()
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{what}: expected a number") from None
    if not whole or number < 0:
        raise InvalidInput(f"{what}: expected a number >= 0 with at most six decimals")
    return int(number)


def amount(meter: Meter, value: object, what: str) -> int:
    """What one event adds to a sum or max meter, in millionths: per_event_up sums
    round each event up to whole units (USE-5)."""
    quantity = micro(value, what)
    if meter.kind is MeterKind.SUM and meter.rounding is Rounding.PER_EVENT_UP:
        return math.ceil(Fraction(quantity, SCALE) / (meter.unit_seconds or 1)) * SCALE
    return quantity


def count_event(
    changes: Changes,
    meters: Iterable[Meter],
    event: CheckedEvent,
    index: int,
    used_by_id: int,
    owner_id: int,
    period: datetime,
) -> list[Skipped]:
    """What `event` adds to each meter but billable sessions (those are counted per
    conversation); the meters it is left out of."""
    skipped = []
    parts = scopes(used_by_id, owner_id, event.agent)
    for meter in meters:
        if meter.kind is MeterKind.BILLABLE_SESSIONS or not selects(meter, event):
            continue
        if meter.kind is MeterKind.COUNT:
            for scope in parts:
                changes.add(CounterKey(owner_id, meter.code, period, scope), SCALE, 0, index)
            continue
        name = meter.field_name or ""
        value = field_value(name, event)
        if name == "conversation" and value is not None and value == event.conversation:
            value = f"{used_by_id}:{value}"  # a sub-account's k1 is not its parent's
        if value is None:
            skipped.append(Skipped(index, meter.code, f"the event has no {name}"))
            continue
        if meter.kind is MeterKind.UNIQUE_COUNT:
            text = str(value)[:UNIQUE_VALUE_LENGTH]
            changes.unique.setdefault((owner_id, meter.code, period, text), index)
            continue
        quantity = amount(meter, value, name)
        for scope in parts:
            key = CounterKey(owner_id, meter.code, period, scope)
            if meter.kind is MeterKind.MAX:
                changes.raise_to(key, quantity, index)
            else:
                changes.add(key, quantity, 0, index)
    return skipped


def counter_value(meter: Meter, quantity: int, answered: int, answered_only: bool) -> Fraction:
    """What a counter's stored millionths mean for `meter` (USE-4, USE-5): billable
    sessions count windows (the answered ones when `answered_only`); a sum in seconds
    with a unit is converted when read, and rounded up once for total_up."""
    if meter.kind is MeterKind.BILLABLE_SESSIONS:
        return Fraction(answered if answered_only else quantity, SCALE)
    raw = Fraction(quantity, SCALE)
    if meter.kind is not MeterKind.SUM or meter.rounding is Rounding.PER_EVENT_UP:
        return raw
    converted = raw / (meter.unit_seconds or 1)
    return Fraction(math.ceil(converted)) if meter.rounding is Rounding.TOTAL_UP else converted


def numeric_fields(meters: Iterable[Meter]) -> Mapping[str, set[str]]:
    """The fields, per event type, that sum and max meters read: when present they must
    be numbers (an event without one is left out of that meter only)."""
    found: dict[str, set[str]] = {}
    for meter in meters:
        if meter.kind in (MeterKind.SUM, MeterKind.MAX) and meter.field_name:
            found.setdefault(meter.event, set()).add(meter.field_name)
    return found
