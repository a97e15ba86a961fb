"""The SQL of the billing account read model (DESIGN.md: the account a request is about is
read once, as one read model, and handed down).

One statement brings an organization, its billing organization (itself, or a
sub-account's parent: SUB-2), that one's subscription and credit balance row, and, when
asked, the whole-organization usage counters of the subscription's current period: one
row per counter (the account's columns repeated), or one row with no counter; and, when
asked, one conversation of the organization (a session start's, USE-3: read, not locked;
db/conversations.py says when that is enough). Statements are built once per process;
the values come as parameters.

What comes back are frozen facts (plain values), never ORM rows: services/accounts.py
turns them into a `BillingAccount` with its catalog, plan, status and period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, bindparam, func, literal, select
from sqlalchemy.orm import Session

from tabkeeper.db.conversations import TABLE as CONVERSATIONS
from tabkeeper.db.conversations import ConversationRow
from tabkeeper.db.prepared import PreparedRead, one_statement_engine
from tabkeeper.db.tables import CatalogVersion, Organization, Subscription
from tabkeeper.db.tables_credits import CreditBalance
from tabkeeper.db.tables_usage import UsageCounter

TOTAL_SCOPE = ""
"""The counters' scope of the whole organization (services/counters.py)."""


@dataclass(frozen=True, slots=True)
class SubscriptionFacts:
    """A subscription's columns, under the attribute names of the `Subscription` row."""

    id: int
    state: str
    plan_code: str
    catalog_version_id: int
    period_index: int
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool
    trial_ends_at: datetime | None
    trial_sessions: int | None
    grace_ends_at: datetime | None
    retention_ends_at: datetime | None
    session_limit: int | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class CreditFacts:
    """The billing organization's credit balance row (CRD-1)."""

    balance: int
    period_key: str
    refresh_at: datetime | None
    held: int = 0
    """CRD-5: the credits open holds reserve (not in the balance)."""
    spend_cap: int | None = None
    """LIM-6: the spend cap in minor units (None: no cap)."""
    spend_key: str = ""
    """LIM-6: the period `spent` counts for."""
    spent: int = 0
    """LIM-6: overage and purchases counted in that period, minor units."""


@dataclass(frozen=True, slots=True)
class CounterFacts:
    """One meter's whole-organization counter in millionths (services/counters.py)."""

    quantity: int
    answered: int


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """An organization as billing sees it, read in one statement."""

    platform_id: int
    id: int
    code: str
    parent_id: int | None
    created_at: datetime
    owner_id: int
    owner_code: str
    trial_used: bool
    """The billing organization's (TRI-4)."""
    subscription: SubscriptionFacts | None
    credits: CreditFacts | None
    counters: Mapping[str, CounterFacts] | None
    """The current period's counters by meter; None when they were not read."""
    conversation: ConversationRow | None = None
    """The conversation asked for, when it has a row."""
    held: int = 0
    """LIM-7: with the counters, the places held now by unanswered windows that started in
    the current period and are still open (answered-only plans; 0 on the others)."""


_USERS = cast(Table, Organization.__table__).alias("used_by")
_OWNERS = cast(Table, Organization.__table__).alias("owner")
_S = cast(Table, Subscription.__table__)
_B = cast(Table, CreditBalance.__table__)
_C = cast(Table, UsageCounter.__table__)
_SUBSCRIPTION_COLUMNS = (
    "id", "state", "plan_code", "catalog_version_id", "period_index", "period_start",
    "period_end", "cancel_at_period_end", "trial_ends_at", "trial_sessions",
    "grace_ends_at", "retention_ends_at", "session_limit", "started_at",
)  # fmt: skip
_ACCOUNT_FROM = (
    _USERS.join(_OWNERS, _OWNERS.c.id == func.coalesce(_USERS.c.parent_id, _USERS.c.id))
    .outerjoin(_S, _S.c.organization_id == _OWNERS.c.id)
    .outerjoin(_B, _B.c.organization_id == _OWNERS.c.id)
)
_ACCOUNT_COLUMNS = (
    _USERS.c.platform_id,
    _USERS.c.id.label("used_by_id"),
    _USERS.c.code,
    _USERS.c.parent_id,
    _USERS.c.created_at,
    _OWNERS.c.id.label("owner_id"),
    _OWNERS.c.code.label("owner_code"),
    _OWNERS.c.trial_used,
    *(_S.c[name].label(f"s_{name}") for name in _SUBSCRIPTION_COLUMNS),
    _B.c.balance.label("b_balance"),
    _B.c.period_key.label("b_period_key"),
    _B.c.refresh_at.label("b_refresh_at"),
    _B.c.held.label("b_held"),
    _B.c.spend_cap.label("b_spend_cap"),  # LIM-6: the check compares these with no statement
    _B.c.spend_key.label("b_spend_key"),
    (_B.c.spent_overage + _B.c.spent_purchases).label("b_spent"),
)
_PLAIN: Select[Any] = select(*_ACCOUNT_COLUMNS).select_from(_ACCOUNT_FROM)
_COUNTER_ONLY = (
    _C.c.meter.label("c_meter"), _C.c.quantity.label("c_quantity"),
    _C.c.answered.label("c_answered"),
)  # fmt: skip
_COUNTED_FROM = _ACCOUNT_FROM.outerjoin(
    _C,
    and_(
        _C.c.organization_id == _OWNERS.c.id,
        _C.c.period_start == _S.c.period_start,
        _C.c.scope == literal(TOTAL_SCOPE),
    ),
)
_H = CONVERSATIONS.alias("held")
_HELD = (
    select(func.count())
    .select_from(_H)
    .where(
        _H.c.billing_organization_id == _OWNERS.c.id,
        _H.c.held_since > bindparam("open_after", type_=_H.c.held_since.type),
        _H.c.held_since >= _S.c.period_start,
    )
    .scalar_subquery()
    .label("held")
)
"""LIM-7: open unanswered windows of the current period (the index on (billing
organization, held_since) makes it one range scan). Read in the statement that reads the
counters, so both come from one snapshot."""
_COUNTER_COLUMNS = (*_COUNTER_ONLY, _HELD)
_COUNTED: Select[Any] = select(*_ACCOUNT_COLUMNS, *_COUNTER_COLUMNS).select_from(_COUNTED_FROM)
_V = CONVERSATIONS
_CONVERSATION_COLUMNS = (
    _V.c.id.label("v_id"), _V.c.agent.label("v_agent"), _V.c.state.label("v_state"),
)  # fmt: skip
_STARTING: Select[Any] = select(
    *_ACCOUNT_COLUMNS, *_COUNTER_COLUMNS, *_CONVERSATION_COLUMNS
).select_from(
    _COUNTED_FROM.outerjoin(
        _V,
        and_(_V.c.organization_id == _USERS.c.id, _V.c.conversation == bindparam("conversation")),
    )
)  # fmt: skip


_VERSIONS = cast(Table, CatalogVersion.__table__)
_CURRENT_CATALOG = (
    select(_VERSIONS.c.id)
    .where(_VERSIONS.c.platform_id == bindparam("platform"))
    .order_by(_VERSIONS.c.version.desc())
    .limit(1)
    .scalar_subquery()
)
_BATCH: Select[Any] = select(
    *_ACCOUNT_COLUMNS, _CURRENT_CATALOG.label("current_catalog")
).select_from(_ACCOUNT_FROM)


def _by_code(statement: Select[Any]) -> Select[Any]:
    return statement.where(
        _USERS.c.platform_id == bindparam("platform"), _USERS.c.code == bindparam("code")
    )


def _by_codes(statement: Select[Any]) -> Select[Any]:
    return statement.where(
        _USERS.c.platform_id == bindparam("platform"),
        _USERS.c.code.in_(bindparam("codes", expanding=True)),
    )


def _by_id(statement: Select[Any]) -> Select[Any]:
    return statement.where(
        _USERS.c.platform_id == bindparam("platform"), _USERS.c.id == bindparam("organization")
    )


def _by_ids(statement: Select[Any]) -> Select[Any]:
    return statement.where(
        _USERS.c.platform_id == bindparam("platform"),
        _USERS.c.id.in_(bindparam("organizations", expanding=True)),
    )


_STATEMENTS: dict[tuple[str, bool | str], Select[Any]] = {
    **{
        (kind, counted): select_(_COUNTED if counted else _PLAIN)
        for kind, select_ in (
            ("code", _by_code), ("codes", _by_codes), ("id", _by_id), ("ids", _by_ids)
        )
        for counted in (False, True)
    },
    ("codes", "batch"): _by_codes(_BATCH),
    ("code", "batch"): _by_code(_BATCH),
    ("code", "starting"): _by_code(_STARTING),
    ("id", "starting"): _by_id(_STARTING),
}  # fmt: skip
_PREPARED = {
    kind: PreparedRead(statement)
    for kind, statement in _STATEMENTS.items()
    if kind[0] in ("code", "id")  # one organization: no list of values to expand
}
"""The one-organization reads, sent straight to the driver when they are the whole of a
one-statement read (the check: db/prepared.py)."""


def account_by_code(
    session: Session,
    platform_id: int,
    code: str,
    *,
    counters: bool = False,
    conversation: str | None = None,
    open_after: datetime | None = None,
) -> AccountFacts | None:
    """The platform's organization `code` as billing sees it (None when unknown); with
    `conversation`, its counters and that conversation of the organization too. With the
    counters, `open_after` (now less one window, LIM-7): held places are windows that
    started after it (None: none are counted)."""
    values: dict[str, Any] = {"platform": platform_id, "code": code, "open_after": open_after}
    return _one(session, "code", counters, values, conversation)


def account_by_id(
    session: Session,
    platform_id: int,
    organization_id: int,
    *,
    counters: bool = False,
    conversation: str | None = None,
    open_after: datetime | None = None,
) -> AccountFacts | None:
    """The platform's organization `organization_id` (None when not the platform's)."""
    values: dict[str, Any] = {
        "platform": platform_id,
        "organization": organization_id,
        "open_after": open_after,
    }
    return _one(session, "id", counters, values, conversation)


def _one(
    session: Session, kind: str, counters: bool, values: dict[str, Any], conversation: str | None
) -> AccountFacts | None:
    if conversation is None:
        rows = _run(session, (kind, counters), values)
        return _facts(rows, counters) if rows else None
    rows = _run(session, (kind, "starting"), {**values, "conversation": conversation})
    if not rows:
        return None
    row = rows[0]
    found = None
    if row.v_id is not None:
        found = ConversationRow(row.v_id, row.used_by_id, conversation, row.v_agent, row.v_state)
    return replace(_facts(rows, True), conversation=found)


def batch_accounts(
    session: Session, platform_id: int, codes: Iterable[str]
) -> tuple[dict[str, AccountFacts], int | None]:
    """`accounts_by_code` (without counters) and the id of the platform's current
    catalog version (the newest; None when no organization was found), one statement."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}, None
    rows = _run(session, ("codes", "batch"), {"platform": platform_id, "codes": wanted})
    found = {row.code: _facts([row], False) for row in rows}
    return found, rows[0].current_catalog if rows else None


def accounts_by_id(
    session: Session, platform_id: int, organization_ids: Iterable[int]
) -> dict[int, AccountFacts]:
    """The platform's organizations `organization_ids` (others left out), one statement."""
    wanted = sorted(set(organization_ids))
    if not wanted:
        return {}
    rows = _run(session, ("ids", False), {"platform": platform_id, "organizations": wanted})
    return {row.used_by_id: _facts([row], False) for row in rows}


def accounts_by_code(
    session: Session,
    platform_id: int,
    codes: Iterable[str],
    *,
    counters: bool = False,
    open_after: datetime | None = None,
) -> dict[str, AccountFacts]:
    """The platform's organizations `codes` (unknown ones left out), in one statement."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    values = {"platform": platform_id, "codes": wanted, "open_after": open_after}
    rows = _run(session, ("codes", counters), values)
    grouped: dict[str, list[Row[Any]]] = {}
    for row in rows:
        grouped.setdefault(row.code, []).append(row)
    return {code: _facts(found, counters) for code, found in grouped.items()}


_NEVER = datetime(9999, 1, 1, tzinfo=UTC)
"""`open_after` when the caller counts no held places: no window starts after it."""


_ONE_OF = {"codes": ("code", "codes", "code"), "ids": ("id", "organizations", "organization")}
"""A read of a list of one value is the one-organization read (prepared: one event a
request reads its account as a start does, not through SQLAlchemy's expanding IN)."""


def _run(session: Session, kind: tuple[str, bool | str], values: dict[str, Any]) -> list[Row[Any]]:
    if kind[1] in (True, "starting") and values.get("open_after") is None:
        values = {**values, "open_after": _NEVER}
    if kind[0] in _ONE_OF:
        single, listed, value = _ONE_OF[kind[0]]
        if len(values[listed]) == 1:
            kind, values = (single, kind[1]), {**values, value: values[listed][0]}
    prepared = _PREPARED.get(kind)
    if prepared is not None:
        alone = one_statement_engine(session)
        if alone is not None:
            return prepared.run(alone, values)
        return prepared.run_in(session, values)
    session.flush()  # plain statements on the connection do not flush the session
    return list(session.connection().execute(_STATEMENTS[kind], values))


def _facts(rows: Sequence[Row[Any]], counted: bool) -> AccountFacts:
    row = rows[0]
    subscription = None
    if row.s_id is not None:
        subscription = SubscriptionFacts(
            **{name: getattr(row, f"s_{name}") for name in _SUBSCRIPTION_COLUMNS}
        )
    credits = None
    if row.b_balance is not None:
        credits = CreditFacts(
            int(row.b_balance), row.b_period_key, row.b_refresh_at, int(row.b_held or 0),
            row.b_spend_cap, row.b_spend_key or "", int(row.b_spent or 0),
        )  # fmt: skip
    counters = None
    held = 0
    if counted:
        held = int(row.held or 0)
        counters = MappingProxyType(
            {
                found.c_meter: CounterFacts(int(found.c_quantity), int(found.c_answered))
                for found in rows
                if found.c_meter is not None
            }
        )
    return AccountFacts(
        platform_id=row.platform_id,
        id=row.used_by_id,
        code=row.code,
        parent_id=row.parent_id,
        created_at=row.created_at,
        owner_id=row.owner_id,
        owner_code=row.owner_code,
        trial_used=bool(row.trial_used),
        subscription=subscription,
        credits=credits,
        counters=counters,
        held=held,
    )
