"""The hot path's writes sent straight to the driver (db/prepared.py `write_rows`) do and
return exactly what the same statement does through SQLAlchemy (USE-1: an event stored
once, its counters added once; LIM-3: the conditional upsert of a session start): rows
inserted, rows ignored as duplicates (nothing returned for them), upserts adding to an
existing row, a cap that refuses, datetimes aware and in UTC and JSON read back as
written, for 1, 2 and 16 rows (straight to the driver) and 17 rows (through SQLAlchemy).
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tabkeeper.db import conversations, usage_store
from tabkeeper.db.engine import transaction
from tabkeeper.db.inserts import insert_ignoring
from tabkeeper.db.prepared import ROWS_AT_MOST, write_rows
from tabkeeper.db.tables import Organization, Platform
from tabkeeper.domain.ingestion import TOTAL

START = datetime(2026, 1, 1, tzinfo=UTC)


def _organization(engine: Engine) -> int:
    with transaction(engine) as session:
        platform = Platform(code="prepared", name="Prepared", created_at=START)
        session.add(platform)
        session.flush()
        organization = Organization(
            platform_id=platform.id, code="acme", name="Acme", created_at=START
        )
        session.add(organization)
        session.flush()
        return organization.id


def _counter_rows(owner: int, count: int, quantity: int) -> list[dict[str, Any]]:
    return [
        {"organization_id": owner, "meter": f"m{i}", "period_start": START, "scope": TOTAL,
         "quantity": quantity, "answered": i}
        for i in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("count", [1, 2, ROWS_AT_MOST, ROWS_AT_MOST + 1])
def test_use_1_counter_upserts_add_once_and_return_the_values_after(
    engine: Engine, count: int
) -> None:
    """USE-1: the counters' upsert makes missing rows and adds to existing ones; what it
    returns (key with an aware UTC period start, quantity, answered) is the rows after."""
    owner = _organization(engine)
    statement = usage_store._upsert(engine.dialect.name, "add")
    with transaction(engine) as session:
        first = write_rows(session, statement, _counter_rows(owner, count, 2))
    with transaction(engine) as session:
        again = write_rows(session, statement, _counter_rows(owner, count, 3))
    assert sorted(tuple(row) for row in first) == [
        (owner, f"m{i}", START, TOTAL, 2, i) for i in sorted(range(count), key=str)
    ]
    assert sorted(tuple(row) for row in again) == [
        (owner, f"m{i}", START, TOTAL, 5, 2 * i) for i in sorted(range(count), key=str)
    ]
    assert all(row[2].tzinfo is not None and row[2].utcoffset() == timedelta(0) for row in again)


def test_lim_3_the_capped_upsert_adds_within_the_cap_and_refuses_past_it(engine: Engine) -> None:
    """LIM-3: the conditional upsert adds while the counter stays at or under the cap and
    returns nothing (no change) past it."""
    owner = _organization(engine)
    key = usage_store.CounterKey(owner, "sessions", START, TOTAL)
    with transaction(engine) as session:
        assert usage_store.add_within(session, key, 1, 0, 2) == usage_store.CounterValue(1, 0)
        assert usage_store.add_within(session, key, 1, 0, 2) == usage_store.CounterValue(2, 0)
        assert usage_store.add_within(session, key, 1, 0, 2) is None
        assert usage_store.counter_value(session, key) == usage_store.CounterValue(2, 0)


@pytest.mark.parametrize("count", [1, 2, ROWS_AT_MOST + 1])
def test_use_1_events_are_stored_once_and_duplicates_return_nothing(
    engine: Engine, count: int
) -> None:
    """USE-1: an event insert returns the ids stored now; the same ids again (and mixed
    with new ones) return only the new; properties (JSON) and times read back as sent."""
    owner = _organization(engine)

    def events(ids: range) -> list[dict[str, Any]]:
        return [
            {"organization_id": owner, "client_id": f"e{i}", "type": "message", "agent": "bot",
             "conversation": "k1", "time": START + timedelta(seconds=i),
             "properties": {"direction": "inbound", "n": i, "text": "é"},
             "received_at": START, "late": False}
            for i in ids
        ]  # fmt: skip

    with transaction(engine) as session:
        stored = usage_store.insert_events(session, events(range(count)))
    with transaction(engine) as session:
        again = usage_store.insert_events(session, events(range(count + 1)))
    assert stored == {(owner, f"e{i}") for i in range(count)}
    assert again == {(owner, f"e{count}")}
    table = usage_store._EVENTS
    with transaction(engine) as session:
        rows = session.execute(select(table.c.client_id, table.c.time, table.c.properties)).all()
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    assert by_id == {e["client_id"]: (e["time"], e["properties"]) for e in events(range(count + 1))}


def test_use_3_conversations_are_written_and_read_back(engine: Engine) -> None:
    """USE-3: a conversation's state written (made when missing, then replaced) reads back
    as written."""
    owner = _organization(engine)
    key = (owner, "k1")
    for state in ({"floor": None, "windows": [[1, 2]]}, {"floor": 5, "windows": []}):
        write = conversations.ConversationWrite(owner, owner, "k1", "bot", state)
        with transaction(engine) as session:
            conversations.write(session, [write], START)
        with transaction(engine) as session:
            found = conversations.locked(
                session, [conversations.NewConversation(owner, owner, "k1", "bot")], {}, START
            )
        assert found[key].state == state


def test_a_row_without_a_column_that_has_a_default_is_refused(
    engine: Engine,
) -> None:
    """A row without a column that has a default (filled in by SQLAlchemy's execution,
    which this path skips) would be written wrong: refused with a clear error."""
    owner = _organization(engine)
    statement = insert_ignoring(usage_store._EVENTS, engine.dialect.name)
    row = {"organization_id": owner, "client_id": "x", "type": "message", "time": START,
           "properties": {}, "received_at": START}  # fmt: skip  # no "late"
    with transaction(engine) as session, pytest.raises(ValueError, match="late"):
        write_rows(session, statement, [row])
