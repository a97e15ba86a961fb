"""Time is injected and always UTC (DESIGN.md rule 2): domain/utc.py and clock.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tabkeeper.clock import Clock, SimulatedClock, SystemClock
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.utc import format_instant, parse_instant, require_utc

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T01:00:00+01:00", T0),
        ("2025-12-31T19:00:00-05:00", T0),
        ("2026-01-31T23:59:59.5Z", datetime(2026, 1, 31, 23, 59, 59, 500000, tzinfo=UTC)),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    moment = parse_instant(text)
    assert moment == expected
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-01-01T00:00:00", "has no timezone"),
        ("2026-13-01T00:00:00Z", "is not an ISO 8601 time"),
        ("yesterday", "is not an ISO 8601 time"),
        ("", "is not an ISO 8601 time"),
        (None, "expected an ISO 8601 time"),
        (1767225600, "expected an ISO 8601 time"),
    ],
)
def test_parse_instant_refuses_bad_times(value: object, message: str) -> None:
    """Bad inputs tried: naive, impossible month, words, empty, None, epoch number."""
    with pytest.raises(InvalidInput, match=f"timeline.at: .*{message}"):
        parse_instant(value, "timeline.at")


def test_require_utc() -> None:
    assert require_utc(T0.astimezone(timezone(timedelta(hours=3)))) == T0
    with pytest.raises(InvalidInput, match="no timezone"):
        require_utc(datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="expected a datetime"):
        require_utc("2026-01-01")  # type: ignore[arg-type]


def test_format_instant() -> None:
    assert format_instant(T0) == "2026-01-01T00:00:00Z"
    assert format_instant(T0 + timedelta(microseconds=5)) == "2026-01-01T00:00:00.000005Z"
    assert format_instant(T0.astimezone(timezone(timedelta(hours=-5)))) == "2026-01-01T00:00:00Z"


def test_simulated_clock_moves_only_forward() -> None:
    clock: Clock = SimulatedClock(T0)
    assert clock.now() == T0
    assert isinstance(clock, SimulatedClock)
    assert clock.advance(timedelta(hours=1)) == T0 + timedelta(hours=1)
    assert clock.set(T0 + timedelta(days=1)) == T0 + timedelta(days=1)
    assert clock.now() == T0 + timedelta(days=1)
    with pytest.raises(InvalidInput, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(InvalidInput, match="only moves forward"):
        clock.set(T0)
    with pytest.raises(InvalidInput, match="no timezone"):
        SimulatedClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    moment = SystemClock().now()
    assert moment.tzinfo is UTC
