"""The credit ledger of a billing organization: grants, uses, expiries (SPEC CRD-1..3).

- `consume` (CRD-1, CRD-3): a use of an AI feature at the platform's rate, refused with
  `credits_exhausted` when the balance cannot cover it, nothing changed. The API's
  consumption first asks the real-time check's rules (the subscription, the feature in
  the plan: domain/decisions.py); an `ai.used` event (services/metering.py) reports a use
  that happened and only needs the credits. A use is taken once per use id (the
  event's id): a second report of it changes nothing and answers as the first.
- `current_balance` is what the real-time check reads (LIM-2, CRD-3).

Grants, expiries and what is due: services/credit_ledger.py.

The hot path of a use is three statements after the subscription is read: the balance
row's `UPDATE … WHERE balance >= cost AND nothing is due RETURNING` (the gate: it also
locks the row, so concurrent uses of one organization queue there and re-check, and
the balance never goes below zero), the first grant in draw order paying all of it
(`UPDATE … WHERE remaining >= cost`), and the entry (`INSERT … ON CONFLICT DO NOTHING`).
When the gate does not match (something is due, or too little is left) or the first
grant does not cover the use, the slow path does the same under the lock with
domain/ledger.py's `allocate`. A use reported twice is found by the entry's unique key
and the debit is put back in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, or_, select, update

from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant
from tabkeeper.domain.decisions import Action, Snapshot, decide
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.ledger import (
    MAX_USES,
    CreditsExhausted,
    Draw,
    EntryKind,
    GrantKind,
    allocate,
    cheapest_use,
    crossed_into_exhaustion,
    exhausted_message,
    use_cost,
    whole_credits,
)
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_ledger import (
    Holding,
    as_grant,
    grant_rows,
    grants_credits,
    holding_of,
    is_due,
    period_key,
    refreshed,
)
from tabkeeper.services.lifecycle import status_of
from tabkeeper.services.records import insert_once, notify

__all__ = ["Holding", "Used", "consume", "consume_reported", "current_balance", "holding_of"]

_BALANCE_TABLE = cast(Table, CreditBalance.__table__)
_GRANT_TABLE = cast(Table, CreditGrant.__table__)
_BALANCES = _BALANCE_TABLE.c
_GRANTS = _GRANT_TABLE.c

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
"""The gate of a use: debit when the balance covers it and nothing is due."""

_FIRST_GRANT = (
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
"""The first grant in draw order (domain/ledger.py `draw_order`) pays the whole use."""

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


@dataclass(frozen=True, slots=True)
class Used:
    """A use taken (or, with `duplicate`, the one taken before under the same id)."""

    feature: str
    uses: int
    credits: int
    balance: int
    """The balance after the use."""
    agent: str | None
    at: datetime
    duplicate: bool = False


def current_balance(b: Billing, holding: Holding) -> int:
    """The balance now (CRD-3), after anything due; writes only when something is due."""
    row = b.session.scalars(
        select(CreditBalance).where(CreditBalance.organization_id == holding.owner.id)
    ).first()
    key = period_key(holding.subscription, b.now)
    if row is None and not grants_credits(holding, key):
        return 0
    if row is not None and not is_due(row, key, b.now):
        return row.balance
    return refreshed(b, holding).balance


def consume(
    b: Billing,
    organization: Organization,
    feature: str,
    use_id: str,
    *,
    uses: object = 1,
    agent: str | None = None,
    holding: Holding | None = None,
    checked: bool = True,
) -> Used:
    """CRD-1, CRD-3: take `uses` uses of `feature` at the platform's rate from the
    balance of `organization`'s billing organization; CreditsExhausted when it cannot
    cover them, nothing changed. With `checked`, the real-time check's other rules
    refuse first (no subscription, ended, grace over, feature not in the plan)."""
    holding = holding or holding_of(b, organization)
    count = whole_credits(uses, "quantity", MAX_USES)
    cost = use_cost(holding.catalog, feature, count)
    if checked:
        _require_allowed(b, holding, feature, cost)
    owner_id = holding.owner.id
    key = period_key(holding.subscription, b.now)
    params = {"org": owner_id, "cost": cost, "key": key, "now": b.now}
    entry_key = f"use:{organization.id}:{use_id}"
    gate = b.session.execute(_GATE, params).first()
    if gate is None:
        earlier = _entry_of(b, owner_id, entry_key)
        if earlier is not None:
            return _answer(earlier)
        row = refreshed(b, holding)
        if row.balance < cost:
            raise CreditsExhausted(exhausted_message(row.balance, cost))
        gate = b.session.execute(_GATE, params).first()
        assert gate is not None, "the refreshed balance covers the use"
    balance, epoch = int(gate[0]), int(gate[1])
    first = b.session.execute(_DRAW_FIRST, {"org": owner_id, "cost": cost}).scalar()
    draws = (Draw(first, cost),) if first is not None else _draw(b, owner_id, cost)
    entry = {
        "organization_id": owner_id, "entry_key": entry_key,
        "kind": EntryKind.USE.value, "amount": -cost, "balance_after": balance, "at": b.now,
        "grant_id": draws[0].grant_id, "parts": [[d.grant_id, d.credits] for d in draws],
        "feature": feature, "agent": agent, "uses": count, "used_by_id": organization.id,
    }  # fmt: skip
    if not insert_once(b.session, CreditEntry, entry):
        return _taken_before(b, owner_id, entry_key, cost, draws)
    if crossed_into_exhaustion(balance + cost, balance, cheapest_use(holding.catalog)):
        _tell_exhausted(b, holding, balance, epoch)
    return Used(feature, count, cost, balance, agent, b.now)


def _require_allowed(b: Billing, holding: Holding, feature: str, cost: int) -> None:
    """The check's rules but the balance (which the gate decides, atomically)."""
    status = status_of(holding.subscription, holding.owner)
    features = holding.plan.features if holding.plan is not None else frozenset()
    snapshot = Snapshot(status, features=features, credit_balance=cost,
                        feature_credits={feature: cost})  # fmt: skip
    decision = decide(snapshot, Action.USE_AI, b.now, feature)
    if not decision.allowed:
        raise Refused(decision.message, code=decision.reason.value)


def _draw(b: Billing, owner_id: int, cost: int) -> tuple[Draw, ...]:
    """The grants that pay for a use the first grant does not cover (under the lock)."""
    grants = [as_grant(row) for row in grant_rows(b, owner_id)]
    draws = allocate(grants, cost, b.now)
    for draw in draws:
        taken = b.session.execute(_DRAW, {"grant": draw.grant_id, "credits": draw.credits})
        assert taken.first() is not None, "a grant never goes below zero"
    return draws


def _taken_before(b: Billing, owner_id: int, key: str, cost: int, draws: tuple[Draw, ...]) -> Used:
    """The use was taken before: put this debit back and answer as the first time."""
    b.session.execute(_PUT_BACK, {"org": owner_id, "cost": cost})
    for draw in draws:
        b.session.execute(_PUT_BACK_GRANT, {"grant": draw.grant_id, "credits": draw.credits})
    first = _entry_of(b, owner_id, key)
    assert first is not None
    return _answer(first)


def _entry_of(b: Billing, owner_id: int, key: str) -> CreditEntry | None:
    return b.session.scalars(
        select(CreditEntry).where(
            CreditEntry.organization_id == owner_id, CreditEntry.entry_key == key
        )
    ).first()


def _answer(first: CreditEntry) -> Used:
    return Used(first.feature or "", first.uses or 0, -first.amount, first.balance_after,
                first.agent, first.at, duplicate=True)  # fmt: skip


def _tell_exhausted(b: Billing, holding: Holding, balance: int, epoch: int) -> None:
    """`credits.exhausted`, once per exhaustion (a grant starts a new epoch)."""
    payload: dict[str, Any] = {"balance": balance}
    plan, subscription = holding.plan, holding.subscription
    if plan is not None and plan.credits is not None and subscription is not None:
        payload["next_grant_at"] = format_instant(subscription.period_end)
    notify(b, holding.owner.id, "credits.exhausted", f"epoch:{epoch}", payload)


def consume_reported(
    b: Billing,
    organization: Organization,
    holding: Holding,
    use_id: str,
    properties: dict[str, Any],
    agent: str | None,
) -> Used:
    """An `ai.used` event (services/metering.py): a use that happened, taken from the
    credits whatever the plan says; refused (the event with it) when they cannot cover
    it or the feature has no rate."""
    feature = properties.get("feature")
    return consume(b, organization, feature if isinstance(feature, str) else "", use_id,
                   uses=properties.get("quantity", 1), agent=agent, holding=holding,
                   checked=False)  # fmt: skip
