"""Shapes of the add-on API (ADD-1..4, CAT-5, INV-1; PRT-1's Add-ons & extras panel).

Request bodies are `Strict` (unknown fields are refused); a request moves 1 to 1,000
slots. Money is integer minor units with its currency; times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.api.schemas_billing import Invoice
from tabkeeper.domain.slots import MAX_SLOTS


class SlotsIn(Strict):
    organization: Code
    addon: Code
    quantity: Annotated[int, Field(ge=1, le=MAX_SLOTS)] = Field(
        description=f"How many slots to add or remove: 1 to {MAX_SLOTS:,}."
    )


class Addon(BaseModel):
    """An add-on of the catalog the plan allows (CAT-5)."""

    code: str
    name: str
    price_per_slot_minor: int
    currency: str
    interval: str
    adds: dict[str, int] = Field(description="What one slot adds, e.g. {agents: 1}.")
    requires_plans: list[str] | None = Field(
        description="The plans it layers on; null: every plan."
    )


class AddonCard(Addon):
    """An "Active add-on" card (PRT-1)."""

    quantity: int = Field(description="Slots in force now.")
    quantity_next_period: int = Field(
        description="Slots from the next billing date (fewer after a removal, ADD-3)."
    )


class Addons(BaseModel):
    """The Add-ons & extras panel of an organization."""

    organization: str
    plan: str
    plan_name: str
    currency: str
    interval: str
    next_billing_at: datetime | None
    interval_total_minor: int = Field(
        description="What the next billing date bills in advance: plan + add-on slots."
    )
    active: list[AddonCard]
    available: list[Addon]


class SlotsQuote(BaseModel):
    """What adding slots costs, shown before the owner confirms (ADD-2)."""

    organization: str
    addon: str
    addon_name: str
    quantity: int
    price_per_slot_minor: int
    currency: str
    slots_after: int = Field(description="Slots in force once added.")
    interval_total_before_minor: int
    interval_total_after_minor: int = Field(
        description="The new monthly (or yearly) total: plan + every add-on, from the next "
        "billing date, after the change."
    )
    prorated_minor: int = Field(
        description="Charged now: slots × price per slot × the part of the period left."
    )
    amount_due_minor: int = Field(description="`prorated_minor` less account credit.")
    period_end: datetime


class SlotsChanged(BaseModel):
    """Slots added (in force now; the prorated charge on `invoice`) or removed (from
    `effective_at`, the next billing date; no refund)."""

    message: str
    organization: str
    addon: str
    quantity: int = Field(description="Slots in force now.")
    quantity_next_period: int
    interval_total_minor: int
    effective_at: datetime
    invoice: Invoice | None
