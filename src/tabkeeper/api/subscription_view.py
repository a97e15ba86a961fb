"""A subscription as the API shows it: the subscription card (SUB-1 badge, "Payment
pending" banner, next billing date or end, trial counters TRI-1), its add-on slots, the
"Upcoming subscription" card of a scheduled change (SUB-4) and the current period's
usage per meter with its level (USE-6, USE-7)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.db.tables import Organization, ScheduledChange, Subscription, SubscriptionAddon
from tabkeeper.domain.catalog import Catalog, MeterKind
from tabkeeper.domain.lifecycle import UPCOMING_BADGE, State, badge
from tabkeeper.domain.terms import Timing
from tabkeeper.services.changes import upcoming_change
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import status_of
from tabkeeper.services.subscriptions import plan_of
from tabkeeper.services.usage import usage_report

PAYMENT_TROUBLE = (State.PAST_DUE, State.SUSPENDED)
"""SUB-1, SUB-9: the "Payment pending" banner shows while a payment is owed."""


def show_change(change: ScheduledChange) -> schemas.PlanChange:
    return schemas.PlanChange(
        id=change.id,
        subscription=change.subscription_id,
        plan=change.plan_code,
        timing=Timing(change.timing),
        starts_at=change.effective_at,
        status=schemas.ChangeStatus(change.status),
        is_upgrade=change.is_upgrade,
        requested_by=change.requested_by,
        requested_at=change.requested_at,
        decided_at=change.decided_at,
    )


def show_subscription(b: Billing, subscription: Subscription) -> schemas.Subscription:
    owner = b.session.get(Organization, subscription.organization_id)
    assert owner is not None
    catalog, plan = plan_of(b, subscription)
    status = status_of(subscription, owner)
    usage = usage_report(b, owner, subscription, catalog, plan)
    trialing = status.state is State.TRIALING
    sessions_used = _sessions_used(catalog, usage) if trialing else 0
    trial = None
    if trialing and subscription.trial_sessions is not None:
        left = max(0, subscription.trial_sessions - sessions_used)
        trial = schemas.TrialSessions(
            included=subscription.trial_sessions, used=sessions_used, left=left
        )
    shown_badge = badge(
        status, b.now, sessions_used, subscription.trial_sessions if trialing else None
    )
    running = status.state in (State.ACTIVE, *PAYMENT_TROUBLE)
    ends_at = subscription.period_end if subscription.cancel_at_period_end else None
    return schemas.Subscription(
        id=subscription.id,
        organization=owner.code,
        state=status.state.value,
        badge=shown_badge,
        payment_pending=status.state in PAYMENT_TROUBLE,
        plan=plan.code,
        plan_name=plan.name,
        price_minor=plan.price.minor,
        currency=plan.price.currency.code,
        interval=plan.interval.value,
        period_start=subscription.period_start,
        period_end=subscription.period_end,
        next_billing_at=(
            subscription.period_end if running and not subscription.cancel_at_period_end else None
        ),
        ends_at=ends_at or subscription.ended_at,
        cancel_at_period_end=subscription.cancel_at_period_end,
        trial_ends_at=subscription.trial_ends_at if trialing else None,
        trial_sessions=trial,
        grace_ends_at=status.grace_ends_at,
        session_limit=subscription.session_limit,
        addons=_addons(b, subscription),
        upcoming=_upcoming(b, subscription),
        usage={code: schemas.MeterUsage(**shown) for code, shown in usage.items()},
        started_at=subscription.started_at,
        ended_at=subscription.ended_at,
    )


def _sessions_used(catalog: Catalog, usage: dict[str, dict[str, object]]) -> int:
    """Billable sessions of the period (TRI-1: the trial counts them)."""
    for code, meter in catalog.meters.items():
        if meter.kind is MeterKind.BILLABLE_SESSIONS and code in usage:
            return int(Decimal(str(usage[code]["used"])))
    return 0


def _addons(b: Billing, subscription: Subscription) -> list[schemas.AddonSlots]:
    rows = b.session.scalars(
        select(SubscriptionAddon)
        .where(SubscriptionAddon.subscription_id == subscription.id)
        .order_by(SubscriptionAddon.addon_code)
    )
    return [
        schemas.AddonSlots(
            code=row.addon_code,
            quantity=row.quantity,
            quantity_next_period=row.quantity_next_period,
        )
        for row in rows
    ]


def _upcoming(b: Billing, subscription: Subscription) -> schemas.UpcomingChange | None:
    change = upcoming_change(b, subscription)
    if change is None:
        return None
    catalog = b.catalog_of(change.catalog_version_id)
    return schemas.UpcomingChange(
        id=change.id,
        plan=change.plan_code,
        plan_name=catalog.plan(change.plan_code).name,
        starts_at=change.effective_at,
        timing=Timing(change.timing),
        status=schemas.ChangeStatus(change.status),
        badge=UPCOMING_BADGE,
    )
