"""Capacity in use and capacity allowed: agents, seats, phone numbers, connected channels
(CAT-1, CAT-7, SUB-6, ADD-4).

Sub-accounts share their organization's limits (SUB-2), so what is in use is counted
over the whole family. What is allowed is the plan's limit plus what add-on slots add.
While a reduction waits (SUB-13: a downgrade later, a slot removal at the next billing
date) `scheduled_limits` says what it will leave; the check refuses additions beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tabkeeper.db import channels, organizations, subscriptions
from tabkeeper.db.tables import Organization
from tabkeeper.domain.catalog import Catalog, Plan, Resource
from tabkeeper.domain.decisions import ScheduledLimit
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.slots import sold_with
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import family_ids

COUNTED = (Resource.AGENTS, Resource.SEATS, Resource.PHONE_NUMBERS, Resource.CHANNELS)
_NOUNS = {
    Resource.AGENTS: ("agent", "agents", "archive or delete"),
    Resource.SEATS: ("seat", "seats", "remove"),
    Resource.PHONE_NUMBERS: ("phone number", "phone numbers", "release"),
    Resource.CHANNELS: ("channel", "channels", "disconnect"),
}


def in_use(b: Billing, organization: Organization) -> dict[Resource, int]:
    """What the organization and its sub-accounts use now. Team seats are the members
    besides the account's holder: a plan with `seats: 0` is the owner alone, with no team
    (ADD-4), as the example of SCENARIOS.md has three members on a two-seat plan."""
    ids = family_ids(b, organization)
    agents, members, numbers = organizations.in_use(b.session, ids)
    return {
        Resource.AGENTS: agents,
        Resource.SEATS: max(members - 1, 0),
        Resource.PHONE_NUMBERS: numbers,
        Resource.CHANNELS: channels.count_connected(b.session, ids),
    }


def addon_slots(b: Billing, subscription_id: int | None) -> dict[str, int]:
    """Add-on slots the subscription holds now, by add-on code."""
    if subscription_id is None:
        return {}
    rows = subscriptions.addon_slots(b.session, subscription_id)
    return {code: quantity for code, quantity in rows if quantity > 0}


def allowed(plan: Plan, catalog: Catalog, slots: Mapping[str, int]) -> dict[Resource, int | None]:
    """The capacity a plan with these add-on slots allows (None: unlimited)."""
    result: dict[Resource, int | None] = {}
    for resource in COUNTED:
        limit = plan.limit(resource)
        if limit is not None:
            for code, quantity in slots.items():
                addon = catalog.addons.get(code)
                if addon is not None:
                    limit += addon.adds.get(resource, 0) * quantity
        result[resource] = limit
    return result


def purchasable(plan: Plan, catalog: Catalog, resource: Resource) -> bool:
    """Whether an add-on that adds `resource` can be bought on this plan."""
    return any(
        addon.adds.get(resource, 0) > 0 and sold_with(addon, plan)
        for addon in catalog.addons.values()
    )


def require_room_for(
    b: Billing,
    organization: Organization,
    plan: Plan,
    catalog: Catalog,
    slots: Mapping[str, int],
) -> None:
    """SUB-6: refuse a plan whose capacity is below what is in use, with the counts."""
    use = in_use(b, organization)
    limits = allowed(plan, catalog, slots)
    over = {
        resource: use[resource] - limit
        for resource, limit in limits.items()
        if limit is not None and use[resource] > limit
    }
    if not over:
        return
    parts = []
    for resource, extra in over.items():
        one, many, verb = _NOUNS[resource]
        parts.append(f"{verb} {extra} {one if extra == 1 else many}")
    allows = ", ".join(
        f"{limits[r]} {_NOUNS[r][0] if limits[r] == 1 else _NOUNS[r][1]}" for r in over
    )
    todo = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    raise Refused(
        f"{plan.name} allows {allows}; {todo} first.",
        code="capacity_in_use",
    )


# -- SUB-13: what a waiting reduction will leave ------------------------------------------

WAITING = ("awaiting_approval", "scheduled")
"""The statuses of a plan change that has not applied yet (services/changes.py)."""


def _day(moment: datetime | None) -> str:
    return "approval" if moment is None else moment.date().isoformat()


def _removal_text(
    catalog: Catalog, removed: Mapping[str, int], at: datetime, lead: str = "The"
) -> str:
    parts = []
    for code, quantity in sorted(removed.items()):
        addon = catalog.addons.get(code)
        name = addon.name if addon is not None else code
        parts.append(f"{quantity} {name} slot{'' if quantity == 1 else 's'}")
    return f"{lead} removal of {' and '.join(parts)} on {_day(at)}"


def scheduled_limits(
    b: Billing,
    subscription_id: int,
    period_end: datetime,
    plan: Plan,
    catalog: Catalog,
) -> tuple[dict[str, int], dict[Resource, ScheduledLimit]]:
    """SUB-13: the add-on slots held now, and per resource the lowest capacity a waiting
    reduction will leave, when below today's: a plan change scheduled for the period's
    end, a custom date or awaiting approval (on the plan it names), slots removed from
    the next billing date, or both (the tighter wins, naming the change that makes it)."""
    rows = subscriptions.addon_rows(b.session, subscription_id)
    now_slots = {row.addon_code: row.quantity for row in rows if row.quantity > 0}
    next_slots = {row.addon_code: row.quantity_next_period for row in rows}
    removed = {
        row.addon_code: row.quantity - row.quantity_next_period
        for row in rows
        if row.quantity_next_period < row.quantity
    }
    candidates: list[tuple[dict[Resource, int | None], str, datetime | None, str]] = []
    if removed:
        text = _removal_text(catalog, removed, period_end)
        remedy = "buy more slots to add more."
        candidates.append((allowed(plan, catalog, next_slots), text, period_end, remedy))
    change = subscriptions.upcoming_change(b.session, subscription_id, WAITING)
    if change is not None and change.plan_code != plan.code:
        new_catalog = b.catalog_of(change.catalog_version_id)
        new_plan = new_catalog.plans.get(change.plan_code)
        if new_plan is not None:
            at = period_end if change.timing == "period_end" else change.effective_at
            before_renewal = at is None or at < period_end
            slots = now_slots if before_renewal else next_slots
            text = f"A change to {new_plan.name} on {_day(at)}"
            if at is None:
                text = f"A change to {new_plan.name} awaiting approval"
            remedy = "cancel the scheduled change to add more."
            candidates.append((allowed(new_plan, new_catalog, slots), text, at, remedy))
            if removed and before_renewal:
                both = allowed(new_plan, new_catalog, next_slots)
                text = f"{text} and {_removal_text(catalog, removed, period_end, 'the')}"
                candidates.append((both, text, period_end, remedy))
    today = allowed(plan, catalog, now_slots)
    found: dict[Resource, ScheduledLimit] = {}
    for resource in COUNTED:
        current = today[resource]
        for limits, text, at, remedy in candidates:
            limit = limits[resource]
            if limit is None or (current is not None and limit >= current):
                continue
            best = found.get(resource)
            if best is None or limit < best.limit:
                found[resource] = ScheduledLimit(limit, text, at, remedy)
    return now_slots, found


def waiting_plan(b: Billing, subscription_id: int) -> tuple[Plan, Catalog] | None:
    """SUB-13: the plan a waiting change (scheduled, or awaiting approval) moves to."""
    change = subscriptions.upcoming_change(b.session, subscription_id, WAITING)
    if change is None:
        return None
    catalog = b.catalog_of(change.catalog_version_id)
    plan = catalog.plans.get(change.plan_code)
    return None if plan is None else (plan, catalog)


def slots_at(
    b: Billing, subscription_id: int, at: datetime | None, period_end: datetime
) -> dict[str, int]:
    """The add-on slots the subscription will hold at `at` (None: now): from the next
    billing date on, those left after a waiting removal (ADD-3, SUB-13)."""
    rows = subscriptions.addon_rows(b.session, subscription_id)
    if at is not None and at >= period_end:
        return {row.addon_code: row.quantity_next_period for row in rows}
    return {row.addon_code: row.quantity for row in rows if row.quantity > 0}
