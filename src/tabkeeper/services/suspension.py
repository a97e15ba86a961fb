"""Suspension and its two ways out (SUB-9, SUB-11, SUB-12).

Suspension stops billing: the billing clock renews no suspended subscription
(services/renewals.py). Paying the open balance restores it at once (`restore`): within the
period the paid invoice covers, that period goes on; after it, a new period starts at the
payment instant and is billed in full, with the lapsed period's usage in arrears. Still
unpaid `suspension_days` after the suspension (`end_unpaid`): the subscription ends (reason
`unpaid`), the lapsed period's usage is billed, and every open invoice becomes
uncollectible.
"""

from __future__ import annotations

from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.domain.lifecycle import PaymentSucceeded, State, SuspensionExpired
from tabkeeper.domain.periods import Period
from tabkeeper.services import counters
from tabkeeper.services.context import Billing
from tabkeeper.services.invoices import issue_invoice, queue_collection
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import moment_key
from tabkeeper.services.subscriptions import (
    advance_lines,
    billed_slots,
    cycle_of,
    drop_scheduled_changes,
    plan_of,
    queue_period_end,
    set_cycle,
)
from tabkeeper.services.usage import usage_lines


def restore(b: Billing, subscription: Subscription, organization: Organization, key: str) -> None:
    """The open balance of a past_due or suspended subscription is paid: active at once.

    A suspended one whose paid period is over starts a new period now (SUB-11): its
    invoice bills the lapsed period's usage and the new period in full, and is collected
    at once (a failure makes it past_due again, SUB-8).
    """
    if subscription.state != State.SUSPENDED or b.now < subscription.period_end:
        apply_event(b, subscription, organization, PaymentSucceeded(), notice_key=key)
        return
    catalog, plan = plan_of(b, subscription)
    arrears = usage_lines(b, organization, catalog, plan, _current_period(subscription))
    lapsed = cycle_of(b, subscription, plan)
    cycle = lapsed.restart_at(b.now)
    period = set_cycle(b, subscription, cycle, was=lapsed)
    event = PaymentSucceeded(period_end=period.end)
    apply_event(b, subscription, organization, event, notice_key=key)
    counters.start_period(b, organization.id, period.start, period.end)
    lines = [*arrears, *advance_lines(catalog, plan, billed_slots(catalog, cycle), period)]
    source = f"restart:{subscription.id}:{moment_key(period.start)}"
    invoice = issue_invoice(
        b, organization, source, lines, period_start=period.start, period_end=period.end
    )
    queue_collection(b, invoice, b.now)
    queue_period_end(b, subscription)


def end_unpaid(b: Billing, subscription: Subscription, organization: Organization) -> None:
    """SUB-11: unpaid `suspension_days` after the suspension, the subscription ends: the
    usage of its last period is billed, and that invoice with every other open one
    becomes uncollectible (the lifecycle's WriteOffInvoices)."""
    catalog, plan = plan_of(b, subscription)
    period = _current_period(subscription)
    arrears = usage_lines(b, organization, catalog, plan, period)
    if arrears:
        source = f"final:{subscription.id}:{moment_key(period.end)}"
        issue_invoice(
            b, organization, source, arrears, period_start=period.start, period_end=period.end
        )
    apply_event(b, subscription, organization, SuspensionExpired(plan.retention_days))
    drop_scheduled_changes(b, subscription)


def _current_period(subscription: Subscription) -> Period:
    return Period(subscription.period_start, subscription.period_end, subscription.period_index)
