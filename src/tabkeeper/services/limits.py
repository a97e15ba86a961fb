"""The real-time check as a service (LIM-1, LIM-2): the snapshot from the billing account
read model (services/accounts.py), the decision from the domain.

The account, its subscription, credit balance row and the current period's counters come
in ONE statement (house rule 7: counters, never the event history), with, on answered-only
plans, the places held by started sessions with no reply yet: they count under the session
limit and a hard-stop quota (LIM-7). Capacity is counted only for the actions that add
capacity, with what a waiting reduction will leave (SUB-13). Nothing is written: the check
runs in a read-only transaction (on SQLite it never waits for a writer). The one exception
is the credit balance when something is due on it (the plan's included credits of a new period, an
expiry; CRD-2): the balance is then brought up to date, which writes, so a read-only
caller gets `CreditsDue` and asks again in a writing transaction (`refresh=True`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from tabkeeper.db.accounts import AccountFacts
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.db.tables_credits import CreditBalance
from tabkeeper.domain.catalog import Catalog, MeterKind, Plan, Resource
from tabkeeper.domain.decisions import Action, Capacity, Decision, MeterUsage, Snapshot, decide
from tabkeeper.domain.errors import NotFound, TabkeeperError
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.metering import quantity_decimal
from tabkeeper.domain.spend import spend_key
from tabkeeper.services.accounts import BillingAccount, account_by_code, account_of
from tabkeeper.services.capacity import (
    COUNTED,
    allowed,
    in_use,
    purchasable,
    scheduled_limits,
)
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_ledger import holding_of, is_due, period_key
from tabkeeper.services.credits import current_balance

ADDING = (Action.ADD_AGENT, Action.ADD_SEAT, Action.ADD_PHONE_NUMBER, Action.CONNECT_CHANNEL)


class CreditsDue(TabkeeperError):
    """The credit balance has something due (CRD-2): ask again in a writing transaction."""


def snapshot(
    b: Billing, account: BillingAccount, action: Action | None = None, *, refresh: bool = True
) -> Snapshot:
    """What the check decides from; capacity only when `action` adds some (or is None).
    `account` must have been read with its counters."""
    subscription, catalog, plan = account.subscription, account.catalog, account.plan
    status = account.status
    if subscription is None or catalog is None or plan is None:
        return Snapshot(status)
    meters = {}
    sessions_used = 0
    cap, spent = spend_of(account)
    for code, meter in catalog.meters.items():
        used = account.used(meter)
        if meter.kind is MeterKind.BILLABLE_SESSIONS:
            used += account.held  # LIM-7: unanswered starts hold their places
            sessions_used = int(used)
        if code in plan.includes or (cap is not None and code in plan.overage):
            meters[code] = MeterUsage(
                quantity_decimal(used), plan.includes.get(code), code in plan.overage
            )
    capacity = {}
    if action is None or action in ADDING:
        slots, scheduled = scheduled_limits(
            b, subscription.id, subscription.period_end, plan, catalog
        )
        limits = allowed(plan, catalog, slots)
        use = in_use(b, cast(Organization, _Owner(account.owner_id)))
        capacity = {
            resource.value: Capacity(
                use[resource],
                limits[resource],
                purchasable(plan, catalog, resource),
                scheduled.get(resource),
            )
            for resource in COUNTED
        }
    channel_plans: dict[str, str] = {}
    channel_upgrades: dict[str, str] = {}
    if action is None or action is Action.CONNECT_CHANNEL:  # only what the decision reads
        channel_plans, channel_upgrades = _channel_offers(catalog, capacity)
    trialing = status.state is State.TRIALING
    return Snapshot(
        status,
        trial_sessions_used=sessions_used if trialing else 0,
        trial_sessions=subscription.trial_sessions if trialing else None,
        sessions_used=sessions_used,
        session_limit=subscription.session_limit,
        meters=meters,
        features=plan.features,
        capacity=capacity,
        credit_balance=credit_balance(b, account, refresh=refresh),
        credits_held=0 if account.facts.credits is None else account.facts.credits.held,
        feature_credits={code: f.credits for code, f in catalog.ai_features.items()},
        channels=frozenset(plan.channels),
        channel_plans=channel_plans,
        channel_upgrades=channel_upgrades,
        spend_cap=cap,
        spent=spent,
    )


def spend_of(account: BillingAccount) -> tuple[int | None, int]:
    """LIM-6: the spend cap and what counts against it this period, from the balance row
    read with the account (no statement of its own; (None, 0) when no cap is set)."""
    credits, subscription = account.facts.credits, account.subscription
    if credits is None or credits.spend_cap is None or subscription is None:
        return None, 0
    key = spend_key(subscription.id, subscription.period_start)
    return credits.spend_cap, credits.spent if credits.spend_key == key else 0


def _room(plan: Plan, wanted: int) -> bool:
    limit = plan.limit(Resource.CHANNELS)
    return limit is None or limit >= wanted


def _channel_offers(
    catalog: Catalog, capacity: dict[str, Capacity]
) -> tuple[dict[str, str], dict[str, str]]:
    """CAT-7: per channel of the catalog, the name of the lowest plan that has it, and of
    the lowest that has it with room for one more connected channel than now."""
    found = capacity.get(Resource.CHANNELS.value)
    wanted = 1 if found is None else found.in_use + 1
    plans, upgrades = {}, {}
    for channel in sorted(catalog.channels()):
        lowest = catalog.lowest_plan_with_channel(channel)
        assert lowest is not None
        plans[channel] = lowest.name
        roomy = [p for p in catalog.plans.values() if channel in p.channels and _room(p, wanted)]
        best = min(roomy, key=lambda p: (p.rank, p.code), default=None)
        if best is not None:
            upgrades[channel] = best.name
    return plans, upgrades


class _Owner:
    """The billing organization by id, for the capacity counts (they read only the id)."""

    __slots__ = ("id",)

    def __init__(self, organization_id: int) -> None:
        self.id = organization_id


def credit_balance(b: Billing, account: BillingAccount, *, refresh: bool) -> int:
    """The balance now (CRD-3): the balance row as read with the account while nothing
    is due; else brought up to date (refresh) or `CreditsDue`."""
    plan, credits = account.plan, account.facts.credits
    key = period_key(cast(Subscription | None, account.subscription), b.now)
    due = key and plan is not None and plan.credits is not None
    if credits is None and not due:
        return 0
    if credits is not None and not is_due(cast(CreditBalance, credits), key, b.now):
        return credits.balance
    if not refresh:
        raise CreditsDue("the credit balance has something due")
    organization = b.session.get(Organization, account.organization_id)
    assert organization is not None
    return current_balance(b, holding_of(b, organization))


def decide_for(
    b: Billing,
    account: BillingAccount,
    action: Action | str,
    feature: str | None = None,
    *,
    refresh: bool = True,
    channel: str | None = None,
) -> Decision:
    """LIM-1: may the organization of `account` (read with its counters) do `action` now?"""
    wanted = Action.parse(action)
    return decide(
        snapshot(b, account, wanted, refresh=refresh), wanted, b.now, feature, channel=channel
    )


def check(
    b: Billing,
    organization: Organization,
    action: Action | str,
    feature: str | None = None,
    *,
    channel: str | None = None,
) -> Decision:
    """LIM-1: may this organization do `action` now? (In a writing transaction.)"""
    return decide_for(
        b, account_of(b, organization, counters=True), action, feature, channel=channel
    )


def check_by_code(
    b: Billing,
    code: str,
    action: Action | str,
    feature: str | None = None,
    *,
    visible: Callable[[AccountFacts], bool],
    refresh: bool = True,
    channel: str | None = None,
) -> Decision:
    """LIM-1 for the organization `code`, read with everything the check needs in one
    statement; NotFound unless `visible` says the caller may see it (ACL-3)."""
    wanted = Action.parse(action)
    account = account_by_code(b, code, counters=True)
    if account is None or not visible(account.facts):
        raise NotFound("No such organization.")
    return decide_for(b, account, wanted, feature, refresh=refresh, channel=channel)
