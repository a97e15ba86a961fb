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
from typing import Any

from tabkeeper.db import credit_store as store
from tabkeeper.db.tables import Organization
from tabkeeper.domain.catalog import Plan
from tabkeeper.domain.decisions import Action, Snapshot, decide
from tabkeeper.domain.errors import NotFound, Refused
from tabkeeper.domain.ledger import (
    MAX_USES,
    CreditsExhausted,
    Draw,
    EntryKind,
    allocate,
    cheapest_use,
    crossed_into_exhaustion,
    exhausted_message,
    use_cost,
    whole_credits,
)
from tabkeeper.domain.lifecycle import Status
from tabkeeper.domain.utc import format_instant
from tabkeeper.services.auto_fire import after_change
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_alerts import tell_low
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
    row = store.balance_row(b.session, holding.owner.id)
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


def gate(b: Billing, account: Account, cost: int) -> store.Gated | None:
    """The balance after taking `cost`, the epoch, the low-balance threshold and the auto
    top-up's state; None when the gate did not match."""
    return store.gate(b.session, account.owner_id, cost, account.period_key, b.now)


def _debit(
    b: Billing,
    account: Account,
    feature: str,
    use_id: str,
    count: int,
    agent: str | None,
    cost: int,
    gated: store.Gated,
) -> Used:
    """The gate took `cost`: the grants pay it, the entry says so (or, for a use taken
    before, the debit is put back and the first answer given)."""
    owner_id = account.owner_id
    balance, epoch, threshold = gated.balance, gated.epoch, gated.threshold
    first = store.draw_first(b.session, owner_id, cost)
    draws = (Draw(first, cost),) if first is not None else draw(b, owner_id, cost)
    entry_key = f"use:{account.used_by_id}:{use_id}"
    entry = use_entry(account, entry_key, feature, count, agent, cost, balance, draws, b.now)
    if not store.insert_entries(b.session, [entry]):
        put_back(b, owner_id, cost, draws)
        earlier = earlier_uses(b, owner_id, [entry_key])[entry_key]
        return earlier
    if crossed_into_exhaustion(balance + cost, balance, cheapest_use(account.catalog)):
        tell_exhausted(b, account, balance, epoch)
    tell_low(b, owner_id, balance + cost, balance, threshold, entry_key)
    if gated.auto_threshold is not None:  # CRD-6
        after_change(b, owner_id, balance, epoch, gated.auto_threshold, gated.auto_pending)
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
        assert store.draw(b.session, part.grant_id, part.credits), "a grant never goes below zero"
    return draws


def put_back(b: Billing, owner_id: int, cost: int, draws: tuple[Draw, ...]) -> None:
    """Undo a debit of `cost` paid by `draws` (a use taken before)."""
    store.put_back(b.session, owner_id, cost, ((d.grant_id, d.credits) for d in draws))


def earlier_uses(b: Billing, owner_id: int, keys: list[str]) -> dict[str, Used]:
    """The answers of the uses taken before under `keys` (duplicates), by key."""
    return {
        entry.entry_key: Used(
            entry.feature,
            entry.uses,
            entry.credits,
            entry.balance_after,
            entry.agent,
            entry.at,
            duplicate=True,
        )
        for entry in store.earlier_entries(b.session, owner_id, keys)
    }


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
