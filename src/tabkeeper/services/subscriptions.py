"""Trial, subscribe through checkout, cancel and resume, demo requests (SUB-2, SUB-3,
SUB-7, TRI-1..4, CAT-2).

Subscribing to a paid plan goes through the provider's checkout; the subscription starts
when the first payment succeeds (SUB-3). `quote_subscription` checks the request and
prices the first invoice; `complete_subscription` starts the subscription once the
checkout is paid. Between them the provider is called outside any transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tabkeeper.db import subscriptions as rows
from tabkeeper.db.tables import (
    CheckoutSession,
    DemoRequest,
    Organization,
    Subscription,
    SubscriptionAddon,
)
from tabkeeper.domain.anchors import anchor_day_for, first_cycle, first_period_lines
from tabkeeper.domain.catalog import Catalog, Plan
from tabkeeper.domain.cycles import Cycle
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.invoicing import LineDraft, addon_line, plan_line, settle
from tabkeeper.domain.lifecycle import (
    CancelRequested,
    CancelUndone,
    CheckoutPaid,
    State,
    TrialCanceled,
    TrialStarted,
)
from tabkeeper.domain.money import Money
from tabkeeper.domain.periods import Period
from tabkeeper.domain.slots import priced_for, sold_with
from tabkeeper.payments.provider import CardOnFile, ChargeResult
from tabkeeper.services import counters
from tabkeeper.services.capacity import require_room_for
from tabkeeper.services.context import Billing
from tabkeeper.services.discounts import adjusted_lines
from tabkeeper.services.first_invoices import (
    drop_draft,
    finalize_first_invoice,
    record_first_payment,
    write_draft,
)
from tabkeeper.services.invoices import mark_paid
from tabkeeper.services.lifecycle import apply_event
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.records import cancel_queued, moment_key, notify, queue

PAID_STATES = (State.ACTIVE, State.PAST_DUE, State.SUSPENDED)
REQUEST_RECEIVED = "Request received"


def billing_organization(b: Billing, organization: Organization) -> Organization:
    """SUB-2: a sub-account bills through its organization."""
    if organization.parent_id is None:
        return organization
    parent = b.session.get(Organization, organization.parent_id)
    assert parent is not None
    return parent


def subscription_of(
    b: Billing, organization: Organization, *, lock: bool = True
) -> Subscription | None:
    """The subscription of the organization (of its parent for a sub-account), locked for
    the transaction unless `lock` is False (a read, such as the real-time check)."""
    owner = billing_organization(b, organization)
    return rows.subscription_of(b.session, owner.id, lock=lock)


def plan_of(b: Billing, subscription: Subscription) -> tuple[Catalog, Plan]:
    """The subscription's catalog version and plan, at the price the platform negotiated
    for it when there is one (CAT-9: renewals and credits for unused time bill that)."""
    catalog = b.catalog_of(subscription.catalog_version_id)
    plan = catalog.plan(subscription.plan_code)
    if subscription.price_minor is not None and subscription.price_plan == plan.code:
        return catalog, negotiated(plan, Money(subscription.price_minor, plan.price.currency))
    return catalog, plan


def negotiated(plan: Plan, price: Money) -> Plan:
    """`plan` at `price` per interval (CAT-9), the rest of it as the catalog has it."""
    return plan if price == plan.price else replace(plan, price=price)


def require_billing_level(organization: Organization) -> None:
    """SUB-2: billing is at the organization level only; a sub-account shares it and
    cannot change it."""
    if organization.parent_id is not None:
        raise Refused(
            "Billing is at the organization level; a sub-account shares its subscription.",
            code="sub_account",
        )


def require_subscription(
    b: Billing, organization: Organization, *, lock: bool = True
) -> Subscription:
    """The organization's subscription, for a billing action (not from a sub-account);
    locked unless `lock` is False (a read)."""
    require_billing_level(organization)
    subscription = subscription_of(b, organization, lock=lock)
    if subscription is None:
        raise Refused("This organization has no subscription.", code="no_subscription")
    return subscription


def start_trial(b: Billing, organization: Organization) -> Subscription | None:
    """TRI-1: a new organization starts on the free trial of the platform's terms."""
    trial = b.terms.trial
    if trial is None or organization.parent_id is not None:
        return None
    if organization.trial_used:
        raise Refused("The free trial is available once per organization.", code="trial_used")
    if subscription_of(b, organization) is not None:
        raise Refused("This organization already has a subscription.", code="already_subscribed")
    version, catalog = b.current_catalog()
    plan = catalog.plan(trial.plan)
    ends_at = b.now + timedelta(days=trial.days)
    subscription = new_subscription(b, organization, plan.code, version.id, ends_at)
    subscription.trial_sessions = trial.sessions
    apply_event(b, subscription, organization, TrialStarted(trial.days))
    counters.start_period(b, organization.id, b.now, ends_at)
    for days_left in (7, 2):
        at = ends_at - timedelta(days=days_left)
        if at > b.now:
            kind = f"trial_days_{days_left}"
            queue(b, kind, f"{kind}:{subscription.id}", organization.id, at)
    return subscription


def new_subscription(
    b: Billing, organization: Organization, plan: str, version_id: int, period_end: datetime
) -> Subscription:
    """The organization's subscription row, made once (later subscriptions reuse it): in
    state none, anchored now; the lifecycle event that follows gives it its state."""
    subscription = Subscription(
        organization_id=organization.id,
        state=State.NONE.value,
        plan_code=plan,
        catalog_version_id=version_id,
        anchor=b.now,
        period_index=0,
        period_start=b.now,
        period_end=period_end,
        started_at=b.now,
    )
    b.session.add(subscription)
    b.session.flush()
    return subscription


@dataclass(frozen=True, slots=True)
class SubscriptionQuote:
    """A checked request to subscribe, priced: what the checkout must collect."""

    organization_id: int
    plan: str
    version_id: int
    addons: Mapping[str, int]
    lines: tuple[LineDraft, ...]
    amount_due_minor: int
    anchor_day: int | None = None
    """SUB-16: the day of the month the periods start on, or None (the start)."""
    trial_days: int | None = None
    """SUB-15: the plan's trial this subscription begins with (nothing is billed now)."""


def quote_subscription(
    b: Billing,
    organization: Organization,
    plan_code: str,
    addons: Mapping[str, int],
    anchor: int | None = None,
) -> SubscriptionQuote:
    """Check a request to subscribe and price its first invoice (billed in advance; the
    first period from the start to the billing anchor prorated, SUB-16). A plan with its
    own trial that the organization may still have (SUB-15) bills nothing now."""
    anchor_day = anchor_day_for(anchor, b.terms.billing)  # invalid_anchor before anything
    require_billing_level(organization)
    current = subscription_of(b, organization)
    if current is not None and State(current.state) in PAID_STATES:
        raise Refused(
            f"This organization is already subscribed ({current.plan_code}); "
            "change the plan instead.",
            code="already_subscribed",
        )
    version, catalog = b.current_catalog()
    plan = catalog.plan(plan_code)
    _require_subscribable(b, organization, plan)
    for code, quantity in addons.items():
        addon = catalog.addon(code)
        if quantity < 1:
            raise InvalidInput(f"addons.{code}: quantity must be at least 1")
        if not sold_with(addon, plan):
            raise Refused(
                f"{addon.name} is not available on {plan.name}.", code="addon_not_allowed"
            )
    require_room_for(b, organization, plan, catalog, addons)
    trial_days = plan_trial_days(current, plan)
    if trial_days is not None:
        return SubscriptionQuote(
            organization.id, plan.code, version.id, dict(addons), (), 0, anchor_day, trial_days
        )
    lines = first_lines(catalog, plan, addons, first_cycle(plan, b.now, anchor_day), b)
    shown = adjusted_lines(b, organization, lines, record=False)  # INV-6, INV-7
    draft = settle(b.terms.currency, shown, organization.account_credit_minor)
    return SubscriptionQuote(
        organization.id,
        plan.code,
        version.id,
        dict(addons),
        lines,
        draft.amount_due_minor,
        anchor_day,
    )


def plan_trial_days(current: Subscription | None, plan: Plan) -> int | None:
    """SUB-15: the days of `plan`'s own trial a subscription begins with, or None: the
    plan has none, or the organization's subscription `current` was paid once (only a
    subscription that never was, one on the platform's trial or an expired trial gets
    it; TRI-4's "no way back to a trial" holds for plan trials too)."""
    if plan.trial_days is None:
        return None
    if current is None or State(current.state) is State.EXPIRED:
        return plan.trial_days
    if State(current.state) is State.TRIALING and not current.trial_converts:
        return plan.trial_days
    return None


def first_lines(
    catalog: Catalog, plan: Plan, addons: Mapping[str, int], cycle: Cycle, b: Billing
) -> tuple[LineDraft, ...]:
    """The first invoice of a subscription whose first cycle is `cycle`, starting now: the
    ordinary advance lines, or, when the first period started before now (a billing
    anchor, SUB-16), those of its part from now on (domain/anchors.py)."""
    slots = [(priced_for(catalog.addon(code), plan), n) for code, n in addons.items()]
    partial = first_period_lines(plan, slots, cycle, b.now, b.terms.proration)
    if partial is not None:
        return partial
    return advance_lines(catalog, plan, addons, cycle.period)


def advance_lines(
    catalog: Catalog, plan: Plan, addons: Mapping[str, int], period: Period
) -> tuple[LineDraft, ...]:
    """What a period bills in advance (INV-1): the plan, then each add-on's slots at the
    price of the plan's interval (CAT-8)."""
    slots = [
        addon_line(priced_for(catalog.addon(code), plan), quantity, period, plan.interval)
        for code, quantity in sorted(addons.items())
        if quantity > 0
    ]
    return (plan_line(plan, period), *slots)


def _require_subscribable(b: Billing, organization: Organization, plan: Plan) -> None:
    if plan.sales_led:
        raise Refused(
            f"{plan.name} is sold by our team: book a demo instead.", code="sales_led_plan"
        )
    if not plan.is_visible_to(organization.code):
        raise Refused(
            f"{plan.name} is not available to this organization.", code="plan_not_available"
        )
    trial = b.terms.trial
    if trial is not None and plan.code == trial.plan:
        raise Refused("The trial plan cannot be subscribed to.", code="plan_not_available")


def record_checkout(
    b: Billing,
    quote: SubscriptionQuote,
    provider: str,
    checkout_id: str,
    url: str,
) -> CheckoutSession:
    session = CheckoutSession(
        organization_id=quote.organization_id,
        plan_code=quote.plan,
        catalog_version_id=quote.version_id,
        addons=dict(quote.addons),
        provider=provider,
        provider_checkout_id=checkout_id,
        url=url,
        amount_minor=quote.amount_due_minor,
        status="open",
        created_at=b.now,
        anchor_day=quote.anchor_day,
    )
    b.session.add(session)
    b.session.flush()
    if quote.amount_due_minor > 0:  # issue 12 item 7: the invoice before the charge
        organization = b.session.get(Organization, quote.organization_id)
        assert organization is not None
        write_draft(
            b,
            organization,
            f"checkout:{checkout_id}",
            quote.lines,
            attempt_key=f"checkout_{checkout_id}",
            provider=provider,
        )
    return session


def complete_subscription(
    b: Billing,
    checkout: CheckoutSession,
    card: CardOnFile | None,
    result: ChargeResult | None,
) -> Subscription | None:
    """The checkout came back: start the subscription when it was paid (SUB-3).

    A declined checkout is recorded and nothing else changes (None is returned).
    Completing the same checkout twice gives the same subscription.
    """
    organization = b.session.get(Organization, checkout.organization_id)
    assert organization is not None
    if checkout.status == "completed":
        return subscription_of(b, organization)
    if result is not None and not result.succeeded:
        checkout.status, checkout.completed_at = "declined", b.now
        drop_draft(b, f"checkout:{checkout.provider_checkout_id}")
        return None
    checkout.status, checkout.completed_at = "completed", b.now
    if card is not None:
        save_payment_method(b, organization, card)
    catalog = b.catalog_of(checkout.catalog_version_id)
    plan = catalog.plan(checkout.plan_code)
    subscription = subscription_of(b, organization)
    if subscription is not None and State(subscription.state) in PAID_STATES:
        return _credit_extra_checkout(b, checkout, organization, subscription, result)
    addons: dict[str, int] = {str(k): int(v) for k, v in checkout.addons.items()}
    subscription, period = start_paid_subscription(
        b, organization, subscription, checkout.catalog_version_id, plan, addons,
        anchor_day=checkout.anchor_day,
    )  # fmt: skip
    lines = first_lines(catalog, plan, addons, cycle_of(b, subscription, plan), b)
    source_key = f"checkout:{checkout.provider_checkout_id}"
    invoice = finalize_first_invoice(
        b, organization, source_key, lines, period_start=b.now, period_end=period.end
    )
    if result is not None:
        owed = invoice.status == "open"
        if owed:
            mark_paid(b, invoice)
        key = f"checkout_{checkout.provider_checkout_id}"
        record_first_payment(b, invoice, key, checkout.provider, result.reference, insert=owed)
    queue_period_end(b, subscription)
    return subscription


def start_paid_subscription(
    b: Billing,
    organization: Organization,
    subscription: Subscription | None,
    version_id: int,
    plan: Plan,
    addons: Mapping[str, int],
    *,
    anchor_day: int | None = None,
) -> tuple[Subscription, Period]:
    """The first payment is in (SUB-3), or the platform assigned the plan (CAT-9): the
    subscription (`subscription`, reused, or a new one) starts a period on `plan` now,
    anchored now (or on `anchor_day`, SUB-16: the first period then may have started
    before now, and the subscription's period_start is now), with `addons`, at the catalog
    price collected by card (an assignment then sets its own). Returns it and its first
    (whole) period; the caller issues the invoice."""
    if subscription is None:
        subscription = new_subscription(b, organization, plan.code, version_id, b.now)
    rows.delete_addons(b.session, subscription.id)
    period = set_cycle(b, subscription, first_cycle(plan, b.now, anchor_day, addons))
    subscription.period_start = b.now  # the start, also inside a first, partial period
    subscription.trial_converts = False
    period_end = period.end
    subscription.catalog_version_id = version_id
    subscription.price_minor, subscription.price_plan, subscription.collection = None, None, "card"
    subscription.started_at, subscription.ended_at = b.now, None
    subscription.trial_sessions = None
    subscription.session_limit = None
    for kind in ("trial_end", "trial_days_7", "trial_days_2"):
        cancel_queued(b, organization.id, kind)
    apply_event(b, subscription, organization, CheckoutPaid(period_end=period_end))
    counters.start_period(b, organization.id, b.now, period_end)
    subscription.trial_ends_at = None
    return subscription, period


def _credit_extra_checkout(
    b: Billing,
    checkout: CheckoutSession,
    organization: Organization,
    subscription: Subscription,
    result: ChargeResult | None,
) -> Subscription:
    """A second checkout paid while already subscribed (two tabs, two clicks): the money
    is not lost and not used twice; it becomes account credit, applied to the next
    invoices (SUB-5), and the checkout is closed."""
    checkout.status, checkout.completed_at = "credited", b.now
    drop_draft(b, f"checkout:{checkout.provider_checkout_id}")
    if result is not None and result.succeeded:
        organization.account_credit_minor += result.amount.minor
        notify(
            b,
            organization.id,
            "payment.credited",
            f"checkout:{checkout.provider_checkout_id}",
            {"amount_minor": result.amount.minor, "reason": "already_subscribed"},
        )
    return subscription


def cycle_of(b: Billing, subscription: Subscription, plan: Plan) -> Cycle:
    """The billing cycle stored on `subscription` (its plan is `plan`), with its add-on
    slots now and from the next billing date."""
    found = rows.addon_rows(b.session, subscription.id)
    return Cycle(
        plan.code,
        plan.interval,
        subscription.anchor,
        subscription.period_index,
        {row.addon_code: row.quantity for row in found},
        {row.addon_code: row.quantity_next_period for row in found},
        plan.interval_count,
    )


def set_cycle(
    b: Billing, subscription: Subscription, cycle: Cycle, *, was: Cycle | None = None
) -> Period:
    """Write `cycle` to the subscription (plan, anchor, period index and start, add-on
    slot rows): the one place these change. `was`, the cycle read from it (cycle_of):
    when the slots are the same, the add-on rows are not read again. Its period is
    returned: its end goes to the lifecycle event that starts it (domain/lifecycle.py)."""
    period = cycle.period
    subscription.plan_code = cycle.plan
    subscription.anchor, subscription.period_index = cycle.anchor, cycle.index
    subscription.period_start = period.start
    if was is not None and (was.slots, was.slots_next) == (cycle.slots, cycle.slots_next):
        return period
    held = {row.addon_code: row for row in rows.addon_rows(b.session, subscription.id)}
    for code in sorted(set(held) | set(cycle.slots) | set(cycle.slots_next)):
        now, later = cycle.slots.get(code, 0), cycle.slots_next.get(code, 0)
        row = held.get(code)
        if row is None and (now or later):
            b.session.add(
                SubscriptionAddon(
                    subscription_id=subscription.id,
                    addon_code=code,
                    quantity=now,
                    quantity_next_period=later,
                )
            )
        elif row is not None and (row.quantity, row.quantity_next_period) != (now, later):
            row.quantity, row.quantity_next_period = now, later
    return period


def billed_slots(catalog: Catalog, cycle: Cycle) -> dict[str, int]:
    """The slots a period of `cycle` bills in advance: those in force, of add-ons the
    catalog still has (INV-1)."""
    return {code: n for code, n in cycle.slots.items() if n > 0 and code in catalog.addons}


def queue_period_end(b: Billing, subscription: Subscription) -> None:
    """The clock renews (or ends) the subscription at its period's end."""
    anchor, index = moment_key(subscription.anchor), subscription.period_index
    key = f"period_end:{subscription.id}:{anchor}:{index}"
    queue(b, "period_end", key, subscription.organization_id, subscription.period_end)


def cancel(b: Billing, organization: Organization) -> Subscription:
    """SUB-7: cancel at the period's end; usable until then; a scheduled change is dropped.
    SUB-15: in a plan's own trial it ends at once, with nothing charged."""
    subscription = require_subscription(b, organization)
    owner = billing_organization(b, organization)
    if subscription.state == State.TRIALING and subscription.trial_converts:
        _, plan = plan_of(b, subscription)
        apply_event(b, subscription, owner, TrialCanceled(plan.retention_days))
        for kind in ("trial_convert", "trial_ending"):
            cancel_queued(b, owner.id, kind)
        return subscription
    if subscription.cancel_at_period_end:
        raise Refused(
            "The subscription is already canceled at the period's end.", code="already_canceled"
        )
    apply_event(b, subscription, owner, CancelRequested())
    drop_scheduled_changes(b, subscription)
    return subscription


def resume(b: Billing, organization: Organization) -> Subscription:
    """SUB-7: undo a cancellation before the period ends."""
    subscription = require_subscription(b, organization)
    owner = billing_organization(b, organization)
    if State(subscription.state) in (State.CANCELED, State.EXPIRED):
        raise Refused(
            "The subscription has already ended; subscribe again to continue.",
            code="subscription_ended",
        )
    if not subscription.cancel_at_period_end:
        raise Refused(
            "The subscription is not canceled; there is nothing to resume.", code="not_canceled"
        )
    apply_event(b, subscription, owner, CancelUndone())
    return subscription


def drop_scheduled_changes(b: Billing, subscription: Subscription) -> None:
    rows.cancel_changes(b.session, subscription.id, ("awaiting_approval", "scheduled"), b.now)
    cancel_queued(b, subscription.organization_id, "apply_change")


def request_demo(b: Billing, organization: Organization, plan_code: str, member: str | None) -> str:
    """CAT-2: asking for a sales-led plan creates a request the platform sees."""
    _, catalog = b.current_catalog()
    plan = catalog.plan(plan_code)
    if not plan.sales_led:
        raise Refused(f"{plan.name} can be subscribed to directly.", code="not_sales_led")
    request = DemoRequest(
        organization_id=organization.id, plan_code=plan.code, member=member, created_at=b.now
    )
    b.session.add(request)
    b.session.flush()
    notify(b, organization.id, "demo.requested", f"demo:{request.id}", {"plan": plan.code})
    return REQUEST_RECEIVED
