"""The SQL of conversations (USE-3, USE-4): the rows a batch touches, read safe from
concurrent change in one statement, written back in one.

A row's `state` is domain/conversations.py's stored form (a floor and the recent
windows: bounded, whatever the number of messages).

How a conversation is kept from changing under the transaction (concurrent starts or
messages in one conversation must not both open a window):
- PostgreSQL: one INSERT … ON CONFLICT DO UPDATE (of nothing) … RETURNING for all the
  rows, in key order: a missing row is made (empty), an existing one locked, and each
  comes back as it is now (a row another transaction is writing is waited for, then
  read as that one committed it);
- SQLite: the writing transaction holds the database from its BEGIN IMMEDIATE, so a
  plain read is as good as a lock, and a row read with the account (db/accounts.py) is
  taken as it is: no statement at all. A missing row is made when written back.
The rows are written back with one INSERT … ON CONFLICT DO UPDATE (made when missing).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ValuesBase

from tabkeeper.db.prepared import write_rows
from tabkeeper.db.tables_usage import Conversation

TABLE = cast(Table, Conversation.__table__)
_C = TABLE.c
Key = tuple[int, str]
"""(organization id, conversation)."""


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """A conversation as stored (`id` None: not stored yet, made when written back)."""

    id: int | None
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


@dataclass(frozen=True, slots=True)
class ConversationWrite:
    """A conversation's state to store (the row made when missing)."""

    organization_id: int
    billing_organization_id: int
    conversation: str
    agent: str | None
    state: Mapping[str, Any]
    held_since: datetime | None = None
    """LIM-7: the start of the latest window while it holds a place (answered-only plans,
    no reply yet); None otherwise."""


def _insert(dialect: str) -> Callable[[Table], Any]:
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


_KEY = ("organization_id", "conversation")
_RETURNED = (_C.id, _C.organization_id, _C.conversation, _C.agent, _C.state)


@cache
def _locking(dialect: str) -> ValuesBase:
    statement = _insert(dialect)(TABLE)
    upsert = statement.on_conflict_do_update(index_elements=list(_KEY), set_={"agent": _C.agent})
    return cast(ValuesBase, upsert.returning(*_RETURNED))


@cache
def _writing(dialect: str) -> ValuesBase:
    statement = _insert(dialect)(TABLE).inline()  # nothing returned
    excluded = statement.excluded
    return cast(
        ValuesBase,
        statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={"state": excluded.state, "agent": excluded.agent,
                  "updated_at": excluded.updated_at, "held_since": excluded.held_since},
        ),
    )  # fmt: skip


_READ: Select[Any] = select(*_RETURNED).where(
    tuple_(_C.organization_id, _C.conversation).in_(bindparam("keys", expanding=True))
)


def _row(found: Any) -> ConversationRow:
    return ConversationRow(found[0], found[1], found[2], found[3], found[4])


def locked(
    session: Session,
    wanted: Collection[NewConversation],
    empty: Mapping[str, Any],
    now: datetime,
    known: Mapping[Key, ConversationRow | None] | None = None,
) -> dict[Key, ConversationRow]:
    """The conversations `wanted` as they are now, safe from concurrent change until
    the transaction ends (see the module), by (organization id, conversation); a
    missing one empty, with the agent it is wanted with. `known`: rows already read in
    this transaction (None: there is none), used as they are where that is safe."""
    if not wanted:
        return {}
    ordered = sorted(wanted, key=lambda w: (w.organization_id, w.conversation))
    if _dialect(session) == "postgresql":
        rows = [
            {"organization_id": w.organization_id,
             "billing_organization_id": w.billing_organization_id,
             "conversation": w.conversation, "agent": w.agent, "state": dict(empty),
             "updated_at": now}
            for w in ordered
        ]  # fmt: skip
        made = write_rows(session, _locking("postgresql"), rows)
        return {(row[1], row[2]): _row(row) for row in made}
    keys = [(w.organization_id, w.conversation) for w in ordered]
    given = known or {}
    found = {key: given[key] for key in keys if key in given}
    unread = [key for key in keys if key not in given]
    if unread:
        found.update(dict.fromkeys(unread))
        for row in session.connection().execute(_READ, {"keys": unread}):
            found[(row[1], row[2])] = _row(row)
    return {
        key: found[key] or ConversationRow(None, key[0], key[1], w.agent, empty)
        for key, w in zip(keys, ordered, strict=True)
    }


def write(session: Session, states: Iterable[ConversationWrite], now: datetime) -> None:
    """Store the conversations' states (each row made when missing): one statement."""
    rows = [
        {"organization_id": s.organization_id, "billing_organization_id": s.billing_organization_id,
         "conversation": s.conversation, "agent": s.agent, "state": dict(s.state),
         "updated_at": now, "held_since": s.held_since}
        for s in sorted(states, key=lambda s: (s.organization_id, s.conversation))
    ]  # fmt: skip
    if rows:
        write_rows(session, _writing(_dialect(session)), rows)
