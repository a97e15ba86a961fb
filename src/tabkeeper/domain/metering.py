"""Metering: a declared meter's quantity over stored usage events, by a plain read
(SPEC CAT-3, USE-3, USE-4, USE-5; SCENARIOS.md "Usage and pricing").

`measure(meter, events, period)` reads events the way a batch job (an invoice run, a
check of the counters) would; the real-time counters of DESIGN.md rule 7 must agree with
it. What each meter kind gives for one period [start, end):

* `count`: the events of type `meter.event` in the period whose properties match every
  pair of `meter.filter`.
* `sum`: the sum of the field's values over those events; with `unit_seconds` each value
  is divided by it first (seconds to minutes); then `rounding`: `per_event_up` rounds each
  event's converted value up to a whole unit, `total_up` rounds the period's total up,
  `none` keeps it exact (USE-5). Eight calls of 3841 s at 60 s a unit: 8 × 65 = 520
  per event up, exactly 30728/60 = 512.1333… with none.
* `max`: the largest field value in the period, 0 when there is none.
* `unique_count`: the number of distinct field values, compared by their string form
  (so 1 and "1" are one value, Decimal("1.0") and 1 are two).
* `billable_sessions`: messages (`meter.event`, "message" by default) grouped by
  conversation, covered by 24-hour windows (`sessions.windows`, USE-3); the windows whose
  START lies in the period are counted, only the answered ones when `answered_only`
  (USE-4). Messages outside the period still decide where windows start, so callers pass
  every message of the conversations involved, not only the period's.

`unit_seconds` and `rounding` belong to `sum` meters; the other kinds ignore them.

Conventions a caller relies on:

* An event is in the period when start <= time < end.
* Filters compare with equality; a missing property never matches; a flag (True/False)
  matches only a flag, so `True` does not match the number 1.
* Field values are numbers: int, Decimal, Fraction, a plain decimal string ("61",
  "61.5"), or a float (converted through its shortest repr, `Decimal(str(value))`). A
  missing, null, negative, non-finite or non-numeric value of an event that is measured
  raises InvalidInput naming the event id and the field; ingestion refuses such events
  before they are stored (USE-2), so this only catches corrupt data. `unique_count`
  accepts any value but a missing or null one.
* A message needs a conversation and `properties.direction` "inbound" or "outbound";
  otherwise InvalidInput names the event id.
* A field named `agent` or `conversation` is read from the event's own field when it
  has one, else from its properties. With `leave_out_missing` (the recount of stored
  events does this, as ingestion does), an event without the field a meter needs is
  left out of that meter instead of raising.
* A message marked `late` (it arrived beyond its conversation's lateness horizon,
  domain/conversations.py) is left out of billable sessions; other meters count it.
* Events are identified by id (USE-1): the same event passed twice is measured once (two
  overlapping reads may be merged); two different events with one id raise InvalidInput.
  The result never depends on the order of the events.

`quantity_string` and `quantity_decimal` show a measured quantity: exact when it has a
finite decimal expansion ("512.1"), else rounded ROUND_HALF_UP to 6 decimal places.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from tabkeeper.domain.catalog import Meter, MeterKind, Rounding
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import (
    Exact,
    decimal_string,
    parse_decimal,
    round_half_up,
    to_fraction,
)
from tabkeeper.domain.periods import Period
from tabkeeper.domain.sessions import Direction, Message, billable_count, windows
from tabkeeper.domain.utc import require_utc

SHOWN_PLACES = 6
"""Decimal places a quantity with no finite decimal expansion is shown with."""


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One stored usage event (USE-1): a client-given id, a type, a UTC time, the agent
    and conversation it belongs to (when any), and its properties.

    A naive `time` is refused, an aware one is converted to UTC; `properties` is copied
    into a read-only mapping."""

    id: str
    type: str
    time: datetime
    agent: str | None = None
    conversation: str | None = None
    properties: Mapping[str, object] = dataclass_field(default_factory=lambda: MappingProxyType({}))
    late: bool = False
    """Left out of billable sessions (arrived beyond the lateness horizon)."""

    def __post_init__(self) -> None:
        _text(self.id, "event id")
        _text(self.type, f"event {self.id!r}: type")
        object.__setattr__(self, "time", require_utc(self.time, f"event {self.id!r}: time"))
        for what, value in (("agent", self.agent), ("conversation", self.conversation)):
            if value is not None:
                _text(value, f"event {self.id!r}: {what}")
        if not isinstance(self.properties, Mapping) or not all(
            isinstance(key, str) for key in self.properties
        ):
            raise InvalidInput(
                f"event {self.id!r}: properties must be a mapping of names to values"
            )
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))


def measure(
    meter: Meter,
    events: Iterable[UsageEvent],
    period: Period,
    answered_only: bool = False,
    *,
    leave_out_missing: bool = False,
) -> Fraction:
    """The quantity of `meter` for `period` over `events` (CAT-3; see the module docs).

    `answered_only` matters only for `billable_sessions` meters (USE-4)."""
    if not isinstance(meter, Meter):
        raise InvalidInput(f"expected a Meter, got {meter!r}")
    if not isinstance(period, Period):
        raise InvalidInput(f"expected a Period, got {period!r}")
    if not isinstance(answered_only, bool):
        raise InvalidInput(f"answered_only: expected True or False, got {answered_only!r}")
    selected = [event for event in _distinct(events) if _selects(meter, event)]
    if meter.kind is MeterKind.BILLABLE_SESSIONS:
        return Fraction(_billable_sessions(selected, period, answered_only))
    in_period = [event for event in selected if period.start <= event.time < period.end]
    if meter.kind is MeterKind.COUNT:
        return Fraction(len(in_period))
    field_name = _field_name(meter)
    if leave_out_missing:
        in_period = [e for e in in_period if _value(e, field_name) is not None]
    if meter.kind is MeterKind.UNIQUE_COUNT:
        return Fraction(len({str(_present(event, field_name)) for event in in_period}))
    values = [_number(event, field_name) for event in in_period]
    if meter.kind is MeterKind.MAX:
        return max(values, default=Fraction(0))
    return _sum(meter, values)


def quantity_decimal(value: Exact) -> Decimal:
    """`value` as a Decimal: exact when it has a finite decimal expansion, else rounded
    ROUND_HALF_UP to 6 decimal places with trailing zeros dropped."""
    return Decimal(quantity_string(value))


def quantity_string(value: Exact) -> str:
    """`value` as a plain decimal string: exact when it has a finite decimal expansion
    ("520", "512.1"), else rounded ROUND_HALF_UP to 6 decimal places with trailing zeros
    dropped (30728/60 → "512.133333")."""
    if type(value) is int:  # the usual cases (counts): no Fraction to make
        return str(value)
    if isinstance(value, Fraction) and value.denominator == 1:
        return str(value.numerator)
    exact = to_fraction(value)
    try:
        return decimal_string(exact)
    except InvalidInput:
        scale = 10**SHOWN_PLACES
        return decimal_string(Fraction(round_half_up(exact * scale), scale))


# -- helpers -------------------------------------------------------------------------------


def _distinct(events: Iterable[UsageEvent]) -> list[UsageEvent]:
    by_id: dict[str, UsageEvent] = {}
    for event in events:
        if not isinstance(event, UsageEvent):
            raise InvalidInput(f"expected a UsageEvent, got {event!r}")
        known = by_id.setdefault(event.id, event)
        if known is not event and known != event:
            raise InvalidInput(f"event id {event.id!r} is given to two different events")
    return list(by_id.values())


SESSION_STARTED = "session.started"
"""A session start admitted by the real-time check (LIM-3): for billable sessions it opens a
window as an agent's (outbound) message would."""


def _selects(meter: Meter, event: UsageEvent) -> bool:
    """Whether `event` is of the meter's type and matches every filter pair."""
    started = meter.kind is MeterKind.BILLABLE_SESSIONS and event.type == SESSION_STARTED
    if event.type != meter.event and not started:
        return False
    for key, wanted in meter.filter.items():
        if key not in event.properties:
            return False
        value = event.properties[key]
        if isinstance(value, bool) != isinstance(wanted, bool) or value != wanted:
            return False
    return True


def _field_name(meter: Meter) -> str:
    if not isinstance(meter.field_name, str) or not meter.field_name:
        raise InvalidInput(f"meter {meter.code!r}: a {meter.kind} meter needs a field")
    return meter.field_name


def _value(event: UsageEvent, field_name: str) -> object:
    """The event's own agent or conversation for those names, else the property."""
    own = {"agent": event.agent, "conversation": event.conversation}.get(field_name)
    return own if own is not None else event.properties.get(field_name)


def _present(event: UsageEvent, field_name: str) -> object:
    value = _value(event, field_name)
    if value is None:
        raise InvalidInput(f"event {event.id!r}: properties.{field_name} is missing")
    return value


def _number(event: UsageEvent, field_name: str) -> Fraction:
    """The field's value as an exact, finite, non-negative number."""
    value = _present(event, field_name)
    where = f"event {event.id!r}: properties.{field_name}"
    number: Fraction
    if isinstance(value, bool):
        raise InvalidInput(f"{where}: expected a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: expected a finite number, got {value!r}")
        number = Fraction(Decimal(str(value)))
    elif isinstance(value, str):
        number = Fraction(parse_decimal(value, where))
    elif isinstance(value, int | Decimal | Fraction):
        if isinstance(value, Decimal) and not value.is_finite():
            raise InvalidInput(f"{where}: expected a finite number, got {value}")
        number = Fraction(value)
    else:
        raise InvalidInput(f"{where}: expected a number, got {value!r}")
    if number < 0:
        raise InvalidInput(f"{where}: must not be negative, got {value}")
    return number


def _sum(meter: Meter, values: list[Fraction]) -> Fraction:
    """USE-5: convert each value to the meter's unit, then round as the meter says."""
    unit = meter.unit_seconds
    if unit is not None and (isinstance(unit, bool) or not isinstance(unit, int) or unit < 1):
        raise InvalidInput(f"meter {meter.code!r}: unit_seconds must be a whole number >= 1")
    converted = [value / unit for value in values] if unit is not None else values
    if meter.rounding is Rounding.PER_EVENT_UP:
        return Fraction(sum(math.ceil(value) for value in converted))
    total = sum(converted, Fraction(0))
    if meter.rounding is Rounding.TOTAL_UP:
        return Fraction(math.ceil(total))
    return total


def _billable_sessions(messages: list[UsageEvent], period: Period, answered_only: bool) -> int:
    """USE-3/USE-4: windows per conversation, counted where they start."""
    conversations: dict[str, list[Message]] = {}
    for event in messages:
        if event.late:
            continue
        if event.conversation is None:
            raise InvalidInput(f"event {event.id!r}: a message needs a conversation")
        if event.type == SESSION_STARTED:
            conversations.setdefault(event.conversation, []).append(
                Message(event.time, Direction.OUTBOUND)
            )
            continue
        if "direction" not in event.properties:
            raise InvalidInput(f"event {event.id!r}: properties.direction is missing")
        direction = Direction.parse(
            event.properties["direction"], f"event {event.id!r}: properties.direction"
        )
        conversations.setdefault(event.conversation, []).append(Message(event.time, direction))
    return sum(
        billable_count(
            (w for w in windows(found) if period.start <= w.start < period.end), answered_only
        )
        for found in conversations.values()
    )


def _text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what}: expected a non-empty text, got {value!r}")
