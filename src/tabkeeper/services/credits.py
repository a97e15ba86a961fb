"""The credit ledger of a billing organization: uses (SPEC CRD-1, CRD-3).

- `consume` (CRD-1, CRD-3): a use of an AI feature at the platform's rate, refused with
  `credits_exhausted` when the balance cannot cover it, nothing changed. The API's
  consumption first asks the real-time check's rules (the subscription, the feature in
  the plan: domain/decisions.py); an `ai.used` event (services/metering.py) reports a use
  that happened and only needs the credits. A use is taken once per use id (the
  event's id): a second report of it changes nothing and answers as the first.
  `consume_by_code` is the API's: the organization by its code, in the same query as
  the rest of what a use needs.
- `current_balance` is what the real-time check reads (LIM-2, CRD-3).
- Many uses in one transaction, one gate per organization: services/credit_batches.py.

Grants, expiries and what is due: services/credit_ledger.py.

The hot path of a use is four statements, each built once per process: one read (the
organization, its billing organization and subscription: `accounts_by_code`; the
platform row is not read and the catalog comes from the process's store), the balance
row's `UPDATE … WHERE balance >= cost AND nothing is due RETURNING` (the gate: it also
locks the row, so concurrent uses of one organization queue there and re-check, and
the balance never goes below zero), the first grant in draw order paying all of it
(`UPDATE … WHERE remaining >= cost`), and the entry (`INSERT … ON CONFLICT DO NOTHING`).
When the gate does not match (something is due, or too little is left) or the first
grant does not cover the use, the slow path reads the rows again with the ORM and does
the same under the lock with domain/ledger.py's `allocate`. A use reported twice is
found by the entry's unique key and the debit is put back in the same transaction.
Every entry of an organization is written while its balance row is locked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Executable, Table, Update, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant
from tabkeeper.domain.catalog import Plan
from tabkeeper.domain.decisions import Action, Snapshot, decide
from tabkeeper.domain.errors import NotFound, Refused
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
from tabkeeper.domain.lifecycle import Status
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_ledger import (
    Account,
    Holding,
    account_from,
    account_of,
    accounts_by_code,
    as_grant,
    grant_rows,
    grants_credits,
    holding_for,
    holding_of,
    is_due,
    period_key,
    refreshed,
)
from tabkeeper.services.records import notify

__all__ = [
    "Holding",
    "Used",
    "consume",
    "consume_by_code",
    "consume_reported",
    "current_balance",
    "holding_of",
]

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
DRAW_FIRST: Update = (
    update(_GRANT_TABLE)
    .where(_GRANTS.id == _FIRST_GRANT, _GRANTS.remaining >= bindparam("cost"))
    .values(remaining=_GRANTS.remaining - bindparam("cost"))
    .returning(_GRANTS.id)
)
"""The first grant in draw order (domain/ledger.py `draw_order`) pays the whole use."""

DRAW: Update = (
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
"""Use entries taken before under some keys (their answers)."""


@cache
def new_entries(dialect: str) -> Executable:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the key, of entries (built once)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(_ENTRY_TABLE).on_conflict_do_nothing().returning(_ENTRIES.entry_key)


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
    if holding is not None:
        account = account_from(holding, organization.id, b.now)
    else:
        account = account_of(b, organization)
    return take(b, account, feature, use_id, uses, agent, checked=checked)


def consume_by_code(
    b: Billing,
    code: str,
    feature: str,
    use_id: str,
    *,
    uses: object = 1,
    agent: str | None = None,
) -> Used:
    """`consume` (checked) for the platform's organization `code`, as the API calls it
    (the platform's key sees all its organizations); NotFound when there is none."""
    account = accounts_by_code(b, (code,)).get(code)
    if account is None:
        raise NotFound("No such organization.")
    return take(b, account, feature, use_id, uses, agent, checked=True)


def take(
    b: Billing,
    account: Account,
    feature: str,
    use_id: str,
    uses: object,
    agent: str | None,
    *,
    checked: bool,
) -> Used:
    """A use by `account` (see `consume`): the gate, then the grant and the entry. The
    statements run on the session's connection (cheaper than through the ORM), so the
    session is flushed first, as the ORM would."""
    b.session.flush()
    count = whole_credits(uses, "quantity", MAX_USES)
    cost = use_cost(account.catalog, feature, count)
    if checked:
        require_allowed(b, account.status, account.plan, feature, cost)
    gated = gate(b, account, cost)
    if gated is None:
        return _take_slowly(b, holding_for(b, account), feature, use_id, count, agent, checked)
    return _debit(b, account, feature, use_id, count, agent, cost, gated)


def _take_slowly(
    b: Billing,
    account: Account,
    feature: str,
    use_id: str,
    count: int,
    agent: str | None,
    checked: bool,
) -> Used:
    """The gate did not match: a use taken before, something due, or too little left.
    Under the balance row's lock, with the rows read again (`account.holding`)."""
    assert account.holding is not None
    cost = use_cost(account.catalog, feature, count)
    if checked:
        require_allowed(b, account.status, account.plan, feature, cost)
    key = f"use:{account.used_by_id}:{use_id}"
    earlier = earlier_uses(b, account.owner_id, [key]).get(key)
    if earlier is not None:
        return earlier
    row = refreshed(b, account.holding)
    if row.balance < cost:
        raise CreditsExhausted(exhausted_message(row.balance, cost))
    gated = gate(b, account, cost)
    assert gated is not None, "the refreshed balance covers the use"
    return _debit(b, account, feature, use_id, count, agent, cost, gated)


def gate(b: Billing, account: Account, cost: int) -> tuple[int, int] | None:
    """The balance after taking `cost`, and the epoch; None when the gate did not match."""
    params = {"org": account.owner_id, "cost": cost, "key": account.period_key, "now": b.now}
    found = b.session.connection().execute(_GATE, params).first()
    return None if found is None else (int(found[0]), int(found[1]))


def _debit(
    b: Billing,
    account: Account,
    feature: str,
    use_id: str,
    count: int,
    agent: str | None,
    cost: int,
    gated: tuple[int, int],
) -> Used:
    """The gate took `cost`: the grants pay it, the entry says so (or, for a use taken
    before, the debit is put back and the first answer given)."""
    run = b.session.connection().execute
    owner_id = account.owner_id
    balance, epoch = gated
    first = run(DRAW_FIRST, {"org": owner_id, "cost": cost}).scalar()
    draws = (Draw(first, cost),) if first is not None else draw(b, owner_id, cost)
    entry_key = f"use:{account.used_by_id}:{use_id}"
    entry = use_entry(account, entry_key, feature, count, agent, cost, balance, draws, b.now)
    if run(new_entries(b.session.get_bind().dialect.name), entry).first() is None:
        put_back(b, owner_id, cost, draws)
        earlier = earlier_uses(b, owner_id, [entry_key])[entry_key]
        return earlier
    if crossed_into_exhaustion(balance + cost, balance, cheapest_use(account.catalog)):
        tell_exhausted(b, account, balance, epoch)
    return Used(feature, count, cost, balance, agent, b.now)


def use_entry(
    account: Account,
    entry_key: str,
    feature: str,
    count: int,
    agent: str | None,
    cost: int,
    balance: int,
    draws: tuple[Draw, ...],
    at: datetime,
) -> dict[str, Any]:
    """The values of a use's entry (balance: the balance after it)."""
    return {
        "organization_id": account.owner_id, "entry_key": entry_key,
        "kind": EntryKind.USE.value, "amount": -cost, "balance_after": balance, "at": at,
        "grant_id": draws[0].grant_id, "parts": [[d.grant_id, d.credits] for d in draws],
        "feature": feature, "agent": agent, "uses": count, "used_by_id": account.used_by_id,
    }  # fmt: skip


def require_allowed(b: Billing, status: Status, plan: Plan | None, feature: str, cost: int) -> None:
    """The check's rules but the balance (which the gate decides, atomically)."""
    features = plan.features if plan is not None else frozenset()
    snapshot = Snapshot(status, features=features, credit_balance=cost,
                        feature_credits={feature: cost})  # fmt: skip
    decision = decide(snapshot, Action.USE_AI, b.now, feature)
    if not decision.allowed:
        raise Refused(decision.message, code=decision.reason.value)


def draw(b: Billing, owner_id: int, cost: int) -> tuple[Draw, ...]:
    """The grants that pay for a use the first grant does not cover (under the lock)."""
    grants = [as_grant(row) for row in grant_rows(b, owner_id)]
    draws = allocate(grants, cost, b.now)
    for part in draws:
        taken = b.session.execute(DRAW, {"grant": part.grant_id, "credits": part.credits})
        assert taken.first() is not None, "a grant never goes below zero"
    return draws


def put_back(b: Billing, owner_id: int, cost: int, draws: tuple[Draw, ...]) -> None:
    """Undo a debit of `cost` paid by `draws` (a use taken before)."""
    run = b.session.connection().execute
    run(_PUT_BACK, {"org": owner_id, "cost": cost})
    for part in draws:
        run(_PUT_BACK_GRANT, {"grant": part.grant_id, "credits": part.credits})


def earlier_uses(b: Billing, owner_id: int, keys: list[str]) -> dict[str, Used]:
    """The answers of the uses taken before under `keys` (duplicates), by key."""
    rows = b.session.connection().execute(_EARLIER, {"org": owner_id, "keys": keys})
    return {row.entry_key: _answer(row) for row in rows}


def _answer(row: Any) -> Used:
    return Used(row.feature or "", row.uses or 0, -row.amount, row.balance_after, row.agent,
                row.at, duplicate=True)  # fmt: skip


def tell_exhausted(b: Billing, account: Account, balance: int, epoch: int) -> None:
    """`credits.exhausted`, once per exhaustion (a grant starts a new epoch)."""
    payload: dict[str, Any] = {"balance": balance}
    plan = account.plan
    if plan is not None and plan.credits is not None and account.period_end is not None:
        payload["next_grant_at"] = format_instant(account.period_end)
    notify(b, account.owner_id, "credits.exhausted", f"epoch:{epoch}", payload)


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
