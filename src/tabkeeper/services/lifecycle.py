"""Carrying out lifecycle transitions on stored subscriptions (SUB-1..10, TRI-1..4).

The pure table in domain/lifecycle.py decides the new state and the effects; this module
reads the status from the subscription row, writes the new one back, records history,
and carries out the effects: notices to the outbox, due work for the clock, released
phone numbers, purged data.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tabkeeper.db import invoices as invoice_rows
from tabkeeper.db import organizations as rows
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.domain.errors import IllegalTransition, Refused
from tabkeeper.domain.lifecycle import (
    ENDED_REASONS,
    CancelPurge,
    CancelRetries,
    Effect,
    EndSuspension,
    Event,
    Notify,
    PurgeData,
    ReleasePhoneNumbers,
    SchedulePurge,
    ScheduleRetry,
    StartGrace,
    StartPaidTrial,
    StartSuspension,
    StartTrial,
    State,
    Status,
    WriteOffInvoices,
    transition,
)
from tabkeeper.services.context import Billing
from tabkeeper.services.invoices import mark_uncollectible
from tabkeeper.services.records import (
    cancel_queued,
    moment_key,
    notify,
    queue,
    record_history,
)

PAID_TRIAL_REMINDER_DAYS = 3
"""SUB-15: a plan's trial is reminded of (`subscription.trial_ending`) this many days
before it converts."""

_DEADLINES = {
    State.TRIALING: ("trial_ends_at",),
    State.PAST_DUE: ("grace_ends_at", "period_end"),
    State.ACTIVE: ("period_end",),
    State.SUSPENDED: ("period_end",),
    State.CANCELED: ("retention_ends_at",),
}


def status_of(subscription: Subscription | None, organization: Organization) -> Status:
    """The lifecycle status stored in `subscription` (none when there is no row)."""
    if subscription is None:
        return Status(State.NONE, trial_used=organization.trial_used)
    state = State(subscription.state)
    allowed = _DEADLINES.get(state, ())
    return Status(
        state,
        cancel_at_period_end=subscription.cancel_at_period_end,
        trial_used=organization.trial_used,
        trial_ends_at=subscription.trial_ends_at if "trial_ends_at" in allowed else None,
        grace_ends_at=subscription.grace_ends_at if "grace_ends_at" in allowed else None,
        period_end=subscription.period_end if "period_end" in allowed else None,
        retention_ends_at=(
            subscription.retention_ends_at if "retention_ends_at" in allowed else None
        ),
        # SUB-15; the check's read model (db/accounts.py) leaves it out: it never
        # transitions, and the hot path reads no column it does not use.
        trial_converts=state is State.TRIALING
        and bool(getattr(subscription, "trial_converts", False)),
    )


def apply_event(
    b: Billing,
    subscription: Subscription,
    organization: Organization,
    event: Event,
    *,
    at: datetime | None = None,
    notice_key: str | None = None,
) -> Status:
    """Run `event` through the lifecycle table and carry out its effects.

    An illegal event is refused with the state and the event named (code
    `illegal_transition`), and nothing is written.
    """
    when = at or b.now
    before = status_of(subscription, organization)
    try:
        after, effects = transition(before, event, when)
    except IllegalTransition as error:
        raise Refused(error.message, code="illegal_transition") from None
    subscription.state = after.state.value
    subscription.cancel_at_period_end = after.cancel_at_period_end
    if after.trial_ends_at is not None:
        subscription.trial_ends_at = after.trial_ends_at
    subscription.grace_ends_at = after.grace_ends_at
    if after.period_end is not None:
        subscription.period_end = after.period_end
    subscription.retention_ends_at = after.retention_ends_at
    if subscription.trial_converts != after.trial_converts:
        subscription.trial_converts = after.trial_converts  # SUB-15
    if after.state in (State.CANCELED, State.EXPIRED) and subscription.ended_at is None:
        subscription.ended_at = when
        subscription.ended_reason = ENDED_REASONS.get(event.name)
    elif after.state not in (State.CANCELED, State.EXPIRED):
        subscription.ended_reason = None
    if after.trial_used and not organization.trial_used:
        organization.trial_used = True  # set only when it changes: no flush for nothing
    b.session.flush()
    key = notice_key or f"{subscription.id}:{event.name}:{moment_key(when)}"
    for effect in effects:
        _carry_out(b, subscription, organization, effect, key)
    if before.state != after.state or event.name not in ("payment_failed",):
        record_history(b, subscription, before.state.value, event.name)
    return after


def _carry_out(
    b: Billing,
    subscription: Subscription,
    organization: Organization,
    effect: Effect,
    key: str,
) -> None:
    org_id = organization.id
    if isinstance(effect, Notify):
        payload = {"subscription": subscription.id, "plan": subscription.plan_code}
        notify(b, org_id, effect.notice.value, key, payload)
    elif isinstance(effect, StartTrial):
        queue(b, "trial_end", f"trial_end:{subscription.id}", org_id, effect.ends_at)
    elif isinstance(effect, StartPaidTrial):  # SUB-15: remind 3 days before, then convert
        queue(b, "trial_convert", f"trial_convert:{subscription.id}:{key}", org_id, effect.ends_at)
        reminder = effect.ends_at - timedelta(days=PAID_TRIAL_REMINDER_DAYS)
        if reminder > b.now:
            reminder_key = f"trial_ending:{subscription.id}:{key}"
            queue(b, "trial_ending", reminder_key, org_id, reminder)
    elif isinstance(effect, StartGrace):
        queue(b, "grace_end", f"grace_end:{subscription.id}:{key}", org_id, effect.ends_at)
    elif isinstance(effect, StartSuspension):
        key = f"suspension_end:{subscription.id}:{moment_key(effect.ends_at)}"
        queue(b, "suspension_end", key, org_id, effect.ends_at)
    elif isinstance(effect, EndSuspension):
        cancel_queued(b, org_id, "suspension_end")
    elif isinstance(effect, WriteOffInvoices):
        write_off_invoices(b, organization)
    elif isinstance(effect, ScheduleRetry):
        queue(b, "retry", f"retry:{subscription.id}:{moment_key(effect.at)}", org_id, effect.at)
    elif isinstance(effect, CancelRetries):
        cancel_queued(b, org_id, "retry")
        cancel_queued(b, org_id, "grace_end")
    elif isinstance(effect, SchedulePurge):
        queue(b, "purge", f"purge:{subscription.id}:{moment_key(effect.at)}", org_id, effect.at)
    elif isinstance(effect, CancelPurge):
        cancel_queued(b, org_id, "purge")
    elif isinstance(effect, ReleasePhoneNumbers):
        release_all_phone_numbers(b, organization)
    elif isinstance(effect, PurgeData):
        purge_data(b, organization)
    # StopAgents and RestoreService need no write: the real-time check decides from the
    # subscription's state, so agents stop and restart with it (SUB-7, SUB-9).


def write_off_invoices(b: Billing, organization: Organization) -> None:
    """SUB-11: the open invoices of a subscription ended unpaid become uncollectible; the
    clock's pending collections of them then find nothing to collect."""
    for invoice in invoice_rows.open_invoices(b.session, organization.id):
        mark_uncollectible(b, invoice)


def family_ids(b: Billing, organization: Organization) -> list[int]:
    """The organization and its sub-accounts: they share one subscription (SUB-2)."""
    return rows.family_ids(b.session, organization.id)


def release_all_phone_numbers(b: Billing, organization: Organization) -> None:
    """SUB-7: the numbers the plan held are released, and a notice names them."""
    ids = family_ids(b, organization)
    numbers = rows.active_phone_numbers(b.session, ids)
    if not numbers:
        return
    rows.release_phone_numbers(b.session, ids, b.now)
    notify(
        b,
        organization.id,
        "phone_numbers.released",
        f"released:{moment_key(b.now)}",
        {"numbers": list(numbers)},
    )


def purge_data(b: Billing, organization: Organization) -> None:
    """SUB-7: after the retention days, usage data goes; invoices stay (they are records)."""
    ids = family_ids(b, organization)
    rows.purge_usage(b.session, ids)
    organization.purged_at = b.now


def with_state(status: Status, state: State) -> Status:
    return replace(status, state=state)
