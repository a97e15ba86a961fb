"""The hot path reads the account once and is set-based (LIM-3, USE-1, USE-3, USE-6): the
statements a session start and a batch of events send, counted as the driver gets them.

A session start (as `POST /v1/sessions/start` runs it): one SELECT (the organization, its
billing organization, subscription, the current period's counters and the conversation's
row), the conditional counter upsert when a cap applies, one insert of the start event,
the conversation written back, the other counters in one upsert. On PostgreSQL one more:
the conversation made and locked before it is counted (concurrent starts in one
conversation must not both open a window); on SQLite the writer holds the database and
the row read with the account is used as it is. A batch of events: the accounts with the
platform's current catalog (one SELECT), the conversations (one statement), the events
(one insert), the conversations written back, the counters (one upsert), whatever the
batch's size; no billing-period query while the events are in the current period.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from tabkeeper.db.engine import is_sqlite
from tabkeeper.domain.decisions import Decision
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.session_starts import set_session_limit, start_session_by_code
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import World, make_world, statements_sent


def _everyone(_organization: object) -> bool:
    return True


def _world(engine: Engine, limit: int | None) -> World:
    world = make_world(engine)
    world.organization("acme")
    world.subscribe("acme", "basic")
    world.clock.advance(timedelta(hours=1))
    if limit is not None:
        with world.billing() as b:
            set_session_limit(b, organization_by_code(b, "acme"), limit)
    assert _start(world, "warm-up").allowed  # the catalog version is cached per process
    return world


def _start(world: World, conversation: str) -> Decision:
    with world.billing() as b:
        return start_session_by_code(b, "acme", "a1", conversation, visible=_everyone)


def _writes(sent: list[str], table: str) -> list[str]:
    return [s for s in sent if s.startswith(f"INSERT INTO {table} ")]


@pytest.mark.parametrize("limit", [None, 100])
def test_lim3_a_start_reads_the_account_once(engine: Engine, limit: int | None) -> None:
    """LIM-3/USE-3: a new session is 4 statements on SQLite and 5 on PostgreSQL, one more
    with a session limit (the conditional counter upsert); the account, its counters and
    the conversation are read by one SELECT."""
    world = _world(engine, limit)
    with statements_sent(engine) as sent:
        assert _start(world, "k1").allowed
    selects = [s for s in sent if s.startswith("SELECT")]
    assert len(selects) == 1, sent
    assert "usage_counters" in selects[0] and "conversations" in selects[0]
    assert len(_writes(sent, "events")) == 1, sent
    assert len(_writes(sent, "conversations")) == (1 if is_sqlite(engine) else 2), sent
    assert len(_writes(sent, "usage_counters")) == (1 if limit is None else 2), sent
    expected = (4 if is_sqlite(engine) else 5) + (0 if limit is None else 1)
    assert len(sent) == expected, sent


def test_use3_a_start_in_an_open_window_counts_nothing(engine: Engine) -> None:
    """USE-3: a start inside the conversation's open 24-hour window is stored but opens
    no session: no counter is written (3 statements on SQLite, 4 on PostgreSQL)."""
    world = _world(engine, 100)
    assert _start(world, "k1").allowed
    world.clock.advance(timedelta(hours=1))
    with statements_sent(engine) as sent:
        assert _start(world, "k1").allowed
    assert _writes(sent, "usage_counters") == [], sent
    assert len(sent) == (3 if is_sqlite(engine) else 4), sent


def test_lim4_a_start_refused_at_the_limit_is_one_read(engine: Engine) -> None:
    """LIM-4: at the session limit a new conversation is refused from the one read of the
    account; nothing is written."""
    world = _world(engine, 1)
    with statements_sent(engine) as sent:
        assert not _start(world, "k1").allowed
    assert len(sent) == 1 and sent[0].startswith("SELECT"), sent


@pytest.mark.parametrize("size", [1, 10])
def test_use1_a_batch_is_five_statements_whatever_its_size(engine: Engine, size: int) -> None:
    """USE-1/USE-6: a batch of messages (one, or ten over three conversations, new ones
    and one with a session running) is five statements: the accounts with the current
    catalog, the conversations, the events, the conversations written back, the counters;
    no billing period is read for events in the current period."""
    world = _world(engine, None)
    events = [
        {"id": f"m{i}", "type": "message", "org": "acme", "agent": "a1",
         "conversation": ("k1", "k2", "warm-up")[i % 3],
         "properties": {"direction": "outbound" if i % 2 else "inbound"}}
        for i in range(size)
    ]  # fmt: skip
    with statements_sent(engine) as sent, world.billing() as b:
        assert ingest_batch(b, events).accepted == size
    assert len([s for s in sent if s.startswith("SELECT")]) == (2 if is_sqlite(engine) else 1)
    assert not [s for s in sent if "billing_periods" in s], sent
    assert len(_writes(sent, "events")) == 1, sent
    assert len(_writes(sent, "usage_counters")) == 1, sent
    assert len(sent) == 5, sent
