"""Billing anchors and calendar billing: where a subscription's first period starts and
how its first, partial period is billed (SPEC SUB-16; SCENARIOS.md settings `billing`,
step `subscribe {anchor}`).

A subscription without an anchor starts its first period when it starts (SUB-3). With an
anchor, a day of the month from 1 to 31 (calendar billing is the anchor 1 for every
subscription of the platform), its periods are those of a grid: boundaries at 00:00 UTC on
that day, every `interval_count` months (or years), a day the month lacks falling on its
last day and returning after (as SUB-3's month-end clamp does):

    anchor 1,  monthly,   start Jan 17 10:00:  Jan 17 10:00 → Feb 1 → Mar 1 → ...
    anchor 31, monthly,   start Feb 10:        Feb 10 → Feb 28 → Mar 31 → Apr 30 → ...
    anchor 31, quarterly, start Jan 31 00:00:  Jan 31 → Apr 30 → Jul 31 → Oct 31 → ...

The first boundary is the first anchor day at or after the start. When the start is on it
(at 00:00 UTC) the first period is a whole one. Otherwise the subscription starts inside
the grid period that ends there: that whole period is the cycle's period (domain/
cycles.py: what plan changes and added slots are prorated over, so a change in the first
period credits and charges the same fractions as in any other), and the first invoice
bills only its part from the start on (`first_period_lines`): each line is quantity ×
price × the remaining fraction of the whole period, in the settings' proration mode,
rounded once (SCENARIOS.md "Proration"). In mode `none` nothing is prorated: the first,
shorter period is billed in full.

The grid is held by an anchor instant on the anchor day itself (a month that has it), a
whole number of periods before the first boundary, and the index of the period the
subscription starts in: so that Feb 28 of an anchor on the 31st is followed by Mar 31, not
Mar 28. A yearly grid in a month shorter than its day is anchored on the month's longest
day: April's 30th; February's 29th in a leap year (then Feb 28, or 29 in leap years).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from tabkeeper.domain.catalog import AddOn, Plan
from tabkeeper.domain.catalog_limits import fit_description
from tabkeeper.domain.cycles import Cycle
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.invoicing import LineDraft, LineKind, describe_period
from tabkeeper.domain.money import Money
from tabkeeper.domain.periods import ProrationMode, remaining_fraction
from tabkeeper.domain.utc import require_utc

__all__ = [
    "CALENDAR_ANCHOR",
    "Billing",
    "anchor_day_for",
    "first_cycle",
    "first_period_lines",
    "require_anchor_day",
]

CALENDAR_ANCHOR = 1
"""Calendar billing: every period starts on the 1st."""

_SEARCH = 8
"""How many periods back the grid's anchor instant is looked for (a month with the day)."""


class Billing(StrEnum):
    """The settings' `billing` (SUB-16): periods anchored on each subscription's start
    (anniversary), or on the 1st of the month (calendar)."""

    ANNIVERSARY = "anniversary"
    CALENDAR = "calendar"

    @classmethod
    def parse(cls, value: object, path: str) -> Billing:
        for member in cls:
            if member.value == value:
                return member
        raise InvalidConfig(path, f"unknown billing {value!r}; expected anniversary or calendar")


def require_anchor_day(value: object) -> int:
    """A billing anchor: a day of the month, a whole number from 1 to 31; anything else is
    refused (InvalidInput, code `invalid_anchor`)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        raise InvalidInput(
            f"anchor: expected a day of the month from 1 to 31, got {value!r}",
            code="invalid_anchor",
        )
    return value


def anchor_day_for(requested: int | None, billing: Billing) -> int | None:
    """The anchor day a new subscription bills on: the one asked for (checked), else the
    1st under calendar billing, else none (periods anchored on the start)."""
    if requested is not None:
        return require_anchor_day(requested)
    return CALENDAR_ANCHOR if billing is Billing.CALENDAR else None


def first_cycle(
    plan: Plan, at: datetime, day: int | None, slots: Mapping[str, int] | None = None
) -> Cycle:
    """The cycle of a subscription to `plan` starting at `at` with anchor `day` (None: the
    start is the anchor, SUB-3), with add-on `slots`. Its period contains `at`; it starts
    before `at` when the first period is partial (see the module docs)."""
    at = require_utc(at, "start")
    count = plan.interval_count
    if day is None:
        return Cycle.start(plan.code, plan.interval, at, slots, count)
    day = require_anchor_day(day)
    months = plan.interval.months * count
    first = _on_day(_month_number(at), day, at)
    if first < at:
        first = _on_day(_month_number(at) + 1, day, at)
    start_index = 0 if first == at else 1  # periods from the grid anchor to `first`
    number = _month_number(first)
    # The grid's anchor: the latest earlier boundary in a month that has the day; a yearly
    # grid in a shorter month never meets one and takes the longest it has (Apr 30, a leap
    # year's Feb 29).
    for longest in range(day, min(day, 28) - 1, -1):
        found = _grid_month(number, months, longest)
        if found is not None:
            back, year, month = found
            anchor = datetime(year, month, longest, tzinfo=UTC)
            break
    else:  # pragma: no cover - every 4 years has a Feb 29
        raise InvalidInput(f"no billing anchor on day {day} found near {at.isoformat()}")
    index = back - start_index
    slots = slots or {}
    return Cycle(plan.code, plan.interval, anchor, index, slots, slots, count)


def first_period_lines(
    plan: Plan,
    addons: Sequence[tuple[AddOn, int]],
    cycle: Cycle,
    at: datetime,
    mode: ProrationMode,
) -> tuple[LineDraft, ...] | None:
    """The first invoice's lines when the first period of `cycle` is partial (it starts
    before `at`): the plan, then each add-on's slots (`addons`: add-on and slot count, at
    the price of the plan's interval, CAT-8), each quantity × price × the remaining
    fraction of the period from `at` in `mode` (`none`: the whole price), rounded once.
    None when the period starts at `at` (a whole period: the ordinary lines apply)."""
    at = require_utc(at, "start")
    period = cycle.period
    if period.start >= at:
        return None
    fraction = Fraction(1) if mode is ProrationMode.NONE else remaining_fraction(period, at, mode)
    parts: list[tuple[LineKind, str, dict[str, object], Money, int]] = [
        (LineKind.SUBSCRIPTION, plan.name, {"plan": plan.code}, plan.price, 1)
    ]
    for addon, quantity in sorted(addons, key=lambda item: item[0].code):
        if quantity > 0:
            name = addon.name if quantity == 1 else f"{addon.name} × {quantity}"
            price = addon.price_for(plan.interval)
            parts.append((LineKind.ADDON, name, {"addon": addon.code}, price, quantity))
    tail = f" ({describe_period(at, period.end)}, first period)"
    shown = {"fraction": f"{fraction.numerator}/{fraction.denominator}", "proration": str(mode)}
    return tuple(
        LineDraft(
            kind,
            fit_description(name, tail),
            Decimal(quantity),
            None,
            price.times(quantity * fraction).minor,
            at,
            period.end,
            {**details, "unit_price": price.major_str(), **shown},
        )
        for kind, name, details, price, quantity in parts
    )


def _grid_month(number: int, months: int, day: int) -> tuple[int, int, int] | None:
    """(periods back, year, month) of the latest month `months` × k (k >= 1) before month
    `number` that has `day`, within _SEARCH periods; None when none has."""
    for back in range(1, _SEARCH + 1):
        year, month = divmod(number - back * months, 12)
        if day <= calendar.monthrange(year, month + 1)[1]:
            return back, year, month + 1
    return None


def _month_number(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


def _on_day(number: int, day: int, like: datetime) -> datetime:
    """00:00 UTC on `day` (or the month's last day) of month `number` (year × 12 + month − 1)."""
    year, month = divmod(number, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime(year, month + 1, min(day, last), tzinfo=like.tzinfo or UTC)
