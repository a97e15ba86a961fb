"""TRI-3 with LIM-5 (issue 12, item 8): a trial's sessions get the trial reminders (60% and
90% of the trial's sessions) and not the usage alerts `usage.sessions_*` on top; a paid
plan's sessions, and a trial's other meters, keep their usage alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.money import Currency
from tabkeeper.domain.thresholds import Standing, crossed

START = datetime(2026, 3, 1, tzinfo=UTC)
CATALOG = build_catalog(
    {
        "meters": {
            "sessions": {"kind": "billable_sessions"},
            "minutes": {"kind": "sum", "event": "call.ended", "field": "duration_seconds"},
        },
        "plans": {
            "trial": {"name": "Free trial", "price": "0",
                      "includes": {"sessions": 50, "minutes": 10}},
            "basic": {"name": "Basic", "price": "10.00", "includes": {"sessions": 50}},
        },
    },
    Currency.of("USD"),
    "catalog",
)  # fmt: skip


def kinds(meter: str, plan: str, state: State, trial_sessions: int | None) -> list[str]:
    standing = Standing(CATALOG.plans[plan], state.value, trial_sessions, None, START)
    found = crossed(CATALOG.meters[meter], standing, START, Fraction(0), Fraction(50))
    return [notice.kind for notice in found.notices]


def test_tri3_trial_sessions_get_trial_reminders_only() -> None:
    assert kinds("sessions", "trial", State.TRIALING, 50) == [
        "trial.sessions_60",
        "trial.sessions_90",
    ]


def test_lim5_paid_sessions_and_trial_minutes_keep_their_usage_alerts() -> None:
    paid = kinds("sessions", "basic", State.ACTIVE, None)
    assert [k for k in paid if k.startswith("usage.")] == [
        "usage.sessions_50",
        "usage.sessions_80",
        "usage.sessions_100",
    ]
    assert kinds("minutes", "trial", State.TRIALING, 50) == [
        "usage.minutes_50",
        "usage.minutes_80",
        "usage.minutes_100",
    ]
