"""Where tabkeeper learns the time. Nothing else reads the system clock (ruff's banned-api).

Services and workers take a `Clock`; the pure domain takes `now`. `SimulatedClock` ships
with tabkeeper: `tabkeeper simulate` runs on it, and platforms can test with it too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.utc import require_utc


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to, and only forward."""

    def __init__(self, start: datetime) -> None:
        self._now = require_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise InvalidInput("a simulated clock only moves forward")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> datetime:
        moment = require_utc(moment)
        if moment < self._now:
            raise InvalidInput(
                f"a simulated clock only moves forward: {moment.isoformat()} is before "
                f"{self._now.isoformat()}"
            )
        self._now = moment
        return self._now
