"""The spend cap (SPEC LIM-6): a monthly cap, in the platform's currency, on what is charged
beyond the plan. The rules are domain/spend.py's.

What counts is kept as counters on the billing organization's credit balance row, for the
period `spend_key` names: `spent_purchases` (credit purchases and auto top-ups, added under
the row's lock when they are charged, cap or no cap) and `spent_overage` (the overage
accrued at its price). The overage counter is kept only while a cap is set: a batch of
events that moves an overage meter's counter of the current period adds the change of its
priced overage with one conditional `UPDATE … WHERE spend_cap IS NOT NULL RETURNING`
per billing organization (services/spend_counters.py `accrue`, from services/counters.py
and the session start's capped count); setting a cap works it out again from the period's
counters. The real-time check reads the cap and the spend with the account it reads
anyway (db/accounts.py), so it adds no statement, and none at all to a use or an event
when no cap is set.

- `set_spend_cap` / `reset_spend_cap`: the owner or a billing admin (ACL-1), or the platform.
- `count_charge`: a top-up (manual or automatic) is refused with `spend_cap_reached` when
  it would take the period's spend past the cap, nothing changed; else counted.
- Notices `spend_cap_80` and `spend_cap_100`, once per period each (their dedupe key is the
  period), when the spend crosses 80% and 100% of the cap, or when a cap is set below what
  was spent already.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabkeeper.db import credit_store
from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_credits import CreditBalance
from tabkeeper.domain.errors import Forbidden
from tabkeeper.domain.spend import (
    SpendCapReached,
    cap_message,
    exceeds,
    overage_minor,
    reached_levels,
    spend_cap,
    spend_key,
)
from tabkeeper.services import accounts
from tabkeeper.services.access import BILLING_ROLES
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_ledger import Holding, holding_of, refreshed
from tabkeeper.services.organizations import current_member
from tabkeeper.services.spend_counters import tell_levels
from tabkeeper.services.subscriptions import require_billing_level


@dataclass(frozen=True, slots=True)
class SpendCap:
    """The cap (None: none), what counts against it this period, both in minor units."""

    cap: int | None
    spent: int
    currency: str

    @property
    def percent(self) -> int | None:
        """How much of the cap is spent, in whole percent (at most 100; None: no cap)."""
        if self.cap is None:
            return None
        return min(100, self.spent * 100 // self.cap)


def holding_key(holding: Holding) -> str:
    """The period the spend of `holding`'s organization counts for now."""
    subscription = holding.subscription
    if subscription is None:
        return ""
    return spend_key(subscription.id, subscription.period_start)


def _roll(row: CreditBalance, key: str) -> None:
    """The counters start again in a new period."""
    if row.spend_key != key:
        row.spend_key, row.spent_overage, row.spent_purchases = key, 0, 0


def spent(row: CreditBalance, key: str) -> int:
    return row.spent_overage + row.spent_purchases if row.spend_key == key else 0


def count_charge(b: Billing, row: CreditBalance, holding: Holding, charge: int) -> None:
    """LIM-6: a purchase of `charge` minor units (the balance row `row` locked): refused
    with `spend_cap_reached` when it would pass the cap (nothing changed), else counted."""
    key = holding_key(holding)
    before = spent(row, key)
    if exceeds(before, charge, row.spend_cap):
        assert row.spend_cap is not None
        raise SpendCapReached(cap_message(before, row.spend_cap, charge, b.terms.currency))
    _roll(row, key)
    row.spent_purchases += charge
    tell_levels(b, row.organization_id, key, before, before + charge, row.spend_cap)


def would_pass(row: CreditBalance, holding: Holding, charge: int) -> bool:
    """LIM-6: a purchase of `charge` would be refused."""
    return exceeds(spent(row, holding_key(holding)), charge, row.spend_cap)


def set_spend_cap(
    b: Billing, organization: Organization, amount: object, member: str | None = None
) -> SpendCap:
    """LIM-6: set the cap (a decimal string in the platform's currency), or with None
    remove it; the owner or a billing admin (`member` None: the platform or a checked
    caller). The overage counter is worked out again from the period's usage counters."""
    cap = spend_cap(amount, b.terms.currency)
    require_billing_level(organization)
    if member is not None:
        found = current_member(b, organization, member)
        if found is None or found.role not in BILLING_ROLES:
            raise Forbidden("Setting the spend cap needs the owner or billing admin role.")
    holding = holding_of(b, organization)
    row = refreshed(b, holding)
    key = holding_key(holding)
    _roll(row, key)
    row.spend_cap = cap
    if cap is not None:
        row.spent_overage = period_overage(b, organization)
        if reached_levels(spent(row, key), cap):  # a cap set at or below what was spent
            tell_levels(b, row.organization_id, key, 0, spent(row, key), cap)
    b.session.flush()
    return SpendCap(cap, spent(row, key), b.terms.currency.code)


def reset_spend_cap(b: Billing, organization: Organization, member: str | None = None) -> SpendCap:
    """LIM-6: no cap."""
    return set_spend_cap(b, organization, None, member)


def period_overage(b: Billing, organization: Organization) -> int:
    """LIM-6: the overage accrued this period at its price, from the usage counters."""
    account = accounts.account_of(b, organization, counters=True)
    plan, catalog = account.plan, account.catalog
    if plan is None or catalog is None:
        return 0
    return sum(
        overage_minor(plan, code, account.used(catalog.meters[code]))
        for code in plan.overage
        if code in catalog.meters
    )


def spend_of(b: Billing, organization: Organization) -> SpendCap:
    """LIM-6: the cap and the spend now, as the tab and the API show them (a read). With no
    cap the overage counter is not kept, so the overage is worked out from the counters."""
    holding = holding_of(b, organization)
    row = credit_store.balance_row(b.session, holding.owner.id)
    key = holding_key(holding)
    if row is not None and row.spend_cap is not None:
        return SpendCap(row.spend_cap, spent(row, key), b.terms.currency.code)
    bought = 0 if row is None or row.spend_key != key else row.spent_purchases
    overage = period_overage(b, holding.owner)
    return SpendCap(None, bought + overage, b.terms.currency.code)
