"""Checking one usage event before it is stored (USE-1, USE-2).

Each bad event is refused on its own, with its index and the reason; the good events of
the same batch are kept. The reasons: unknown organization (checked by the caller, which
knows the organizations), unknown type, missing field, negative quantity, time too far in
the future or before the organization existed; and values no database or counter could
keep: a time out of range (year 1 with an offset), a quantity over `MAX_QUANTITY` (10^30,
1e308, a 400-digit integer), properties nested deeper than `MAX_DEPTH` or larger than
`MAX_PROPERTIES_BYTES` of text and numbers, NaN or infinite numbers, text that is not
valid Unicode.

A field that a sum or max meter reads must be a number when the event has it; an event
without it is left out of that meter only (domain/ingestion.py).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.sessions import Direction
from tabkeeper.domain.utc import format_instant, parse_instant

FUTURE_TOLERANCE = timedelta(minutes=5)
"""Events may be stamped at most this far ahead of the receiver's clock (clock skew)."""

MAX_QUANTITY = Decimal(10**9)
"""The largest quantity one event may carry (a billion seconds is 31 years of call)."""
MAX_DEPTH = 32
"""How deeply an event's properties may nest (a mapping in a mapping is depth 2)."""
MAX_PROPERTIES_BYTES = 65_536
"""How large an event's properties may be, written as JSON (UTF-8)."""

STANDARD_TYPES = ("message", "call.ended", "ai.used")
_FIELDS = ("id", "type", "org", "agent", "conversation", "time", "properties")
_NUMERIC = {"call.ended": ("duration_seconds",)}


class EventRefused(InvalidInput):
    code = "event_refused"


@dataclass(frozen=True, slots=True)
class UnreadableEvent:
    """An element of a batch that could not be read as JSON on its own (nested beyond
    what a JSON reader follows): refused by its index, the rest of the batch kept."""

    reason: str


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    client_id: str
    type: str
    org: str
    agent: str | None
    conversation: str | None
    time: datetime
    properties: Mapping[str, Any]


def check_event(
    raw: object,
    path: str,
    known_types: Collection[str],
    numeric_fields: Mapping[str, Collection[str]],
    now: datetime,
    default_time: datetime | None = None,
) -> CheckedEvent:
    """The event `raw` checked, or EventRefused naming the path and the reason.

    `numeric_fields` maps an event type to the properties that meters sum or take the
    maximum of: they must be numbers, not negative.
    """
    if isinstance(raw, UnreadableEvent):
        raise EventRefused(f"{path}: {raw.reason}")
    if not isinstance(raw, Mapping):
        raise EventRefused(f"{path}: an event must be a mapping")
    for key in raw:
        if key not in _FIELDS:
            raise EventRefused(f"{path}.{key}: unknown field; expected one of {', '.join(_FIELDS)}")
    client_id = _text(raw.get("id"), f"{path}.id")
    event_type = _text(raw.get("type"), f"{path}.type")
    if event_type not in known_types:
        raise EventRefused(f"{path}.type: unknown event type {event_type!r}")
    org = _text(raw.get("org"), f"{path}.org")
    agent = _optional_text(raw.get("agent"), f"{path}.agent")
    conversation = _optional_text(raw.get("conversation"), f"{path}.conversation")
    raw_time = raw.get("time")
    if raw_time is None:
        if default_time is None:
            raise EventRefused(f"{path}.time: missing field")
        time = default_time
    else:
        try:
            time = parse_instant(raw_time, f"{path}.time")
        except InvalidInput as error:
            raise EventRefused(error.message) from None
        except OverflowError:
            raise EventRefused(f"{path}.time: {raw_time!r} is out of range") from None
    if time > now + FUTURE_TOLERANCE:
        raise EventRefused(
            f"{path}.time: {format_instant(time)} is too far in the future "
            f"(now is {format_instant(now)})"
        )
    properties = raw.get("properties") or {}
    if not isinstance(properties, Mapping):
        raise EventRefused(f"{path}.properties: expected a mapping")
    if event_type == "message":
        if conversation is None:
            raise EventRefused(f"{path}.conversation: missing field (a message needs it)")
        try:
            Direction.parse(properties.get("direction"), f"{path}.properties.direction")
        except InvalidInput as error:
            raise EventRefused(error.message) from None
    for name in _NUMERIC.get(event_type, ()):
        _quantity(properties.get(name), f"{path}.properties.{name}")
    for name in sorted(numeric_fields.get(event_type, ())):
        own = {"agent": agent, "conversation": conversation}.get(name)
        if own is not None:
            _quantity(own, f"{path}.{name}")
        elif properties.get(name) is not None:
            _quantity(properties[name], f"{path}.properties.{name}")
    if event_type == "ai.used":
        _text(properties.get("feature"), f"{path}.properties.feature")
    _require_storable(raw, path)
    return CheckedEvent(client_id, event_type, org, agent, conversation, time, dict(properties))


def _require_storable(event: Mapping[str, Any], path: str) -> None:
    """The event is plain JSON that any database stores, of a bounded size, looked at
    without recursion: properties nested at most MAX_DEPTH deep, no NaN or infinite
    numbers (JSON has none), no text that is not valid Unicode (a lone surrogate), and
    at most MAX_PROPERTIES_BYTES of names, texts and numbers (as UTF-8)."""
    pending: list[tuple[object, int]] = [(event, 0)]
    size = 0
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise EventRefused(f"{path}.properties: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, Mapping):
            for key, inner in value.items():
                size += _utf8(key, path) + 4
                pending.append((inner, depth + 1))
        elif isinstance(value, list | tuple):
            pending.extend((inner, depth + 1) for inner in value)
        elif isinstance(value, str):
            size += _utf8(value, path)
        elif isinstance(value, float) and not math.isfinite(value):
            raise EventRefused(f"{path}: numbers must be finite (no NaN or Infinity)")
        elif isinstance(value, int) and not isinstance(value, bool):
            size += value.bit_length() // 3 + 1
        else:
            size += 8
        if size > MAX_PROPERTIES_BYTES:
            raise EventRefused(f"{path}.properties: larger than {MAX_PROPERTIES_BYTES:,} bytes")


def _utf8(text: object, path: str) -> int:
    """The length of `text` in UTF-8 (refused when it is not valid Unicode)."""
    if isinstance(text, str) and text.isascii():
        return len(text)
    try:
        return len(str(text).encode("utf-8"))
    except UnicodeEncodeError:
        raise EventRefused(f"{path}: text must be valid Unicode") from None


def _text(value: object, path: str) -> str:
    if value is None:
        raise EventRefused(f"{path}: missing field")
    if not isinstance(value, str) or not value or len(value) > 200:
        raise EventRefused(f"{path}: expected a text of 1 to 200 characters")
    return value


def _optional_text(value: object, path: str) -> str | None:
    return None if value is None else _text(value, path)


def _quantity(value: object, path: str) -> Decimal:
    if value is None:
        raise EventRefused(f"{path}: missing field")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise EventRefused(f"{path}: expected a number")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise EventRefused(f"{path}: expected a number") from None
    if not number.is_finite():
        raise EventRefused(f"{path}: expected a finite number")
    if number < 0:
        raise EventRefused(f"{path}: negative quantity {_shown(value)}")
    if number > MAX_QUANTITY:
        raise EventRefused(f"{path}: at most {MAX_QUANTITY:,}, got {_shown(value)}")
    if number != number.quantize(Decimal("0.000001"), rounding="ROUND_DOWN"):
        raise EventRefused(f"{path}: at most six decimal places, got {_shown(value)}")
    return number


def _shown(value: object) -> str:
    """A value for a reason, cut short when long (a 400-digit number)."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
