"""What each card of the billing tab shows (PRT-1), read through the services the API
uses, in one transaction: the subscription card (SUB-1, TRI-1; the API's own
`show_subscription`), usage bars with the USE-7 levels, the Session limit card (LIM-4),
the Plans section (CAT-2, SUB-4), the Add-ons & extras panel (ADD-1..3), the payment
method (PAY-2) and the invoices (INV-2, INV-3).

Who sees the tab (ACL-2): owners and billing admins, unless the platform turned the tab
off (`billing_tab: false`); a plain member, and a sub-account's members (billing is at
the organization level, SUB-2), get a page without billing data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from math import ceil, floor
from typing import Any

from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.subscription_view import show_subscription
from tabkeeper.db import corrections
from tabkeeper.db.tables import Invoice, Organization, PaymentMethod, Subscription
from tabkeeper.db.tables_corrections import CreditNote
from tabkeeper.domain.catalog import ADJECTIVES, AddOn, Catalog, MeterKind, Plan, Resource
from tabkeeper.domain.decisions import (
    SESSION_LIMIT_ALMOST_REACHED_WARNING,
    SESSION_LIMIT_REACHED_WARNING,
)
from tabkeeper.domain.levels import Level
from tabkeeper.domain.lifecycle import NO_SUBSCRIPTION_BADGE, State
from tabkeeper.domain.metering import quantity_string
from tabkeeper.domain.money import Money
from tabkeeper.domain.periods import Interval
from tabkeeper.domain.terms import Timing, TrialTerms
from tabkeeper.portal.offers import Upgrade, cheaper_alternative, upgrade_of
from tabkeeper.portal.plan_facts import plan_facts
from tabkeeper.portal.spend_card import SpendCard, spend_card
from tabkeeper.services.access import BILLING_ROLES, Caller
from tabkeeper.services.addons import AddonsPanel, list_addons
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_reports import credits_view, spend
from tabkeeper.services.payment_methods import default_payment_method
from tabkeeper.services.subscriptions import PAID_STATES, plan_of, subscription_of
from tabkeeper.services.usage import MeterReading, current_usage

BILLING_OFF = "Billing is handled outside this portal. Ask your administrator."
NO_BILLING_RIGHTS = (
    "The billing tab is available to your organization's owner and billing admins. "
    "Ask them about your plan and invoices."
)
SUB_ACCOUNT = "Billing is managed by your parent organization, whose subscription you share."
OWNER_ONLY = "Add-ons are Owner Only. Ask your organization owner to make the change."

LEVEL_TEXT = {
    Level.OK: "Under 50% used: you're in good shape",
    Level.WATCH: "50–80% used: keep an eye on it",
    Level.CONSIDER_UPGRADE: "Over 80% used: consider upgrading",
    Level.OVER: "Over 100% used: additional usage is billed",
}
"""USE-7, in words (the level never rests on colour alone)."""
LIMIT_WARNINGS = ((100, SESSION_LIMIT_REACHED_WARNING), (80, SESSION_LIMIT_ALMOST_REACHED_WARNING))
TIMING_LABELS = {
    Timing.IMMEDIATELY: "Immediately",
    Timing.PERIOD_END: "End of the current period",
    Timing.DATE: "On custom date",
}
RESOURCE_NOUNS = {
    Resource.AGENTS: ("agent", "agents"),
    Resource.SEATS: ("team seat", "team seats"),
    Resource.PHONE_NUMBERS: ("phone number", "phone numbers"),
    Resource.CHANNELS: ("channel", "channels"),
}


class BillingHidden(Exception):
    """ACL-2: this member gets no billing tab; `message` says why."""

    def __init__(self, message: str, status_code: int, organization: str) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.organization = organization


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at the tab."""

    organization: Organization
    member: str
    role: str

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


@dataclass(frozen=True, slots=True)
class MeterBar:
    """One meter's bar (USE-6, USE-7)."""

    meter: str
    label: str
    used: str
    included: str | None
    remaining: str | None
    percent: int
    """0..100 for the progress bar (capped at 100)."""
    level: str | None
    level_text: str | None


@dataclass(frozen=True, slots=True)
class LimitCard:
    """The Session limit card (LIM-4): paid plans only."""

    limit: int | None
    base_limit: int | None
    used: int
    warning: str | None

    @property
    def in_force(self) -> int | None:
        return self.limit if self.limit is not None else self.base_limit


@dataclass(frozen=True, slots=True)
class PlanOffer:
    """A plan of the Plans section and what its button does."""

    plan: Plan
    current: bool
    action: str
    """subscribe | change | demo | none"""
    timings: tuple[tuple[str, str], ...] = ()
    """(value, label) of the timings allowed for this change (SUB-4)."""

    @property
    def facts(self) -> tuple[str, ...]:
        """Limits and overage prices for the plan card (plan_facts.py)."""
        return plan_facts(self.plan)


@dataclass(frozen=True, slots=True)
class AddonRow:
    addon: AddOn
    quantity: int
    quantity_next_period: int
    adds: str
    """What one slot adds: "+1 agent"."""
    interval: Interval
    """The plan's interval, whose price the slots are billed at (CAT-8)."""

    @property
    def price(self) -> Money:
        return self.addon.price_for(self.interval)

    @property
    def monthly_cost(self) -> Money:
        """The slots' cost per period of the plan's interval (a year on a yearly plan)."""
        return self.price.times(self.quantity_next_period)


@dataclass(frozen=True, slots=True)
class AddonsView:
    """The Add-ons & extras panel (ADD-1..3)."""

    can_change: bool
    note: str | None
    active: tuple[AddonRow, ...] = ()
    available: tuple[AddonRow, ...] = ()
    total: Money | None = None
    interval: Interval = Interval.MONTH
    """The plan's interval: what the slots and the total are billed per (CAT-8)."""

    @property
    def per(self) -> str:
        """The interval as a word, "monthly" or "yearly", for the panel."""
        return ADJECTIVES[self.interval]


@dataclass(frozen=True, slots=True)
class CreditsCard:
    """AI credits (CRD-1, CRD-4): the balance, its price for a top-up, spend per feature."""

    balance: int
    included: int
    purchased: int
    credit_price: Money | None
    features: tuple[tuple[str, int, int], ...]
    """(feature, uses, credits) this billing period."""


@dataclass
class BillingPage:
    viewer: Viewer
    subscription: schemas.Subscription | None
    badge: str
    trial_days_left: int | None
    usage: list[MeterBar] = field(default_factory=list)
    limit: LimitCard | None = None
    plans: list[PlanOffer] = field(default_factory=list)
    addons: AddonsView | None = None
    card: PaymentMethod | None = None
    invoices: list[Invoice] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    """INV-5: the credit notes, newest first, with the invoice numbers they correct."""
    credited_invoices: dict[int, str] = field(default_factory=dict)
    credits: CreditsCard | None = None
    spend: SpendCard | None = None
    """The AI spend card (portal/spend_card.py; None: not shown)."""
    answered_only: bool = False
    """USE-4: the plan's "Answered only" tag."""
    overage_meters: frozenset[str] = frozenset()
    upgrade: Upgrade | None = None
    """The usage card's "Upgrade": the next plan up by rank (offers.py)."""
    alternative: Plan | None = None
    """The cancel dialog's cheaper plan (offers.py)."""
    billing: Any = None
    """INV-6, INV-7: the "Billing details" card (portal/billing_details.py BillingCard)."""

    @property
    def paid(self) -> bool:
        return self.subscription is not None and State(self.subscription.state) in PAID_STATES

    @property
    def can_cancel(self) -> bool:
        s = self.subscription
        return s is not None and s.state == State.ACTIVE and not s.cancel_at_period_end

    @property
    def can_resume(self) -> bool:
        s = self.subscription
        return s is not None and s.cancel_at_period_end and State(s.state) in PAID_STATES


def viewer_of(b: Billing, caller: Caller) -> Viewer:
    """The member, if they may see the billing tab (ACL-2); BillingHidden otherwise."""
    assert caller.organization_id is not None and caller.member and caller.role
    organization = b.session.get(Organization, caller.organization_id)
    assert organization is not None
    if not b.terms.billing_tab:
        raise BillingHidden(BILLING_OFF, 404, organization.name)
    if caller.role not in BILLING_ROLES:
        raise BillingHidden(NO_BILLING_RIGHTS, 403, organization.name)
    if organization.parent_id is not None:
        raise BillingHidden(SUB_ACCOUNT, 403, organization.name)
    return Viewer(organization, caller.member, caller.role)


def billing_page(b: Billing, caller: Caller) -> BillingPage:
    viewer = viewer_of(b, caller)
    row = subscription_of(b, viewer.organization, lock=False)
    if row is None or row.state == State.NONE:
        page = BillingPage(viewer, None, NO_SUBSCRIPTION_BADGE, None)
    else:
        shown = show_subscription(b, row)
        page = BillingPage(viewer, shown, shown.badge, _days_left(b.now, shown.trial_ends_at))
        catalog, plan = plan_of(b, row)
        readings = current_usage(b, viewer.organization, row, catalog, plan)
        page.usage = [_bar(catalog, reading) for reading in readings]
        page.answered_only, page.overage_meters = plan.answered_only, frozenset(plan.overage)
        if State(row.state) in (State.ACTIVE, State.PAST_DUE):
            page.limit = _limit_card(catalog, row, readings)
        page.addons = addons_view(b, viewer, row)
        page.credits = credits_card(b, viewer, catalog)
        page.spend = spend_card(b, viewer.organization, catalog)  # LIM-6, CRD-5..7
    page.plans = _plans(b, viewer.organization, row)
    page.card = default_payment_method(b, viewer.organization.id)
    _offers(b, page, row)
    page.invoices = list(
        b.session.scalars(
            select(Invoice)
            .where(Invoice.organization_id == viewer.organization.id, Invoice.status != "draft")
            .order_by(Invoice.issued_at.desc(), Invoice.id.desc())
            .limit(50)
        )
    )
    page.credit_notes = corrections.credit_notes_of_organization(b.session, viewer.organization.id)
    page.credited_invoices = corrections.invoice_numbers(
        b.session, [note.invoice_id for note in page.credit_notes]
    )
    from tabkeeper.portal.billing_details import billing_card  # imports this module

    page.billing = billing_card(b, viewer.organization)  # INV-6, INV-7
    return page


def _offers(b: Billing, page: BillingPage, row: Subscription | None) -> None:
    """The usage card's "Upgrade" and the cancel dialog's alternative (offers.py)."""
    _, catalog = b.current_catalog()
    current = None
    if row is not None and State(row.state) in PAID_STATES:
        current = plan_of(b, row)[1]
    trial = catalog.plans.get((b.terms.trial or TrialTerms()).plan)
    page.upgrade = upgrade_of(page.plans, current, trial, page.card is not None)
    if page.can_cancel:
        page.alternative = cheaper_alternative(page.plans, current, catalog)


def _days_left(now: datetime, ends_at: datetime | None) -> int | None:
    if ends_at is None:
        return None
    return max(0, ceil((ends_at - now) / timedelta(days=1)))


def meter_label(code: str) -> str:
    return code.replace("_", " ").capitalize()


def _bar(catalog: Catalog, reading: MeterReading) -> MeterBar:
    included = None if reading.included is None else Fraction(reading.included)
    percent = 0
    if included:
        percent = min(100, floor(reading.used * 100 / included))
    remaining = reading.remaining
    level = reading.level
    text = None if level is None else LEVEL_TEXT[level]
    if level is Level.OVER and not reading.has_overage:
        text = "Included usage used up"
    return MeterBar(
        meter=reading.meter,
        label=meter_label(reading.meter),
        used=quantity_string(reading.used),
        included=None if included is None else quantity_string(included),
        remaining=None if remaining is None else quantity_string(remaining),
        percent=percent,
        level=None if level is None else level.value,
        level_text=text,
    )


def _limit_card(
    catalog: Catalog, subscription: Subscription, readings: list[MeterReading]
) -> LimitCard:
    sessions = [r for r in readings if catalog.meters[r.meter].kind is MeterKind.BILLABLE_SESSIONS]
    base = sessions[0].included if sessions else None
    used = int(sessions[0].used) if sessions else 0
    card = LimitCard(subscription.session_limit, None if base is None else int(base), used, None)
    cap = card.in_force
    warning = None
    if cap:
        warning = next(
            (text for percent, text in LIMIT_WARNINGS if used * 100 >= cap * percent), None
        )
    return LimitCard(card.limit, card.base_limit, used, warning)


def _plans(b: Billing, organization: Organization, row: Subscription | None) -> list[PlanOffer]:
    _, catalog = b.current_catalog()
    # TRI-1: the trial plan is never offered, also where the platform has no trial
    # (`trial: null`): then the plan of the default trial's code.
    trial_plan = (b.terms.trial or TrialTerms()).plan
    state = State.NONE if row is None else State(row.state)
    current = None
    if row is not None and state in PAID_STATES:
        _, current = plan_of(b, row)
    changeable = state is State.ACTIVE and row is not None and not row.cancel_at_period_end
    offers = []
    plans = sorted(catalog.plans.values(), key=lambda p: (p.rank, p.price_per_day(), p.code))
    for plan in plans:
        if plan.code == trial_plan or not plan.is_visible_to(organization.code):
            continue
        is_current = current is not None and plan.code == current.code
        if plan.sales_led:
            offers.append(PlanOffer(plan, is_current, "demo"))
        elif current is None:
            offers.append(PlanOffer(plan, False, "subscribe"))
        elif is_current or not changeable:
            offers.append(PlanOffer(plan, is_current, "none"))
        else:
            upgrade = catalog.is_upgrade(current, plan)
            timings = tuple(
                (t.value, TIMING_LABELS[t]) for t in b.terms.plan_changes.timings(upgrade)
            )
            offers.append(PlanOffer(plan, False, "change", timings))
    return offers


def adds_text(addon: AddOn) -> str:
    parts = []
    for resource, count in addon.adds.items():
        one, many = RESOURCE_NOUNS.get(resource, (resource.value, resource.value))
        parts.append(f"+{count} {one if count == 1 else many}")
    return ", ".join(parts)


def _row(addon: AddOn, interval: Interval, quantity: int = 0, next_period: int = 0) -> AddonRow:
    return AddonRow(addon, quantity, next_period, adds_text(addon), interval)


def addons_view(b: Billing, viewer: Viewer, row: Subscription) -> AddonsView:
    """ACL-1: the owner changes add-ons; a billing admin sees why not. Add-ons need an
    active subscription (ADD-1)."""
    if not viewer.is_owner:
        return AddonsView(False, OWNER_ONLY)
    if row.state != State.ACTIVE or row.cancel_at_period_end:
        return AddonsView(False, "Add-ons can be bought on an active subscription.")
    panel: AddonsPanel = list_addons(b, viewer.organization)
    interval = panel.plan.interval
    active = tuple(
        _row(c.addon, interval, c.quantity, c.quantity_next_period) for c in panel.active
    )
    held = {card.addon.code for card in panel.active}
    available = tuple(_row(addon, interval) for addon in panel.available if addon.code not in held)
    return AddonsView(True, None, active, available, panel.interval_total, interval)


def credits_card(b: Billing, viewer: Viewer, catalog: Catalog) -> CreditsCard | None:
    """Shown where the catalog sells credits or has AI features that use them."""
    if catalog.credit_price is None and not catalog.ai_features:
        return None
    view = credits_view(b, viewer.organization)
    spent = spend(b, viewer.organization)
    price = None
    if catalog.credit_price is not None:
        price = Money.of_major(catalog.credit_price, b.terms.currency)
    features = tuple(
        (feature, used.uses, used.credits) for feature, used in sorted(spent.features.items())
    )
    return CreditsCard(view.balance, view.included, view.purchased, price, features)
