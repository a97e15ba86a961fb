"""The SQL of metering (USE-1, USE-6, CAT-3): events, billing periods, counters and unique
values, each a set-based statement built once per process (the accounts a batch is
counted for come from db/accounts.py).

Every function runs plain statements on the session's connection; callers flush the
session first when it holds changes these statements must see (`flushed`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ValuesBase

from tabkeeper.db.inserts import insert_rows_ignoring
from tabkeeper.db.prepared import write_rows
from tabkeeper.db.tables import Organization, UsageEventRow
from tabkeeper.db.tables_usage import BillingPeriod, UsageCounter, UsageUniqueValue
from tabkeeper.domain.ingestion import TOTAL, CounterKey

_EVENTS = cast(Table, UsageEventRow.__table__)
_COUNTERS = cast(Table, UsageCounter.__table__)
_UNIQUE = cast(Table, UsageUniqueValue.__table__)
_PERIODS = cast(Table, BillingPeriod.__table__)
_ORGANIZATIONS = cast(Table, Organization.__table__)


def flushed(session: Session) -> Session:
    """The session with its pending changes written (plain statements do not flush)."""
    session.flush()
    return session


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(dialect: str) -> Callable[[Table], Any]:
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


# -- events ------------------------------------------------------------------------------


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[tuple[int, str]]:
    """Store events unless stored before (USE-1): one multi-row INSERT … ON CONFLICT DO
    NOTHING RETURNING; the (organization id, client id) of those stored now."""
    ordered = sorted(rows, key=lambda row: (row["organization_id"], row["client_id"]))
    # in key order: concurrent batches with ids in common wait for each other, never
    # for each other in a circle
    found = insert_rows_ignoring(session, _EVENTS, ordered, ("organization_id", "client_id"))
    return {(row[0], row[1]) for row in found}


@dataclass(frozen=True, slots=True)
class StoredMessage:
    type: str
    time: datetime
    direction: object


_MESSAGES_SINCE = select(_EVENTS.c.type, _EVENTS.c.time, _EVENTS.c.properties).where(
    _EVENTS.c.organization_id == bindparam("org"),
    _EVENTS.c.conversation == bindparam("conversation"),
    _EVENTS.c.type.in_(bindparam("types", expanding=True)),
    _EVENTS.c.time >= bindparam("since", type_=_EVENTS.c.time.type),
    _EVENTS.c.late.is_(False),
)


def messages_since(
    session: Session, organization_id: int, conversation: str, types: Collection[str],
    since: datetime,
) -> list[StoredMessage]:  # fmt: skip
    """The stored messages of a conversation at or after `since` that are not late."""
    rows = session.connection().execute(
        _MESSAGES_SINCE,
        {"org": organization_id, "conversation": conversation, "types": sorted(types),
         "since": since},
    )  # fmt: skip
    return [StoredMessage(row[0], row[1], (row[2] or {}).get("direction")) for row in rows]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    organization_id: int
    client_id: str
    type: str
    time: datetime
    agent: str | None
    conversation: str | None
    properties: Mapping[str, Any]
    late: bool


def stored_events(
    session: Session,
    organization_ids: Collection[int],
    types: Collection[str],
    start: datetime,
    end: datetime,
    *,
    whole_conversations: bool,
) -> list[StoredEvent]:
    """The stored events of these organizations and types in [start, end), in time
    order; with `whole_conversations`, every event before `end` of the conversations
    that have one in the period (their windows may start before it)."""
    e = _EVENTS.c
    query = select(e.organization_id, e.client_id, e.type, e.time, e.agent, e.conversation,
                   e.properties, e.late).where(
        e.organization_id.in_(organization_ids), e.type.in_(types), e.time < end
    )  # fmt: skip
    if whole_conversations:
        touching = (
            select(e.conversation)
            .where(e.organization_id.in_(organization_ids), e.type.in_(types),
                   e.time >= start, e.time < end)
            .distinct()
        )  # fmt: skip
        query = query.where(e.conversation.in_(touching))
    else:
        query = query.where(e.time >= start)
    rows = flushed(session).connection().execute(query.order_by(e.time, e.id))
    return [StoredEvent(*row) for row in rows]


def sub_accounts(session: Session, owner_id: int) -> list[tuple[int, str]]:
    """(id, code) of the organization's sub-accounts (SUB-2)."""
    o = _ORGANIZATIONS.c
    query = select(o.id, o.code).where(o.parent_id == owner_id)
    rows = flushed(session).connection().execute(query)
    return [(row[0], row[1]) for row in rows]


# -- billing periods ---------------------------------------------------

_PERIODS_OF = select(_PERIODS.c.organization_id, _PERIODS.c.start, _PERIODS.c.end).where(
    _PERIODS.c.organization_id.in_(bindparam("owners", expanding=True))
)


def periods_of(
    session: Session, owner_ids: Collection[int]
) -> list[tuple[int, datetime, datetime]]:
    """Every billing period of these organizations, in one query."""
    if not owner_ids:
        return []
    rows = session.connection().execute(_PERIODS_OF, {"owners": sorted(owner_ids)})
    return [(row[0], row[1], row[2]) for row in rows]


_END_RUNNING = (
    update(_PERIODS)
    .where(
        _PERIODS.c.organization_id == bindparam("org"),
        _PERIODS.c.start < bindparam("at", type_=_PERIODS.c.start.type),
        _PERIODS.c.end > bindparam("at", type_=_PERIODS.c.start.type),
    )
    .values(end=bindparam("at", type_=_PERIODS.c.start.type))
)


def end_periods_running_at(session: Session, organization_id: int, at: datetime) -> None:
    """Periods of the organization still running at `at` end there."""
    flushed(session).connection().execute(_END_RUNNING, {"org": organization_id, "at": at})


def open_period(session: Session, organization_id: int, start: datetime, end: datetime) -> None:
    """Record a billing period (once: a second one with the same start is ignored)."""
    row = {"organization_id": organization_id, "start": start, "end": end}
    insert_rows_ignoring(flushed(session), _PERIODS, [row])


# -- counters ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CounterValue:
    quantity: int
    answered: int


def _key(row: Any) -> CounterKey:
    return CounterKey(row[0], row[1], row[2], row[3])


_C = _COUNTERS.c
_KEY_COLUMNS = (_C.organization_id, _C.meter, _C.period_start, _C.scope)


@cache
def _upsert(dialect: str, kind: str) -> ValuesBase:
    statement = _insert(dialect)(_COUNTERS)
    excluded = statement.excluded
    if kind == "add":
        values = {"quantity": _C.quantity + excluded.quantity,
                  "answered": _C.answered + excluded.answered}  # fmt: skip
    else:
        values = {"quantity": case((excluded.quantity > _C.quantity, excluded.quantity),
                                   else_=_C.quantity)}  # fmt: skip
    upsert = statement.on_conflict_do_update(index_elements=list(_KEY_COLUMNS), set_=values)
    return cast(ValuesBase, upsert.returning(*_KEY_COLUMNS, _C.quantity, _C.answered))


def add_to_counters(
    session: Session, added: Mapping[CounterKey, tuple[int, int]]
) -> dict[CounterKey, CounterValue]:
    """Add to each counter (made when missing) once: one multi-row upsert in key order
    (concurrent batches lock rows in the same order). The values after, by key."""
    return _upsert_all(session, "add", {k: (q, a) for k, (q, a) in added.items()})


def raise_counters(
    session: Session, raised: Mapping[CounterKey, int]
) -> dict[CounterKey, CounterValue]:
    """Max meters: each counter becomes the value when that is larger. Values after."""
    return _upsert_all(session, "max", {k: (v, 0) for k, v in raised.items()})


def _upsert_all(
    session: Session, kind: str, changes: Mapping[CounterKey, tuple[int, int]]
) -> dict[CounterKey, CounterValue]:
    if not changes:
        return {}
    rows = [
        {"organization_id": key.owner_id, "meter": key.meter, "period_start": key.period_start,
         "scope": key.scope, "quantity": quantity, "answered": answered}
        for key, (quantity, answered) in sorted(changes.items())
    ]  # fmt: skip
    found = write_rows(session, _upsert(_dialect(session), kind), rows)
    return {_key(row): CounterValue(int(row[4]), int(row[5])) for row in found}


@cache
def _capped(dialect: str) -> ValuesBase:
    statement = _insert(dialect)(_COUNTERS)
    excluded = statement.excluded
    upsert = statement.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={
            "quantity": _C.quantity + excluded.quantity,
            "answered": _C.answered + excluded.answered,
        },
        where=_C.quantity + excluded.quantity <= bindparam("cap"),
    )
    return cast(ValuesBase, upsert.returning(_C.quantity, _C.answered))


def add_within(
    session: Session, key: CounterKey, quantity: int, answered: int, cap: int
) -> CounterValue | None:
    """LIM-3: add `quantity` to the counter only while it stays at or under `cap`: one
    conditional upsert (concurrent adds queue on the row and re-check). The value after,
    or None when refused."""
    if quantity > cap:
        return None
    found = write_rows(
        session, _capped(_dialect(session)),
        [{"organization_id": key.owner_id, "meter": key.meter, "period_start": key.period_start,
          "scope": key.scope, "quantity": quantity, "answered": answered}],
        {"cap": cap},
    )  # fmt: skip
    return CounterValue(int(found[0][0]), int(found[0][1])) if found else None


_TOTALS = select(*_KEY_COLUMNS, _C.quantity, _C.answered).where(
    _C.organization_id.in_(bindparam("owners", expanding=True)),
    _C.meter.in_(bindparam("meters", expanding=True)),
    _C.scope == TOTAL,
)


def counter_values(session: Session, keys: Iterable[CounterKey]) -> dict[CounterKey, CounterValue]:
    """The values of these counters (missing ones left out), in one query."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = session.connection().execute(
        _TOTALS,
        {"owners": sorted({k.owner_id for k in wanted}),
         "meters": sorted({k.meter for k in wanted})},
    )  # fmt: skip
    found = {_key(row): CounterValue(int(row[4]), int(row[5])) for row in rows}
    return {key: value for key, value in found.items() if key in wanted}


_ONE = select(_C.quantity, _C.answered).where(
    _C.organization_id == bindparam("org"),
    _C.meter == bindparam("meter"),
    _C.period_start == bindparam("start", type_=_C.period_start.type),
    _C.scope == bindparam("scope"),
)
_PARTS = select(_C.scope, _C.quantity, _C.answered).where(
    _C.organization_id == bindparam("org"),
    _C.meter == bindparam("meter"),
    _C.period_start == bindparam("start", type_=_C.period_start.type),
    _C.scope != TOTAL,
)


def counter_value(session: Session, key: CounterKey) -> CounterValue:
    """One counter (zero when it has no row yet): one indexed read (USE-6)."""
    row = session.connection().execute(
        _ONE, {"org": key.owner_id, "meter": key.meter, "start": key.period_start,
               "scope": key.scope},
    ).first()  # fmt: skip
    return CounterValue(0, 0) if row is None else CounterValue(int(row[0]), int(row[1]))


def counter_parts(
    session: Session, owner_id: int, meter: str, period_start: datetime
) -> dict[str, CounterValue]:
    """The counters of a meter's period but the whole organization's: by scope."""
    rows = session.connection().execute(
        _PARTS, {"org": owner_id, "meter": meter, "start": period_start}
    )
    return {row[0]: CounterValue(int(row[1]), int(row[2])) for row in rows}


# -- unique values -----------------------------------------------------------------------


def insert_unique_values(
    session: Session, values: Iterable[tuple[int, str, datetime, str]]
) -> list[tuple[int, str, datetime, str]]:
    """Record the values unique-count meters saw, once each (CAT-3): one multi-row
    INSERT … ON CONFLICT DO NOTHING; the (organization, meter, period, value) of each
    new one."""
    rows = [
        {"organization_id": owner, "meter": meter, "period_start": start, "value": value}
        for owner, meter, start, value in sorted(values)
    ]
    columns = ("organization_id", "meter", "period_start", "value")
    found = insert_rows_ignoring(session, _UNIQUE, rows, columns)
    return [(row[0], row[1], row[2], row[3]) for row in found]
