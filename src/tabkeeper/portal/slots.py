"""The Add Slots and Remove Slots dialogs of the Add-ons & extras panel (ADD-2, ADD-3):
what the owner sees before confirming.

Adding shows the service's own quote (services.addons.quote_slots: price per slot, the
new monthly total, the prorated amount due now). Removing shows what is held from the
next billing date, what is removed, the capacity and the monthly cost after; the
removal's own checks (below what is in use) run when it is confirmed
(services.addons.remove_slots), so the preview never promises what the removal refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from tabkeeper.db.tables import SubscriptionAddon
from tabkeeper.domain.catalog import AddOn, Resource
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.lifecycle import State
from tabkeeper.domain.money import Money
from tabkeeper.domain.slots import SlotCount, interval_total, slot_quantity
from tabkeeper.portal.views import RESOURCE_NOUNS, Viewer
from tabkeeper.services.addons import SlotsQuote, quote_slots
from tabkeeper.services.capacity import allowed
from tabkeeper.services.context import Billing
from tabkeeper.services.subscriptions import plan_of, require_subscription

DEFAULT_QUANTITY = 1


@dataclass(frozen=True, slots=True)
class RemovalPreview:
    """ADD-3: what removing `quantity` slots leaves from the next billing date."""

    addon: AddOn
    held: int
    """Slots from the next billing date, before the removal."""
    quantity: int
    capacity: tuple[str, ...]
    """The capacity after, in words: "2 agents"."""
    monthly_total: Money
    """Plan + add-ons from the next billing date, after the removal."""

    @property
    def left(self) -> int:
        return self.held - self.quantity


def parse_quantity(text: str | None) -> int | str:
    """A quantity field as a number when it is one, else the text (the services refuse
    it with their own message)."""
    if text is None or not text.strip():
        return DEFAULT_QUANTITY
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() and len(stripped) < 10 else stripped


def add_preview(b: Billing, viewer: Viewer, addon: str, quantity: int | str) -> SlotsQuote:
    return quote_slots(b, viewer.organization, addon, slot_quantity(quantity), viewer.member)


def removal_preview(b: Billing, viewer: Viewer, code: str, quantity: int | str) -> RemovalPreview:
    subscription = require_subscription(b, viewer.organization)
    if subscription.state != State.ACTIVE:
        raise Refused("Add-on slots can be removed on an active subscription.", code="not_active")
    catalog, plan = plan_of(b, subscription)
    addon = catalog.addon(code)
    rows = {
        row.addon_code: row
        for row in b.session.scalars(
            select(SubscriptionAddon).where(SubscriptionAddon.subscription_id == subscription.id)
        )
    }
    row = rows.get(code)
    held = SlotCount() if row is None else SlotCount(row.quantity, row.quantity_next_period)
    after = held.removed(slot_quantity(quantity), addon.name)
    slots = {c: r.quantity_next_period for c, r in rows.items()}
    slots[code] = after.next_period
    limits = allowed(plan, catalog, slots)
    capacity = tuple(
        _count(resource, limits.get(resource)) for resource in addon.adds if resource in limits
    )
    return RemovalPreview(
        addon,
        held.next_period,
        held.next_period - after.next_period,
        capacity,
        interval_total(catalog, plan, slots),
    )


def _count(resource: Resource, limit: int | None) -> str:
    one, many = RESOURCE_NOUNS.get(resource, (resource.value, resource.value))
    if limit is None:
        return f"unlimited {many}"
    return f"{limit} {one if limit == 1 else many}"
