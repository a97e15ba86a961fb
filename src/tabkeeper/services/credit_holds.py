"""Credit holds (SPEC CRD-5): reserve an estimate for an AI call of unknown cost, then
settle it at the real cost, release it, or let the billing clock release it when it
expires. The rules are domain/holds.py's.

- `hold`: the check's rules (as a consumption's, services/credits.py), then the balance
  row's conditional `UPDATE … WHERE balance >= credits … RETURNING` (the gate a use
  passes): concurrent holds and uses queue on the row and re-check, so they never take
  more than the balance (50 concurrent holds with room for 10 admit exactly 10). The
  credits are drawn from the grants in draw order and a `hold` entry says so; the billing
  clock's `hold_expiry` work is queued for its deadline.
- `settle`: under the balance row's lock, the estimate is put back on the grants it was
  drawn from (a `release` entry), then the real cost is taken as a use (a `use` entry,
  reported with the feature's spend, CRD-4). A cost above what the balance then holds
  takes the balance to zero and records the rest as the use entry's `shortfall`, owed on
  the balance row; the next top-up repays it first (`repay_owed`, a `repayment` entry).
- `release` and `expire_hold` (the clock): the estimate is put back.
Credits put back on a grant that expired meanwhile expire at once (an `expiry` entry).
A hold that has ended answers `hold_closed`; one past its deadline but not yet released
by the clock is closed too. Every change writes an entry, so the balance always equals
the sum of the ledger's entries (CRD-2), and the balance row shows the held credits apart
(`held_credits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tabkeeper.db import credit_store as store
from tabkeeper.db.tables import DueWork, Organization
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry, CreditGrant, CreditHold
from tabkeeper.domain.errors import NotFound
from tabkeeper.domain.holds import (
    DEFAULT_TIMEOUT_SECONDS,
    HoldClosed,
    HoldState,
    repayment,
    settle_split,
    timeout_seconds,
)
from tabkeeper.domain.ledger import (
    MAX_CREDITS,
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
from tabkeeper.services.auto_fire import after_change, fire_locked
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
    holding_for,
    holding_of,
    refreshed,
)
from tabkeeper.services.credits import draw, gate, require_allowed, tell_exhausted
from tabkeeper.services.records import queue
from tabkeeper.services.subscriptions import billing_organization

__all__ = [
    "EXPIRY_WORK", "Hold", "billing_organization", "expire_hold", "held_credits", "hold",
    "hold_by_code", "hold_count", "low_threshold", "owed_credits", "release", "repay_owed",
    "settle",
]  # fmt: skip

EXPIRY_WORK = "hold_expiry"
"""The billing clock's work that releases a hold at its deadline."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold as it is now, with the balance after the change that was asked for."""

    id: int
    organization_id: int
    feature: str
    agent: str | None
    credits: int
    state: HoldState
    expires_at: datetime
    settled_credits: int | None
    shortfall: int | None
    balance: int


def _shown(row: CreditHold, balance: int) -> Hold:
    return Hold(row.id, row.organization_id, row.feature, row.agent, row.credits,
                HoldState(row.state), row.expires_at, row.settled_credits, row.shortfall,
                balance)  # fmt: skip


def hold_by_code(
    b: Billing,
    code: str,
    feature: str,
    credits: object,
    *,
    agent: str | None = None,
    timeout: object = DEFAULT_TIMEOUT_SECONDS,
) -> Hold:
    """`hold` for the platform's organization `code` (NotFound when there is none)."""
    account = accounts_by_code(b, (code,)).get(code)
    if account is None:
        raise NotFound("No such organization.")
    return _hold(b, account, feature, credits, agent, timeout)


def hold(
    b: Billing,
    organization: Organization,
    feature: str,
    credits: object,
    *,
    agent: str | None = None,
    timeout: object = DEFAULT_TIMEOUT_SECONDS,
) -> Hold:
    """CRD-5: reserve `credits` for a call of `feature`; CreditsExhausted when the balance
    cannot cover them, nothing changed."""
    return _hold(b, account_of(b, organization), feature, credits, agent, timeout)


def _hold(
    b: Billing, account: Account, feature: str, credits: object, agent: str | None, timeout: object
) -> Hold:
    b.session.flush()
    estimate = whole_credits(credits, "credits")
    seconds = timeout_seconds(timeout)
    use_cost(account.catalog, feature)  # a known AI feature
    require_allowed(b, account.status, account.plan, feature, estimate)
    gated = gate(b, account, estimate)
    if gated is None:  # something due, or too little left: under the lock, rows read again
        account = holding_for(b, account)
        assert account.holding is not None
        row = refreshed(b, account.holding)
        if row.balance < estimate:
            raise CreditsExhausted(exhausted_message(row.balance, estimate))
        gated = gate(b, account, estimate)
        assert gated is not None, "the refreshed balance covers the hold"
    balance, epoch, threshold = gated.balance, gated.epoch, gated.threshold
    owner_id = account.owner_id
    store.add_held(b.session, owner_id, estimate)
    first = store.draw_first(b.session, owner_id, estimate)
    draws = (Draw(first, estimate),) if first is not None else draw(b, owner_id, estimate)
    parts = [[d.grant_id, d.credits] for d in draws]
    expires_at = b.now + timedelta(seconds=seconds)
    made = CreditHold(
        organization_id=owner_id, used_by_id=account.used_by_id, feature=feature, agent=agent,
        credits=estimate, parts=parts, state=HoldState.HELD.value, created_at=b.now,
        expires_at=expires_at,
    )  # fmt: skip
    b.session.add(made)
    b.session.flush()
    key = f"hold:{made.id}"
    entry = {
        "organization_id": owner_id, "entry_key": key, "kind": EntryKind.HOLD.value,
        "amount": -estimate, "balance_after": balance, "at": b.now,
        "grant_id": draws[0].grant_id, "parts": parts, "feature": feature, "agent": agent,
        "uses": None, "used_by_id": account.used_by_id,
    }  # fmt: skip
    written = store.insert_entries(b.session, [entry])
    assert written, "a hold's entry key is new"
    queue(b, EXPIRY_WORK, key, owner_id, expires_at)
    if crossed_into_exhaustion(balance + estimate, balance, cheapest_use(account.catalog)):
        tell_exhausted(b, account, balance, epoch)
    tell_low(b, owner_id, balance + estimate, balance, threshold, key)
    if gated.auto_threshold is not None:  # CRD-6
        after_change(b, owner_id, balance, epoch, gated.auto_threshold, gated.auto_pending)
    return _shown(made, balance)


def _open(b: Billing, hold_id: object, organization: Organization | None) -> CreditHold:
    """The platform's hold `hold_id` (of `organization` when given); NotFound else."""
    if isinstance(hold_id, bool) or not isinstance(hold_id, int) or not 1 <= hold_id < 2**31:
        raise NotFound("No such hold.")
    found = store.hold_row(b.session, b.platform_id, hold_id)
    if found is None or (organization is not None and found.organization_id != organization.id):
        raise NotFound("No such hold.")
    return found


def _locked(b: Billing, found: CreditHold) -> tuple[Holding, CreditBalance, CreditHold]:
    """The hold's balance row, locked and brought up to date, and the hold read again
    (every change of a hold happens under this lock); HoldClosed when it has ended."""
    owner = b.session.get(Organization, found.organization_id)
    assert owner is not None
    holding = holding_of(b, owner)
    row = refreshed(b, holding)
    again = store.hold_row(b.session, b.platform_id, found.id)
    assert again is not None
    if again.state != HoldState.HELD.value:
        raise HoldClosed(f"Hold {again.id} was {again.state} already; nothing changed.")
    if again.expires_at <= b.now:
        raise HoldClosed(f"Hold {again.id} expired; its credits are being released.")
    return holding, row, again


def settle(
    b: Billing, hold_id: object, credits: object, organization: Organization | None = None
) -> Hold:
    """CRD-5: the call cost `credits`: the estimate back, the cost taken (a shortfall owed
    when the balance cannot cover it)."""
    cost = whole_credits(credits, "credits", MAX_CREDITS)
    holding, row, found = _locked(b, _open(b, hold_id, organization))
    before = row.balance
    _put_back(b, row, found)
    taken, shortfall = settle_split(cost, row.balance)
    draws: tuple[Draw, ...] = ()
    if taken:
        b.session.flush()
        grants = {g.id: g for g in grant_rows(b, row.organization_id)}
        draws = allocate((as_grant(g) for g in grants.values()), taken, b.now)
        for part in draws:
            grants[part.grant_id].remaining -= part.credits
    row.balance -= taken
    row.owed += shortfall
    key = f"hold:{found.id}:use"
    _entry(b, row, EntryKind.USE, -taken, key, grant_id=draws[0].grant_id if draws else None,
           parts=[[d.grant_id, d.credits] for d in draws], feature=found.feature,
           agent=found.agent, uses=1, used_by_id=found.used_by_id,
           shortfall=shortfall or None)  # fmt: skip
    found.state, found.closed_at = HoldState.SETTLED.value, b.now
    found.settled_credits, found.shortfall = cost, shortfall
    b.session.flush()
    account = account_from(holding, found.used_by_id, b.now)
    if crossed_into_exhaustion(before, row.balance, cheapest_use(account.catalog)):
        tell_exhausted(b, account, row.balance, row.epoch)
    tell_low(b, row.organization_id, before, row.balance, row.low_threshold, key)
    fire_locked(b, row)  # CRD-6
    return _shown(found, row.balance)


def release(b: Billing, hold_id: object, organization: Organization | None = None) -> Hold:
    """CRD-5: the call did not happen: the estimate back."""
    _, row, found = _locked(b, _open(b, hold_id, organization))
    _put_back(b, row, found)
    found.state, found.closed_at = HoldState.RELEASED.value, b.now
    b.session.flush()
    return _shown(found, row.balance)


def expire_hold(b: Billing, work: DueWork) -> None:
    """CRD-5, the billing clock: a hold not settled by its deadline is released."""
    hold_id = int(work.subject_key.removeprefix("hold:"))
    found = b.session.get(CreditHold, hold_id)
    if found is None or found.state != HoldState.HELD.value:
        return
    owner = b.session.get(Organization, found.organization_id)
    assert owner is not None
    row = refreshed(b, holding_of(b, owner))
    b.session.refresh(found)
    if found.state != HoldState.HELD.value:
        return
    _put_back(b, row, found)
    found.state, found.closed_at = HoldState.EXPIRED.value, b.now
    b.session.flush()


def _put_back(b: Billing, row: CreditBalance, found: CreditHold) -> None:
    """The hold's credits back on the grants they were drawn from (a `release` entry);
    those of a grant that expired meanwhile expire at once (an `expiry` entry)."""
    parts = [(int(grant_id), int(credits)) for grant_id, credits in found.parts]
    grants = store.grants_by_id(b.session, (grant_id for grant_id, _ in parts))
    row.balance += found.credits
    row.held -= found.credits
    lapsed: dict[int, int] = {}
    for grant_id, credits in parts:
        grant = grants[grant_id]
        if grant.expired_at is not None or as_grant(grant).expired(b.now):
            lapsed[grant_id] = lapsed.get(grant_id, 0) + credits
            continue
        grant.remaining += credits
        if grant.expires_at is not None and (
            row.refresh_at is None or grant.expires_at < row.refresh_at
        ):
            row.refresh_at = grant.expires_at
    key = f"hold:{found.id}"
    _entry(b, row, EntryKind.RELEASE, found.credits, f"{key}:release",
           grant_id=parts[0][0] if parts else None, parts=[list(p) for p in parts],
           feature=found.feature, agent=found.agent, used_by_id=found.used_by_id)  # fmt: skip
    for grant_id, credits in sorted(lapsed.items()):
        row.balance -= credits
        _entry(b, row, EntryKind.EXPIRY, -credits, f"expiry:{grant_id}:{key}", grant_id=grant_id)


def repay_owed(b: Billing, row: CreditBalance, made: CreditGrant) -> None:
    """CRD-5: a top-up first repays what settles left owed (a `repayment` entry taking it
    from the new grant), under the balance row's lock."""
    repaid = repayment(row.owed, made.remaining)
    if not repaid:
        return
    made.remaining -= repaid
    row.owed -= repaid
    row.balance -= repaid
    _entry(b, row, EntryKind.REPAYMENT, -repaid, f"repayment:{made.id}", grant_id=made.id,
           parts=[[made.id, repaid]])  # fmt: skip
    b.session.flush()


def _entry(
    b: Billing, row: CreditBalance, kind: EntryKind, amount: int, key: str, **more: Any
) -> None:
    b.session.add(
        CreditEntry(organization_id=row.organization_id, entry_key=key, kind=kind.value,
                    amount=amount, balance_after=row.balance, at=b.now, **more)
    )  # fmt: skip


def held_credits(b: Billing, owner_id: int) -> int:
    """CRD-5: the credits the organization's open holds reserve (shown apart)."""
    return store.balance_figures(b.session, owner_id)[0]


def hold_count(b: Billing, owner_id: int) -> int:
    return store.hold_count(b.session, owner_id)


def owed_credits(b: Billing, owner_id: int) -> int:
    """CRD-5: the shortfall of settles the next top-up repays first."""
    return store.balance_figures(b.session, owner_id)[1]


def low_threshold(b: Billing, owner_id: int) -> int | None:
    """CRD-7: the organization's low-balance threshold (None: no alert)."""
    return store.balance_figures(b.session, owner_id)[2]
