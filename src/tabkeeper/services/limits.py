"""The real-time check as a service (LIM-1, LIM-2): the snapshot from storage, the
decision from the domain. Usage comes from the counters, one indexed read per meter
(house rule 7); capacity is counted only for the actions that add capacity. The credit
balance is the ledger's (services/credits.py), brought up to date when something is due
(CRD-3).
"""

from __future__ import annotations

from tabkeeper.db.tables import Organization
from tabkeeper.domain.catalog import MeterKind
from tabkeeper.domain.decisions import Action, Capacity, Decision, MeterUsage, Snapshot, decide
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.metering import quantity_decimal
from tabkeeper.domain.periods import Period
from tabkeeper.services.capacity import COUNTED, addon_slots, allowed, in_use, purchasable
from tabkeeper.services.context import Billing
from tabkeeper.services.credits import Holding, current_balance
from tabkeeper.services.lifecycle import status_of
from tabkeeper.services.subscriptions import billing_organization, plan_of, subscription_of
from tabkeeper.services.usage import measure_usage

ADDING = (Action.ADD_AGENT, Action.ADD_SEAT, Action.ADD_PHONE_NUMBER)


def snapshot(b: Billing, organization: Organization, action: Action | None = None) -> Snapshot:
    """What the check decides from; capacity only when `action` adds some (or is None)."""
    owner = billing_organization(b, organization)
    subscription = subscription_of(b, organization, lock=False)
    status = status_of(subscription, owner)
    if subscription is None or status.state is State.NONE:
        return Snapshot(status)
    catalog, plan = plan_of(b, subscription)
    period = Period(subscription.period_start, subscription.period_end, subscription.period_index)
    meters = {}
    sessions_used = 0
    for code, meter in catalog.meters.items():
        used = measure_usage(b, owner, meter, period, plan.answered_only)
        if meter.kind is MeterKind.BILLABLE_SESSIONS:
            sessions_used = int(used)
        if code in plan.includes:
            meters[code] = MeterUsage(
                quantity_decimal(used), plan.includes[code], code in plan.overage
            )
    capacity = {}
    if action is None or action in ADDING:
        limits = allowed(plan, catalog, addon_slots(b, subscription.id))
        use = in_use(b, owner)
        capacity = {
            resource.value: Capacity(
                use[resource], limits[resource], purchasable(plan, catalog, resource)
            )
            for resource in COUNTED
        }
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
        credit_balance=current_balance(b, Holding(owner, subscription, catalog, plan)),
        feature_credits={code: f.credits for code, f in catalog.ai_features.items()},
    )


def check(
    b: Billing, organization: Organization, action: Action | str, feature: str | None = None
) -> Decision:
    """LIM-1: may this organization do `action` now?"""
    wanted = Action.parse(action)
    return decide(snapshot(b, organization, wanted), wanted, b.now, feature)
