"""Billing periods and proration (SPEC SUB-3; SCENARIOS.md "Periods", "Proration",
"Plan changes").

Periods are anchored on a subscription's start instant (SUB-3). The k-th boundary is the
anchor moved k months (or k years) on, at the anchor's time of day; when that month has
no anchor day (an anchor on the 29th–31st) the boundary falls on the month's last day and
returns to the anchor day in the next month that has it:

    anchor Jan 31:  Jan 31 → Feb 28 (Feb 29 in leap years) → Mar 31 → Apr 30 → May 31
    anchor Feb 29 (yearly):  2028-02-29 → 2029-02-28 → 2030-02-28 → 2031-02-28 → 2032-02-29

Every boundary is computed from the anchor, never from the previous boundary, so a short
month never shifts the later ones. All instants are UTC; an anchor given in another
timezone is converted to UTC first and its UTC day and time of day are the ones kept.

Proration (`remaining_fraction`) gives the unused part of a period from a change time on,
as an exact Fraction, in the three modes of SCENARIOS.md:

- `second`: (end − at) / (end − start), measured exactly in microseconds.
- `day`: whole UTC days, the change day counted as remaining:
  (end date − date of at) / (end date − start date). The dates are the UTC calendar dates
  of the instants as they are: a period ending at midnight May 1 has end date May 1; a
  period with boundaries at 10:30 (anchor at 10:30) uses the dates of its start and end
  too, so a change on the last date of such a period (before 10:30) leaves 0.
- `none`: always 0. No proration at all: callers skip proration lines entirely in this
  mode (see `ProrationMode.prorates`), they do not write zero-amount lines.

`Interval.days_for_rate` (30 for month, 365 for year) is the day count that plan-change
comparisons divide a price by ("costs more per day"); it is not the length of any period.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import TypeVar

from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.utc import format_instant, require_utc

_MICROSECOND = timedelta(microseconds=1)
_E = TypeVar("_E", bound=StrEnum)


class Interval(StrEnum):
    """How long a billing period is: a calendar month or a calendar year."""

    MONTH = "month"
    YEAR = "year"

    @classmethod
    def parse(cls, value: object, path: str) -> Interval:
        """The interval named by `value` ("month" or "year"), from a catalog or settings
        document; anything else raises InvalidConfig naming `path`."""
        member = _member(cls, value)
        if member is None:
            raise InvalidConfig(path, _unknown("interval", value, cls))
        return member

    @property
    def months(self) -> int:
        """Calendar months in one period: 1 or 12."""
        return 1 if self is Interval.MONTH else 12

    @property
    def days_for_rate(self) -> int:
        """Days a price of this interval is divided by to compare plans per day:
        30 for month, 365 for year (SCENARIOS.md "Plan changes")."""
        return 30 if self is Interval.MONTH else 365


class ProrationMode(StrEnum):
    """How a mid-period change is prorated (SCENARIOS.md settings `proration`)."""

    SECOND = "second"
    DAY = "day"
    NONE = "none"

    @classmethod
    def parse(cls, value: object, path: str) -> ProrationMode:
        """The mode named by `value` ("second", "day" or "none"); anything else raises
        InvalidConfig naming `path`."""
        member = _member(cls, value)
        if member is None:
            raise InvalidConfig(path, _unknown("proration mode", value, cls))
        return member

    @property
    def prorates(self) -> bool:
        """False for `none`: changes then apply with no proration lines at all."""
        return self is not ProrationMode.NONE


def interval_days(interval: Interval) -> int:
    """`interval.days_for_rate`: 30 for month, 365 for year."""
    return _require_interval(interval).days_for_rate


@dataclass(frozen=True, slots=True)
class Period:
    """One billing period [start, end): `start` belongs to it, `end` to the next one.

    `index` counts periods from the anchor (0 is the period starting at the anchor).
    Instants are stored in UTC; naive ones are refused.
    """

    start: datetime
    end: datetime
    index: int

    def __post_init__(self) -> None:
        start = require_utc(self.start, "period start")
        end = require_utc(self.end, "period end")
        _require_index(self.index, "period index")
        if start >= end:
            raise InvalidInput(
                f"a period must end after it starts: start {format_instant(start)}, "
                f"end {format_instant(end)}"
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def contains(self, moment: datetime) -> bool:
        """Whether `moment` lies in this period: start <= moment < end."""
        moment = require_utc(moment, "moment")
        return self.start <= moment < self.end

    @property
    def length(self) -> timedelta:
        """end − start."""
        return self.end - self.start

    @property
    def seconds(self) -> Fraction:
        """The length in seconds, exactly (microseconds kept as a fraction)."""
        return Fraction(self.length // _MICROSECOND, 1_000_000)

    def __str__(self) -> str:
        return f"{format_instant(self.start)}/{format_instant(self.end)}"


def boundary(anchor: datetime, interval: Interval, index: int, count: int = 1) -> datetime:
    """The `index`-th period boundary from `anchor` (index 0 is the anchor itself).

    The anchor's month plus `index` × `count` months (or years), on the anchor's day or
    the last day of that month when it is shorter, at the anchor's time of day, in UTC
    (SUB-3; SUB-16: `count` is a plan's interval_count, 3 for quarterly).
    """
    anchor = require_utc(anchor, "anchor")
    interval = _require_interval(interval)
    _require_index(index, "boundary index")
    return _boundary(anchor, interval, index, require_count(count))


def period_at(anchor: datetime, interval: Interval, moment: datetime, count: int = 1) -> Period:
    """The period (anchored on `anchor`, of `count` intervals) that contains `moment`; a
    moment exactly on a boundary belongs to the period that starts there. `moment` must
    not be before the anchor. Computed arithmetically, however far `moment` is from the
    anchor."""
    anchor = require_utc(anchor, "anchor")
    interval = _require_interval(interval)
    count = require_count(count)
    moment = require_utc(moment, "moment")
    if moment < anchor:
        raise InvalidInput(
            f"moment {format_instant(moment)} is before the anchor {format_instant(anchor)}"
        )
    months_apart = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    index = months_apart // (interval.months * count)
    # Boundary `index` lies in the calendar month of `moment` or an earlier one, so it can
    # only be later than `moment` within the same month; boundary `index + 1` always lies
    # in a later calendar month than `moment`. One step back is the only correction.
    start = _boundary(anchor, interval, index, count)
    if start > moment:
        index -= 1
        start = _boundary(anchor, interval, index, count)
    return Period(start, _boundary(anchor, interval, index + 1, count), index)


def periods(
    anchor: datetime, interval: Interval, start_index: int = 0, count: int = 1
) -> Iterator[Period]:
    """Consecutive periods from `anchor`, beginning with period `start_index`; endless
    (it stops only past year 9999, with InvalidInput). Arguments are checked at once."""
    anchor = require_utc(anchor, "anchor")
    interval = _require_interval(interval)
    _require_index(start_index, "start index")
    return _periods(anchor, interval, start_index, require_count(count))


MAX_INTERVAL_COUNT = 12
"""SUB-16: the most intervals one period may span (interval_count 1..12)."""


def require_count(count: object, what: str = "interval_count") -> int:
    """A plan's interval_count (SUB-16): a whole number from 1 to MAX_INTERVAL_COUNT."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidInput(f"{what}: expected a whole number, got {count!r}")
    if not 1 <= count <= MAX_INTERVAL_COUNT:
        raise InvalidInput(f"{what}: must be from 1 to {MAX_INTERVAL_COUNT}, got {count}")
    return count


def remaining_fraction(period: Period, at: datetime, mode: ProrationMode) -> Fraction:
    """The unused part of `period` from `at` on, exactly, in proration `mode` (see the
    module docs). `at` must lie in [period.start, period.end]: at the end it is 0, at
    the start 1 (in `second` and `day` modes). Mode `none` always gives 0."""
    if not isinstance(period, Period):
        raise InvalidInput(f"expected a Period, got {period!r}")
    at = require_utc(at, "change time")
    mode = _require_mode(mode)
    if not period.start <= at <= period.end:
        raise InvalidInput(f"change time {format_instant(at)} is outside the period {period}")
    if mode is ProrationMode.NONE:
        return Fraction(0)
    if mode is ProrationMode.SECOND:
        return Fraction((period.end - at) // _MICROSECOND, period.length // _MICROSECOND)
    end_date = period.end.date()
    days = (end_date - period.start.date()).days
    if days == 0:
        raise InvalidInput(
            f"day proration needs a period that crosses a UTC midnight; {period} does not"
        )
    return Fraction((end_date - at.date()).days, days)


# -- helpers -------------------------------------------------------------------------------


def _boundary(anchor: datetime, interval: Interval, index: int, count: int = 1) -> datetime:
    month_number = anchor.year * 12 + (anchor.month - 1) + index * interval.months * count
    year, month_zero = divmod(month_number, 12)
    if year > MAXYEAR:
        raise InvalidInput(
            f"period boundary {index} from anchor {format_instant(anchor)} "
            f"is past the year {MAXYEAR}"
        )
    month = month_zero + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def _periods(anchor: datetime, interval: Interval, index: int, count: int) -> Iterator[Period]:
    start = _boundary(anchor, interval, index, count)
    while True:
        end = _boundary(anchor, interval, index + 1, count)
        yield Period(start, end, index)
        start, index = end, index + 1


def _require_index(index: object, what: str) -> None:
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidInput(f"{what}: expected a whole number, got {index!r}")
    if index < 0:
        raise InvalidInput(f"{what}: must not be negative, got {index}")


def _require_interval(interval: object) -> Interval:
    member = _member(Interval, interval)
    if member is None:
        raise InvalidInput(_unknown("interval", interval, Interval))
    return member


def _require_mode(mode: object) -> ProrationMode:
    member = _member(ProrationMode, mode)
    if member is None:
        raise InvalidInput(_unknown("proration mode", mode, ProrationMode))
    return member


def _member(kind: type[_E], value: object) -> _E | None:
    if not isinstance(value, str):
        return None
    for member in kind:
        if member.value == value:
            return member
    return None


def _unknown(what: str, value: object, kind: type[StrEnum]) -> str:
    names = [member.value for member in kind]
    expected = ", ".join(names[:-1]) + " or " + names[-1]
    if isinstance(value, str):
        return f"unknown {what} {value!r}; expected {expected}"
    article = "an" if what[0] in "aeiou" else "a"
    return f"expected {article} {what} ({expected}), got {value!r}"
