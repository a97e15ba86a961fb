"""A subscription's billing cycle as a value: its plan, interval, anchor, period index and
add-on slots (SUB-3, SUB-5, SUB-11, SUB-14, ADD-3; SCENARIOS.md "Periods" and "Plan
changes").

The services used to move `anchor`, `period_index`, `period_start` and the plan by hand in
several places (a renewal, a change of interval now or at the period's end, a checkout, a
restore after suspension). Each of those is one method here, returning a new Cycle; the
shell writes a Cycle to the subscription row in one place (services/subscriptions.py
`set_cycle`). The lifecycle table (domain/lifecycle.py) stays the one place for states.

Slots: `slots` are the add-on slots in force now (billed in advance with the period),
`slots_next` those from the next billing date (a removal waits for it, ADD-3). Every new
period (a renewal, a change of interval, a restart) takes `slots_next`.

- `start(plan, interval, at, slots)`: the first period, anchored at `at`.
- `renew(plan, interval)`: the next period. On the same interval the anchor stays and the
  index moves on; on another interval (a change at the period's end) a new anchor starts at
  the boundary (SCENARIOS "Plan changes").
- `switch_plan(plan, interval, at)`: an immediate change. The same interval keeps the
  period; another interval ends the period at `at` and anchors the new one there.
- `restart_at(at)`: a new period anchored at `at` on the same plan (SUB-11: a suspended
  subscription paid after its paid period ends starts a new period at the payment instant).

SUB-16: `interval_count` is how many intervals one period spans (3 months: quarterly); a
plan's cadence is its (interval, interval_count), and "another interval" above means
another cadence. A cycle may start inside its first period (a billing anchor, calendar
billing: domain/anchors.py): its anchor then lies before the start, the period is the
whole period of the anchor's grid (what proration divides by), and the first invoice
bills only the part from the start on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.periods import Interval, Period, boundary, require_count
from tabkeeper.domain.utc import format_instant, require_utc

__all__ = ["Cycle"]


@dataclass(frozen=True, slots=True)
class Cycle:
    """Where a paid subscription is in its billing: plan, interval, anchor, period index."""

    plan: str
    interval: Interval
    anchor: datetime
    index: int = 0
    slots: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Add-on slots in force now, by add-on code."""
    slots_next: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Add-on slots from the next billing date (a removal waits for it, ADD-3)."""
    interval_count: int = 1
    """SUB-16: intervals per period (3 months: quarterly)."""

    def __post_init__(self) -> None:
        if not isinstance(self.plan, str) or not self.plan:
            raise InvalidInput(f"cycle plan: expected a plan code, got {self.plan!r}")
        if not isinstance(self.interval, Interval):
            raise InvalidInput(f"cycle interval: expected month or year, got {self.interval!r}")
        object.__setattr__(self, "anchor", require_utc(self.anchor, "anchor"))
        if not isinstance(self.index, int) or isinstance(self.index, bool) or self.index < 0:
            raise InvalidInput(f"cycle index: expected a whole number, got {self.index!r}")
        for name in ("slots", "slots_next"):
            object.__setattr__(self, name, _slots(getattr(self, name), name))
        require_count(self.interval_count, "cycle interval_count")

    @classmethod
    def start(
        cls,
        plan: str,
        interval: Interval,
        at: datetime,
        slots: Mapping[str, int] | None = None,
        count: int = 1,
    ) -> Cycle:
        """The first period of a subscription that starts at `at` (SUB-3), with `slots`,
        of `count` intervals (SUB-16)."""
        return cls(plan, interval, at, 0, slots or {}, slots or {}, count)

    @property
    def period(self) -> Period:
        """The current period: from boundary `index` to boundary `index + 1`."""
        count = self.interval_count
        return Period(
            boundary(self.anchor, self.interval, self.index, count),
            boundary(self.anchor, self.interval, self.index + 1, count),
            self.index,
        )

    def renew(
        self, plan: str | None = None, interval: Interval | None = None, count: int | None = None
    ) -> Cycle:
        """The period after this one, on `plan`, `interval` and `count` (default: the
        same). A new cadence anchors at the boundary where this period ends."""
        plan = self.plan if plan is None else plan
        interval = self.interval if interval is None else interval
        count = self.interval_count if count is None else count
        if (interval, count) != (self.interval, self.interval_count):
            return self._new_period(plan, interval, self.period.end, count)
        return replace(self, plan=plan, index=self.index + 1, slots=self.slots_next)

    def switch_plan(
        self, plan: str, interval: Interval, at: datetime, count: int | None = None
    ) -> Cycle:
        """An immediate change at `at`, in the current period (its end included: a change
        dated on the boundary may run before the renewal): the same interval keeps the
        period; another one ends it at `at` and anchors a new period there."""
        at = require_utc(at, "change time")
        period = self.period
        if not period.start <= at <= period.end:
            raise InvalidInput(
                f"change time {format_instant(at)} is outside the current period {period}"
            )
        count = self.interval_count if count is None else count
        if (interval, count) == (self.interval, self.interval_count):
            return replace(self, plan=plan)
        return self._new_period(plan, interval, at, count)  # SUB-14: the slots go along

    def restart_at(self, at: datetime) -> Cycle:
        """A new period anchored at `at`, on the same plan and interval (SUB-11)."""
        return self._new_period(
            self.plan, self.interval, require_utc(at, "restart time"), self.interval_count
        )

    def _new_period(self, plan: str, interval: Interval, anchor: datetime, count: int) -> Cycle:
        return Cycle(plan, interval, anchor, 0, self.slots_next, self.slots_next, count)


def _slots(value: object, name: str) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"cycle {name}: expected add-on codes and slot counts")
    for code, count in value.items():
        if not isinstance(code, str) or not code:
            raise InvalidInput(f"cycle {name}: expected an add-on code, got {code!r}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidInput(f"cycle {name}.{code}: expected a whole number, got {count!r}")
    return MappingProxyType(dict(sorted(value.items())))
