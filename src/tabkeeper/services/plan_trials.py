"""A plan's own trial, which converts into the paid plan (SPEC SUB-15; issue 17 item 3).

Apart from the platform's free trial (TRI-1..4, services/subscriptions.py `start_trial`),
a plan may carry `trial_days`. Subscribing to it (checkout) saves a payment method and
charges nothing: the subscription is `trialing` (domain/lifecycle.py, `trial_converts`)
on the plan, with its limits, until `trial_ends_at`. Then the clock converts it
(`convert`): the first period starts at the trial's end (on the billing anchor when one
was asked for, its first part prorated, SUB-16), is invoiced, and the card is charged
through the ordinary collection: paid, it stays active; declined, it is past_due with
grace and retries (SUB-8). Three days before the end a reminder goes out
(`subscription.trial_ending`, e-mail and webhook). Canceled during the trial it ends at
once and nothing is charged (services/subscriptions.py `cancel`).

The trial's future first cycle (anchor, index, add-on slots) is written to the
subscription when the trial starts; its period_start and period_end are the trial's
(usage is counted from the trial's start to its end, as for the platform's trial).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta

from tabkeeper.db import subscriptions as rows
from tabkeeper.db.tables import CheckoutSession, DueWork, Organization, Subscription
from tabkeeper.domain.anchors import first_cycle
from tabkeeper.domain.catalog import Plan
from tabkeeper.domain.lifecycle import PaidTrialStarted, State, TrialConverted
from tabkeeper.services import counters
from tabkeeper.services.context import Billing
from tabkeeper.services.invoices import issue_invoice, queue_collection
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import cancel_queued, moment_key, notify
from tabkeeper.services.subscriptions import (
    SubscriptionQuote,
    cycle_of,
    first_lines,
    new_subscription,
    plan_of,
    queue_period_end,
    record_checkout,
    set_cycle,
    subscription_of,
)

TRIAL_ENDING = "subscription.trial_ending"
"""The notice kind of the reminder before a plan's trial converts."""


def start_trial_checkout(
    b: Billing, organization: Organization, quote: SubscriptionQuote
) -> tuple[str, int]:
    """SUB-15: the checkout of a plan with its own trial, once a payment method is on file
    (the caller saved it): recorded as completed with nothing to pay, and the trial begun.
    Returns the checkout's id and the subscription's."""
    assert quote.trial_days is not None
    checkout = record_checkout(b, quote, "none", f"trial_{secrets.token_hex(12)}", "")
    checkout.status, checkout.completed_at = "completed", b.now
    catalog = b.catalog_of(quote.version_id)
    subscription = start_plan_trial(
        b,
        organization,
        subscription_of(b, organization),
        checkout,
        catalog.plan(quote.plan),
        quote.addons,
        quote.trial_days,
    )
    return checkout.provider_checkout_id, subscription.id


def start_plan_trial(
    b: Billing,
    organization: Organization,
    subscription: Subscription | None,
    checkout: CheckoutSession,
    plan: Plan,
    addons: Mapping[str, int],
    days: int,
) -> Subscription:
    """The plan's trial of `days` days begins now (from none, the platform's trial or an
    expired one): its first cycle is set for the trial's end, usage counted from now."""
    ends_at = b.now + timedelta(days=days)
    if subscription is None:
        subscription = new_subscription(
            b, organization, plan.code, checkout.catalog_version_id, ends_at
        )
    for kind in ("trial_end", "trial_days_7", "trial_days_2"):  # the platform's trial ends
        cancel_queued(b, organization.id, kind)
    rows.delete_addons(b.session, subscription.id)
    set_cycle(b, subscription, first_cycle(plan, ends_at, checkout.anchor_day, addons))
    subscription.catalog_version_id = checkout.catalog_version_id
    subscription.price_minor, subscription.price_plan, subscription.collection = None, None, "card"
    subscription.started_at, subscription.ended_at = b.now, None
    subscription.trial_sessions = None
    subscription.session_limit = None
    subscription.period_start = b.now
    apply_event(b, subscription, organization, PaidTrialStarted(days))
    subscription.period_end = ends_at
    counters.start_period(b, organization.id, b.now, ends_at)
    return subscription


def convert(b: Billing, work: DueWork) -> None:
    """SUB-15: the trial's end: the first period begins and is invoiced, the card charged
    by the ordinary collection (declined: past_due, SUB-8). Nothing for a trial that
    ended otherwise (canceled, or a paid checkout in between)."""
    organization = b.session.get(Organization, work.organization_id)
    subscription = rows.subscription_of(b.session, work.organization_id, lock=True)
    if organization is None or subscription is None:
        return
    if subscription.state != State.TRIALING or not subscription.trial_converts:
        return
    if subscription.trial_ends_at != work.due_at:
        return
    catalog, plan = plan_of(b, subscription)
    cycle = cycle_of(b, subscription, plan)
    period = cycle.period
    source = f"trial:{subscription.id}:{moment_key(work.due_at)}"
    subscription.period_start = b.now
    apply_event(b, subscription, organization, TrialConverted(period.end), notice_key=source)
    subscription.trial_ends_at = None  # as after a paid checkout: the trial is over
    counters.start_period(b, organization.id, b.now, period.end)
    slots = {code: n for code, n in cycle.slots.items() if n > 0 and code in catalog.addons}
    lines = first_lines(catalog, plan, slots, cycle, b)
    invoice = issue_invoice(
        b, organization, source, lines, period_start=b.now, period_end=period.end
    )
    queue_collection(b, invoice, b.now)
    queue_period_end(b, subscription)


def remind(b: Billing, work: DueWork) -> None:
    """SUB-15: three days before a plan's trial converts, once."""
    organization = b.session.get(Organization, work.organization_id)
    subscription = rows.subscription_of(b.session, work.organization_id, lock=False)
    if organization is None or subscription is None:
        return
    if subscription.state != State.TRIALING or not subscription.trial_converts:
        return
    _, plan = plan_of(b, subscription)
    payload = {
        "subscription": subscription.id,
        "plan": plan.code,
        "ends_at": moment_key(subscription.trial_ends_at or work.due_at),
        "amount_minor": plan.price.minor,
        "currency": plan.price.currency.code,
    }
    notify(b, organization.id, TRIAL_ENDING, work.subject_key, payload)
