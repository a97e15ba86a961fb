"""The SQL of conversations (USE-3, USE-4): the rows a batch touches, made when missing
and read (locked) in one go, written back in one go.

A row's `state` is domain/conversations.py's stored form (a floor and the recent
windows: bounded, whatever the number of messages).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from tabkeeper.db.inserts import insert_rows_ignoring
from tabkeeper.db.tables_usage import Conversation

_TABLE = cast(Table, Conversation.__table__)
_C = _TABLE.c


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: int
    organization_id: int
    conversation: str
    agent: str | None
    state: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewConversation:
    organization_id: int
    billing_organization_id: int
    conversation: str
    agent: str | None


_LOCKED = (
    select(_C.id, _C.organization_id, _C.conversation, _C.agent, _C.state)
    .where(
        _C.organization_id.in_(bindparam("orgs", expanding=True)),
        _C.conversation.in_(bindparam("conversations", expanding=True)),
    )
    .order_by(_C.id)
)
_READ = _LOCKED.with_for_update()


def locked(
    session: Session, wanted: Collection[NewConversation], empty: Mapping[str, Any], now: datetime
) -> dict[tuple[int, str], ConversationRow]:
    """The conversations `wanted`, made (empty) when missing, locked for the transaction
    (PostgreSQL; SQLite's writer holds the database), by (organization id, conversation):
    one SELECT … FOR UPDATE; for those missing, one INSERT … ON CONFLICT DO NOTHING
    RETURNING (and, for any another transaction made meanwhile, one more SELECT)."""
    if not wanted:
        return {}
    pairs = {(w.organization_id, w.conversation) for w in wanted}
    found = _select(session, pairs)
    missing = sorted(
        (w for w in wanted if (w.organization_id, w.conversation) not in found),
        key=lambda w: (w.organization_id, w.conversation),
    )
    if missing:
        rows = [
            {"organization_id": w.organization_id,
             "billing_organization_id": w.billing_organization_id,
             "conversation": w.conversation, "agent": w.agent, "state": dict(empty),
             "updated_at": now}
            for w in missing
        ]  # fmt: skip
        made = insert_rows_ignoring(session, _TABLE, rows, _COLUMNS)
        for row in made:
            found[(row[1], row[2])] = ConversationRow(row[0], row[1], row[2], row[3], row[4])
        if len(made) < len(missing):
            found.update(_select(session, pairs - set(found)))
    return found


_COLUMNS = ("id", "organization_id", "conversation", "agent", "state")


def _select(
    session: Session, pairs: set[tuple[int, str]]
) -> dict[tuple[int, str], ConversationRow]:
    rows = session.connection().execute(
        _READ,
        {"orgs": sorted({p[0] for p in pairs}), "conversations": sorted({p[1] for p in pairs})},
    )
    return {
        (row[1], row[2]): ConversationRow(row[0], row[1], row[2], row[3], row[4])
        for row in rows
        if (row[1], row[2]) in pairs
    }


def read(session: Session, organization_id: int, conversation: str) -> ConversationRow | None:
    """One conversation, not locked (None when it has no row yet)."""
    row = (
        session.connection()
        .execute(_LOCKED, {"orgs": [organization_id], "conversations": [conversation]})
        .first()
    )
    return None if row is None else ConversationRow(row[0], row[1], row[2], row[3], row[4])


_WRITE = (
    update(_TABLE)
    .where(_C.id == bindparam("row_id"))
    .values(
        state=bindparam("new_state", type_=_C.state.type),
        agent=bindparam("new_agent", type_=_C.agent.type),
        updated_at=bindparam("at", type_=_C.updated_at.type),
    )
)


def write(
    session: Session, states: Iterable[tuple[int, Mapping[str, Any], str | None]], now: datetime
) -> None:
    """Write back (row id, state, agent) of conversations: one executemany UPDATE."""
    rows = [
        {"row_id": row_id, "new_state": dict(state), "new_agent": agent, "at": now}
        for row_id, state, agent in states
    ]
    if rows:
        session.connection().execute(_WRITE, rows)
