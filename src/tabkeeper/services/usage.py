"""Usage: storing events (USE-1, USE-2), the current period's usage per meter with its
parts (USE-6, USE-7, SUB-2), and a recount of a meter by a plain read of the stored
events.

Invoices and the real-time check read the counters kept up to date as events arrive
(USE-6, house rule 7); `recount_usage` is the plain read the counters must always equal
(for checks and tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from tabkeeper.db import usage_store
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.domain.catalog import Catalog, Meter, MeterKind, Plan
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.event_checks import STANDARD_TYPES, EventRefused, check_event
from tabkeeper.domain.ingestion import Skipped, numeric_fields
from tabkeeper.domain.invoicing import LineDraft, usage_line
from tabkeeper.domain.levels import Level, usage_level
from tabkeeper.domain.metering import SESSION_STARTED, UsageEvent, measure, quantity_string
from tabkeeper.domain.periods import Period
from tabkeeper.domain.utc import format_instant
from tabkeeper.services import counters
from tabkeeper.services.accounts import BillingAccount, batch_accounts
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import family_ids
from tabkeeper.services.metering import Pending, record_batch

AGENT_SCOPE = "agent:"
AGENT_LENGTH = 64
"""The longest agent code an event may name (the agent column and counter scopes)."""


def _events(b: Billing, ids: list[int], meter: Meter, period: Period) -> list[UsageEvent]:
    types = [meter.event]
    if meter.kind is MeterKind.BILLABLE_SESSIONS:
        types.append(SESSION_STARTED)
    rows = usage_store.stored_events(
        b.session, ids, types, period.start, period.end,
        whole_conversations=meter.kind is MeterKind.BILLABLE_SESSIONS,
    )  # fmt: skip
    return [
        UsageEvent(
            id=f"{row.organization_id}:{row.client_id}",
            type=row.type,
            time=row.time,
            agent=row.agent,
            # A conversation belongs to the organization that had it: a sub-account's "k1"
            # is not its parent's "k1" (the counters keep one row per organization).
            conversation=None
            if row.conversation is None
            else f"{row.organization_id}:{row.conversation}",
            properties=row.properties,
            late=row.late,
        )
        for row in rows
    ]


def measure_usage(
    b: Billing, owner: Organization, meter: Meter, period: Period, answered_only: bool
) -> Fraction:
    """The meter's quantity over the organization and its sub-accounts (SUB-2), from the
    counters: one indexed read (USE-6)."""
    return counters.used(b, owner.id, meter, period.start, answered_only)


def recount_usage(
    b: Billing, owner: Organization, meter: Meter, period: Period, answered_only: bool
) -> Fraction:
    """The same quantity recounted from the stored events (a plain read, for checks and
    tests: the counters must always equal it)."""
    events = _events(b, family_ids(b, owner), meter, period)
    return measure(meter, events, period, answered_only, leave_out_missing=True)


def usage_lines(
    b: Billing, owner: Organization, catalog: Catalog, plan: Plan, period: Period
) -> list[LineDraft]:
    """Overage of `period` in arrears (INV-1): one line per meter with an overage price."""
    lines = []
    for code in sorted(plan.overage):
        used = measure_usage(b, owner, catalog.meters[code], period, plan.answered_only)
        line = usage_line(code, plan, used, period)
        if line is not None:
            lines.append(line)
    return lines


def usage_report(
    b: Billing, owner: Organization, subscription: Subscription, catalog: Catalog, plan: Plan
) -> dict[str, dict[str, Any]]:
    """The current period's used and included quantity per meter, with its level (USE-7)."""
    period = Period(subscription.period_start, subscription.period_end, subscription.period_index)
    report = {}
    for code, meter in sorted(catalog.meters.items()):
        used = measure_usage(b, owner, meter, period, plan.answered_only)
        included = plan.includes.get(code)
        level = usage_level(used, included) if included is not None else None
        report[code] = {
            "used": quantity_string(used),
            "included": None if included is None else quantity_string(included),
            "level": None if level is None else level.value,
            "period_start": format_instant(period.start),
        }
    return report


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One meter's use in the current period (USE-6, USE-7) and its parts: per
    sub-account, by code (SUB-2), and per agent."""

    meter: str
    used: Fraction
    included: Decimal | None
    level: Level | None
    has_overage: bool
    sub_accounts: Mapping[str, Fraction]
    agents: Mapping[str, Fraction]

    @property
    def remaining(self) -> Fraction | None:
        """Included minus used, never below zero; None when nothing is included."""
        if self.included is None:
            return None
        return max(Fraction(0), Fraction(self.included) - self.used)


def current_usage(
    b: Billing, owner: Organization, subscription: Subscription, catalog: Catalog, plan: Plan
) -> list[MeterReading]:
    """Every meter of the catalog in the subscription's current period, in meter-code
    order: counter reads only, never the event history (USE-6)."""
    start = subscription.period_start
    sub_accounts = {
        f"org:{row_id}": code for row_id, code in usage_store.sub_accounts(b.session, owner.id)
    }
    readings = []
    for code, meter in sorted(catalog.meters.items()):
        used = counters.used(b, owner.id, meter, start, plan.answered_only)
        by_sub_account: dict[str, Fraction] = {}
        by_agent: dict[str, Fraction] = {}
        for scope, found in sorted(counters.scopes(b, owner.id, code, start).items()):
            value = counters.value_of(meter, found, plan.answered_only)
            if scope.startswith(AGENT_SCOPE):
                by_agent[scope.removeprefix(AGENT_SCOPE)] = value
            elif scope in sub_accounts:
                by_sub_account[sub_accounts[scope]] = value
        included = plan.includes.get(code)
        readings.append(
            MeterReading(
                meter=code,
                used=used,
                included=included,
                level=None if included is None else usage_level(used, included),
                has_overage=code in plan.overage,
                sub_accounts=by_sub_account,
                agents=by_agent,
            )
        )
    return readings


@dataclass(frozen=True, slots=True)
class Ingested:
    accepted: int
    duplicates: int
    refused: tuple[tuple[int, str], ...]
    """(index, reason) of each refused event."""
    skipped: tuple[Skipped, ...] = ()
    """Events stored and counted, but left out of one meter: (index, meter, reason)."""


class Known(Protocol):
    """An organization events may name: what ingestion checks and counts by."""

    @property
    def id(self) -> int: ...
    @property
    def parent_id(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...


def ingest(
    b: Billing,
    raw_events: Sequence[object],
    catalog: Catalog,
    organizations: Mapping[str, Known],
    path: str = "events",
    default_time: datetime | None = None,
    accounts: Iterable[BillingAccount] = (),
) -> Ingested:
    """Store a batch of events: each bad one refused with its index and reason, the good
    ones kept and counted as a set (services/metering.py); a duplicate id is accepted
    and counted once (USE-1, USE-2). `accounts`: those of the organizations, when the
    caller read them (the others are read by the batch, at most one statement)."""
    known = set(STANDARD_TYPES) | {meter.event for meter in catalog.meters.values()}
    numeric = numeric_fields(catalog.meters.values())
    refused: dict[int, str] = {}
    firsts: dict[tuple[int, str], int] = {}
    pending: list[Pending] = []
    repeats: list[tuple[int, int]] = []
    for index, raw in enumerate(raw_events):
        here = f"{path}[{index}]"
        try:
            event = check_event(raw, here, known, numeric, b.now, default_time)
            organization = organizations.get(event.org)
            if organization is None:
                raise EventRefused(f"{here}.org: unknown organization {event.org!r}")
            if event.agent is not None and len(event.agent) > AGENT_LENGTH:
                raise EventRefused(
                    f"{here}.agent: expected a text of 1 to {AGENT_LENGTH} characters"
                )
            if event.time < organization.created_at:
                raise EventRefused(
                    f"{here}.time: {format_instant(event.time)} is before the organization existed"
                )
        except InvalidInput as error:
            refused[index] = error.message
            continue
        first = firsts.setdefault((organization.id, event.client_id), index)
        if first != index:
            repeats.append((index, first))  # the same id again in this batch (USE-1)
            continue
        owner_id = organization.parent_id or organization.id  # SUB-2: the parent bills
        pending.append(Pending(index, event, organization.id, owner_id))
    counted = record_batch(b, pending, accounts=accounts) if pending else None
    stored = counted.stored if counted else frozenset()
    if counted:
        refused.update(counted.refused)
    for index, first in repeats:
        if first in refused:
            refused[index] = refused[first].replace(f"{path}[{first}]", f"{path}[{index}]", 1)
    accepted = len(stored)
    duplicates = len(raw_events) - len(refused) - accepted
    return Ingested(accepted, duplicates, tuple(sorted(refused.items())),
                    counted.skipped if counted else ())  # fmt: skip


def ingest_batch(b: Billing, raw_events: Sequence[object]) -> Ingested:
    """`ingest` with the platform's current catalog and the accounts of the
    organizations the batch names (with their billing organizations, SUB-2), read
    together in one statement (services/accounts.py)."""
    codes = {
        raw["org"]
        for raw in raw_events
        if isinstance(raw, Mapping) and isinstance(raw.get("org"), str)
    }
    found, catalog = batch_accounts(b, codes)
    known = {code: account.facts for code, account in found.items()}
    return ingest(b, raw_events, catalog, known, default_time=b.now, accounts=found.values())
