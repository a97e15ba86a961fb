"""The credit ledger's bookkeeping (SPEC CRD-1, CRD-2): the balance row of a billing
organization, its grants, their entries, and what is due (services/credits.py uses it).

Plan-included credits are granted, and expired grants leave the balance, lazily: the
first time the organization's credits are touched after they are due (a use, a read, the
check, a top-up), under the balance row's lock, with the time they were due. So the
ledger says when it happened, not when it was noticed, and no clock work is needed. The
included grant of a period is made once per (subscription, period start), for every
period of the subscription's current run (`billing_periods`), also one in which nothing
touched the credits, with the plan the subscription is on when they are granted. A new
period ends earlier included grants still running at its start (a trial turned paid, a
change to another interval). An immediate plan change within a period keeps the period's
included grant; the next period grants the new plan's. With `credits.rollover.max` (CRD-8)
what the period's included grant has left carries into the next, up to the max, as a grant
of its own made at the period start just before the new included grant (`_roll_over`):
drawn first, expiring at that period's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from tabkeeper.db import credit_store
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant
from tabkeeper.domain.catalog import Catalog, CreditExpiry, Plan
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.ledger import (
    DEFAULT_PRIORITY,
    EntryKind,
    Grant,
    GrantKind,
    expiries,
    next_expiry,
)
from tabkeeper.domain.lifecycle import State, Status
from tabkeeper.domain.utc import format_instant
from tabkeeper.services import accounts
from tabkeeper.services.accounts import BillingAccount
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import status_of
from tabkeeper.services.subscriptions import billing_organization

GRANTING_STATES = (State.TRIALING, State.ACTIVE, State.PAST_DUE, State.SUSPENDED)
"""States whose current period grants the plan's included credits."""


@dataclass(frozen=True, slots=True)
class Holding:
    """What an organization's credits depend on: its subscription and plan, if any."""

    owner: Organization
    subscription: Subscription | None
    catalog: Catalog
    plan: Plan | None


def holding_of(b: Billing, organization: Organization) -> Holding:
    """The billing organization of `organization`, its subscription, catalog and plan
    (the platform's current catalog when there is no subscription). One query: the
    subscription with its catalog version, whose document is read only when the
    catalog store has not parsed it yet (a version never changes, CAT-6)."""
    owner = billing_organization(b, organization)
    found = credit_store.subscription_with_version(b.session, owner.id)
    if found is None or found[0].state == State.NONE:
        return Holding(owner, None, b.current_catalog()[1], None)
    subscription, version = found
    if version.platform_id != b.platform_id:
        raise InvalidInput(f"unknown catalog version {version.id}")
    catalog = b.store.catalog(version)
    return Holding(owner, subscription, catalog, catalog.plan(subscription.plan_code))


@dataclass(frozen=True, slots=True)
class Account:
    """What a use of credits needs to know, read in one query on the hot path
    (`accounts_by_code`, `account_of`) or taken from a Holding: who uses the credits,
    whose they are, the owner's catalog, plan and status, the period whose included
    credits are due. `holding` is None until the slow path (something due, too little
    left) needs the rows (`holding_for`)."""

    used_by_id: int
    owner_id: int
    catalog: Catalog
    plan: Plan | None
    status: Status
    period_key: str
    period_end: datetime | None
    """The subscription's current period end (when the plan next grants credits)."""
    holding: Holding | None = None


def account_from(holding: Holding, used_by_id: int, now: datetime) -> Account:
    subscription = holding.subscription
    return Account(
        used_by_id, holding.owner.id, holding.catalog, holding.plan,
        status_of(subscription, holding.owner), period_key(subscription, now),
        None if subscription is None else subscription.period_end, holding,
    )  # fmt: skip


def accounts_by_code(b: Billing, codes: Iterable[str]) -> dict[str, Account]:
    """The accounts of the platform's organizations `codes` (unknown codes left out), in
    one statement (services/accounts.py); catalogs come from the process's store."""
    found = accounts.accounts_by_code(b, set(codes))
    return {code: _account(b, account) for code, account in found.items()}


def account_of(b: Billing, organization: Organization) -> Account:
    return _account(b, accounts.account_of(b, organization))


def _account(b: Billing, account: BillingAccount) -> Account:
    subscription = cast(Subscription | None, account.subscription)
    catalog = account.catalog or b.current_catalog()[1]
    return Account(
        account.organization_id, account.owner_id, catalog, account.plan, account.status,
        period_key(subscription, b.now), None if subscription is None else subscription.period_end,
    )  # fmt: skip


def holding_for(b: Billing, account: Account) -> Account:
    """`account` with its Holding (the ORM rows the slow path works on), read again."""
    if account.holding is not None:
        return account
    organization = b.session.get(Organization, account.used_by_id)
    assert organization is not None
    return account_from(holding_of(b, organization), account.used_by_id, b.now)


def period_key(subscription: Subscription | None, now: datetime) -> str:
    """The subscription period whose included credits are due at `now` ("" for none)."""
    if (
        subscription is None
        or State(subscription.state) not in GRANTING_STATES
        or not subscription.period_start <= now < subscription.period_end
    ):
        return ""
    return f"{subscription.id}:{format_instant(subscription.period_start)}"


def grants_credits(holding: Holding, key: str) -> bool:
    return bool(key) and holding.plan is not None and holding.plan.credits is not None


def is_due(row: CreditBalance, key: str, now: datetime) -> bool:
    return row.period_key != key or (row.refresh_at is not None and row.refresh_at <= now)


def locked_balance(b: Billing, owner_id: int) -> CreditBalance:
    """The organization's balance row (made when missing), locked for the transaction."""
    return credit_store.locked_balance(b.session, owner_id)


def grant_rows(b: Billing, owner_id: int, *, live_only: bool = True) -> list[CreditGrant]:
    return credit_store.grant_rows(b.session, owner_id, live_only=live_only)


def as_grant(row: CreditGrant) -> Grant:
    return Grant(row.id, GrantKind(row.kind), row.amount, row.remaining, row.priority,
                 row.expires_at)  # fmt: skip


# -- what is due --------------------------------------------------------------------------


def refreshed(b: Billing, holding: Holding) -> CreditBalance:
    """The balance row, locked, with the period's included grant made and every expired
    grant expired (CRD-2), each entry at the time it was due."""
    row = locked_balance(b, holding.owner.id)
    key = period_key(holding.subscription, b.now)
    if not is_due(row, key, b.now):
        return row
    grants = grant_rows(b, holding.owner.id)
    if grants_credits(holding, key) and key != row.period_key:
        _grant_included(b, holding, row, grants)
    _expire_due(b, row, grants, b.now)
    row.period_key = key
    row.refresh_at = next_expiry(as_grant(g) for g in grants)
    b.session.flush()
    return row


def _grant_included(
    b: Billing, holding: Holding, row: CreditBalance, grants: list[CreditGrant]
) -> None:
    """The included grant of every period of the subscription's current run up to now
    that has none yet (with the current plan's credits), each at its period's start; a
    new period first ends what earlier periods' included credits have left."""
    plan, subscription = holding.plan, holding.subscription
    assert plan is not None and plan.credits is not None and subscription is not None
    prefix = f"included:{subscription.id}:"
    made = credit_store.grant_sources(b.session, holding.owner.id, prefix)
    periods = credit_store.billing_periods(
        b.session, holding.owner.id, subscription.started_at, subscription.period_start
    )
    for start, end in periods:
        source = f"{prefix}{format_instant(start)}"
        if source in made:
            continue
        unused = _unused_included(grants, prefix, start)  # CRD-8: before they expire
        _expire_due(b, row, grants, start)
        for earlier in grants:
            running = earlier.remaining > 0 and earlier.expires_at is not None
            if earlier.kind == GrantKind.INCLUDED and running:
                _expire(b, row, earlier, start)
        _roll_over(b, holding, row, grants, unused, start, end)
        ends = end if plan.credits.expires is CreditExpiry.PERIOD_END else None
        grants.append(
            grant(b, row, GrantKind.INCLUDED, plan.credits.amount, source, at=start,
                  expires_at=ends, description=f"{plan.name}: included AI credits")
        )  # fmt: skip


# -- CRD-8: rollover ----------------------------------------------------------------------

ROLLOVER_PRIORITY = DEFAULT_PRIORITY - 1
"""A rolled-over grant is drawn before the new period's included credits (CRD-8): both are
included grants ending at the same time, and the lower priority number goes first."""


def _unused_included(grants: list[CreditGrant], prefix: str, start: datetime) -> int:
    """CRD-8: what the subscription's own included grants (`prefix`: not rolled-over ones)
    that run until `start` or later have left just before the period starting at `start`."""
    return sum(
        g.remaining
        for g in grants
        if g.kind == GrantKind.INCLUDED
        and g.source_key.startswith(prefix)
        and g.expired_at is None
        and g.expires_at is not None
        and g.expires_at >= start
    )


def _roll_over(
    b: Billing,
    holding: Holding,
    row: CreditBalance,
    grants: list[CreditGrant],
    unused: int,
    start: datetime,
    end: datetime,
) -> None:
    """CRD-8: the unused included credits of the period ending at `start` carry into the
    one from `start` to `end`, up to the plan's `rollover.max`: a grant of its own, at
    `start`, drawn before the new period's included credits and expiring at `end` (after
    one period; what a rollover leaves never rolls again). The old grant's expiry entry
    and this grant's entry keep the balance equal to the ledger (CRD-2)."""
    plan, subscription = holding.plan, holding.subscription
    assert plan is not None and plan.credits is not None and subscription is not None
    limit = plan.credits.rollover_max
    carried = 0 if limit is None else min(unused, limit)
    if carried <= 0:
        return
    grants.append(
        grant(b, row, GrantKind.INCLUDED, carried,
              f"rollover:{subscription.id}:{format_instant(start)}", at=start,
              expires_at=end, priority=ROLLOVER_PRIORITY,
              description=f"{plan.name}: rolled-over AI credits")
    )  # fmt: skip


def _expire_due(b: Billing, row: CreditBalance, grants: list[CreditGrant], now: datetime) -> None:
    by_id = {g.id: g for g in grants}
    for due in expiries((as_grant(g) for g in grants), now):
        _expire(b, row, by_id[due.grant_id], due.at)


def _expire(b: Billing, row: CreditBalance, found: CreditGrant, at: datetime) -> None:
    """What `found` has left leaves the balance at `at` (an expiry entry)."""
    credits, found.remaining, found.expired_at = found.remaining, 0, at
    row.balance -= credits
    _entry(b, row, EntryKind.EXPIRY, -credits, f"expiry:{found.id}", at, grant_id=found.id)


def grant(
    b: Billing,
    row: CreditBalance,
    kind: GrantKind,
    credits: int,
    source_key: str,
    *,
    at: datetime,
    description: str,
    expires_at: datetime | None = None,
    priority: int = DEFAULT_PRIORITY,
    invoice_id: int | None = None,
) -> CreditGrant:
    """Add a grant to the locked balance `row` (CRD-2), with its entry. A new grant ends
    the current exhaustion: the next one is told again."""
    made = CreditGrant(
        organization_id=row.organization_id, kind=kind.value, source_key=source_key,
        amount=credits, remaining=credits, priority=priority, granted_at=at,
        expires_at=expires_at, invoice_id=invoice_id, description=description,
    )  # fmt: skip
    b.session.add(made)
    b.session.flush()
    row.balance += credits
    row.epoch += 1
    if expires_at is not None and (row.refresh_at is None or expires_at < row.refresh_at):
        row.refresh_at = expires_at
    _entry(b, row, EntryKind.GRANT, credits, f"grant:{made.id}", at, grant_id=made.id)
    return made


def _entry(
    b: Billing,
    row: CreditBalance,
    kind: EntryKind,
    amount: int,
    key: str,
    at: datetime,
    **more: Any,
) -> None:
    b.session.add(
        CreditEntry(
            organization_id=row.organization_id,
            entry_key=key,
            kind=kind.value,
            amount=amount,
            balance_after=row.balance,
            at=at,
            **more,
        )
    )
