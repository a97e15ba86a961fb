"""Add-on slots of a subscription: the panel, a quote, add, remove (SPEC ADD-1..4, CAT-5,
INV-1).

- `list_addons`: the Add-ons panel (PRT-1): the active add-on cards (price per slot, slots
  now and from the next billing date, what a slot adds), the add-ons the plan allows, and
  the total the next billing date bills in advance.
- `quote_slots`: what the billing tab shows before the owner confirms (ADD-2): price per
  slot, the new interval total (plan + every add-on, from the next billing date, after the
  change) and the prorated amount due now. It makes every check `add_slots` makes.
- `add_slots` (ADD-2): the slots are in force at once (capacity too) and billed from the
  next period on; the prorated part of the current period (quantity × price × remaining
  fraction, rounded once, in the platform's proration mode) is its own invoice at once
  (INV-1), collected by the billing clock now. In proration `none`, or with nothing of the
  period left, there is no invoice.
- `remove_slots` (ADD-3): fewer slots from the next billing date; nothing is refunded and
  nothing is invoiced. Refused when the capacity left from then on would be below what is
  in use, saying how many of what to archive, delete, remove or release first.

Checks, each refusing with nothing changed: 1 to 1,000 slots a request
(`invalid_quantity`); `member`, when given, must be an owner of the organization (ADD-1,
ACL-1: `forbidden`; None is the platform, or an entry point that checked the caller);
billing is at the organization level (`sub_account`); a subscription (`no_subscription`)
that is active (`not_active`: not trialing, past due, suspended or ended), not canceled
at the period's end (`cancel_pending`) and not waiting for its renewal (`renewal_due`); a
known add-on (`unknown_addon`) that the plan allows (CAT-5: `addon_not_allowed`); at most
1,000 slots of an add-on (`too_many_slots`); a removal of at most the slots left from the
next billing date (`not_enough_slots`).

Add-ons come from the subscription's catalog version, as its renewals bill them (CAT-6).
An add-on's invoice source is `slots:<subscription>:<add-on>:<n>`, n counting that
add-on's slot invoices of the subscription: the subscription row is locked while it is
counted, so two purchases never share a number and one purchase never makes two invoices
(INV-4); the API's Idempotency-Key keeps a retried request from buying twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tabkeeper.db import invoices as invoice_rows
from tabkeeper.db import subscriptions as subscription_rows
from tabkeeper.db.tables import Invoice, Organization, Subscription, SubscriptionAddon
from tabkeeper.domain.catalog import AddOn, Catalog, Plan
from tabkeeper.domain.errors import Forbidden, Refused
from tabkeeper.domain.invoicing import LineDraft, addon_proration_line, settle
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.money import Money
from tabkeeper.domain.periods import Interval, Period, boundary
from tabkeeper.domain.slots import (
    SLOTS_ADDED_MESSAGE,
    SLOTS_REMOVED_MESSAGE,
    SlotCount,
    capacity_shortfall,
    interval_total,
    priced_for,
    require_allowed_on,
    shortfall_message,
    slot_quantity,
    sold_with,
)
from tabkeeper.services.capacity import allowed, in_use, waiting_plan
from tabkeeper.services.context import Billing
from tabkeeper.services.discounts import adjusted_lines
from tabkeeper.services.invoices import issue_invoice, queue_collection
from tabkeeper.services.organizations import current_member
from tabkeeper.services.subscriptions import (
    billing_organization,
    plan_of,
    require_subscription,
)


@dataclass(frozen=True, slots=True)
class AddonCard:
    """An add-on of the subscription (an "Active add-on" card) or one the plan allows."""

    addon: AddOn
    quantity: int = 0
    """Slots in force now."""
    quantity_next_period: int = 0
    """Slots from the next billing date (fewer after a removal)."""


@dataclass(frozen=True, slots=True)
class AddonsPanel:
    """The Add-ons panel of an organization (PRT-1)."""

    plan: Plan
    active: tuple[AddonCard, ...]
    available: tuple[AddOn, ...]
    interval_total: Money
    """What the next billing date bills in advance: plan + add-on slots."""
    next_billing_at: datetime | None


@dataclass(frozen=True, slots=True)
class SlotsQuote:
    """ADD-2: what adding `quantity` slots costs, before the owner confirms."""

    addon: AddOn
    quantity: int
    slots_after: int
    """Slots in force once added."""
    interval_total_before: Money
    interval_total_after: Money
    """The new interval total: plan + every add-on from the next billing date, after."""
    prorated: Money
    """The charge now: quantity × price per slot × the part of the period left, rounded."""
    amount_due: Money
    """`prorated` less the organization's account credit (never below zero)."""
    period_end: datetime
    line: LineDraft | None
    price_per_slot: Money
    """CAT-8: the add-on's price per slot for the plan's interval."""
    interval: Interval
    """The plan's interval: what `price_per_slot` and the interval totals are per."""


@dataclass(frozen=True, slots=True)
class SlotsChanged:
    """The outcome of adding or removing slots."""

    message: str
    addon: AddOn
    quantity: int
    """Slots in force now."""
    quantity_next_period: int
    interval_total: Money
    """What the next billing date bills in advance, after the change."""
    effective_at: datetime
    """Now for added slots; the next billing date for removed ones."""
    invoice: Invoice | None


@dataclass
class _Slots:
    """What one add-on request works on, loaded and checked."""

    subscription: Subscription
    owner: Organization
    catalog: Catalog
    plan: Plan
    addon: AddOn
    rows: dict[str, SubscriptionAddon]

    @property
    def count(self) -> SlotCount:
        row = self.rows.get(self.addon.code)
        return SlotCount() if row is None else SlotCount(row.quantity, row.quantity_next_period)

    def next_period(self, count: SlotCount | None = None) -> dict[str, int]:
        """Slots by add-on from the next billing date, with `count` for this add-on."""
        slots = {code: row.quantity_next_period for code, row in self.rows.items()}
        if count is not None:
            slots[self.addon.code] = count.next_period
        return slots

    @property
    def period(self) -> Period:
        """The whole current period, what slots are prorated over: a first period begun
        after its start (a billing anchor, SUB-16) counts from the anchor's grid."""
        s, plan = self.subscription, self.plan
        start = boundary(s.anchor, plan.interval, s.period_index, plan.interval_count)
        return Period(min(start, s.period_start), s.period_end, s.period_index)


def list_addons(b: Billing, organization: Organization) -> AddonsPanel:
    """The Add-ons panel: active add-on cards, the add-ons the plan allows, the total."""
    subscription = require_subscription(b, organization, lock=False)
    catalog, plan = plan_of(b, subscription)
    rows = _rows(b, subscription)
    active = tuple(
        AddonCard(priced_for(catalog.addons[code], plan), row.quantity, row.quantity_next_period)
        for code, row in sorted(rows.items())
        if row.quantity > 0 and code in catalog.addons
    )
    available = tuple(
        priced_for(addon, plan)
        for _, addon in sorted(catalog.addons.items())
        if sold_with(addon, plan)
    )
    running = State(subscription.state) in (State.ACTIVE, State.PAST_DUE, State.SUSPENDED)
    next_billing_at = (
        subscription.period_end if running and not subscription.cancel_at_period_end else None
    )
    total = interval_total(
        catalog, plan, {code: row.quantity_next_period for code, row in rows.items()}
    )
    return AddonsPanel(plan, active, available, total, next_billing_at)


def quote_slots(
    b: Billing,
    organization: Organization,
    addon_code: str,
    quantity: int,
    member: str | None = None,
) -> SlotsQuote:
    """ADD-2: price `quantity` more slots of `addon_code` without buying them."""
    quantity = slot_quantity(quantity)
    slots = _load(b, organization, addon_code, member, adding=True)
    return _quote(b, slots, quantity, slots.count.added(quantity, slots.addon.name))


def add_slots(
    b: Billing,
    organization: Organization,
    addon_code: str,
    quantity: int,
    member: str | None = None,
) -> SlotsChanged:
    """ADD-2: `quantity` more slots, in force at once; the prorated part of the period
    on its own invoice, queued for collection now."""
    quantity = slot_quantity(quantity)
    slots = _load(b, organization, addon_code, member, adding=True)
    after = slots.count.added(quantity, slots.addon.name)
    quote = _quote(b, slots, quantity, after)
    invoice = None
    if quote.line is not None:
        invoice = issue_invoice(
            b,
            slots.owner,
            _source_key(b, slots),
            [quote.line],
            period_start=b.now,
            period_end=quote.period_end,
        )
        queue_collection(b, invoice, b.now)
    _store(b, slots, after)
    return SlotsChanged(
        SLOTS_ADDED_MESSAGE,
        slots.addon,
        after.now,
        after.next_period,
        quote.interval_total_after,
        b.now,
        invoice,
    )


def remove_slots(
    b: Billing,
    organization: Organization,
    addon_code: str,
    quantity: int,
    member: str | None = None,
) -> SlotsChanged:
    """ADD-3: `quantity` fewer slots from the next billing date, refunding nothing;
    refused when the capacity left then would be below what is in use."""
    quantity = slot_quantity(quantity)
    slots = _load(b, organization, addon_code, member, adding=False)
    after = slots.count.removed(quantity, slots.addon.name)
    limits = allowed(slots.plan, slots.catalog, slots.next_period(after))
    use = in_use(b, slots.owner)
    over = capacity_shortfall(use, limits, slots.addon.adds)
    if over:
        raise Refused(shortfall_message(slots.plan.name, limits, over), code="capacity_in_use")
    waiting = waiting_plan(b, slots.subscription.id)  # SUB-13: a change waits to apply
    if waiting is not None:
        limits = allowed(waiting[0], waiting[1], slots.next_period(after))
        over = capacity_shortfall(use, limits, slots.addon.adds)
        if over:
            message = shortfall_message(waiting[0].name, limits, over)
            raise Refused(message, code="capacity_in_use")
    _store(b, slots, after)
    return SlotsChanged(
        SLOTS_REMOVED_MESSAGE,
        slots.addon,
        after.now,
        after.next_period,
        interval_total(slots.catalog, slots.plan, slots.next_period(after)),
        slots.subscription.period_end,
        None,
    )


# -- helpers -------------------------------------------------------------------------------


def _load(
    b: Billing, organization: Organization, addon_code: str, member: str | None, *, adding: bool
) -> _Slots:
    """The subscription (locked), plan, add-on and slot rows of a request, checked."""
    subscription = require_subscription(b, organization)
    _require_owner(b, organization, member)
    state = State(subscription.state)
    if state is not State.ACTIVE:
        raise Refused(
            "Add-on slots can be bought and removed on an active paid subscription; this one "
            f"is {state.value.replace('_', ' ')}.",
            code="not_active",
        )
    if subscription.cancel_at_period_end:
        raise Refused(
            "The subscription is canceled at the period's end; resume it to change its "
            "add-on slots.",
            code="cancel_pending",
        )
    if b.now >= subscription.period_end:
        raise Refused(
            "The subscription's period has ended and its renewal is due; try again once it "
            "has renewed.",
            code="renewal_due",
        )
    catalog, plan = plan_of(b, subscription)
    addon = catalog.addon(addon_code)
    if adding:
        require_allowed_on(catalog, addon, plan)
    owner = billing_organization(b, organization)
    slots_addon = priced_for(addon, plan)  # SUB-16: per period of the plan
    return _Slots(subscription, owner, catalog, plan, slots_addon, _rows(b, subscription))


def _require_owner(b: Billing, organization: Organization, member: str | None) -> None:
    """ADD-1, ACL-1: add-on slots are the owner's alone."""
    if member is None:
        return
    found = current_member(b, organization, member)
    if found is None or found.role != "owner":
        raise Forbidden("Only the organization's owner may add or remove add-on slots.")


def _rows(b: Billing, subscription: Subscription) -> dict[str, SubscriptionAddon]:
    return {row.addon_code: row for row in subscription_rows.addon_rows(b.session, subscription.id)}


def _quote(b: Billing, slots: _Slots, quantity: int, after: SlotCount) -> SlotsQuote:
    line = addon_proration_line(
        slots.addon, quantity, slots.period, slots.plan.interval, b.now, b.terms.proration
    )
    currency = slots.plan.price.currency
    shown = [] if line is None else adjusted_lines(b, slots.owner, [line], record=False)
    draft = None if line is None else settle(currency, shown, slots.owner.account_credit_minor)
    return SlotsQuote(
        addon=slots.addon,
        quantity=quantity,
        slots_after=after.now,
        interval_total_before=interval_total(slots.catalog, slots.plan, slots.next_period()),
        interval_total_after=interval_total(slots.catalog, slots.plan, slots.next_period(after)),
        prorated=Money(0 if line is None else line.amount_minor, currency),
        amount_due=Money(0 if draft is None else draft.amount_due_minor, currency),
        period_end=slots.subscription.period_end,
        line=line,
        price_per_slot=slots.addon.price_for(slots.plan.interval),
        interval=slots.plan.interval,
    )


def _store(b: Billing, slots: _Slots, count: SlotCount) -> None:
    row = slots.rows.get(slots.addon.code)
    if row is None:
        row = SubscriptionAddon(subscription_id=slots.subscription.id, addon_code=slots.addon.code)
        b.session.add(row)
    row.quantity, row.quantity_next_period = count.now, count.next_period
    b.session.flush()


def _source_key(b: Billing, slots: _Slots) -> str:
    """`slots:<subscription>:<add-on>:<n>`: the n-th slot invoice of this add-on on this
    subscription (the subscription row is locked, so n is never taken twice)."""
    prefix = f"slots:{slots.subscription.id}:{slots.addon.code}:"
    issued = invoice_rows.count_by_source_prefix(b.session, b.platform.id, prefix)
    return f"{prefix}{issued + 1}"
