"""Add-on slots: the pure rules of buying and removing them (SPEC ADD-1..4, CAT-5, INV-1).

A subscription holds the slots of each add-on twice over (`SlotCount`): `now`, the slots in
force, which capacity counts; and `next_period`, what the next renewal bills. Adding N
slots raises both at once (ADD-2: capacity at once; the prorated part of the current
period is charged on its own invoice, `invoicing.addon_proration_line`). Removing N lowers
`next_period` only (ADD-3: from the next billing date, no refund). So
`0 <= next_period <= now` always, and a renewal sets `now = next_period`.

Refusals, each with nothing changed:
- `invalid_quantity` (InvalidInput): a request moves 1 to `MAX_SLOTS` slots;
- `too_many_slots`: a subscription holds at most `MAX_SLOTS` slots of one add-on;
- `not_enough_slots`: a removal takes at most the slots left from the next billing date;
- `addon_not_allowed`: an add-on with `requires_plans` layers only on those plans (CAT-5),
  and the refusal names them ("Enterprise Max is available on Enterprise only, not on
  Pro; upgrade to add it.");
- `capacity_in_use` (the caller raises it with `shortfall_message`): a removal that would
  leave less capacity from the next billing date than is in use says how many of what to
  archive, delete, remove or release first, in the words of SUB-6.

`interval_total` is what a period bills in advance: the plan's price plus each add-on's
price per slot times its slots (the sums of `plan_line` and `addon_line`); it is the "new
monthly total" the billing tab shows before a member confirms (ADD-2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from tabkeeper.domain.catalog import AddOn, Catalog, Plan, Resource
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Money, sum_money

MAX_SLOTS = 1000
"""The most slots one request moves, and the most one subscription holds of one add-on."""
SLOTS_ADDED_MESSAGE = "Slots added successfully."
SLOTS_REMOVED_MESSAGE = "Slots removed successfully."

NOUNS: Mapping[Resource, tuple[str, str, str]] = {
    Resource.AGENTS: ("agent", "agents", "archive or delete"),
    Resource.SEATS: ("seat", "seats", "remove"),
    Resource.PHONE_NUMBERS: ("phone number", "phone numbers", "release"),
    Resource.CHANNELS: ("channel", "channels", "remove"),
}
"""Each resource's name, one and many, and what frees one (SUB-6, ADD-3)."""


def slot_quantity(value: object, what: str = "quantity") -> int:
    """`value` as a number of slots for one request: a whole number from 1 to MAX_SLOTS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SLOTS:
        raise InvalidInput(
            f"{what}: add or remove from 1 to {MAX_SLOTS:,} slots at a time, got {value!r}",
            code="invalid_quantity",
        )
    return value


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what}: expected a whole number >= 0, got {value!r}")
    return value


def _slots(count: int) -> str:
    return f"{count:,} slot{'' if count == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class SlotCount:
    """The slots of one add-on on a subscription: in force `now`, and from the next billing
    date (`next_period`)."""

    now: int = 0
    next_period: int = 0

    def __post_init__(self) -> None:
        now = _count(self.now, "slots now")
        later = _count(self.next_period, "slots next period")
        if later > now:
            raise InvalidInput(
                f"slots next period ({later}) cannot be more than the slots now ({now})"
            )

    def added(self, quantity: int, addon_name: str) -> SlotCount:
        """ADD-2: `quantity` more slots, in force now and billed from the next period on."""
        quantity = slot_quantity(quantity)
        if self.now + quantity > MAX_SLOTS:
            room = MAX_SLOTS - self.now
            raise Refused(
                f"A subscription holds at most {MAX_SLOTS:,} slots of {addon_name}; it has "
                f"{self.now:,}, so at most {room:,} more can be added.",
                code="too_many_slots",
            )
        return SlotCount(self.now + quantity, self.next_period + quantity)

    def removed(self, quantity: int, addon_name: str) -> SlotCount:
        """ADD-3: `quantity` fewer slots from the next billing date; the slots in force stay
        until then (no refund)."""
        quantity = slot_quantity(quantity)
        if quantity > self.next_period:
            raise Refused(
                f"The subscription has {_slots(self.next_period)} of {addon_name} from the next "
                f"billing date; {_slots(quantity)} cannot be removed.",
                code="not_enough_slots",
            )
        return SlotCount(self.now, self.next_period - quantity)


def either(names: Sequence[str]) -> str:
    """Names joined for a sentence: A; A or B; A, B or C."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def offers_no_team(addon: AddOn, plan: Plan) -> bool:
    """ADD-4: `plan` offers no team at all (0 seats) and `addon` adds seats: it cannot be
    bought with it; the answer is to upgrade."""
    return addon.adds.get(Resource.SEATS, 0) > 0 and plan.limit(Resource.SEATS) == 0


def sold_with(addon: AddOn, plan: Plan) -> bool:
    """Whether `addon` can be bought on `plan`: it layers on it (CAT-5) and does not sell
    seats to a plan without a team (ADD-4)."""
    return addon.allowed_on(plan.code) and not offers_no_team(addon, plan)


def require_allowed_on(catalog: Catalog, addon: AddOn, plan: Plan) -> None:
    """CAT-5: an add-on that requires certain plans layers only on them; the refusal names
    the plans it needs and says to upgrade. ADD-4: seats are not sold to a plan without a
    team ("Upgrade to use team")."""
    if offers_no_team(addon, plan):
        raise Refused(
            f"{plan.name} offers no team, so {addon.name} cannot be added: Upgrade to use team.",
            code="addon_not_allowed",
        )
    if addon.allowed_on(plan.code):
        return
    needed = [
        catalog.plans[code].name if code in catalog.plans else code
        for code in addon.requires_plans or ()
    ]
    raise Refused(
        f"{addon.name} is available on {either(needed)} only, not on {plan.name}; "
        "upgrade to add it.",
        code="addon_not_allowed",
    )


def priced_for(addon: AddOn, plan: Plan) -> AddOn:
    """SUB-16: `addon` as sold with `plan`: a plan billed every N intervals (quarterly: 3
    months) bills each slot N times its price per interval for a period (CAT-8's price of
    the plan's interval, per interval of the period). Plans of one interval get `addon`
    itself."""
    count = plan.interval_count
    if count == 1:
        return addon
    prices = {i: Money(p.minor * count, p.currency) for i, p in addon.prices.items()}
    return replace(addon, prices=MappingProxyType(prices))


def interval_total(catalog: Catalog, plan: Plan, slots: Mapping[str, int]) -> Money:
    """INV-1, ADD-2: what a period bills in advance: the plan's price plus each add-on's
    price per slot for the plan's interval (CAT-8) times its slots. Codes the catalog
    does not have bill nothing, as at a renewal."""
    currency = plan.price.currency
    amounts = [plan.price]
    for code, quantity in sorted(slots.items()):
        addon = catalog.addons.get(code)
        if addon is not None and _count(quantity, f"slots of {code}") > 0:
            price = priced_for(addon, plan).price_for(plan.interval)  # CAT-8, SUB-16
            amounts.append(Money(price.minor * quantity, price.currency))
    return sum_money(amounts, currency)


def capacity_shortfall(
    in_use: Mapping[Resource, int],
    limits: Mapping[Resource, int | None],
    resources: Iterable[Resource],
) -> dict[Resource, int]:
    """ADD-3: of `resources`, those of which more are in use than `limits` allow (None:
    unlimited; a resource missing from either mapping is not counted), with how many over,
    in the order of the Resource enum."""
    wanted = set(resources)
    over: dict[Resource, int] = {}
    for resource in Resource:
        if resource not in wanted or resource not in in_use:
            continue
        limit = limits.get(resource)
        used = _count(in_use[resource], f"{resource} in use")
        if limit is not None and used > limit:
            over[resource] = used - limit
    return over


def shortfall_message(
    plan_name: str, limits: Mapping[Resource, int | None], over: Mapping[Resource, int]
) -> str:
    """ADD-3: what a removal would leave, and how many of what to free first, e.g.
    'From the next billing date Pro and its remaining slots allow 3 agents; archive or
    delete 1 agent first.'"""
    if not over:
        raise InvalidInput("a shortfall message needs at least one resource over its limit")
    allows, todo = [], []
    for resource, extra in over.items():
        one, many, verb = NOUNS[resource]
        limit = limits.get(resource)
        allows.append(f"{limit} {one if limit == 1 else many}")
        todo.append(f"{verb} {extra} {one if extra == 1 else many}")
    steps = todo[0] if len(todo) == 1 else f"{', '.join(todo[:-1])} and {todo[-1]}"
    return (
        f"From the next billing date {plan_name} and its remaining slots allow "
        f"{', '.join(allows)}; {steps} first."
    )
