"""Usage counters and billing periods (USE-6, DESIGN.md rule 7).

Counters are rows per (billing organization, meter, period start, scope), added to with
`quantity = quantity + :delta` in the transaction that stores the event, so the current
numbers are one indexed read. Scope "" is the whole organization; "org:<id>" a
sub-account; "agent:<code>" an agent (SUB-2). Quantities are millionths (`SCALE`).

How a meter's stored quantity reads as its value (USE-5):
- count, unique_count, max, billable_sessions: quantity / SCALE;
- sum per_event_up: each event stored already rounded up to whole units;
- sum none / total_up: the raw sum in the event's unit (seconds), converted when read,
  and rounded up once for total_up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from typing import Protocol

from tabkeeper.db import usage_store
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.db.usage_store import CounterValue
from tabkeeper.domain.catalog import Catalog, Meter
from tabkeeper.domain.ingestion import SCALE, TOTAL, Changes, CounterKey, counter_value
from tabkeeper.domain.lifecycle import State, TrialSessionsUsedUp
from tabkeeper.domain.periods import Period
from tabkeeper.domain.spend import spend_key
from tabkeeper.domain.thresholds import Notice, Standing, crossed
from tabkeeper.services import spend_counters
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import notify

__all__ = ["SCALE", "TOTAL"]


def open_period(b: Billing, organization_id: int, start: datetime, end: datetime) -> None:
    """Record a period the organization is billed by (trial, or a paid period)."""
    usage_store.open_period(b.session, organization_id, start, end)


def start_period(b: Billing, organization_id: int, start: datetime, end: datetime) -> None:
    """A new period starts at `start`: one still running then ends there (a trial turned
    paid, a change to another interval), and the new one is recorded."""
    usage_store.end_periods_running_at(b.session, organization_id, start)
    usage_store.open_period(b.session, organization_id, start, end)


Stored = CounterValue
"""A counter's stored millionths (and answered windows, for billable sessions)."""


def stored(
    b: Billing, organization_id: int, meter: str, period_start: datetime, scope: str = TOTAL
) -> Stored:
    return usage_store.counter_value(
        b.session, CounterKey(organization_id, meter, period_start, scope)
    )


def value_of(meter: Meter, found: Stored, answered_only: bool) -> Fraction:
    """What the stored quantity means for `meter` (see the module's docs)."""
    return counter_value(meter, found.quantity, found.answered, answered_only)


def used(
    b: Billing,
    organization_id: int,
    meter: Meter,
    period_start: datetime,
    answered_only: bool,
    scope: str = TOTAL,
) -> Fraction:
    """The meter's value in the period: one indexed read (USE-6)."""
    return value_of(
        meter, stored(b, organization_id, meter.code, period_start, scope), answered_only
    )


def scopes(
    b: Billing, organization_id: int, meter: str, period_start: datetime
) -> dict[str, Stored]:
    """Every part of the period's usage of `meter`: sub-accounts and agents (SUB-2)."""
    return usage_store.counter_parts(b.session, organization_id, meter, period_start)


class Counting(Protocol):
    """What thresholds need of a billing organization (services/metering.py Account)."""

    @property
    def catalog(self) -> Catalog | None: ...
    @property
    def standing(self) -> Standing | None: ...
    @property
    def subscription_id(self) -> int | None: ...
    @property
    def spend_cap(self) -> int | None: ...
    @property
    def period(self) -> Period | None: ...


def write(b: Billing, changes: Changes, by_owner: Mapping[int, Counting]) -> None:
    """Write a batch's changes: the new unique values (one insert), every counter once
    (one upsert for the adds, one for the maxima), then the thresholds each counter
    crossed, decided from its total before and after (domain/thresholds.py)."""
    session = b.session
    for owner_id, meter, period, value in usage_store.insert_unique_values(session, changes.unique):
        index = changes.unique[(owner_id, meter, period, value)]
        changes.add(CounterKey(owner_id, meter, period, TOTAL), SCALE, 0, index)
    watched = [k for k in changes.raised if k.scope == TOTAL and by_owner[k.owner_id].standing]
    raised_before = usage_store.counter_values(session, watched)
    added = usage_store.add_to_counters(session, changes.added)
    raised = usage_store.raise_counters(session, changes.raised)
    due: list[tuple[tuple[int, int, datetime, int], Notice | None, CounterKey]] = []
    for key, after in added.items():
        quantity, answered = changes.added[key]
        before = CounterValue(after.quantity - quantity, after.answered - answered)
        if key.scope == TOTAL:
            due += _crossings(by_owner[key.owner_id], key, before, after, changes.steps, False)
    for key in watched:
        before = raised_before.get(key, CounterValue(0, 0))
        due += _crossings(by_owner[key.owner_id], key, before, raised[key], changes.steps, True)
    for _, notice, key in sorted(due, key=lambda item: item[0]):
        _carry_out(b, by_owner[key.owner_id], key, notice)
    if all(account.spend_cap is None for account in by_owner.values()):
        return  # LIM-6: overage is counted only where a spend cap is set
    spent: dict[tuple[int, str], int] = {}
    for key, after in added.items():
        quantity, answered = changes.added[key]
        before = CounterValue(after.quantity - quantity, after.answered - answered)
        overage(spent, by_owner[key.owner_id], key, before, after)
    for key in watched:
        overage(spent, by_owner[key.owner_id], key, raised_before.get(key, CounterValue(0, 0)),
                raised[key])  # fmt: skip
    if spent:
        spend_counters.accrue(b, spent)


def overage(
    spent: dict[tuple[int, str], int],
    account: Counting,
    key: CounterKey,
    before: CounterValue,
    after: CounterValue,
) -> None:
    """LIM-6: the change of `key`'s priced overage, added to `spent` by (billing
    organization, period key), when the organization has a spend cap and the counter is
    of its current period."""
    standing, catalog, period = account.standing, account.catalog, account.period
    if (
        account.spend_cap is None
        or standing is None
        or catalog is None
        or period is None
        or key.scope != TOTAL
        or key.period_start != period.start
    ):
        return
    delta = spend_counters.overage_change(standing.plan, catalog, key.meter,
                                      (before.quantity, before.answered),
                                      (after.quantity, after.answered))  # fmt: skip
    if delta:
        at = (key.owner_id, spend_key(account.subscription_id, period.start))
        spent[at] = spent.get(at, 0) + delta


def thresholds(
    b: Billing, account: Counting, key: CounterKey, before: CounterValue, after: CounterValue
) -> None:
    """The notices of the thresholds one counter's change crossed (LIM-4, LIM-5, TRI-3),
    and the trial's end when its sessions are used up (TRI-2)."""
    for _, notice, _key in _crossings(account, key, before, after, {}, False):
        _carry_out(b, account, key, notice)


_Due = tuple[tuple[int, int, datetime, int], "Notice | None", CounterKey]


def _crossings(
    account: Counting,
    key: CounterKey,
    before: CounterValue,
    after: CounterValue,
    steps: Mapping[CounterKey, list[tuple[int, int, int]]],
    is_max: bool,
) -> list[_Due]:
    """What crossing from `before` to `after` calls for (None: the trial's end), each with
    its place: the event that crossed it first, the meter's place in the catalog, the
    period, then the order of the domain's answer (as if the events came one by one)."""
    standing, catalog = account.standing, account.catalog
    if standing is None or catalog is None or key.meter not in catalog.meters:
        return []
    meter = catalog.meters[key.meter]
    answered_only = standing.plan.answered_only

    def value(found: CounterValue) -> Fraction:
        return counter_value(meter, found.quantity, found.answered, answered_only)

    found = crossed(meter, standing, key.period_start, value(before), value(after))
    actions: list[Notice | None] = [*found.notices, *([None] if found.trial_used_up else [])]
    if not actions:
        return []
    firsts: dict[str, int] = {}
    running = before
    for index, quantity, answered in sorted(steps.get(key, ()), key=lambda s: s[0]):
        if is_max:
            step = CounterValue(max(running.quantity, quantity), running.answered)
        else:
            step = CounterValue(running.quantity + quantity, running.answered + answered)
        passed = crossed(meter, standing, key.period_start, value(running), value(step))
        for notice in passed.notices:
            firsts.setdefault(notice.kind, index)
        if passed.trial_used_up:
            firsts.setdefault("", index)
        running = step
    place = list(catalog.meters).index(key.meter)
    return [
        ((firsts.get(action.kind if action else "", -1), place, key.period_start, position),
         action, key)
        for position, action in enumerate(actions)
    ]  # fmt: skip


def _carry_out(b: Billing, account: Counting, key: CounterKey, notice: Notice | None) -> None:
    """A notice, once per (organization, kind, period) (NOT-1); None: the trial ends."""
    if notice is not None:
        notify(b, key.owner_id, notice.kind, notice.dedupe_key, dict(notice.payload))
        return
    if account.subscription_id is None:
        return
    subscription = b.session.get(Subscription, account.subscription_id)
    owner = b.session.get(Organization, key.owner_id)
    assert subscription is not None and owner is not None
    if subscription.state == State.TRIALING:
        apply_event(b, subscription, owner, TrialSessionsUsedUp())
