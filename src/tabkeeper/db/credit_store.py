"""The SQL of credit uses (CRD-1, CRD-3): the gate on the balance row, the draws on the
grants, the use entries. Plain statements built once per process, run on the session's
connection (flushed first, as the ORM would), with values as parameters.

The gate is the balance row's `UPDATE … WHERE balance >= cost AND nothing is due
RETURNING`: it debits and locks the row, so concurrent uses of one organization queue
there and re-check, and the balance never goes below zero. A grant is drawn on with
`UPDATE … WHERE remaining >= credits`, so a grant never goes below zero either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Executable, Table, Update, bindparam, or_, select, update
from sqlalchemy.orm import Session

from tabkeeper.db.inserts import insert_rows_ignoring
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant
from tabkeeper.domain.ledger import GrantKind

_BALANCE_TABLE = cast(Table, CreditBalance.__table__)
_GRANT_TABLE = cast(Table, CreditGrant.__table__)
_ENTRY_TABLE = cast(Table, CreditEntry.__table__)
_BALANCES = _BALANCE_TABLE.c
_GRANTS = _GRANT_TABLE.c
_ENTRIES = _ENTRY_TABLE.c

_GATE: Update = (
    update(_BALANCE_TABLE)
    .where(
        _BALANCES.organization_id == bindparam("org"),
        _BALANCES.balance >= bindparam("cost"),
        _BALANCES.period_key == bindparam("key"),
        or_(_BALANCES.refresh_at.is_(None), _BALANCES.refresh_at > bindparam("now")),
    )
    .values(balance=_BALANCES.balance - bindparam("cost"))
    .returning(_BALANCES.balance, _BALANCES.epoch)
)
_FIRST_GRANT = (  # draw order: domain/ledger.py `draw_order`
    select(_GRANTS.id)
    .where(_GRANTS.organization_id == bindparam("org"), _GRANTS.remaining > 0)
    .order_by(
        _GRANTS.kind != GrantKind.INCLUDED.value,
        _GRANTS.priority,
        _GRANTS.expires_at.is_(None),
        _GRANTS.expires_at,
        _GRANTS.id,
    )
    .limit(1)
    .scalar_subquery()
)
_DRAW_FIRST: Update = (
    update(_GRANT_TABLE)
    .where(_GRANTS.id == _FIRST_GRANT, _GRANTS.remaining >= bindparam("cost"))
    .values(remaining=_GRANTS.remaining - bindparam("cost"))
    .returning(_GRANTS.id)
)
_DRAW: Update = (
    update(_GRANT_TABLE)
    .where(_GRANTS.id == bindparam("grant"), _GRANTS.remaining >= bindparam("credits"))
    .values(remaining=_GRANTS.remaining - bindparam("credits"))
    .returning(_GRANTS.id)
)
_PUT_BACK_GRANT: Update = (
    update(_GRANT_TABLE)
    .where(_GRANTS.id == bindparam("grant"))
    .values(remaining=_GRANTS.remaining + bindparam("credits"))
)
_PUT_BACK: Update = (
    update(_BALANCE_TABLE)
    .where(_BALANCES.organization_id == bindparam("org"))
    .values(balance=_BALANCES.balance + bindparam("cost"))
)
_EARLIER = select(
    _ENTRIES.entry_key, _ENTRIES.feature, _ENTRIES.uses, _ENTRIES.amount,
    _ENTRIES.balance_after, _ENTRIES.agent, _ENTRIES.at,
).where(
    _ENTRIES.organization_id == bindparam("org"),
    _ENTRIES.entry_key.in_(bindparam("keys", expanding=True)),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class UseEntry:
    """A use entry as stored: what it took and the balance after it."""

    entry_key: str
    feature: str
    uses: int
    credits: int
    balance_after: int
    agent: str | None
    at: datetime


def _run(session: Session, statement: Executable, values: Any) -> Any:
    session.flush()  # plain statements on the connection do not flush the session
    return session.connection().execute(statement, values)


def gate(
    session: Session, owner_id: int, cost: int, period_key: str, now: datetime
) -> tuple[int, int] | None:
    """Debit `cost` when the balance covers it and nothing is due (the row is then locked):
    the balance after it and the epoch; None when the gate did not match."""
    values = {"org": owner_id, "cost": cost, "key": period_key, "now": now}
    found = _run(session, _GATE, values).first()
    return None if found is None else (int(found[0]), int(found[1]))


def draw_first(session: Session, owner_id: int, cost: int) -> int | None:
    """The first grant in draw order pays all of `cost`: its id; None when it cannot."""
    found = _run(session, _DRAW_FIRST, {"org": owner_id, "cost": cost}).scalar()
    return None if found is None else int(found)


def draw(session: Session, grant_id: int, credits: int) -> bool:
    """Take `credits` from grant `grant_id`; False when it has fewer left."""
    return _run(session, _DRAW, {"grant": grant_id, "credits": credits}).first() is not None


def put_back(session: Session, owner_id: int, cost: int, parts: Iterable[tuple[int, int]]) -> None:
    """Undo a debit of `cost` paid by `parts` (grant id, credits)."""
    _run(session, _PUT_BACK, {"org": owner_id, "cost": cost})
    for grant_id, credits in parts:
        _run(session, _PUT_BACK_GRANT, {"grant": grant_id, "credits": credits})


def earlier_entries(session: Session, owner_id: int, keys: Sequence[str]) -> list[UseEntry]:
    """The use entries written before under `keys`."""
    rows = _run(session, _EARLIER, {"org": owner_id, "keys": list(keys)})
    return [
        UseEntry(
            row.entry_key,
            row.feature or "",
            row.uses or 0,
            -row.amount,
            row.balance_after,
            row.agent,
            row.at,
        )
        for row in rows
    ]


def insert_entries(session: Session, entries: Sequence[dict[str, Any]]) -> list[str]:
    """Write entries, each once per key: the keys of those written now."""
    session.flush()
    written = insert_rows_ignoring(session, _ENTRY_TABLE, entries, returning=("entry_key",))
    return [row[0] for row in written]
