"""The billing account a request is about, read once (DESIGN.md): the organization, its
billing organization (SUB-2), the subscription with its plan and catalog version (cached
per process: a version never changes, CAT-6), the lifecycle status, the current period,
the session limit, the credit balance row and, when asked, the current period's
counters with the places held by unanswered sessions (LIM-7). One statement
(db/accounts.py); everything else is computed from it.

Callers that only read (the real-time check) take it as it is; a caller that writes
locks what it changes itself (the counter row, the balance row), as today.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import cast

from tabkeeper.db import accounts as repository
from tabkeeper.db.accounts import AccountFacts, CounterFacts, SubscriptionFacts
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.domain.catalog import Catalog, Meter, Plan
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.lifecycle import State, Status
from tabkeeper.domain.periods import Period
from tabkeeper.domain.sessions import WINDOW
from tabkeeper.services.context import Billing
from tabkeeper.services.counters import Stored, value_of
from tabkeeper.services.lifecycle import status_of

NO_COUNTER = CounterFacts(0, 0)


@dataclass(frozen=True, slots=True)
class BillingAccount:
    """An organization as billing sees it now. `subscription` is None when there is none
    (or it is in state none); then `catalog`, `plan` and `period` are None (the
    platform's current catalog is `Billing.current_catalog`)."""

    facts: AccountFacts
    catalog: Catalog | None
    plan: Plan | None
    status: Status
    period: Period | None

    @property
    def organization_id(self) -> int:
        return self.facts.id

    @property
    def owner_id(self) -> int:
        """The billing organization's id (the organization's own, or its parent's)."""
        return self.facts.owner_id

    @property
    def subscription(self) -> SubscriptionFacts | None:
        found = self.facts.subscription
        return None if found is None or found.state == State.NONE else found

    def used(self, meter: Meter) -> Fraction:
        """The meter's value this period, from the counters read with the account."""
        counters = self.facts.counters
        if counters is None:
            raise InvalidInput("the account was read without its counters")
        answered_only = self.plan is not None and self.plan.answered_only
        found = counters.get(meter.code, NO_COUNTER)
        return value_of(meter, Stored(found.quantity, found.answered), answered_only)

    @property
    def held(self) -> int:
        """LIM-7: places held under the session limit now by started sessions with no
        reply yet (answered-only plans; 0 on the others)."""
        if self.plan is None or not self.plan.answered_only:
            return 0
        return self.facts.held


def account_by_code(
    b: Billing, code: str, *, counters: bool = False, conversation: str | None = None
) -> BillingAccount | None:
    """The platform's organization `code` (None when it has none of that code). With
    `conversation`: read with its counters and that conversation's row (a session
    start's, USE-3), still one statement."""
    found = repository.account_by_code(
        b.session, b.platform_id, code, counters=counters, conversation=conversation,
        open_after=b.now - WINDOW,
    )  # fmt: skip
    return None if found is None else _account(b, found)


def account_of(
    b: Billing,
    organization: Organization | int,
    *,
    counters: bool = False,
    conversation: str | None = None,
) -> BillingAccount:
    """The account of an organization of the platform (InvalidInput when it is not)."""
    organization_id = organization if isinstance(organization, int) else organization.id
    found = repository.account_by_id(
        b.session, b.platform_id, organization_id, counters=counters, conversation=conversation,
        open_after=b.now - WINDOW,
    )  # fmt: skip
    if found is None:
        raise InvalidInput(f"unknown organization {organization_id}")
    return _account(b, found)


def batch_accounts(
    b: Billing, codes: set[str] | list[str]
) -> tuple[dict[str, BillingAccount], Catalog]:
    """The accounts of the platform's organizations `codes` (unknown ones left out) and
    the platform's current catalog (what a batch of events is checked against), in one
    statement (the catalog parsed once per process, CAT-6)."""
    found, version_id = repository.batch_accounts(b.session, b.platform_id, codes)
    if version_id is None:
        _, catalog = b.current_catalog()
    else:
        catalog = b.store.catalog_by_id(b.session, b.platform_id, version_id)
    return {code: _account(b, facts) for code, facts in found.items()}, catalog


def accounts_of(b: Billing, organization_ids: set[int] | list[int]) -> dict[int, BillingAccount]:
    """The accounts of the platform's organizations `organization_ids` by id (others
    left out), in one statement."""
    found = repository.accounts_by_id(b.session, b.platform_id, organization_ids)
    return {organization_id: _account(b, facts) for organization_id, facts in found.items()}


def accounts_by_code(
    b: Billing, codes: set[str] | list[str], *, counters: bool = False
) -> dict[str, BillingAccount]:
    """The accounts of the platform's organizations `codes` (unknown ones left out)."""
    found = repository.accounts_by_code(
        b.session, b.platform_id, codes, counters=counters, open_after=b.now - WINDOW
    )
    return {code: _account(b, facts) for code, facts in found.items()}


def _account(b: Billing, facts: AccountFacts) -> BillingAccount:
    # status_of reads the subscription's and the owner's attributes by name: the facts
    # carry the same names, so no ORM row is loaded.
    owner = cast(Organization, facts)
    subscription = facts.subscription
    if subscription is None or subscription.state == State.NONE:
        return BillingAccount(facts, None, None, status_of(None, owner), None)
    catalog = b.store.catalog_by_id(b.session, b.platform_id, subscription.catalog_version_id)
    return BillingAccount(
        facts,
        catalog,
        catalog.plan(subscription.plan_code),
        status_of(cast(Subscription, subscription), owner),
        Period(subscription.period_start, subscription.period_end, subscription.period_index),
    )
