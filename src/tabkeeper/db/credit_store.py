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

from sqlalchemy import (
    Executable,
    Select,
    Table,
    Update,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, defer

from tabkeeper.db.inserts import insert_rows_ignoring
from tabkeeper.db.records import insert_once
from tabkeeper.db.tables import CatalogVersion, Organization, Subscription
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant, CreditHold
from tabkeeper.db.tables_usage import BillingPeriod
from tabkeeper.domain.ledger import EntryKind, GrantKind

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
    .returning(
        _BALANCES.balance, _BALANCES.epoch, _BALANCES.low_threshold,
        _BALANCES.auto_threshold, _BALANCES.auto_pending,
    )
)  # fmt: skip
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


@dataclass(frozen=True, slots=True)
class Gated:
    """What the gate's debit left: the balance after it, the epoch, the low-balance
    threshold (CRD-7), and the auto top-up's threshold and the one in flight (CRD-6)."""

    balance: int
    epoch: int
    threshold: int | None
    auto_threshold: int | None = None
    auto_pending: str | None = None


def gate(
    session: Session, owner_id: int, cost: int, period_key: str, now: datetime
) -> Gated | None:
    """Debit `cost` when the balance covers it and nothing is due (the row is then locked):
    the balance after it, the epoch, the low-balance threshold (CRD-7) and the auto
    top-up's state (CRD-6); None when the gate did not match."""
    values = {"org": owner_id, "cost": cost, "key": period_key, "now": now}
    found = _run(session, _GATE, values).first()
    if found is None:
        return None
    return Gated(
        int(found[0]), int(found[1]), None if found[2] is None else int(found[2]),
        None if found[3] is None else int(found[3]), found[4],
    )  # fmt: skip


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


# -- the ledger's rows (services/credit_ledger.py): ORM rows the ledger changes -----------

_HOLDING = (
    select(Subscription, CatalogVersion)
    .join(CatalogVersion, CatalogVersion.id == Subscription.catalog_version_id)
    .where(Subscription.organization_id == bindparam("org"))
    .options(defer(CatalogVersion.document))
)
_LOCKED_BALANCE = (
    select(CreditBalance)
    .where(CreditBalance.organization_id == bindparam("org"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_BALANCE = select(CreditBalance).where(CreditBalance.organization_id == bindparam("org"))
_ALL_GRANTS = select(CreditGrant).where(CreditGrant.organization_id == bindparam("org"))
_GRANT_ROWS = {
    live_only: (_ALL_GRANTS.where(CreditGrant.remaining > 0) if live_only else _ALL_GRANTS)
    .order_by(CreditGrant.id)
    .execution_options(populate_existing=True)
    for live_only in (False, True)
}
_PERIODS = (
    select(BillingPeriod.start, BillingPeriod.end)
    .where(
        BillingPeriod.organization_id == bindparam("org"),
        BillingPeriod.start >= bindparam("since"),
        BillingPeriod.start <= bindparam("until"),
    )
    .order_by(BillingPeriod.start)
)
_BY_SOURCE = select(CreditGrant).where(
    CreditGrant.organization_id == bindparam("org"), CreditGrant.source_key == bindparam("source")
)
_COUNT_KIND = (
    select(func.count())
    .select_from(CreditGrant)
    .where(CreditGrant.organization_id == bindparam("org"), CreditGrant.kind == bindparam("kind"))
)


def subscription_with_version(
    session: Session, owner_id: int
) -> tuple[Subscription, CatalogVersion] | None:
    """The organization's subscription with its catalog version, in one query; the
    version's document is read only when asked for (the catalog store has it parsed)."""
    found = session.execute(_HOLDING, {"org": owner_id}).first()
    return None if found is None else (found[0], found[1])


def locked_balance(session: Session, owner_id: int) -> CreditBalance:
    """The organization's balance row (made when missing), locked for the transaction."""
    insert_once(session, CreditBalance, {"organization_id": owner_id, "balance": 0,
                                         "epoch": 0, "period_key": ""})  # fmt: skip
    return session.scalars(_LOCKED_BALANCE, {"org": owner_id}).one()


def balance_row(session: Session, owner_id: int) -> CreditBalance | None:
    """The organization's balance row as it is (not locked; None when there is none)."""
    return session.scalars(_BALANCE, {"org": owner_id}).first()


def grant_rows(session: Session, owner_id: int, *, live_only: bool = True) -> list[CreditGrant]:
    """The organization's grants (those with credits left when `live_only`), in id order,
    read again."""
    return list(session.scalars(_GRANT_ROWS[live_only], {"org": owner_id}))


def grant_sources(session: Session, owner_id: int, prefix: str) -> set[str]:
    """The source keys of the organization's grants that start with `prefix`."""
    return set(
        session.scalars(
            select(CreditGrant.source_key).where(
                CreditGrant.organization_id == owner_id,
                CreditGrant.source_key.startswith(prefix, autoescape=True),
            )
        )
    )


def grant_by_source(session: Session, owner_id: int, source_key: str) -> CreditGrant | None:
    return session.scalars(_BY_SOURCE, {"org": owner_id, "source": source_key}).first()


def count_grants(session: Session, owner_id: int, kind: GrantKind) -> int:
    """How many grants of `kind` the organization has had."""
    return session.scalar(_COUNT_KIND, {"org": owner_id, "kind": kind.value}) or 0


def billing_periods(
    session: Session, owner_id: int, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The organization's billing periods starting within [since, until], in order: their
    start and end."""
    values = {"org": owner_id, "since": since, "until": until}
    return [(start, end) for start, end in session.execute(_PERIODS, values)]


def entries_query(owner_id: int) -> Select[Any]:
    """The organization's ledger entries, as a query to page through (CRD-2)."""
    return select(CreditEntry).where(CreditEntry.organization_id == owner_id)


def spend_rows(
    session: Session, owner_id: int, since: datetime, until: datetime
) -> list[tuple[str | None, str | None, int | None, int | None]]:
    """The use entries of [since, until) added up per feature and agent: feature, agent,
    uses, credits (CRD-4)."""
    rows = session.execute(
        select(
            CreditEntry.feature,
            CreditEntry.agent,
            func.sum(CreditEntry.uses),
            -func.sum(CreditEntry.amount),
        )
        .where(
            CreditEntry.organization_id == owner_id,
            CreditEntry.kind == EntryKind.USE.value,
            CreditEntry.at >= since,
            CreditEntry.at < until,
        )
        .group_by(CreditEntry.feature, CreditEntry.agent)
    ).all()
    return [(feature, agent, uses, credits) for feature, agent, uses, credits in rows]


# -- holds (services/credit_holds.py, CRD-5) ----------------------------------------------


def hold_row(session: Session, platform_id: int, hold_id: int) -> CreditHold | None:
    """The hold `hold_id` of one of the platform's organizations (None: there is none),
    read again."""
    return session.scalars(
        select(CreditHold)
        .join(Organization, Organization.id == CreditHold.organization_id)
        .where(CreditHold.id == hold_id, Organization.platform_id == platform_id)
        .execution_options(populate_existing=True)
    ).first()


def grants_by_id(session: Session, ids: Iterable[int]) -> dict[int, CreditGrant]:
    """The grants `ids`, read again, by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = session.scalars(
        select(CreditGrant)
        .where(CreditGrant.id.in_(wanted))
        .execution_options(populate_existing=True)
    )
    return {row.id: row for row in found}


_ADD_HELD: Update = (
    update(_BALANCE_TABLE)
    .where(_BALANCES.organization_id == bindparam("org"))
    .values(held=_BALANCES.held + bindparam("credits"))
)


def add_held(session: Session, owner_id: int, credits: int) -> None:
    """CRD-5: a hold of `credits` was made (the balance row is locked by its gate)."""
    _run(session, _ADD_HELD, {"org": owner_id, "credits": credits})


def balance_figures(session: Session, owner_id: int) -> tuple[int, int, int | None]:
    """CRD-5, CRD-7: the balance row's held credits, owed credits and low-balance
    threshold as stored now ((0, 0, None) without a row)."""
    found = session.execute(
        select(CreditBalance.held, CreditBalance.owed, CreditBalance.low_threshold).where(
            CreditBalance.organization_id == owner_id
        )
    ).first()
    return (0, 0, None) if found is None else (int(found[0]), int(found[1]), found[2])


def hold_count(session: Session, owner_id: int) -> int:
    """How many holds the organization has had (CRD-5)."""
    found = session.scalar(
        select(func.count()).select_from(CreditHold).where(CreditHold.organization_id == owner_id)
    )
    return int(found or 0)


# -- the spend cap (services/spend_caps.py, LIM-6) and auto top-up (CRD-6) ----------------

_ADD_OVERAGE: Update = (
    update(_BALANCE_TABLE)
    .where(_BALANCES.organization_id == bindparam("org"), _BALANCES.spend_cap.is_not(None))
    .values(
        spent_overage=case(
            (_BALANCES.spend_key == bindparam("key"),
             _BALANCES.spent_overage + bindparam("delta")),
            else_=bindparam("delta"),
        ),
        spent_purchases=case(
            (_BALANCES.spend_key == bindparam("key"), _BALANCES.spent_purchases), else_=0
        ),
        spend_key=bindparam("key"),
    )
    .returning(_BALANCES.spent_overage + _BALANCES.spent_purchases, _BALANCES.spend_cap)
)  # fmt: skip


_SPEND_NOW: Update = (
    update(_BALANCE_TABLE)
    .where(_BALANCES.organization_id == bindparam("org"), _BALANCES.spend_cap.is_not(None))
    .values(spend_cap=_BALANCES.spend_cap)
    .returning(
        case(
            (_BALANCES.spend_key == bindparam("key"),
             _BALANCES.spent_overage + _BALANCES.spent_purchases),
            else_=0,
        ),
        _BALANCES.spend_cap,
    )
)  # fmt: skip


def spend_now(session: Session, owner_id: int, key: str) -> tuple[int, int] | None:
    """LIM-6: the spend of the period `key` and the cap, with the balance row locked until
    the transaction ends (an update that changes nothing): a session start that could
    pass the cap waits here for the one before it, then sees its spend. None when the
    organization has no cap."""
    found = _run(session, _SPEND_NOW, {"org": owner_id, "key": key}).first()
    return None if found is None else (int(found[0]), int(found[1]))


def add_overage(session: Session, owner_id: int, key: str, delta: int) -> tuple[int, int] | None:
    """LIM-6: overage of `delta` minor units accrued in the period `key` (the counters of
    another period are started again): the spend after it and the cap; None when the
    organization has no cap (nothing written)."""
    found = _run(session, _ADD_OVERAGE, {"org": owner_id, "key": key, "delta": delta}).first()
    return None if found is None else (int(found[0]), int(found[1]))


_CLAIM_AUTO: Update = (
    update(_BALANCE_TABLE)
    .where(
        _BALANCES.organization_id == bindparam("org"),
        _BALANCES.auto_pending.is_(None),
        _BALANCES.auto_threshold.is_not(None),
    )
    .values(auto_pending=bindparam("pending"))
    .returning(_BALANCES.auto_credits)
)


def claim_auto_top_up(session: Session, owner_id: int, pending: str) -> int | None:
    """CRD-6: mark an auto top-up in flight unless one is (or auto top-up is off): the
    credits to buy; None when nothing was claimed."""
    found = _run(session, _CLAIM_AUTO, {"org": owner_id, "pending": pending}).first()
    return None if found is None or found[0] is None else int(found[0])
