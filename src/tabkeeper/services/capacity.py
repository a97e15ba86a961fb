"""Capacity in use and capacity allowed: agents, seats, phone numbers (CAT-1, SUB-6, ADD-4).

Sub-accounts share their organization's limits (SUB-2), so what is in use is counted
over the whole family. What is allowed is the plan's limit plus what add-on slots add.
"""

from __future__ import annotations

from collections.abc import Mapping

from tabkeeper.db import organizations, subscriptions
from tabkeeper.db.tables import Organization
from tabkeeper.domain.catalog import Catalog, Plan, Resource
from tabkeeper.domain.errors import Refused
from tabkeeper.services.context import Billing
from tabkeeper.services.lifecycle import family_ids

COUNTED = (Resource.AGENTS, Resource.SEATS, Resource.PHONE_NUMBERS)
_NOUNS = {
    Resource.AGENTS: ("agent", "agents", "archive or delete"),
    Resource.SEATS: ("seat", "seats", "remove"),
    Resource.PHONE_NUMBERS: ("phone number", "phone numbers", "release"),
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
        addon.adds.get(resource, 0) > 0 and addon.allowed_on(plan.code)
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
