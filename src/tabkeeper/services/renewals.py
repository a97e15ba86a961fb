"""What the billing clock does when a subscription's time comes (SUB-7..9, TRI-2, TRI-3,
INV-1): renew or end at the period's end, end a trial, remind of its end, expire grace,
retry a payment, carry out a change on its date, purge data after retention.

A change the clock carries out (on its date, or at the period's end) is checked again
then: a subscription that is no longer active, or that now uses more than the new plan
allows (SUB-6), keeps its plan; the change is marked failed and `subscription.change_failed`
says why. A change at the period's end to another interval starts a new anchor at the
boundary.

Each handler runs in the transaction that also marks its due work done, as of the work's
due time, so a crash rolls the whole of it back and a rerun does it once (INV-4).
"""

from __future__ import annotations

from collections.abc import Callable

from tabkeeper.db import subscriptions as subscription_rows
from tabkeeper.db.tables import DueWork, Organization, ScheduledChange, Subscription
from tabkeeper.domain.cycles import Cycle
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.invoicing import LineDraft
from tabkeeper.domain.lifecycle import (
    GraceExpired,
    PeriodEnded,
    PeriodRenewed,
    PlanChanged,
    RetentionExpired,
    State,
    TrialDaysRanOut,
)
from tabkeeper.domain.periods import Period
from tabkeeper.domain.terms import Timing
from tabkeeper.services import counters, plan_trials
from tabkeeper.services.capacity import addon_slots, require_room_for
from tabkeeper.services.changes import apply_change, require_addon_prices, upcoming_change
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_holds import expire_hold
from tabkeeper.services.invoices import issue_invoice, open_invoices, queue_collection
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import moment_key, notify
from tabkeeper.services.subscriptions import (
    advance_lines,
    billed_slots,
    cycle_of,
    drop_scheduled_changes,
    plan_of,
    queue_period_end,
    set_cycle,
)
from tabkeeper.services.suspension import end_unpaid
from tabkeeper.services.usage import usage_lines

Handler = Callable[[Billing, DueWork], None]


def _subscription(b: Billing, work: DueWork) -> tuple[Subscription, Organization] | None:
    organization = b.session.get(Organization, work.organization_id)
    subscription = subscription_rows.subscription_of(b.session, work.organization_id, lock=True)
    if organization is None or subscription is None:
        return None
    return subscription, organization


def period_end(b: Billing, work: DueWork) -> None:
    """Renew at the boundary (plan in advance, usage in arrears), or end a canceled one."""
    organization = b.session.get(Organization, work.organization_id)
    # The subscription, locked, with its catalog version (db/subscriptions.py), so that
    # the catalog needs no query of its own.
    locked = subscription_rows.locked_with_version(b.session, work.organization_id)
    if organization is None or locked is None:
        return
    # The version is held while the catalog is looked up: the session keeps only what is
    # referenced, and plan_of() then finds it there.
    subscription, _version = locked
    state = State(subscription.state)
    if state not in (State.ACTIVE, State.PAST_DUE, State.SUSPENDED):
        return
    if subscription.period_end != work.due_at:
        return  # the period moved (a change of interval); its own work was queued
    if state is State.SUSPENDED and not subscription.cancel_at_period_end:
        # SUB-11: suspension stops billing; paying restores (services/suspension.py). A
        # change waiting for this boundary fails, as for any subscription not active.
        change = upcoming_change(b, subscription)
        if change is not None and change.status == "scheduled":
            _fail_change(b, organization, change, "not_active", "The subscription is not active.")
        return
    catalog, plan = plan_of(b, subscription)
    ended_cycle = cycle_of(b, subscription, plan)
    ended = ended_cycle.period
    if subscription.period_start > ended.start:  # SUB-16: a first period begun inside
        ended = Period(subscription.period_start, ended.end, ended.index)
    arrears = usage_lines(b, organization, catalog, plan, ended)
    if subscription.cancel_at_period_end:
        apply_event(b, subscription, organization, PeriodEnded(retention_days=plan.retention_days))
        drop_scheduled_changes(b, subscription)
        if arrears:
            source = f"final:{subscription.id}:{moment_key(ended.end)}"
            invoice = issue_invoice(
                b, organization, source, arrears, period_start=ended.start, period_end=ended.end
            )
            queue_collection(b, invoice, b.now)
        return
    change = upcoming_change(b, subscription)
    next_cycle = ended_cycle.renew()
    if (
        change is not None
        and change.status == "scheduled"
        and change.timing == Timing.PERIOD_END.value
    ):
        next_cycle = _switch_at_renewal(b, subscription, organization, change, ended_cycle)
        catalog, plan = plan_of(b, subscription)
    period = set_cycle(b, subscription, next_cycle, was=ended_cycle)
    source = f"renewal:{subscription.id}:{moment_key(subscription.anchor)}:{period.index}"
    event = PeriodRenewed(period_end=period.end)
    apply_event(b, subscription, organization, event, notice_key=source)
    counters.start_period(b, organization.id, period.start, period.end)
    if change is not None:  # None: there was none open, and the renewal opened none
        _move_waiting_change(b, subscription)
    slots = billed_slots(catalog, next_cycle)
    lines: list[LineDraft] = [*arrears, *advance_lines(catalog, plan, slots, period)]
    invoice = issue_invoice(
        b, organization, source, lines, period_start=period.start, period_end=period.end
    )
    queue_collection(b, invoice, b.now)
    queue_period_end(b, subscription)


def _switch_at_renewal(
    b: Billing,
    subscription: Subscription,
    organization: Organization,
    change: ScheduledChange,
    ended: Cycle,
) -> Cycle:
    """SUB-4: a change at the period's end rides on the renewal, on the new plan: the
    cycle after `ended` on it (SCENARIOS "Plan changes": a new interval starts a new anchor
    at the boundary). A subscription that is no longer active, or that uses more than the
    new plan allows (SUB-6), keeps its plan; the change fails."""
    if subscription.state != State.ACTIVE:
        _fail_change(b, organization, change, "not_active", "The subscription is not active.")
        return ended.renew()
    if not _change_fits(b, subscription, organization, change):
        return ended.renew()
    plan = b.catalog_of(change.catalog_version_id).plan(change.plan_code)
    renewed = ended.renew(plan.code, plan.interval, plan.interval_count)
    subscription.catalog_version_id = change.catalog_version_id
    # The plan is the new one before the change is told.
    set_cycle(b, subscription, renewed, was=ended)
    change.status, change.decided_at = "applied", b.now
    apply_event(b, subscription, organization, PlanChanged(), notice_key=f"change:{change.id}")
    return renewed


def trial_end(b: Billing, work: DueWork) -> None:
    """TRI-2: the trial's days ran out."""
    found = _subscription(b, work)
    if found is not None and found[0].state == State.TRIALING:
        apply_event(b, found[0], found[1], TrialDaysRanOut())


def trial_reminder(b: Billing, work: DueWork) -> None:
    """TRI-3: 7 days and 2 days left, each once."""
    found = _subscription(b, work)
    if found is not None and found[0].state == State.TRIALING:
        notify(b, found[1].id, work.kind.replace("_", ".", 1), work.subject_key)


def grace_end(b: Billing, work: DueWork) -> None:
    """SUB-9: grace over, unpaid: suspended."""
    found = _subscription(b, work)
    if found is not None and found[0].state == State.PAST_DUE:
        apply_event(b, found[0], found[1], GraceExpired(b.terms.suspension_days))


def retry(b: Billing, work: DueWork) -> None:
    """SUB-8: try the open invoices again, on the schedule, while grace runs."""
    found = _subscription(b, work)
    if found is None or found[0].state != State.PAST_DUE:
        return
    for invoice in open_invoices(b, found[1].id):
        queue_collection(b, invoice, b.now)


def apply_scheduled_change(b: Billing, work: DueWork) -> None:
    """SUB-4: a change on a custom date is an immediate change carried out then."""
    found = _subscription(b, work)
    if found is None:
        return
    subscription, organization = found
    change = upcoming_change(b, subscription)
    if (
        change is None
        or change.status != "scheduled"
        or f"apply_change:{change.id}" != work.subject_key
    ):
        return
    if subscription.state != State.ACTIVE or subscription.cancel_at_period_end:
        _fail_change(b, organization, change, "not_active", "The subscription is not active.")
        return
    if _change_fits(b, subscription, organization, change):
        apply_change(b, subscription, organization, change)


def _move_waiting_change(b: Billing, subscription: Subscription) -> None:
    """A change for the period's end that still awaits approval (SUB-4) now waits for the
    end of the new period."""
    waiting = upcoming_change(b, subscription)
    if waiting is not None and waiting.timing == Timing.PERIOD_END.value:
        waiting.effective_at = subscription.period_end


def _change_fits(
    b: Billing, subscription: Subscription, organization: Organization, change: ScheduledChange
) -> bool:
    """SUB-6 when the clock carries out a change: what is in use now must fit the new plan
    (agents, seats or numbers may have been added since the change was asked for). When
    it does not, the change fails and the subscription keeps its plan."""
    catalog = b.catalog_of(change.catalog_version_id)
    plan = catalog.plan(change.plan_code)
    try:
        require_room_for(b, organization, plan, catalog, addon_slots(b, subscription.id))
        _, old_plan = plan_of(b, subscription)
        require_addon_prices(b, subscription, old_plan, catalog, plan)  # SUB-14, CAT-8
    except Refused as refusal:
        _fail_change(b, organization, change, refusal.code, refusal.message)
        return False
    return True


def _fail_change(
    b: Billing, organization: Organization, change: ScheduledChange, reason: str, message: str
) -> None:
    """The scheduled change cannot happen: marked failed, and `subscription.change_failed`
    tells the organization why."""
    change.status, change.decided_at = "failed", b.now
    payload = {"plan": change.plan_code, "reason": reason, "message": message}
    notify(b, organization.id, "subscription.change_failed", f"change:{change.id}", payload)


def purge(b: Billing, work: DueWork) -> None:
    """SUB-7: data is kept for the plan's retention days, then purged."""
    found = _subscription(b, work)
    if found is not None and found[0].state == State.CANCELED and found[0].retention_ends_at:
        apply_event(b, found[0], found[1], RetentionExpired())


def suspension_end(b: Billing, work: DueWork) -> None:
    """SUB-11: still unpaid `suspension_days` after the suspension: it ends."""
    found = _subscription(b, work)
    if found is not None and found[0].state == State.SUSPENDED:
        end_unpaid(b, found[0], found[1])


HANDLERS: dict[str, Handler] = {
    "period_end": period_end,
    "trial_end": trial_end,
    "trial_days_7": trial_reminder,
    "trial_days_2": trial_reminder,
    "grace_end": grace_end,
    "suspension_end": suspension_end,
    "retry": retry,
    "apply_change": apply_scheduled_change,
    "purge": purge,
    "hold_expiry": expire_hold,  # CRD-5: services/credit_holds.py
    "trial_convert": plan_trials.convert,  # SUB-15: services/plan_trials.py
    "trial_ending": plan_trials.remind,  # SUB-15
}
