"""Billing anchors, calendar billing and interval_count (SUB-16), and a plan's own trial in
the catalog (SUB-15): pure, no database."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.anchors import (
    Billing,
    anchor_day_for,
    first_cycle,
    first_period_lines,
    require_anchor_day,
)
from tabkeeper.domain.catalog import Catalog, build_catalog
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency
from tabkeeper.domain.periods import Interval, ProrationMode, boundary, period_at
from tabkeeper.domain.slots import interval_total, priced_for
from tabkeeper.domain.terms import build_terms

USD = Currency.of("USD")


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def _catalog(**extra: Any) -> Catalog:
    plans: dict[str, Any] = {
        "basic": {"name": "Basic", "price": "31.00"},
        "quarterly": {"name": "Quarterly", "price": "90.00", "interval_count": 3},
        "yearly": {"name": "Yearly", "price": "365.00", "interval": "year"},
        **extra,
    }
    return build_catalog(
        {
            "plans": plans,
            "addons": {
                "extra": {"name": "Extra", "price": "10.00", "requires_plans": ["basic"]},
            },
        },
        USD,
    )


CATALOG = _catalog()


# -------------------------------------------------------------- the first cycle
@pytest.mark.parametrize(
    ("plan", "start", "day", "period", "then"),
    [
        # anchor on the 1st, signup on the 17th: Jan 1 – Feb 1 entered on Jan 17
        ("basic", _utc(2026, 1, 17, 10), 1, (_utc(2026, 1, 1), _utc(2026, 2, 1)), _utc(2026, 3, 1)),
        # the start on the anchor day at 00:00: a whole first period
        ("basic", _utc(2026, 2, 1), 1, (_utc(2026, 2, 1), _utc(2026, 3, 1)), _utc(2026, 4, 1)),
        # 31st in February: Feb 28, then back to the 31st
        ("basic", _utc(2026, 2, 10), 31, (_utc(2026, 1, 31), _utc(2026, 2, 28)), _utc(2026, 3, 31)),
        ("basic", _utc(2026, 3, 5), 31, (_utc(2026, 2, 28), _utc(2026, 3, 31)), _utc(2026, 4, 30)),
        # leap February with calendar billing
        ("basic", _utc(2028, 2, 29), 1, (_utc(2028, 2, 1), _utc(2028, 3, 1)), _utc(2028, 4, 1)),
        # quarterly from Jan 31, no anchor: clamped like months
        ("quarterly", _utc(2026, 1, 31), None, (_utc(2026, 1, 31), _utc(2026, 4, 30)),
         _utc(2026, 7, 31)),
        # quarterly, anchor 31, signup Feb 10: the quarter Nov 30 – Feb 28 entered
        ("quarterly", _utc(2026, 2, 10), 31, (_utc(2025, 11, 30), _utc(2026, 2, 28)),
         _utc(2026, 5, 31)),
        # yearly on the 1st
        ("yearly", _utc(2026, 5, 20), 1, (_utc(2025, 6, 1), _utc(2026, 6, 1)), _utc(2027, 6, 1)),
        # yearly on Feb 30: February never has it; it stays on the month's last day
        ("yearly", _utc(2026, 2, 10), 30, (_utc(2025, 2, 28), _utc(2026, 2, 28)),
         _utc(2027, 2, 28)),
    ],
)  # fmt: skip
def test_sub16_first_cycle_is_the_grid_period_holding_the_start(
    plan: str, start: datetime, day: int | None, period: tuple[datetime, datetime], then: datetime
) -> None:
    """SUB-16: the first period is the anchor grid's period that holds the start; the next
    boundary follows the anchor day (clamped, returning to it), every interval_count."""
    cycle = first_cycle(CATALOG.plan(plan), start, day)
    assert (cycle.period.start, cycle.period.end) == period
    assert cycle.period.start <= start < cycle.period.end
    assert cycle.renew().period.end == then


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=1, max_value=31),
    st.sampled_from(["basic", "quarterly", "yearly"]),
)
def test_sub16_first_cycle_always_holds_the_start_and_ends_on_the_anchor_day(
    naive: datetime, day: int, plan: str
) -> None:
    """SUB-16: for any start and anchor day, the first period holds the start, and every
    boundary after it is at 00:00 on the anchor day or the last day of a shorter month."""
    start = naive.replace(tzinfo=UTC)
    cycle = first_cycle(CATALOG.plan(plan), start, day)
    assert cycle.period.start <= start < cycle.period.end
    for _ in range(3):
        end = cycle.period.end
        assert (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0)
        assert end.day == min(day, calendar.monthrange(end.year, end.month)[1])
        cycle = cycle.renew()


def test_sub16_first_period_lines_prorate_plan_and_addons_once() -> None:
    """SUB-16: the first, partial period bills each line quantity × price × the remaining
    fraction, rounded once; in mode none the whole price; a whole first period gives None."""
    plan, addon = CATALOG.plan("basic"), CATALOG.addon("extra")
    start = _utc(2026, 1, 17, 10)
    cycle = first_cycle(plan, start, 1)
    lines = first_period_lines(plan, [(addon, 1)], cycle, start, ProrationMode.DAY)
    assert lines is not None
    assert [(line.description, line.amount_minor) for line in lines] == [
        ("Basic (Jan 17 – Feb 1, first period)", 1500),  # 3100 × 15/31
        ("Extra (Jan 17 – Feb 1, first period)", 484),  # 1000 × 15/31 = 483.87
    ]
    assert lines[0].details["fraction"] == "15/31"
    second = first_period_lines(plan, [], cycle, start, ProrationMode.SECOND)
    assert second is not None
    exact = Fraction(int((_utc(2026, 2, 1) - start).total_seconds()), 31 * 86400)
    assert second[0].details["fraction"] == f"{exact.numerator}/{exact.denominator}"
    none = first_period_lines(plan, [], cycle, start, ProrationMode.NONE)
    assert none is not None and none[0].amount_minor == 3100
    whole = first_cycle(plan, _utc(2026, 2, 1), 1)
    assert first_period_lines(plan, [], whole, _utc(2026, 2, 1), ProrationMode.DAY) is None


# -------------------------------------------------------------- refusals
@pytest.mark.parametrize("bad", [0, 32, -1, 100, True, "1", 1.0, None])
def test_sub16_anchor_outside_1_to_31_is_refused(bad: object) -> None:
    """SUB-16: an anchor is a day of the month 1..31; tried: 0, 32, -1, 100, true, "1",
    1.0 and null (null is "no anchor" only where the anchor is optional)."""
    with pytest.raises(InvalidInput) as caught:
        require_anchor_day(bad)
    assert caught.value.code == "invalid_anchor"


def test_sub16_calendar_billing_anchors_on_the_first_unless_asked() -> None:
    """SUB-16: settings billing: calendar means anchor 1 for every subscription; an anchor
    asked for wins; anniversary billing has none."""
    assert anchor_day_for(None, Billing.CALENDAR) == 1
    assert anchor_day_for(15, Billing.CALENDAR) == 15
    assert anchor_day_for(None, Billing.ANNIVERSARY) is None
    assert build_terms({"billing": "calendar"}).billing is Billing.CALENDAR
    assert build_terms(None).billing is Billing.ANNIVERSARY


@pytest.mark.parametrize("bad", ["weekly", "Calendar", 1, None, True])
def test_sub16_bad_billing_setting_is_refused(bad: object) -> None:
    """SUB-16: settings.billing is anniversary or calendar; tried weekly, Calendar, 1,
    null, true."""
    with pytest.raises(InvalidConfig, match=r"^settings\.billing: "):
        build_terms({"billing": bad})


@pytest.mark.parametrize(
    ("field", "bad", "problem"),
    [
        ("interval_count", 0, "must be at least 1, got 0"),
        ("interval_count", -3, "must be at least 1, got -3"),
        ("interval_count", 13, "must be at most 12, got 13"),
        ("interval_count", "3", "expected a whole number, got '3'"),
        ("interval_count", 1.5, "expected a whole number, got 1.5"),
        ("interval_count", True, "expected a whole number, got True"),
        ("trial_days", 0, "must be at least 1, got 0"),
        ("trial_days", 366, "must be at most 365, got 366"),
        ("trial_days", "14", "expected a whole number, got '14'"),
    ],
)
def test_sub15_sub16_bad_plan_fields_are_refused_at_import(
    field: str, bad: object, problem: str
) -> None:
    """SUB-15, SUB-16: a catalog with a bad interval_count (0, -3, 13, "3", 1.5, true) or
    trial_days (0, 366, "14") is refused whole, naming the path."""
    with pytest.raises(InvalidConfig) as caught:
        _catalog(bad={"name": "Bad", "price": "1.00", field: bad})
    assert str(caught.value) == f"plans.bad.{field}: {problem}"


def test_sub16_addons_on_a_quarterly_plan_cost_three_months_a_period() -> None:
    """SUB-16, CAT-8: an add-on sold with a plan billed every 3 months bills 3 × its
    monthly price a period (and in a first, partial period that times the fraction)."""
    catalog = build_catalog(
        {
            "plans": {"q": {"name": "Q", "price": "90.00", "interval_count": 3}},
            "addons": {"extra": {"name": "Extra", "price": "10.00"}},
        },
        USD,
    )
    plan, addon = catalog.plan("q"), catalog.addon("extra")
    assert priced_for(addon, plan).price_for(Interval.MONTH).minor == 3000
    assert priced_for(addon, CATALOG.plan("basic")) is addon
    assert interval_total(catalog, plan, {"extra": 2}).minor == 9000 + 6000
    start = _utc(2026, 2, 10)
    lines = first_period_lines(
        plan, [(priced_for(addon, plan), 1)], first_cycle(plan, start, 31), start,
        ProrationMode.DAY,
    )  # fmt: skip
    assert lines is not None
    assert [line.amount_minor for line in lines] == [1800, 600]  # 18/90 of 9000 and 3000


def test_sub16_quarterly_plan_costs_per_day_over_90_days() -> None:
    """SUB-16: plan changes compare prices per day: a quarter divides by 90."""
    quarterly = CATALOG.plan("quarterly")
    assert quarterly.cadence == (Interval.MONTH, 3)
    assert quarterly.price_per_day() == Fraction(9000, 100 * 90)


def test_sub16_periods_of_several_intervals() -> None:
    """SUB-16: boundaries and period_at step interval_count months from the anchor."""
    anchor = _utc(2026, 1, 31)
    assert boundary(anchor, Interval.MONTH, 1, 3) == _utc(2026, 4, 30)
    assert boundary(anchor, Interval.MONTH, 4, 3) == _utc(2027, 1, 31)
    found = period_at(anchor, Interval.MONTH, _utc(2026, 5, 15), 3)
    assert (found.start, found.end, found.index) == (_utc(2026, 4, 30), _utc(2026, 7, 31), 1)
    with pytest.raises(InvalidInput, match="interval_count"):
        boundary(anchor, Interval.MONTH, 1, 0)
