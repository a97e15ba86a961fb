"""The low-balance alert of AI credits (SPEC CRD-7).

A member sets a threshold (`set_low_alert`, kept on the balance row); `credits.low` is
told each time a change takes the balance from the threshold or above to below it
(domain/holds.py `fell_below`): a use, a batch of uses, a hold, a settle, an expiry of
granted credits. Each change of one organization's balance happens under its balance
row's lock (the gate or `refreshed`), so exactly one change sees a crossing, also under
concurrent uses; the notice's dedupe key is that change's ledger entry key, so a crossing
is told once, and the next one (after the balance went back up) is told again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabkeeper.db.tables import Organization
from tabkeeper.domain.errors import Forbidden
from tabkeeper.domain.holds import fell_below, low_threshold
from tabkeeper.services.access import member_row
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_ledger import holding_of, refreshed
from tabkeeper.services.records import notify
from tabkeeper.services.subscriptions import require_billing_level


@dataclass(frozen=True, slots=True)
class LowAlert:
    threshold: int | None
    balance: int


def tell_low(
    b: Billing, owner_id: int, before: int, after: int, threshold: int | None, key: str
) -> None:
    """CRD-7: `credits.low` when the change `key` took the balance below `threshold`."""
    if fell_below(before, after, threshold):
        payload = {"balance": after, "threshold": threshold}
        notify(b, owner_id, "credits.low", f"low:{key}", payload)


def set_low_alert(
    b: Billing, organization: Organization, threshold: object, member: str | None = None
) -> LowAlert:
    """CRD-7: set (or, with None, turn off) the organization's low-balance threshold; a
    member of the organization (`member` None: the platform or a checked caller)."""
    value = low_threshold(threshold)
    require_billing_level(organization)
    if member is not None and member_row(b.session, organization.id, member) is None:
        raise Forbidden("Only a member of the organization may set its low-balance alert.")
    row = refreshed(b, holding_of(b, organization))
    row.low_threshold = value
    b.session.flush()
    return LowAlert(value, row.balance)
