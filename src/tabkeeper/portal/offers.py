"""Two offers of the billing tab (issue 12 item 8), chosen from the Plans section's own
offers (views.py), so that they never offer what the Plans section would refuse:

- "Upgrade", beside the usage counter (seed 000 behaviour): the next plan up by rank from
  the current plan (from the trial plan, or from nothing, without a paid subscription).
  Without a paid subscription it subscribes through the provider's hosted checkout (the
  Plans section's Subscribe); on an active subscription with a card on file it changes
  the plan (SUB-4, immediately where the platform allows it, SUB-5 charges the prorated
  difference); with no card on file it leads to "Manage" to add one first.
- The cancel dialog's alternative (SUB-7, seed 003 behaviour): the lowest paid plan below
  the current one, which keeps the agents running for less ("Switch to … instead").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tabkeeper.domain.catalog import Catalog, Plan
from tabkeeper.domain.terms import Timing

How = Literal["subscribe", "change", "card"]


class Offer(Protocol):
    """A plan of the Plans section and what its button does (views.PlanOffer)."""

    @property
    def plan(self) -> Plan: ...
    @property
    def action(self) -> str: ...
    @property
    def timings(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True, slots=True)
class Upgrade:
    plan: Plan
    how: How
    when: str | None = None
    """The timing of a change (the API's `when`)."""


def upgrade_of(
    offers: Sequence[Offer], current: Plan | None, trial: Plan | None, has_card: bool
) -> Upgrade | None:
    """The next plan up by rank (see the module), or None at the top or when no change
    can be made now (past due, canceling)."""
    base = current or trial
    rank = base.rank if base is not None else None
    above = [
        offer
        for offer in offers
        if offer.action in ("subscribe", "change")
        and not offer.plan.sales_led
        and (rank is None or offer.plan.rank > rank)
    ]
    if not above:
        return None
    chosen = min(above, key=lambda o: (o.plan.rank, o.plan.price_per_day(), o.plan.code))
    if chosen.action == "subscribe":
        return Upgrade(chosen.plan, "subscribe")
    if not has_card:
        return Upgrade(chosen.plan, "card")
    values = [value for value, _ in chosen.timings if value != Timing.DATE.value]
    if not values:
        return None
    when = Timing.IMMEDIATELY.value if Timing.IMMEDIATELY.value in values else values[0]
    return Upgrade(chosen.plan, "change", when)


def cheaper_alternative(
    offers: Sequence[Offer], current: Plan | None, catalog: Catalog
) -> Plan | None:
    """The lowest paid plan below `current` that the member may change to now."""
    if current is None:
        return None
    cheaper = [
        offer.plan
        for offer in offers
        if offer.action == "change"
        and offer.plan.price.minor > 0
        and not catalog.is_upgrade(current, offer.plan)
    ]
    return min(cheaper, key=lambda p: (p.price_per_day(), p.rank, p.code), default=None)
