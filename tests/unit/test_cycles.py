"""The billing cycle as a value (domain/cycles.py): SUB-3 (periods anchored on the start),
SUB-5 and SCENARIOS "Plan changes" (a change of interval anchors anew), SUB-11 (a restore
after the paid period starts a new period at the payment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.cycles import Cycle
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.periods import Interval, Period, periods

JAN_31 = datetime(2026, 1, 31, 10, 30, tzinfo=UTC)
M, Y = Interval.MONTH, Interval.YEAR


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(list(Interval)),
    st.integers(min_value=0, max_value=40),
)
def test_sub_3_renewals_walk_the_anchored_periods(
    start: datetime, interval: Interval, n: int
) -> None:
    """SUB-3: renewing n times gives the n-th period anchored on the start, whatever n."""
    cycle = Cycle.start("basic", interval, start)
    for _ in range(n):
        cycle = cycle.renew()
    expected = next(p for i, p in enumerate(periods(start, interval)) if i == n)
    assert cycle.period == expected
    assert cycle.anchor == start and cycle.index == n


def test_sub_3_an_anchor_on_the_31st_falls_on_month_ends_and_returns() -> None:
    cycle = Cycle.start("basic", M, JAN_31).renew()
    assert cycle.period.start == datetime(2026, 2, 28, 10, 30, tzinfo=UTC)
    assert cycle.renew().period.start == datetime(2026, 3, 31, 10, 30, tzinfo=UTC)


def test_a_renewal_to_another_interval_anchors_at_the_boundary() -> None:
    """SCENARIOS "Plan changes": a change at the period's end to another interval starts a
    new anchor at the boundary."""
    cycle = Cycle.start("basic", M, JAN_31).renew("pro_yearly", Y)
    assert cycle == Cycle("pro_yearly", Y, datetime(2026, 2, 28, 10, 30, tzinfo=UTC), 0)
    assert cycle.period.end == datetime(2027, 2, 28, 10, 30, tzinfo=UTC)
    same = Cycle.start("basic", M, JAN_31).renew("pro", M)
    assert same == Cycle("pro", M, JAN_31, 1)


def test_sub_5_an_immediate_change_keeps_the_period_or_anchors_at_the_change() -> None:
    cycle = Cycle.start("basic", M, JAN_31)
    at = JAN_31 + timedelta(days=10)
    assert cycle.switch_plan("pro", M, at) == Cycle("pro", M, JAN_31, 0)
    yearly = cycle.switch_plan("pro_yearly", Y, at)
    assert yearly.period == Period(at, at.replace(year=2027), 0)


def test_sub_11_restart_at_the_payment_instant() -> None:
    paid = datetime(2026, 4, 5, tzinfo=UTC)
    cycle = Cycle.start("basic", M, JAN_31).renew().restart_at(paid)
    assert cycle == Cycle("basic", M, paid, 0)
    assert cycle.period == Period(paid, datetime(2026, 5, 5, tzinfo=UTC), 0)


def test_bad_cycles_are_refused() -> None:
    """Bad inputs tried: empty and non-text plan, unknown interval, naive and non-datetime
    anchor, negative / bool / float index, a change outside the current period, a naive
    restart time. An anchor in another timezone is kept as its UTC instant."""
    for plan, interval, anchor, index in [
        ("", M, JAN_31, 0),
        (None, M, JAN_31, 0),
        ("basic", "month", JAN_31, 0),
        ("basic", M, datetime(2026, 1, 1), 0),
        ("basic", M, "2026-01-01", 0),
        ("basic", M, JAN_31, -1),
        ("basic", M, JAN_31, True),
        ("basic", M, JAN_31, 1.0),
    ]:
        with pytest.raises(InvalidInput):
            Cycle(plan, interval, anchor, index)  # type: ignore[arg-type]
    cycle = Cycle.start("basic", M, JAN_31)
    for at in (JAN_31 - timedelta(seconds=1), cycle.period.end + timedelta(microseconds=1)):
        with pytest.raises(InvalidInput, match="outside the current period"):
            cycle.switch_plan("pro", M, at)
    with pytest.raises(InvalidInput):
        cycle.restart_at(datetime(2026, 2, 1))
    shifted = Cycle.start(
        "basic", M, datetime(2026, 1, 31, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    )
    assert shifted.anchor == JAN_31 and shifted.anchor.tzinfo == UTC


def test_add_3_sub_14_every_new_period_takes_the_slots_from_the_next_billing_date() -> None:
    """ADD-3: a removal waits for the next billing date: a renewal, a change of interval
    (SUB-14: the slots go along to the new period) and a restart (SUB-11) take
    `slots_next`; a change within the interval keeps the slots in force."""
    cycle = Cycle("basic", M, JAN_31, 0, {"extra_agent": 3, "seat": 1}, {"extra_agent": 1})
    assert dict(cycle.renew().slots) == {"extra_agent": 1}
    at = JAN_31 + timedelta(days=3)
    assert dict(cycle.switch_plan("pro", M, at).slots) == {"extra_agent": 3, "seat": 1}
    yearly = cycle.switch_plan("pro_yearly", Y, at)
    assert (dict(yearly.slots), dict(yearly.slots_next)) == ({"extra_agent": 1}, {"extra_agent": 1})
    assert dict(cycle.restart_at(at).slots) == {"extra_agent": 1}
    started = Cycle.start("basic", M, JAN_31, {"extra_agent": 2})
    assert started.slots == started.slots_next == {"extra_agent": 2}


@pytest.mark.parametrize(
    "slots", [{"": 1}, {"a": -1}, {"a": True}, {"a": 1.0}, {1: 1}, [("a", 1)], "a"]
)
def test_bad_slots_are_refused(slots: object) -> None:
    """Bad inputs tried: an empty or non-text code, a negative, bool or float count, a list
    and a text instead of a mapping."""
    with pytest.raises(InvalidInput):
        Cycle("basic", M, JAN_31, 0, slots)  # type: ignore[arg-type]
