"""Adding credits: top-ups (a paid purchase, SPEC CRD-1, INV-1) and adjustments.

- `top_up`: `credits` (a whole number, 1 to 10,000,000) for `price` (the platform's
  price; by default credits × the catalog's `credit_price`, rounded once). The purchase is
  its own invoice at once, with one `credits` line, collected by the billing clock now
  (as added slots are, services/addons.py). The credits are granted at the purchase, so a
  top-up resumes AI features at once (CRD-3); a declined payment then goes the way of
  every unpaid invoice (payment failed, past due, grace, suspended). Purchased credits
  never expire and are never refunded, also when the invoice is voided.
- `grant_adjustment`: credits the platform gives (goodwill, a promotion), with an
  optional priority (0 to 100; lower is used first) and expiry; no invoice.

Who: the owner or a billing admin (ACL-1: credits are a billing right); `member` None is
the platform, or an entry point that checked its caller. Billing is at the organization
level: a sub-account's credits are its organization's (`sub_account`). Bad input (0,
negative, fractional or huge credits, a negative price, no price where the catalog has
none) is refused with nothing changed, and so is a top-up that would take the period's
spend past the spend cap (`spend_cap_reached`, LIM-6: services/spend_caps.py).

A top-up's invoice source is `credits:<organization>:<n>` for the organization's n-th
top-up, counted under the balance row's lock: a purchase never makes two invoices, two
purchases never share one (INV-4); the API's Idempotency-Key keeps a retried request
from buying twice, and an adjustment is taken once per its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tabkeeper.db import credit_store
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.db.tables_credits import CreditGrant
from tabkeeper.domain import fields
from tabkeeper.domain.errors import Forbidden, InvalidInput
from tabkeeper.domain.invoicing import credits_line
from tabkeeper.domain.ledger import (
    DEFAULT_PRIORITY,
    GrantKind,
    require_priority,
    top_up_price,
    whole_credits,
)
from tabkeeper.domain.money import Money
from tabkeeper.domain.utc import require_instant
from tabkeeper.services.access import BILLING_ROLES
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_holds import repay_owed
from tabkeeper.services.credit_ledger import grant, holding_of, refreshed
from tabkeeper.services.invoices import issue_invoice, queue_collection
from tabkeeper.services.organizations import current_member
from tabkeeper.services.spend_caps import count_charge
from tabkeeper.services.subscriptions import require_billing_level

TOPPED_UP_MESSAGE = "Credits added successfully."


@dataclass(frozen=True, slots=True)
class Purchase:
    """A top-up: the credits, their price, the invoice, the balance after."""

    message: str
    credits: int
    price: Money
    invoice: Invoice
    balance: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    grant: CreditGrant
    balance: int
    duplicate: bool


def require_billing_member(b: Billing, organization: Organization, member: str | None) -> None:
    """ACL-1: credits are a billing right: the owner or a billing admin."""
    if member is None:
        return
    found = current_member(b, organization, member)
    if found is None or found.role not in BILLING_ROLES:
        raise Forbidden("Buying AI credits needs the owner or billing admin role.")


def top_up(
    b: Billing,
    organization: Organization,
    credits: object,
    price: Money | None = None,
    member: str | None = None,
) -> Purchase:
    """CRD-1, INV-1: buy `credits` for `price` (default: at the catalog's credit price)."""
    count = whole_credits(credits, "credits")
    require_billing_level(organization)
    require_billing_member(b, organization, member)
    holding = holding_of(b, organization)
    total = top_up_price(holding.catalog, count, price, b.terms.currency)
    row = refreshed(b, holding)
    count_charge(b, row, holding, total.minor)  # LIM-6: refused past the spend cap
    n = credit_store.count_grants(b.session, organization.id, GrantKind.PURCHASED) + 1
    line = credits_line(count, total)
    invoice = issue_invoice(b, organization, f"credits:{organization.id}:{n}", [line])
    queue_collection(b, invoice, b.now)
    made = grant(
        b, row, GrantKind.PURCHASED, count, f"top_up:{n}", at=b.now,
        description=line.description, invoice_id=invoice.id,
    )  # fmt: skip
    repay_owed(b, row, made)  # CRD-5: a settle's shortfall first
    b.session.flush()
    return Purchase(TOPPED_UP_MESSAGE, count, total, invoice, row.balance)


def grant_adjustment(
    b: Billing,
    organization: Organization,
    credits: object,
    reference: str,
    *,
    priority: object = DEFAULT_PRIORITY,
    expires_at: datetime | None = None,
    description: str = "Credits from the platform",
) -> Adjustment:
    """CRD-2: credits the platform gives, once per `reference`; an expiry must be later
    than now."""
    count = whole_credits(credits, "credits")
    reference = fields.name(reference, "id")
    rank = require_priority(priority)
    require_billing_level(organization)
    if expires_at is not None and require_instant(expires_at, "expires_at") <= b.now:
        raise InvalidInput("expires_at: must be later than now", code="invalid_expiry")
    row = refreshed(b, holding_of(b, organization))
    source = f"adjustment:{reference}"
    found = credit_store.grant_by_source(b.session, organization.id, source)
    if found is not None:
        return Adjustment(found, row.balance, duplicate=True)
    made = grant(
        b, row, GrantKind.ADJUSTMENT, count, source, at=b.now, description=description[:200],
        expires_at=expires_at, priority=rank,
    )  # fmt: skip
    b.session.flush()
    return Adjustment(made, row.balance, duplicate=False)
