"""Instants are timezone-aware UTC datetimes (DESIGN.md, house rule 2).

Every instant is checked for range before any arithmetic (OPS-4: bad input never answers
5xx): `require_utc` refuses one that cannot be converted to UTC (year 1 with an offset,
year 9999 with one: those were 500s), and `require_instant`, for instants that come in
from outside (query, body), refuses one outside `EARLIEST`..`LATEST`, far enough inside
what a datetime holds that billing's own arithmetic (periods, lifetimes) cannot overflow.
The domain's own instants may still run to the end of year 9999 (domain/periods.py says
"past the year 9999" where its arithmetic would leave it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tabkeeper.domain.errors import InvalidInput


def require_utc(moment: datetime, what: str = "time") -> datetime:
    """`moment` converted to UTC; naive datetimes are refused."""
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what}: expected a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{what}: {moment.isoformat()} has no timezone; use UTC")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 with an offset east of UTC, year 9999 west of it
        raise _out_of_range(moment, what) from None


def require_instant(moment: datetime, what: str = "time") -> datetime:
    """An instant that comes in (a query, a request body), as UTC: refused unless from
    `EARLIEST` to `LATEST`, so that what billing adds to it (a period, a lifetime, a
    retention window) never leaves what a datetime holds."""
    utc = require_utc(moment, what)
    if not EARLIEST <= utc <= LATEST:
        raise _out_of_range(moment, what)
    return utc


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _out_of_range(moment: datetime, what: str) -> InvalidInput:
    return InvalidInput(
        f"{what}: {moment.isoformat()!r} is out of range; expected a time from "
        f"{EARLIEST.year} to {LATEST.year}",
        code="time_out_of_range",
    )


def parse_instant(text: object, what: str = "time") -> datetime:
    """An ISO 8601 string with a timezone ("2026-01-01T00:00:00Z") as a UTC datetime."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what}: expected an ISO 8601 time such as 2026-01-01T00:00:00Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{what}: {text!r} is not an ISO 8601 time such as 2026-01-01T00:00:00Z"
        ) from None
    return require_instant(moment, what)


def format_instant(moment: datetime) -> str:
    """A UTC instant as "2026-01-01T00:00:00Z" (microseconds only when present)."""
    return require_utc(moment).isoformat().replace("+00:00", "Z")
