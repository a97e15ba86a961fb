"""Plan changes (SUB-4, SUB-5, SUB-6): immediately, at the period's end, or on a date;
cancel a scheduled change; approve a downgrade the platform holds for approval.

An immediate change within one interval makes one invoice at the change time: a credit
for the old plan's unused part and a charge for the new plan's remaining part; limits
switch at once and the period's usage is kept. A change to another interval ends the old
period now (credit for its unused part, and its usage in arrears) and starts a new period
anchored at the change, billed in full. A change on a date is an immediate change carried
out by the clock at that date; a change at the period's end rides on the renewal.

Add-ons go with the plan (SUB-14, CAT-8): a change to another interval credits each
add-on's unused part (the slots in force, at the old interval's price) and bills the
slots of the new period (the slots from the next billing date: a removal waiting for it
applies now) at the new interval's price, on the same invoice. A change to another
interval is refused (`addon_interval_unpriced`, naming the add-on) while the
subscription keeps slots of an add-on with no price for that interval; the clock checks
it again when it carries out a change on its date or at the period's end.
"""

from __future__ import annotations

from datetime import datetime

from tabkeeper.db import subscriptions as rows
from tabkeeper.db.tables import Organization, ScheduledChange, Subscription
from tabkeeper.domain.catalog import ADJECTIVES, Catalog, Plan
from tabkeeper.domain.cycles import Cycle
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.invoicing import (
    LineDraft,
    addon_unused_credit_line,
    proration_lines,
    unused_credit_line,
)
from tabkeeper.domain.lifecycle import PlanChanged, State
from tabkeeper.domain.periods import Period
from tabkeeper.domain.slots import priced_for
from tabkeeper.domain.terms import Timing
from tabkeeper.domain.utc import format_instant, parse_instant
from tabkeeper.services import counters
from tabkeeper.services.capacity import addon_slots, require_room_for, slots_at
from tabkeeper.services.channels import require_channels_in
from tabkeeper.services.context import Billing
from tabkeeper.services.invoices import issue_invoice, queue_collection
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.records import cancel_queued, queue
from tabkeeper.services.subscriptions import (
    _require_subscribable,
    advance_lines,
    billed_slots,
    billing_organization,
    cycle_of,
    drop_scheduled_changes,
    plan_of,
    queue_period_end,
    require_subscription,
    set_cycle,
)
from tabkeeper.services.usage import usage_lines

OPEN_CHANGE = ("awaiting_approval", "scheduled")


TIMING_WORDS = (Timing.IMMEDIATELY.value, Timing.PERIOD_END.value)


def parse_when(when: str | None) -> Timing | datetime | None:
    """SUB-4: "immediately", "period_end", a custom date (ISO 8601 with a zone), or None
    for the platform's default."""
    if when is None or when in TIMING_WORDS:
        return None if when is None else Timing(when)
    try:
        return parse_instant(when, "when")
    except InvalidInput:
        raise InvalidInput(
            f'when: expected "immediately", "period_end" or a time with a zone such as '
            f"2026-03-01T00:00:00Z, got {when!r}",
            code="invalid_timing",
        ) from None


def upcoming_change(b: Billing, subscription: Subscription) -> ScheduledChange | None:
    return rows.upcoming_change(b.session, subscription.id, OPEN_CHANGE)


def change_plan(
    b: Billing,
    organization: Organization,
    plan_code: str,
    when: Timing | datetime | None,
    member: str | None = None,
) -> ScheduledChange:
    """SUB-4: ask for a change of plan; returns the change (applied, scheduled, or
    awaiting approval). Refused, with nothing changed: no paid subscription, the current
    plan, a timing the platform does not allow, a date in the past, too little capacity."""
    subscription = require_subscription(b, organization)
    owner = billing_organization(b, organization)
    state = State(subscription.state)
    if state is not State.ACTIVE:
        raise Refused(
            f"A plan can be changed on an active paid subscription; this one is {state}.",
            code="not_active",
        )
    if subscription.cancel_at_period_end:
        raise Refused(
            "The subscription is canceled at the period's end; resume it to change plans.",
            code="cancel_pending",
        )
    _, old_plan = plan_of(b, subscription)
    version, catalog = b.current_catalog()
    new_plan = catalog.plan(plan_code)
    if new_plan.code == old_plan.code:
        raise Refused(f"The subscription is already on {old_plan.name}.", code="same_plan")
    _require_subscribable(b, owner, new_plan)
    if new_plan.price.currency != old_plan.price.currency:
        raise Refused(
            "A plan in another currency cannot replace this one.", code="currency_mismatch"
        )
    upgrade = catalog.is_upgrade(old_plan, new_plan)
    timing, effective_at = _timing(b, subscription, when, upgrade)
    slots = slots_at(b, subscription.id, effective_at, subscription.period_end)  # SUB-13
    require_room_for(b, owner, new_plan, catalog, slots)
    require_channels_in(b, owner, new_plan)  # CAT-7
    require_addon_prices(b, subscription, old_plan, catalog, new_plan)
    drop_scheduled_changes(b, subscription)
    change = ScheduledChange(
        subscription_id=subscription.id,
        plan_code=new_plan.code,
        catalog_version_id=version.id,
        timing=timing.value,
        effective_at=effective_at,
        status="scheduled",
        is_upgrade=upgrade,
        requested_by=member,
        requested_at=b.now,
    )
    b.session.add(change)
    b.session.flush()
    if not upgrade and b.terms.plan_changes.downgrade_approval:
        change.status = "awaiting_approval"
        return change
    _schedule(b, subscription, owner, change)
    return change


def _timing(
    b: Billing, subscription: Subscription, when: Timing | datetime | None, upgrade: bool
) -> tuple[Timing, datetime | None]:
    if when is None:
        timing = b.terms.default_timing(upgrade)
    elif isinstance(when, datetime):
        timing = Timing.DATE
    else:
        timing = Timing(when)
    if not b.terms.allows(upgrade, timing):
        allowed = ", ".join(t.value for t in b.terms.plan_changes.timings(upgrade))
        kind = "an upgrade" if upgrade else "a downgrade"
        raise Refused(
            f"{timing.value} is not allowed for {kind}; choose one of: {allowed}.",
            code="timing_not_allowed",
        )
    if timing is Timing.DATE:
        if not isinstance(when, datetime):
            raise InvalidInput("a change on a custom date needs the date")
        if when <= b.now:
            raise Refused(
                f"The custom date {format_instant(when)} is not in the future.",
                code="date_in_past",
            )
        return timing, when
    if timing is Timing.PERIOD_END:
        return timing, subscription.period_end
    return timing, None


def _schedule(
    b: Billing, subscription: Subscription, owner: Organization, change: ScheduledChange
) -> None:
    """Carry out an approved change now, or leave it for the clock."""
    timing = Timing(change.timing)
    if timing is Timing.IMMEDIATELY:
        apply_change(b, subscription, owner, change)
    elif timing is Timing.DATE:
        assert change.effective_at is not None
        key = f"apply_change:{change.id}"
        queue(b, "apply_change", key, owner.id, change.effective_at)
    # PERIOD_END: the renewal at the period's end applies it.


def cancel_scheduled_change(b: Billing, organization: Organization) -> ScheduledChange:
    """SUB-4: "Cancel scheduled plan"."""
    subscription = require_subscription(b, organization)
    change = upcoming_change(b, subscription)
    if change is None:
        raise Refused("There is no scheduled plan change to cancel.", code="no_scheduled_change")
    change.status, change.decided_at = "canceled", b.now
    cancel_queued(b, subscription.organization_id, "apply_change", f"apply_change:{change.id}")
    return change


def approve_change(b: Billing, organization: Organization) -> ScheduledChange:
    """SUB-4: an operator approves a downgrade that waits for approval."""
    subscription = require_subscription(b, organization)
    change = upcoming_change(b, subscription)
    if change is None or change.status != "awaiting_approval":
        raise Refused("There is no plan change awaiting approval.", code="nothing_to_approve")
    owner = billing_organization(b, organization)
    change.status, change.decided_at = "scheduled", b.now
    if change.timing == Timing.DATE.value and change.effective_at and change.effective_at <= b.now:
        change.timing = Timing.IMMEDIATELY.value
    if change.timing == Timing.PERIOD_END.value:
        change.effective_at = subscription.period_end
    _schedule(b, subscription, owner, change)
    return change


def apply_change(
    b: Billing, subscription: Subscription, owner: Organization, change: ScheduledChange
) -> None:
    """Switch the plan now (SUB-5): prorations on one invoice, limits at once."""
    old_catalog, old_plan = plan_of(b, subscription)
    catalog = b.catalog_of(change.catalog_version_id)
    new_plan = catalog.plan(change.plan_code)
    require_room_for(b, owner, new_plan, catalog, addon_slots(b, subscription.id))
    cycle = cycle_of(b, subscription, old_plan)
    period = cycle.period
    source = f"change:{change.id}"
    if old_plan.cadence == new_plan.cadence:
        lines = list(proration_lines(old_plan, new_plan, period, b.now, b.terms.proration))
        new = cycle.switch_plan(new_plan.code, new_plan.interval, b.now)
        _switch(b, subscription, change, new, was=cycle)
        apply_event(b, subscription, owner, PlanChanged(), notice_key=source)
        _invoice(b, owner, source, lines, period)
        return
    lines = _interval_change_lines(b, subscription, owner, old_catalog, old_plan, new_plan, period)
    # SCENARIOS "Plan changes": the old period ends now, a new one is anchored here.
    new_cycle = cycle.switch_plan(new_plan.code, new_plan.interval, b.now, new_plan.interval_count)
    new_period = _switch(b, subscription, change, new_cycle, was=cycle)
    cancel_queued(b, owner.id, "period_end")
    apply_event(b, subscription, owner, PlanChanged(period_end=new_period.end), notice_key=source)
    counters.start_period(b, owner.id, new_period.start, new_period.end)
    slots = billed_slots(catalog, new_cycle)  # a waiting slot removal applies now
    lines.extend(advance_lines(catalog, new_plan, slots, new_period))  # SUB-14, CAT-8
    _invoice(b, owner, source, lines, new_period)
    queue_period_end(b, subscription)


def _interval_change_lines(
    b: Billing,
    subscription: Subscription,
    owner: Organization,
    old_catalog: Catalog,
    old_plan: Plan,
    new_plan: Plan,
    period: Period,
) -> list[LineDraft]:
    lines: list[LineDraft] = []
    credit = unused_credit_line(old_plan, period, b.now, b.terms.proration)
    if credit is not None:
        lines.append(credit)
    lines.extend(_addon_credit_lines(b, subscription, old_catalog, old_plan, period))
    if b.now > period.start:
        used_period = Period(period.start, b.now, period.index)
        lines.extend(usage_lines(b, owner, old_catalog, old_plan, used_period))
    return lines


def require_addon_prices(
    b: Billing, subscription: Subscription, old_plan: Plan, catalog: Catalog, new_plan: Plan
) -> None:
    """SUB-14, CAT-8: a change to another interval needs a price of that interval for each
    add-on the subscription keeps slots of from the next billing date; refused naming the
    first add-on without one, nothing changed."""
    if old_plan.interval == new_plan.interval:
        return
    for row in sorted(rows.addon_rows(b.session, subscription.id), key=lambda r: r.addon_code):
        addon = catalog.addons.get(row.addon_code)
        if addon is None or row.quantity_next_period <= 0:
            continue
        if not addon.has_price_for(new_plan.interval):
            word, count = ADJECTIVES[new_plan.interval], row.quantity_next_period
            slots = "1 slot of it; remove it" if count == 1 else f"{count} slots of it; remove them"
            raise Refused(
                f"{addon.name} has no {word} price, so the subscription cannot move to "
                f"{new_plan.name} ({new_plan.interval.value}) while it keeps {slots} first "
                f"or choose a plan billed per {old_plan.interval.value}.",
                code="addon_interval_unpriced",
            )


def _addon_credit_lines(
    b: Billing, subscription: Subscription, old_catalog: Catalog, old_plan: Plan, period: Period
) -> list[LineDraft]:
    """SUB-14: the unused part of the slots in force, at the old interval's price."""
    lines = []
    for row in sorted(rows.addon_rows(b.session, subscription.id), key=lambda r: r.addon_code):
        addon = old_catalog.addons.get(row.addon_code)
        if addon is None or row.quantity <= 0:
            continue
        addon = priced_for(addon, old_plan)  # SUB-16: what a period of the old plan paid
        line = addon_unused_credit_line(
            addon, row.quantity, period, old_plan.interval, b.now, b.terms.proration
        )
        if line is not None:
            lines.append(line)
    return lines


def _switch(
    b: Billing, subscription: Subscription, change: ScheduledChange, cycle: Cycle, *, was: Cycle
) -> Period:
    """The subscription takes the change's plan (and catalog version) in `cycle`; the
    change is applied. The cycle's period is returned."""
    subscription.catalog_version_id = change.catalog_version_id
    change.status, change.decided_at = "applied", b.now
    return set_cycle(b, subscription, cycle, was=was)


def _invoice(
    b: Billing, owner: Organization, source: str, lines: list[LineDraft], period: Period
) -> None:
    if not lines:
        return
    invoice = issue_invoice(
        b, owner, source, lines, period_start=period.start, period_end=period.end
    )
    queue_collection(b, invoice, b.now)
