"""Instants are timezone-aware UTC datetimes (DESIGN.md, house rule 2)."""

from __future__ import annotations

from datetime import UTC, datetime

from tabkeeper.domain.errors import InvalidInput


def require_utc(moment: datetime, what: str = "time") -> datetime:
    """`moment` converted to UTC; naive datetimes are refused."""
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what}: expected a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{what}: {moment.isoformat()} has no timezone; use UTC")
    return moment.astimezone(UTC)


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
    return require_utc(moment, what)


def format_instant(moment: datetime) -> str:
    """A UTC instant as "2026-01-01T00:00:00Z" (microseconds only when present)."""
    return require_utc(moment).isoformat().replace("+00:00", "Z")
