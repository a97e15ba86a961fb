"""Which usage thresholds a change of a counter crossed (LIM-4, LIM-5, TRI-2, TRI-3).

Decided once per counter from its value before and after a batch (or a session start):

- usage alerts at 50/80/100% of what the plan includes of the meter (LIM-5):
  `usage.<meter>_<percent>`, except for the sessions of a trial with a session allowance,
  which get the trial's own reminders instead (TRI-3), not both;
- billable sessions of the subscription's current period only:
  - in a trial with a session allowance, 60% and 90% of it (TRI-3): `trial.sessions_<p>`,
    and the trial ends when it is used up (TRI-2);
  - otherwise the session limit (the member-set one, else the plan's included sessions)
    at 80% and 100% (LIM-4): `limit.sessions_<p>`.

Each notice carries its dedupe key (the period's start): the outbox keeps one per period.
A threshold is crossed when `before < mark <= after`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from tabkeeper.domain.catalog import Meter, MeterKind, Plan
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.utc import format_instant

ALERT_PERCENTS = (50, 80, 100)
LIMIT_PERCENTS = (80, 100)
TRIAL_PERCENTS = (60, 90)


@dataclass(frozen=True, slots=True)
class Standing:
    """What the thresholds of a billing organization depend on: its plan and the
    subscription's state, trial sessions, session limit and current period."""

    plan: Plan
    state: str
    trial_sessions: int | None
    session_limit: int | None
    period_start: datetime


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    dedupe_key: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Crossings:
    notices: tuple[Notice, ...] = ()
    trial_used_up: bool = False
    """TRI-2: the trial's sessions are used up: the trial ends."""


def crossed(
    meter: Meter, standing: Standing, period: datetime, before: Fraction, after: Fraction
) -> Crossings:
    """The notices a change of `meter`'s counter in `period` from `before` to `after`
    gives (see the module), and whether it used up the trial's sessions."""
    plan = standing.plan
    key = format_instant(period)
    numbers = {"meter": meter.code, "used": str(after), "period_start": key}
    notices = []
    included = plan.includes.get(meter.code)
    trial_sessions = (
        meter.kind is MeterKind.BILLABLE_SESSIONS
        and period == standing.period_start
        and standing.state == State.TRIALING
        and bool(standing.trial_sessions)
    )
    if included and not trial_sessions:  # a trial's sessions have its reminders instead
        for percent in ALERT_PERCENTS:
            if _passes(before, after, Fraction(included) * percent / 100):
                payload = {**numbers, "included": str(included), "percent": percent}
                notices.append(Notice(f"usage.{meter.code}_{percent}", key, payload))
    if meter.kind is not MeterKind.BILLABLE_SESSIONS or period != standing.period_start:
        return Crossings(tuple(notices))
    if standing.state == State.TRIALING and standing.trial_sessions:
        trial = standing.trial_sessions
        for percent in TRIAL_PERCENTS:
            if _passes(before, after, Fraction(trial * percent, 100)):
                notices.append(Notice(f"trial.sessions_{percent}", key,
                                      {**numbers, "limit": trial, "percent": percent}))  # fmt: skip
        return Crossings(tuple(notices), after >= trial)
    limit = standing.session_limit or (int(included) if included else None)
    if limit:
        for percent in LIMIT_PERCENTS:
            if _passes(before, after, Fraction(limit * percent, 100)):
                notices.append(Notice(f"limit.sessions_{percent}", key,
                                      {**numbers, "limit": limit, "percent": percent}))  # fmt: skip
    return Crossings(tuple(notices))


def _passes(before: Fraction, after: Fraction, mark: Fraction) -> bool:
    return before < mark <= after
