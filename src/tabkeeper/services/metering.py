"""Metering (USE-1..6): a batch of checked events stored and counted as a set, in the
transaction of the batch, so current numbers never need the event history.

`record_batch` runs a fixed number of statements whatever the batch's size:
- the accounts of the batch's billing organizations (services/accounts.py: subscription,
  plan, current period), one query, unless the caller read them already (a session
  start has its account);
- `ai.used` events take their credits through the batch credit gate
  (services/credit_batches.py, CRD-1): one the credits cannot cover, or whose feature
  has no rate, is refused alone (and not stored), the rest of the batch kept;
- the conversations the batch's messages touch, safe from concurrent change, one
  statement (db/conversations.py; none on SQLite for a conversation the caller read in
  this transaction); a message before its conversation's lateness floor is *late*
  (domain/conversations.py): stored, counted by every other meter, left out of billable
  sessions and said so (`skipped`);
- the events, one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING: a duplicate id
  is accepted and counted once, forever (USE-1);
- each event counts in the billing period holding it (USE-6): the account's current
  period when it holds it, else found among every period of the batch's organizations,
  read with one query the first time an event falls outside the current period (a late
  one): a batch of events all in the current period sends no period query;
- the changes per counter (domain/ingestion.py), written with one upsert per kind of
  change (services/counters.py), unique values with one insert; billable sessions
  (USE-3, USE-4) from each conversation's windows before and after the batch, each window
  counted in the period holding its start; the conversations written back in one
  statement;
- thresholds decided once per counter from its total before and after the batch
  (domain/thresholds.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from tabkeeper.db import conversations as conversation_rows
from tabkeeper.db import credit_store, usage_store
from tabkeeper.db.conversations import ConversationRow, ConversationWrite, Key, NewConversation
from tabkeeper.db.usage_store import CounterValue
from tabkeeper.domain.catalog import Catalog, Meter, MeterKind
from tabkeeper.domain.conversations import (
    RecentWindows,
    advance,
    compact,
    floor_at,
    from_stored,
    recover,
    stored_form,
    window_changes,
)
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.event_checks import CheckedEvent
from tabkeeper.domain.ingestion import (
    SCALE,
    TOTAL,
    Changes,
    CounterKey,
    Periods,
    Skipped,
    count_event,
    scopes,
)
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.metering import SESSION_STARTED
from tabkeeper.domain.periods import Period
from tabkeeper.domain.sessions import WINDOW, Direction, Message
from tabkeeper.domain.spend import spend_key
from tabkeeper.domain.thresholds import Standing
from tabkeeper.services import counters, spend_counters
from tabkeeper.services.accounts import BillingAccount, accounts_of
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_batches import Use, consume_batch
from tabkeeper.settings import Settings

AI_USED = "ai.used"
LATE_REASON = "older than the late-events horizon: left out of billable sessions"


@cache
def late_events_horizon() -> timedelta:
    """TABKEEPER_LATE_EVENTS_HORIZON (settings.py), read once."""
    return Settings().late_events_horizon


@dataclass(frozen=True, slots=True)
class Pending:
    """A checked event of a batch: its index, who it is by and who is billed for it."""

    index: int
    event: CheckedEvent
    used_by_id: int
    owner_id: int


@dataclass(frozen=True, slots=True)
class Counted:
    stored: frozenset[int]
    """Indexes of the events stored now (the others were stored before: duplicates)."""
    refused: dict[int, str]
    """`ai.used` events the credits could not cover: index → reason."""
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, slots=True)
class Account:
    """What counting needs of a billing organization: its subscription's catalog and,
    with a plan, what its thresholds depend on, and its current period. No catalog:
    nothing is counted."""

    owner_id: int
    catalog: Catalog | None
    standing: Standing | None
    subscription_id: int | None
    period: Period | None = None
    closed: Mapping[str, int] = field(default_factory=dict)
    """LIM-7, answered-only plans: per billable-sessions meter, the current period's
    windows that closed with no reply (millionths), as read with the account's counters:
    its count less these is what the session limit holds (answered + held places)."""
    spend_cap: int | None = None
    """LIM-6: the billing organization's spend cap (None: none; overage is not counted)."""

    @property
    def sessions_meters(self) -> list[Meter]:
        if self.catalog is None:
            return []
        meters = self.catalog.meters.values()
        return [m for m in meters if m.kind is MeterKind.BILLABLE_SESSIONS]

    @property
    def answered_only(self) -> bool:
        return bool(self.standing and self.standing.plan.answered_only)


def counting(account: BillingAccount) -> Account:
    """What counting needs of the billing organization of `account` (read once,
    services/accounts.py; the catalog from the process's store)."""
    subscription, catalog = account.subscription, account.catalog
    if subscription is None or catalog is None:
        return Account(account.owner_id, None, None, None)
    plan = catalog.plans.get(subscription.plan_code)
    standing = None
    if plan is not None:
        standing = Standing(plan, subscription.state, subscription.trial_sessions,
                            subscription.session_limit, subscription.period_start)  # fmt: skip
    credits = account.facts.credits
    return Account(account.owner_id, catalog, standing, subscription.id, account.period,
                   _closed(account, catalog),
                   None if credits is None else credits.spend_cap)  # fmt: skip


def _closed(account: BillingAccount, catalog: Catalog) -> dict[str, int]:
    """LIM-7: windows of the period closed unanswered = unanswered windows less the places
    held now, from the one read of the account (a lower bound under concurrent writes:
    a window only closes as time passes, so the cap it gives is never too high)."""
    counters, plan = account.facts.counters, account.plan
    if counters is None or plan is None or not plan.answered_only:
        return {}
    closed = {}
    for code, meter in catalog.meters.items():
        found = counters.get(code)
        if meter.kind is MeterKind.BILLABLE_SESSIONS and found is not None:
            unanswered = found.quantity - found.answered
            closed[code] = max(unanswered - account.held * SCALE, 0)
    return closed


def _accounts(
    b: Billing, owner_ids: set[int], known: Iterable[BillingAccount]
) -> dict[int, Account]:
    """The accounts of these billing organizations: those known, the others in one query."""
    found = {a.owner_id: counting(a) for a in known if a.owner_id in owner_ids}
    missing = owner_ids - found.keys()
    if missing:
        read = accounts_of(b, missing)
        for owner_id in missing:
            account = read.get(owner_id)
            found[owner_id] = counting(account) if account else Account(owner_id, None, None, None)
    return found


class _Periods:
    """The start of the billing period holding an instant: the account's current period
    when it holds it; else found among every period of the batch's organizations, read
    once, the first time it is needed (USE-6)."""

    def __init__(self, b: Billing, by_owner: Mapping[int, Account]) -> None:
        self._b = b
        self._by_owner = by_owner
        self._all: Periods | None = None

    def start_at(self, owner_id: int, at: datetime) -> datetime | None:
        current = self._by_owner[owner_id].period
        if current is not None and current.start <= at < current.end:
            return current.start
        if self._all is None:
            self._all = Periods(usage_store.periods_of(self._b.session, set(self._by_owner)))
        return self._all.start_at(owner_id, at)


def record_batch(
    b: Billing,
    pending: Sequence[Pending],
    *,
    capped: bool = False,
    accounts: Iterable[BillingAccount] = (),
    conversations: Mapping[Key, ConversationRow | None] | None = None,
) -> Counted:
    """Store and count a batch of checked events, each id once (see the module).

    `accounts`: the batch's accounts the caller read in this transaction (the others
    are read here); `conversations`: conversations it read in this transaction (None:
    there is none), by (organization id, conversation).

    `capped` (a session start, LIM-3: one event): a new billable session is admitted
    only while the period's count stays within `session_cap`, by one conditional
    upsert made before anything else is written; otherwise SessionCapReached."""
    session = usage_store.flushed(b.session)
    by_owner = _accounts(b, {p.owner_id for p in pending}, accounts)
    refused = _take_credits(b, [p for p in pending if p.event.type == AI_USED])
    kept = [p for p in pending if p.index not in refused]
    touching = [p for p in kept if _in_sessions(by_owner[p.owner_id], p.event)]
    wanted = _wanted(touching)
    rows = conversation_rows.locked(
        session, list(wanted.values()), stored_form(RecentWindows()), b.now, conversations
    )
    states = {key: floor_at(from_stored(row.state), b.now, late_events_horizon())
              for key, row in rows.items()}  # fmt: skip
    late = {p.index for p in touching if states[_key(p)].is_late(p.event.time)}
    periods = _Periods(b, by_owner)
    changes = Changes()
    if capped:  # the start is new unless it repeats an instant, which changes no window
        taken = [p for p in touching if p.index not in late]
        writes = _count_sessions(b, changes, by_owner, periods, rows, states, taken, wanted)
        _admit(b, changes, by_owner)
    new = usage_store.insert_events(session, [_row(b, p, p.index in late) for p in kept])
    fresh = [p for p in kept if (p.used_by_id, p.event.client_id) in new]
    skipped: list[Skipped] = []
    for p in fresh:
        catalog = by_owner[p.owner_id].catalog
        period = periods.start_at(p.owner_id, p.event.time) if catalog else None
        if catalog is None or period is None:
            continue
        skipped += count_event(changes, catalog.meters.values(), p.event, p.index,
                               p.used_by_id, p.owner_id, period)  # fmt: skip
    for p in fresh:
        if p.index in late:
            skipped += [Skipped(p.index, m.code, LATE_REASON)
                        for m in by_owner[p.owner_id].sessions_meters]  # fmt: skip
    if not capped:
        touched = {p.index for p in touching}
        taken = [p for p in fresh if p.index in touched and p.index not in late]
        writes = _count_sessions(b, changes, by_owner, periods, rows, states, taken, wanted)
    conversation_rows.write(session, writes, b.now)
    counters.write(b, changes, by_owner)
    return Counted(frozenset(p.index for p in fresh), refused, tuple(sorted(
        skipped, key=lambda s: (s.index, s.meter))))  # fmt: skip


def session_cap(account: Account) -> int | None:
    """The most billable sessions the current period may count, in millionths: the
    member-set limit, a hard-stop quota, or the trial's sessions, whichever is lowest."""
    standing, catalog = account.standing, account.catalog
    if standing is None or catalog is None:
        return None
    caps: list[int] = []
    if standing.state == State.TRIALING and standing.trial_sessions:
        caps.append(standing.trial_sessions)
    if standing.session_limit:
        caps.append(standing.session_limit)
    for meter in account.sessions_meters:
        if standing.plan.is_hard_stop(meter.code):
            caps.append(int(standing.plan.includes[meter.code]))
    return min(caps) * SCALE if caps else None


def _within_spend_cap(b: Billing, account: Account, key: CounterKey, cap: int | None) -> int | None:
    """LIM-6 at a session start: at the spend cap, billable sessions past the included
    ones stop as a hard-stop quota does (the upsert's cap falls to the included sessions),
    and concurrent starts never pass it: the balance row is locked first, so each start
    sees the spend of the ones before it. Only when a cap is set and the sessions meter
    is billed as overage (else `cap` as it was, and no statement)."""
    standing, period = account.standing, account.period
    if (
        account.spend_cap is None
        or standing is None
        or period is None
        or key.scope != TOTAL
        or key.period_start != period.start
        or key.meter not in standing.plan.overage
    ):
        return cap
    key_of_period = spend_key(account.subscription_id, period.start)
    found = credit_store.spend_now(b.session, key.owner_id, key_of_period)
    if found is None or found[0] < found[1]:
        return cap
    included = int(standing.plan.includes.get(key.meter, 0)) * SCALE
    return included if cap is None else min(cap, included)


def _admit(b: Billing, changes: Changes, by_owner: dict[int, Account]) -> None:
    """LIM-3: each new billable session's period count, within the cap, first: one
    conditional upsert per counter (SessionCapReached when it would pass the cap).

    LIM-7: on an answered-only plan the counter's windows are the answered ones, the
    places held by open unanswered ones and the ones closed unanswered; the last do not
    count, so the cap of the upsert is raised by them (`Account.closed`)."""
    for key, (quantity, answered) in sorted(changes.added.items()):
        account = by_owner[key.owner_id]
        cap = _within_spend_cap(b, account, key, session_cap(account))
        if key.scope != TOTAL or quantity <= 0 or cap is None:
            continue
        if account.answered_only:
            if account.period is None or key.period_start != account.period.start:
                continue
            cap += account.closed.get(key.meter, 0)
        after = usage_store.add_within(b.session, key, quantity, answered, cap)
        if after is None:
            raise SessionCapReached("the session limit for this period is reached")
        del changes.added[key]
        before = CounterValue(after.quantity - quantity, after.answered - answered)
        counters.thresholds(b, account, key, before, after)
        if account.spend_cap is not None:  # LIM-6
            spent: dict[tuple[int, str], int] = {}
            counters.overage(spent, account, key, before, after)
            spend_counters.accrue(b, spent)


def _take_credits(b: Billing, uses: list[Pending]) -> dict[int, str]:
    """CRD-1: the `ai.used` events' credits through the batch gate; refused: index →
    reason."""
    if not uses:
        return {}
    outcomes = consume_batch(b, [_use(p.event) for p in uses], checked=False)
    return {
        p.index: f"events[{p.index}]: {outcome.refused.message}"
        for p, outcome in zip(uses, outcomes, strict=True)
        if outcome.refused is not None
    }


def _use(event: CheckedEvent) -> Use:
    feature = event.properties.get("feature")
    return Use(event.org, feature if isinstance(feature, str) else "", event.client_id,
               event.properties.get("quantity", 1), event.agent)  # fmt: skip


def _in_sessions(account: Account, event: CheckedEvent) -> bool:
    if event.conversation is None:
        return False
    return any(event.type in (m.event, SESSION_STARTED) for m in account.sessions_meters)


def _key(p: Pending) -> tuple[int, str]:
    assert p.event.conversation is not None
    return (p.used_by_id, p.event.conversation)


def _wanted(touching: list[Pending]) -> dict[Key, NewConversation]:
    return {
        _key(p): NewConversation(p.used_by_id, p.owner_id, _key(p)[1], p.event.agent)
        for p in reversed(touching)  # the first event's agent, as one by one
    }


def _row(b: Billing, p: Pending, late: bool) -> dict[str, object]:
    event = p.event
    return {
        "organization_id": p.used_by_id, "client_id": event.client_id, "type": event.type,
        "agent": event.agent, "conversation": event.conversation, "time": event.time,
        "properties": dict(event.properties), "received_at": b.now, "late": late,
    }  # fmt: skip


def message_of(event_type: str, time: datetime, direction: object) -> Message:
    """A session start opens a window as an agent's (outbound) message would."""
    if event_type == SESSION_STARTED:
        return Message(time, Direction.OUTBOUND)
    return Message(time, Direction.parse(direction))


def _count_sessions(
    b: Billing,
    changes: Changes,
    by_owner: dict[int, Account],
    periods: _Periods,
    rows: dict[Key, ConversationRow],
    states: dict[Key, RecentWindows],
    fresh: list[Pending],
    wanted: Mapping[Key, NewConversation],
) -> list[ConversationWrite]:
    """USE-3/USE-4: each conversation's windows before and after the batch's messages;
    each window counts in the period holding its start (a message that moves windows
    moves their counts between periods). The conversations' new states, to write."""
    grouped: dict[tuple[int, str], list[Pending]] = {}
    for p in fresh:
        grouped.setdefault(_key(p), []).append(p)
    writes = []
    for key, row in rows.items():
        before = states[key]
        group = grouped.get(key, [])
        agent = row.agent or next((p.event.agent for p in group if p.event.agent), None)
        if group:
            owner_id = group[0].owner_id
            account = by_owner[owner_id]
            after = conversation_windows(b, row, before, [p.event for p in group],
                                         {m.event for m in account.sessions_meters})  # fmt: skip
            parts = scopes(row.organization_id, owner_id, agent)
            for (start, answered), delta in window_changes(before.windows, after.windows).items():
                period = periods.start_at(owner_id, start)
                if period is None:
                    continue
                opened, replied = _indexes(group, start)
                for meter in account.sessions_meters:
                    for scope in parts:
                        counter = CounterKey(owner_id, meter.code, period, scope)
                        changes.add(counter, delta * SCALE, 0, opened)
                        if answered:
                            changes.add(counter, 0, delta * SCALE, replied)
            before = after
        billed = wanted[key].billing_organization_id
        held = None  # LIM-7: the latest window holds a place while it has no reply
        if by_owner[billed].answered_only and before.starts and not before.answered[-1]:
            held = before.starts[-1]
        writes.append(ConversationWrite(row.organization_id, billed, row.conversation, agent,
                                        stored_form(compact(before)), held))  # fmt: skip
    return writes


def _indexes(group: list[Pending], start: datetime) -> tuple[int, int]:
    """The batch's first event (by index) in the window starting at `start`, and its
    first inbound one: the events that opened and answered it, for the order of notices."""
    inside = [p for p in group if start <= p.event.time < start + WINDOW]
    replies = [p for p in inside if p.event.properties.get("direction") == "inbound"]
    first = min((p.index for p in inside), default=min(p.index for p in group))
    return first, min((p.index for p in replies), default=first)


def conversation_windows(
    b: Billing,
    row: ConversationRow,
    state: RecentWindows,
    events: Sequence[CheckedEvent],
    types: set[str],
) -> RecentWindows:
    """The conversation's windows with these (not late) messages added; a message in a
    gap between its windows re-covers from there with the messages stored since."""
    messages = [message_of(e.type, e.time, e.properties.get("direction")) for e in events]
    after, since = advance(state, messages)
    if since is None:
        return after
    stored = usage_store.messages_since(b.session, row.organization_id, row.conversation,
                                        types | {SESSION_STARTED}, since)  # fmt: skip
    earlier = [message_of(m.type, m.time, m.direction) for m in stored]
    return recover(after, since, [*earlier, *messages])


class SessionCapReached(InvalidInput):
    code = "session_cap_reached"
