"""Reading credits: the balance with its grants (CRD-1, CRD-2), the ledger's entries, and
where AI spend goes, per feature and per agent (CRD-4).

Reads bring the ledger up to date first (included credits of the period granted, expired
grants expired: services/credits.py), so what they show is exact at the time of the
read. Spend is added up from the ledger's use entries of a time range (the current
billing period by default): it is a report, read now and then, not a number the
real-time check needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select

from tabkeeper.db import credit_store
from tabkeeper.db.tables import Organization
from tabkeeper.db.tables_credits import CreditGrant
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.ledger import GrantKind, draw_order
from tabkeeper.domain.utc import require_instant
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_ledger import (
    as_grant,
    grant_rows,
    holding_of,
    period_key,
    refreshed,
)
from tabkeeper.services.subscriptions import require_billing_level


@dataclass(frozen=True, slots=True)
class CreditsView:
    """An organization's credits now: the balance and the grants that make it up, in
    the order they will be used."""

    organization: Organization
    balance: int
    included: int
    """What is left of plan-included credits (used first, CRD-2)."""
    purchased: int
    grants: tuple[CreditGrant, ...]
    next_grant_at: datetime | None
    """When the plan next grants included credits (the current period's end)."""
    next_grant: int | None


def credits_view(b: Billing, organization: Organization) -> CreditsView:
    """CRD-1: the balance and its live grants, exact now."""
    require_billing_level(organization)
    holding = holding_of(b, organization)
    row = refreshed(b, holding)
    grants = sorted(grant_rows(b, organization.id), key=lambda g: draw_order(as_grant(g)))
    left = {kind: 0 for kind in GrantKind}
    for found in grants:
        left[GrantKind(found.kind)] += found.remaining
    plan, subscription = holding.plan, holding.subscription
    granting = plan is not None and plan.credits is not None and subscription is not None
    next_at = None
    if granting and period_key(subscription, b.now) and subscription is not None:
        next_at = subscription.period_end
    return CreditsView(
        organization=organization,
        balance=row.balance,
        included=left[GrantKind.INCLUDED],
        purchased=left[GrantKind.PURCHASED],
        grants=tuple(grants),
        next_grant_at=next_at,
        next_grant=plan.credits.amount if next_at and plan and plan.credits else None,
    )


def history_query(b: Billing, organization: Organization) -> Select[Any]:
    """The ledger of `organization`, brought up to date, for paging in id order (CRD-2)."""
    require_billing_level(organization)
    refreshed(b, holding_of(b, organization))
    return credit_store.entries_query(organization.id)


@dataclass(frozen=True, slots=True)
class Spent:
    uses: int
    credits: int


@dataclass(frozen=True, slots=True)
class Spend:
    """CRD-4: credits used in [since, until), in all, per feature and per agent."""

    since: datetime
    until: datetime
    total: Spent
    features: dict[str, Spent]
    agents: dict[str, Spent]
    """Per agent code; uses reported without an agent are under ""."""


def spend(
    b: Billing,
    organization: Organization,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Spend:
    """CRD-4: where the credits went, by default in the current billing period (or, with
    no subscription, up to now)."""
    require_billing_level(organization)
    holding = holding_of(b, organization)
    subscription = holding.subscription
    if since is None:
        since = subscription.period_start if subscription is not None else None
    if until is None:
        until = subscription.period_end if subscription is not None and since else b.now
    if since is None:
        since = organization.created_at
    since, until = require_instant(since, "since"), require_instant(until, "until")
    if until <= since:
        raise InvalidInput("until: must be later than since", code="invalid_range")
    rows = credit_store.spend_rows(b.session, organization.id, since, until)
    features: dict[str, list[int]] = {}
    agents: dict[str, list[int]] = {}
    total = [0, 0]
    for feature, agent, uses, credits in rows:
        for key, into in ((feature or "", features), (agent or "", agents)):
            found = into.setdefault(key, [0, 0])
            found[0] += int(uses or 0)
            found[1] += int(credits or 0)
        total[0] += int(uses or 0)
        total[1] += int(credits or 0)
    return Spend(
        since,
        until,
        Spent(*total),
        {k: Spent(*v) for k, v in sorted(features.items())},
        {k: Spent(*v) for k, v in sorted(agents.items())},
    )
