"""The spend cap's counters as events move them (SPEC LIM-6; services/spend_caps.py says
what counts): the change of an overage meter's priced overage, added to the billing
organization's spend with one conditional statement, and the notices of the levels it
crossed. Kept apart from services/spend_caps.py so that services/counters.py can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from tabkeeper.db import credit_store
from tabkeeper.domain.catalog import Catalog, Plan
from tabkeeper.domain.ingestion import counter_value
from tabkeeper.domain.spend import crossed_levels, overage_minor
from tabkeeper.services.context import Billing
from tabkeeper.services.records import notify


def tell_levels(
    b: Billing, owner_id: int, key: str, before: int, after: int, cap: int | None
) -> None:
    """`spend_cap_80` / `spend_cap_100` for each level crossed, once per period."""
    for level in crossed_levels(before, after, cap):
        assert cap is not None
        payload = {"spent_minor": after, "spend_cap_minor": cap,
                   "currency": b.terms.currency.code}  # fmt: skip
        notify(b, owner_id, f"spend_cap_{level}", f"spend:{key}", payload)


def overage_change(
    plan: Plan, catalog: Catalog, meter: str, before: tuple[int, int], after: tuple[int, int]
) -> int:
    """LIM-6: how much the priced overage of `meter` moved with its counter going from
    `before` to `after` (stored millionths, answered)."""
    if meter not in plan.overage or meter not in catalog.meters:
        return 0
    found = catalog.meters[meter]

    def value(stored: tuple[int, int]) -> Fraction:
        return counter_value(found, stored[0], stored[1], plan.answered_only)

    return overage_minor(plan, meter, value(after)) - overage_minor(plan, meter, value(before))


def accrue(b: Billing, deltas: Mapping[tuple[int, str], int]) -> None:
    """LIM-6: add each (billing organization, period key)'s overage change to its spend,
    one statement each (only organizations with a cap change), and tell the levels it
    crossed."""
    for (owner_id, key), delta in sorted(deltas.items()):
        if not delta:
            continue
        found = credit_store.add_overage(b.session, owner_id, key, delta)
        if found is None:
            continue
        after, cap = found
        tell_levels(b, owner_id, key, after - delta, after, cap)
