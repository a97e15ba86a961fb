"""Billing periods and proration (SUB-3; SCENARIOS.md "Periods", "Proration", "Plan changes")."""

import itertools
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.periods import (
    Interval,
    Period,
    ProrationMode,
    boundary,
    interval_days,
    period_at,
    periods,
    remaining_fraction,
)

MONTH = Interval.MONTH
YEAR = Interval.YEAR
SECOND = ProrationMode.SECOND
DAY = ProrationMode.DAY
NONE = ProrationMode.NONE
USD = Currency.of("USD")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def d(text: str) -> datetime:
    """A UTC midnight from "YYYY-MM-DD"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the enums -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interval"), [("month", MONTH), ("year", YEAR), (Interval.YEAR, YEAR)]
)
def test_interval_parse(text: object, interval: Interval) -> None:
    assert Interval.parse(text, "plans.pro.interval") is interval


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("weekly", r"^plans\.pro\.interval: unknown interval 'weekly'; expected month or year$"),
        ("Month", r"unknown interval 'Month'; expected month or year"),
        ("", r"unknown interval ''; expected month or year"),
        (None, r"^plans\.pro\.interval: expected an interval \(month or year\), got None$"),
        (1, r"expected an interval \(month or year\), got 1"),
        (["month"], r"got \['month'\]"),
    ],
)
def test_interval_parse_refuses_unknown_values(value: object, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as caught:
        Interval.parse(value, "plans.pro.interval")
    assert caught.value.path == "plans.pro.interval"


@pytest.mark.parametrize(
    ("text", "mode"), [("second", SECOND), ("day", DAY), ("none", NONE), (DAY, DAY)]
)
def test_proration_mode_parse(text: object, mode: ProrationMode) -> None:
    assert ProrationMode.parse(text, "settings.proration") is mode


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "hour",
            r"^settings\.proration: unknown proration mode 'hour'; "
            r"expected second, day or none$",
        ),
        ("DAY", r"unknown proration mode 'DAY'"),
        (None, r"expected a proration mode \(second, day or none\), got None"),
        (0, r"got 0$"),
    ],
)
def test_proration_mode_parse_refuses_unknown_values(value: object, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        ProrationMode.parse(value, "settings.proration")


@pytest.mark.parametrize(("interval", "days", "months"), [(MONTH, 30, 1), (YEAR, 365, 12)])
def test_interval_days_for_rate_comparison(interval: Interval, days: int, months: int) -> None:
    """SCENARIOS.md "Plan changes": price per day is price / 30 for month, / 365 for year."""
    assert interval.days_for_rate == days
    assert interval_days(interval) == days
    assert interval.months == months


def test_interval_days_refuses_unknown_interval() -> None:
    with pytest.raises(InvalidInput, match="unknown interval 'week'"):
        interval_days("week")  # type: ignore[arg-type]


@pytest.mark.parametrize(("mode", "prorates"), [(SECOND, True), (DAY, True), (NONE, False)])
def test_only_none_skips_proration_lines(mode: ProrationMode, prorates: bool) -> None:
    assert mode.prorates is prorates


# -- boundaries (SUB-3) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "interval", "expected"),
    [
        (
            "2026-01-31",
            MONTH,
            ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"],
        ),
        (
            "2028-01-31",
            MONTH,
            ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31"],
        ),
        (
            "2026-01-30",
            MONTH,
            ["2026-01-30", "2026-02-28", "2026-03-30", "2026-04-30", "2026-05-30"],
        ),
        ("2028-01-30", MONTH, ["2028-01-30", "2028-02-29", "2028-03-30"]),
        ("2026-01-29", MONTH, ["2026-01-29", "2026-02-28", "2026-03-29", "2026-04-29"]),
        ("2028-01-29", MONTH, ["2028-01-29", "2028-02-29", "2028-03-29"]),
        (
            "2026-03-31",
            MONTH,
            ["2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-31"],
        ),
        (
            "2026-08-31",
            MONTH,
            ["2026-08-31", "2026-09-30", "2026-10-31", "2026-11-30", "2026-12-31"],
        ),
        ("2026-12-31", MONTH, ["2026-12-31", "2027-01-31", "2027-02-28", "2027-03-31"]),
        ("2026-01-15", MONTH, ["2026-01-15", "2026-02-15", "2026-03-15"]),
        (
            "2028-02-29",
            YEAR,
            ["2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29"],
        ),
        ("2026-01-31", YEAR, ["2026-01-31", "2027-01-31", "2028-01-31"]),
        ("2099-02-28", YEAR, ["2099-02-28", "2100-02-28", "2101-02-28"]),
    ],
)
def test_sub3_boundaries_clamp_to_month_end_and_return_to_anchor_day(
    anchor: str, interval: Interval, expected: list[str]
) -> None:
    """SUB-3: anchored on the start date; the 29th–31st bills on the last day of shorter
    months and returns to the anchor day after."""
    got = [boundary(d(anchor), interval, k) for k in range(len(expected))]
    assert got == [d(day) for day in expected]
    listed = [p.start for p, _ in zip(periods(d(anchor), interval), expected, strict=False)]
    assert listed == [d(day) for day in expected]


@pytest.mark.parametrize(
    ("anchor", "interval", "index", "expected"),
    [
        (utc(2026, 1, 31, 10, 30, 15, 123456), MONTH, 1, utc(2026, 2, 28, 10, 30, 15, 123456)),
        (utc(2026, 1, 31, 23, 59, 59, 999999), MONTH, 2, utc(2026, 3, 31, 23, 59, 59, 999999)),
        (utc(2028, 2, 29, 6, 0), YEAR, 1, utc(2029, 2, 28, 6, 0)),
        (utc(2026, 1, 31, 10, 30), MONTH, 1200, utc(2126, 1, 31, 10, 30)),
        (utc(2026, 1, 31, 10, 30), MONTH, 1201, utc(2126, 2, 28, 10, 30)),
        # 23:30 at UTC−5 is 04:30 UTC on Feb 1: the UTC day and time are the anchor.
        (
            datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            MONTH,
            1,
            utc(2026, 3, 1, 4, 30),
        ),
    ],
)
def test_sub3_boundaries_keep_the_anchor_time_of_day_in_utc(
    anchor: datetime, interval: Interval, index: int, expected: datetime
) -> None:
    """SUB-3: every boundary is at the anchor's UTC time of day."""
    got = boundary(anchor, interval, index)
    assert got == expected
    assert got.tzinfo is UTC


def test_boundary_zero_is_the_anchor() -> None:
    anchor = utc(2026, 5, 17, 8, 9, 10)
    assert boundary(anchor, MONTH, 0) == anchor
    assert boundary(anchor, YEAR, 0) == anchor


@pytest.mark.parametrize(
    ("anchor", "interval", "index", "message"),
    [
        (datetime(2026, 1, 31), MONTH, 1, r"anchor: 2026-01-31T00:00:00 has no timezone"),
        ("2026-01-31", MONTH, 1, r"anchor: expected a datetime, got '2026-01-31'"),
        (utc(2026, 1, 31), "weekly", 1, r"unknown interval 'weekly'; expected month or year"),
        (utc(2026, 1, 31), None, 1, r"expected an interval \(month or year\), got None"),
        (utc(2026, 1, 31), MONTH, -1, r"boundary index: must not be negative, got -1"),
        (utc(2026, 1, 31), MONTH, 1.0, r"boundary index: expected a whole number, got 1\.0"),
        (utc(2026, 1, 31), MONTH, True, r"boundary index: expected a whole number, got True"),
        (utc(9999, 6, 1), YEAR, 1, r"period boundary 1 from anchor 9999-06-01T00:00:00Z is past"),
        (utc(9999, 12, 1), MONTH, 1, r"is past the year 9999"),
    ],
)
def test_boundary_refuses_bad_input(
    anchor: object, interval: object, index: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        boundary(anchor, interval, index)  # type: ignore[arg-type]


def test_boundary_at_the_end_of_time_is_allowed() -> None:
    assert boundary(utc(9998, 12, 31), MONTH, 12) == utc(9999, 12, 31)


# -- Period ----------------------------------------------------------------------------------


def test_period_is_half_open() -> None:
    period = Period(utc(2026, 4, 1), utc(2026, 5, 1), 3)
    assert period.contains(utc(2026, 4, 1))
    assert period.contains(utc(2026, 4, 30, 23, 59, 59, 999999))
    assert not period.contains(utc(2026, 5, 1))
    assert not period.contains(utc(2026, 3, 31, 23, 59, 59, 999999))
    assert period.length == timedelta(days=30)
    assert period.seconds == 30 * 86400
    assert str(period) == "2026-04-01T00:00:00Z/2026-05-01T00:00:00Z"


def test_period_seconds_are_exact_with_microseconds() -> None:
    period = Period(utc(2026, 4, 1), utc(2026, 4, 1, 0, 0, 1, 500000), 0)
    assert period.seconds == Fraction(3, 2)
    assert str(period) == "2026-04-01T00:00:00Z/2026-04-01T00:00:01.500000Z"


def test_period_converts_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    period = Period(datetime(2026, 4, 1, 2, tzinfo=plus2), datetime(2026, 5, 1, 2, tzinfo=plus2), 0)
    assert period.start == utc(2026, 4, 1)
    assert period.start.tzinfo is UTC
    assert period.end == utc(2026, 5, 1)
    assert period.contains(datetime(2026, 4, 1, 2, tzinfo=plus2))


@pytest.mark.parametrize(
    ("start", "end", "index", "message"),
    [
        (
            utc(2026, 5, 1),
            utc(2026, 4, 1),
            0,
            r"must end after it starts: start 2026-05-01T00:00:00Z",
        ),
        (utc(2026, 5, 1), utc(2026, 5, 1), 0, r"end 2026-05-01T00:00:00Z$"),
        (datetime(2026, 4, 1), utc(2026, 5, 1), 0, r"period start: .* has no timezone"),
        (utc(2026, 4, 1), datetime(2026, 5, 1), 0, r"period end: .* has no timezone"),
        (utc(2026, 4, 1), utc(2026, 5, 1), -2, r"period index: must not be negative"),
        (utc(2026, 4, 1), utc(2026, 5, 1), "0", r"period index: expected a whole number"),
    ],
)
def test_period_refuses_bad_input(start: object, end: object, index: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Period(start, end, index)  # type: ignore[arg-type]


def test_period_contains_refuses_naive_moment() -> None:
    period = Period(utc(2026, 4, 1), utc(2026, 5, 1), 0)
    with pytest.raises(InvalidInput, match="moment: 2026-04-02T00:00:00 has no timezone"):
        period.contains(datetime(2026, 4, 2))


# -- period_at and periods -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "interval", "moment", "start", "end", "index"),
    [
        # the anchor itself starts period 0
        (d("2026-01-31"), MONTH, d("2026-01-31"), "2026-01-31", "2026-02-28", 0),
        # exactly at a boundary: the new period; just before: the old one
        (d("2026-01-31"), MONTH, d("2026-02-28"), "2026-02-28", "2026-03-31", 1),
        (
            d("2026-01-31"),
            MONTH,
            d("2026-02-28") - timedelta(microseconds=1),
            "2026-01-31",
            "2026-02-28",
            0,
        ),
        # earlier in a month than the anchor day: the period that began last month
        (d("2026-01-31"), MONTH, d("2026-03-15"), "2026-02-28", "2026-03-31", 1),
        (d("2026-01-31"), MONTH, d("2026-03-31"), "2026-03-31", "2026-04-30", 2),
        (d("2026-01-15"), MONTH, d("2026-01-16"), "2026-01-15", "2026-02-15", 0),
        # 100 years on: index 1200, computed without walking
        (d("2026-01-31"), MONTH, d("2126-01-31"), "2126-01-31", "2126-02-28", 1200),
        (d("2026-01-31"), MONTH, d("2126-01-30"), "2125-12-31", "2126-01-31", 1199),
        (d("2028-02-29"), YEAR, d("2029-02-28"), "2029-02-28", "2030-02-28", 1),
        (d("2028-02-29"), YEAR, d("2032-02-28"), "2031-02-28", "2032-02-29", 3),
        (d("2028-02-29"), YEAR, d("2032-02-29"), "2032-02-29", "2033-02-28", 4),
        (d("2028-02-29"), YEAR, d("2128-03-01"), "2128-02-29", "2129-02-28", 100),
        (d("2026-06-10"), YEAR, d("2027-01-01"), "2026-06-10", "2027-06-10", 0),
    ],
)
def test_sub3_period_at(
    anchor: datetime,
    interval: Interval,
    moment: datetime,
    start: str,
    end: str,
    index: int,
) -> None:
    """SUB-3: the period containing a moment; a boundary belongs to the period it starts."""
    period = period_at(anchor, interval, moment)
    assert period == Period(d(start), d(end), index)
    assert period.contains(moment)


def test_period_at_keeps_time_of_day() -> None:
    anchor = utc(2026, 1, 31, 10, 30)
    assert period_at(anchor, MONTH, utc(2026, 2, 28, 10, 29)) == Period(
        anchor, utc(2026, 2, 28, 10, 30), 0
    )
    assert period_at(anchor, MONTH, utc(2026, 2, 28, 10, 30)) == Period(
        utc(2026, 2, 28, 10, 30), utc(2026, 3, 31, 10, 30), 1
    )


@pytest.mark.parametrize(
    ("anchor", "interval", "moment", "exception", "message"),
    [
        (
            d("2026-01-31"),
            MONTH,
            d("2026-01-30"),
            InvalidInput,
            r"moment 2026-01-30T00:00:00Z is before the anchor 2026-01-31T00:00:00Z",
        ),
        (datetime(2026, 1, 31), MONTH, d("2026-02-01"), InvalidInput, r"anchor: .* no timezone"),
        (d("2026-01-31"), MONTH, datetime(2026, 2, 1), InvalidInput, r"moment: .* no timezone"),
        (d("2026-01-31"), "monthly", d("2026-02-01"), InvalidInput, r"unknown interval 'monthly'"),
        (d("2026-01-31"), MONTH, d("9999-12-31"), InvalidInput, r"past the year 9999"),
    ],
)
def test_period_at_refuses_bad_input(
    anchor: object, interval: object, moment: object, exception: type[Exception], message: str
) -> None:
    with pytest.raises(exception, match=message):
        period_at(anchor, interval, moment)  # type: ignore[arg-type]


def test_plain_strings_name_intervals_and_modes() -> None:
    """The enum values themselves are accepted where an Interval or mode is expected."""
    assert period_at(d("2026-01-31"), "month", d("2026-02-01")).index == 0  # type: ignore[arg-type]
    period = Period(d("2026-04-01"), d("2026-05-01"), 0)
    assert remaining_fraction(period, d("2026-04-16"), "day") == Fraction(1, 2)  # type: ignore[arg-type]


def test_periods_from_a_start_index() -> None:
    stream = periods(d("2026-01-31"), MONTH, start_index=1)
    assert [next(stream) for _ in range(3)] == [
        Period(d("2026-02-28"), d("2026-03-31"), 1),
        Period(d("2026-03-31"), d("2026-04-30"), 2),
        Period(d("2026-04-30"), d("2026-05-31"), 3),
    ]


@pytest.mark.parametrize(
    ("anchor", "interval", "start_index", "message"),
    [
        (datetime(2026, 1, 31), MONTH, 0, r"anchor: .* no timezone"),
        (d("2026-01-31"), "daily", 0, r"unknown interval 'daily'"),
        (d("2026-01-31"), MONTH, -1, r"start index: must not be negative, got -1"),
        (d("2026-01-31"), MONTH, "1", r"start index: expected a whole number, got '1'"),
    ],
)
def test_periods_checks_arguments_at_once(
    anchor: object, interval: object, start_index: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        periods(anchor, interval, start_index)  # type: ignore[arg-type]


def test_periods_stop_past_the_end_of_time() -> None:
    stream = periods(d("9999-10-31"), MONTH)
    assert next(stream) == Period(d("9999-10-31"), d("9999-11-30"), 0)
    assert next(stream) == Period(d("9999-11-30"), d("9999-12-31"), 1)
    with pytest.raises(InvalidInput, match="past the year 9999"):
        next(stream)


# -- proration -------------------------------------------------------------------------------

APRIL = Period(d("2026-04-01"), d("2026-05-01"), 3)
AT_1030 = Period(utc(2026, 4, 1, 10, 30), utc(2026, 5, 1, 10, 30), 0)


@pytest.mark.parametrize(
    ("period", "at", "mode", "fraction"),
    [
        # SCENARIOS.md worked example: Apr 1 → May 1, change Apr 16 12:00
        (APRIL, utc(2026, 4, 16, 12), DAY, Fraction(1, 2)),
        (APRIL, utc(2026, 4, 16, 12), SECOND, Fraction(29, 60)),
        (APRIL, utc(2026, 4, 16, 12), NONE, Fraction(0)),
        (APRIL, d("2026-04-01"), SECOND, Fraction(1)),
        (APRIL, d("2026-04-01"), DAY, Fraction(1)),
        (APRIL, d("2026-05-01"), SECOND, Fraction(0)),
        (APRIL, d("2026-05-01"), DAY, Fraction(0)),
        (APRIL, utc(2026, 4, 30, 23, 59, 59), DAY, Fraction(1, 30)),
        (APRIL, utc(2026, 4, 30, 23, 59, 59), SECOND, Fraction(1, 30 * 86400)),
        (APRIL, utc(2026, 4, 30, 23, 59, 59, 999999), SECOND, Fraction(1, 30 * 86400 * 10**6)),
        (APRIL, d("2026-04-01"), NONE, Fraction(0)),
        # boundaries at 10:30: the dates of start and end as they are
        (AT_1030, utc(2026, 4, 1, 10, 30), DAY, Fraction(1)),
        (AT_1030, utc(2026, 4, 1, 23, 0), DAY, Fraction(1)),
        (AT_1030, utc(2026, 4, 2, 0, 0), DAY, Fraction(29, 30)),
        (AT_1030, utc(2026, 4, 16, 12), DAY, Fraction(1, 2)),
        (AT_1030, utc(2026, 5, 1, 9, 0), DAY, Fraction(0)),
        (AT_1030, utc(2026, 5, 1, 10, 30), DAY, Fraction(0)),
        (AT_1030, utc(2026, 4, 16, 10, 30), SECOND, Fraction(1, 2)),
        # a February period of a Jan 31 anchor: 31 days (Jan 31 → Feb 28 is 28)
        (Period(d("2026-02-28"), d("2026-03-31"), 1), d("2026-03-15"), DAY, Fraction(16, 31)),
        (Period(d("2026-01-31"), d("2026-02-28"), 0), d("2026-02-14"), DAY, Fraction(1, 2)),
        # a yearly period
        (Period(d("2028-02-29"), d("2029-02-28"), 0), d("2028-08-30"), DAY, Fraction(182, 365)),
        # a short period across one midnight
        (Period(utc(2026, 4, 1, 23), utc(2026, 4, 2, 1), 0), utc(2026, 4, 1, 23, 30), DAY, 1),
        (Period(utc(2026, 4, 1, 23), utc(2026, 4, 2, 1), 0), utc(2026, 4, 2, 0, 30), DAY, 0),
    ],
)
def test_remaining_fraction(
    period: Period, at: datetime, mode: ProrationMode, fraction: Fraction
) -> None:
    """SCENARIOS.md "Proration": second, day (change day counts as remaining), none."""
    got = remaining_fraction(period, at, mode)
    assert isinstance(got, Fraction)
    assert got == fraction


def test_upgrade_day_proration_worked_example() -> None:
    """SUB-5 / SCENARIOS.md upgrade-day-proration: Basic 30.00 → Pro 60.00 on Apr 16, day
    proration: −1500 + 3000 = 1500."""
    fraction = remaining_fraction(APRIL, utc(2026, 4, 16, 12), DAY)
    credit = -Money(3000, USD).times(fraction)
    charge = Money(6000, USD).times(fraction)
    assert (credit.minor, charge.minor, (credit + charge).minor) == (-1500, 3000, 1500)


@pytest.mark.parametrize(
    ("period", "at", "mode", "message"),
    [
        (
            APRIL,
            utc(2026, 3, 31, 23, 59),
            SECOND,
            r"^change time 2026-03-31T23:59:00Z is outside the period "
            r"2026-04-01T00:00:00Z/2026-05-01T00:00:00Z$",
        ),
        (APRIL, utc(2026, 5, 1, 0, 0, 0, 1), DAY, r"2026-05-01T00:00:00.000001Z is outside"),
        (APRIL, utc(2026, 6, 1), NONE, r"is outside the period"),
        (APRIL, datetime(2026, 4, 16), DAY, r"change time: 2026-04-16T00:00:00 has no timezone"),
        (APRIL, utc(2026, 4, 16), "hourly", r"unknown proration mode 'hourly'"),
        (APRIL, utc(2026, 4, 16), None, r"expected a proration mode \(second, day or none\)"),
        ("2026-04", utc(2026, 4, 16), DAY, r"expected a Period, got '2026-04'"),
        (
            Period(utc(2026, 4, 1, 10), utc(2026, 4, 1, 12), 0),
            utc(2026, 4, 1, 11),
            DAY,
            r"day proration needs a period that crosses a UTC midnight; "
            r"2026-04-01T10:00:00Z/2026-04-01T12:00:00Z does not",
        ),
    ],
)
def test_remaining_fraction_refuses_bad_input(
    period: object, at: object, mode: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        remaining_fraction(period, at, mode)  # type: ignore[arg-type]


def test_sub_day_period_prorates_by_second() -> None:
    period = Period(utc(2026, 4, 1, 10), utc(2026, 4, 1, 12), 0)
    assert remaining_fraction(period, utc(2026, 4, 1, 11), SECOND) == Fraction(1, 2)
    assert remaining_fraction(period, utc(2026, 4, 1, 11), NONE) == 0


# -- properties ------------------------------------------------------------------------------

anchors = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(UTC),
)
intervals = st.sampled_from(list(Interval))
modes = st.sampled_from(list(ProrationMode))
offsets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100 * 366))


def _last_day(moment: datetime) -> int:
    next_month = (moment.replace(day=1) + timedelta(days=32)).replace(day=1)
    return (next_month - timedelta(days=1)).day


@given(anchors, intervals, st.integers(min_value=0, max_value=1300))
def test_property_periods_never_skip_or_overlap(
    anchor: datetime, interval: Interval, start_index: int
) -> None:
    """Property: SUB-3 — the periods from any anchor never skip or overlap, and each starts
    on the anchor day whenever its month has it (else on the month's last day), at the
    anchor's time of day."""
    stream = periods(anchor, interval, start_index)
    listed = [next(stream) for _ in range(26)]
    for expected_index, period in enumerate(listed, start=start_index):
        assert period.index == expected_index
        assert period.start < period.end
        assert period.start == boundary(anchor, interval, expected_index)
        assert period.start.day == min(anchor.day, _last_day(period.start))
        assert period.start.timetz() == anchor.timetz()
    for earlier, later in itertools.pairwise(listed):
        assert earlier.end == later.start


@given(anchors, intervals, offsets)
def test_property_period_at_contains_the_moment(
    anchor: datetime, interval: Interval, offset: timedelta
) -> None:
    """Property: period_at(anchor, m) contains m and is the anchored period of its index."""
    moment = anchor + offset
    period = period_at(anchor, interval, moment)
    assert period.contains(moment)
    assert period.start == boundary(anchor, interval, period.index)
    assert period.end == boundary(anchor, interval, period.index + 1)


@given(anchors, intervals, st.integers(min_value=0, max_value=2400))
def test_property_a_boundary_starts_its_own_period(
    anchor: datetime, interval: Interval, index: int
) -> None:
    """Property: SUB-3 — the moment of boundary k belongs to period k, the microsecond
    before it to period k − 1."""
    moment = boundary(anchor, interval, index)
    assert period_at(anchor, interval, moment).index == index
    if index > 0:
        before = moment - timedelta(microseconds=1)
        assert period_at(anchor, interval, before).index == index - 1


@st.composite
def period_and_times(draw: st.DrawFn) -> tuple[Period, datetime, datetime]:
    """An anchored period and two instants in [start, end], earlier first."""
    anchor = draw(anchors)
    interval = draw(intervals)
    period = period_at(anchor, interval, anchor + draw(offsets))
    span = period.length // timedelta(microseconds=1)
    first, second = sorted(draw(st.integers(min_value=0, max_value=span)) for _ in range(2))
    return (
        period,
        period.start + timedelta(microseconds=first),
        period.start + timedelta(microseconds=second),
    )


@given(period_and_times(), modes)
def test_property_remaining_fraction_is_between_zero_and_one(
    drawn: tuple[Period, datetime, datetime], mode: ProrationMode
) -> None:
    """Property: the remaining fraction is an exact Fraction in [0, 1]."""
    period, at, _ = drawn
    fraction = remaining_fraction(period, at, mode)
    assert isinstance(fraction, Fraction)
    assert 0 <= fraction <= 1


@given(period_and_times(), modes)
def test_property_remaining_fraction_never_grows_with_time(
    drawn: tuple[Period, datetime, datetime], mode: ProrationMode
) -> None:
    """Property: a later change never leaves more of the period: remaining_fraction is
    monotone non-increasing in `at`."""
    period, earlier, later = drawn
    assert remaining_fraction(period, earlier, mode) >= remaining_fraction(period, later, mode)


@given(period_and_times(), modes, st.integers(min_value=-(10**12), max_value=10**12))
def test_property_immediate_change_to_the_same_plan_prorates_to_zero(
    drawn: tuple[Period, datetime, datetime], mode: ProrationMode, minor: int
) -> None:
    """Property: an immediate change to the same plan prorates to exactly zero: the credit
    line −price × f plus the charge line price × f sums to 0."""
    period, at, _ = drawn
    price = Money(minor, USD)
    fraction = remaining_fraction(period, at, mode)
    credit = -price.times(fraction)
    charge = price.times(fraction)
    assert credit + charge == Money.zero(USD)
