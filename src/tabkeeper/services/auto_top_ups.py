"""Auto top-up (SPEC CRD-6): a threshold and an amount of credits; when a change takes the
balance below the threshold, one top-up is bought off-session, never two at a time; a
failed charge turns auto top-up off and tells `credits.auto_top_up_failed`.

- Settings (`set_auto_top_up`, `disable_auto_top_up`) live on the balance row
  (`auto_threshold`, `auto_credits`); the owner or a billing admin sets them (buying
  credits is a billing right, ACL-1). The catalog must have a `credit_price`: the top-up
  is bought at it.
- Firing (services/auto_fire.py `after_change`): the use's gate (db/credit_store.py)
  returns the auto top-up's threshold and the top-up in flight with the balance, under
  the row's lock, so a use adds no statement unless it fires. Firing is a conditional
  `UPDATE … SET auto_pending = key WHERE auto_pending IS NULL RETURNING`: of 20 uses
  crossing the threshold at once, exactly one claims it; the billing clock's
  `auto_top_up` work is queued for now.
- Buying (`claim`, the billing clock, worker/clock.py): in the clock's transaction the
  top-up's invoice is issued (one `credits` line at the catalog's price, its source the
  work's key) and its payment attempt claimed (services/payments.py); the provider charges
  the saved card off-session with no transaction open (through `PaymentProvider`, never a
  provider class), and `recorded` (from `payments.record_outcome`) writes the outcome: on
  success the credits are granted (repaying a shortfall first, CRD-5), counted against
  the spend cap (LIM-6) and `credits.auto_top_up` told; on a failure the invoice is voided
  (nothing was delivered), auto top-up turned off and `credits.auto_top_up_failed` told.
  Either way the top-up in flight is cleared. A top-up the spend cap would refuse is not
  bought (the cap's own notices tell why), and neither is one no longer needed (the
  balance is back at or above the threshold, or auto top-up was turned off meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

from tabkeeper.db import credit_store
from tabkeeper.db.records import set_work_status
from tabkeeper.db.tables import DueWork, Invoice, Organization
from tabkeeper.db.tables_credits import CreditBalance
from tabkeeper.domain.errors import Forbidden
from tabkeeper.domain.invoicing import credits_line
from tabkeeper.domain.ledger import GrantKind, top_up_price
from tabkeeper.domain.money import Money
from tabkeeper.domain.spend import auto_fires, auto_settings
from tabkeeper.payments.provider import ChargeResult
from tabkeeper.services.access import BILLING_ROLES
from tabkeeper.services.auto_fire import fire_locked
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_holds import repay_owed
from tabkeeper.services.credit_ledger import Holding, grant, holding_of, refreshed
from tabkeeper.services.invoices import issue_invoice, mark_paid
from tabkeeper.services.organizations import current_member
from tabkeeper.services.payments import ClaimedAttempt, claim_attempt
from tabkeeper.services.records import notify
from tabkeeper.services.spend_caps import holding_key, spent, would_pass
from tabkeeper.services.spend_counters import tell_levels
from tabkeeper.services.subscriptions import require_billing_level


@dataclass(frozen=True, slots=True)
class AutoTopUp:
    threshold: int | None
    credits: int | None
    in_flight: bool
    balance: int


def _shown(row: CreditBalance) -> AutoTopUp:
    return AutoTopUp(row.auto_threshold, row.auto_credits, row.auto_pending is not None,
                     row.balance)  # fmt: skip


def _require_billing_member(b: Billing, organization: Organization, member: str | None) -> None:
    if member is None:
        return
    found = current_member(b, organization, member)
    if found is None or found.role not in BILLING_ROLES:
        raise Forbidden("Auto top-up needs the owner or billing admin role.")


def set_auto_top_up(
    b: Billing,
    organization: Organization,
    threshold: object,
    credits: object,
    member: str | None = None,
) -> AutoTopUp:
    """CRD-6: buy `credits` whenever the balance falls below `threshold` (at the catalog's
    credit price); fires at once when the balance is below it already."""
    below, amount = auto_settings(threshold, credits)
    require_billing_level(organization)
    _require_billing_member(b, organization, member)
    holding = holding_of(b, organization)
    top_up_price(holding.catalog, amount, None, b.terms.currency)  # price_required without one
    row = refreshed(b, holding)
    row.auto_threshold, row.auto_credits = below, amount
    b.session.flush()
    if auto_fires(row.balance, below, row.auto_pending):
        fire_locked(b, row)
    return _shown(row)


def disable_auto_top_up(
    b: Billing, organization: Organization, member: str | None = None
) -> AutoTopUp:
    """CRD-6: off (a top-up in flight still completes)."""
    require_billing_level(organization)
    _require_billing_member(b, organization, member)
    row = refreshed(b, holding_of(b, organization))
    row.auto_threshold = row.auto_credits = None
    b.session.flush()
    return _shown(row)


def auto_top_up_of(b: Billing, organization: Organization) -> AutoTopUp:
    """CRD-6: the settings as stored (a read)."""
    row = credit_store.balance_row(b.session, holding_of(b, organization).owner.id)
    if row is None:
        return AutoTopUp(None, None, False, 0)
    return _shown(row)


def _done(b: Billing, row: CreditBalance, work: DueWork) -> None:
    if row.auto_pending == work.subject_key:
        row.auto_pending = None
    set_work_status(b.session, work, "done", b.now)
    b.session.flush()


def claim(b: Billing, work: DueWork) -> ClaimedAttempt | None:
    """The billing clock: issue the top-up's invoice and claim its payment attempt (the
    charge follows with no transaction open); None when there is nothing to charge (the
    work is then done)."""
    owner = b.session.get(Organization, work.organization_id)
    assert owner is not None
    holding = holding_of(b, owner)
    row = refreshed(b, holding)
    credits, threshold = row.auto_credits, row.auto_threshold
    if row.auto_pending != work.subject_key or credits is None or threshold is None:
        _done(b, row, work)
        return None
    if row.balance >= threshold:  # a top-up or a grant came meanwhile
        _done(b, row, work)
        return None
    price = top_up_price(holding.catalog, credits, None, b.terms.currency)
    if would_pass(row, holding, price.minor):  # LIM-6: refused at the cap
        _done(b, row, work)
        return None
    source = f"{work.subject_key}:{credits}"
    invoice = issue_invoice(b, owner, source, [credits_line(credits, price)])
    if invoice.status == "paid":  # covered by account credit: nothing to charge
        _granted(b, row, holding, invoice, credits, price)
        _done(b, row, work)
        return None
    return claim_attempt(b, invoice.id, work)


def recorded(b: Billing, invoice: Invoice, result: ChargeResult) -> None:
    """The provider's answer for an auto top-up's invoice (services/payments.py
    `record_outcome`, the attempt already recorded): granted, or turned off."""
    from tabkeeper.services.corrections import void_invoice  # imports services/payments.py

    owner = b.session.get(Organization, invoice.organization_id)
    assert owner is not None
    holding = holding_of(b, owner)
    row = refreshed(b, holding)
    pending, bought = invoice.source_key.rsplit(":", 1)
    if row.auto_pending == pending:
        row.auto_pending = None
    if result.succeeded:
        mark_paid(b, invoice)
        credits = int(bought)
        price = Money(invoice.total_minor, b.terms.currency)
        _granted(b, row, holding, invoice, credits, price)
        return
    void_invoice(b, invoice.id)
    row.auto_threshold = row.auto_credits = None
    payload = {"invoice": invoice.number, "reason": result.failure_code or "declined",
               "message": result.failure_message or ""}  # fmt: skip
    notify(b, owner.id, "credits.auto_top_up_failed", invoice.source_key, payload)
    b.session.flush()


def _granted(
    b: Billing, row: CreditBalance, holding: Holding, invoice: Invoice, credits: int, price: Money
) -> None:
    n = credit_store.count_grants(b.session, row.organization_id, GrantKind.PURCHASED) + 1
    line = credits_line(credits, price)
    made = grant(b, row, GrantKind.PURCHASED, credits, f"top_up:{n}", at=b.now,
                 description=line.description, invoice_id=invoice.id)  # fmt: skip
    repay_owed(b, row, made)  # CRD-5: a settle's shortfall first
    key = holding_key(holding)  # LIM-6: counted; charged already, so never refused here
    before = spent(row, key)
    if row.spend_key != key:
        row.spend_key, row.spent_overage, row.spent_purchases = key, 0, 0
    row.spent_purchases += price.minor
    tell_levels(b, row.organization_id, key, before, before + price.minor, row.spend_cap)
    payload = {"credits": credits, "price_minor": price.minor, "invoice": invoice.number,
               "balance": row.balance}  # fmt: skip
    notify(b, row.organization_id, "credits.auto_top_up", invoice.source_key, payload)
    b.session.flush()
