"""Shapes of the platform's plan assignment (CAT-9)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.api.schemas_billing import Subscription

PriceText = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class AssignPlanIn(Strict):
    plan: Code
    price: PriceText | None = Field(
        default=None,
        description="The negotiated price per interval of the plan, a decimal string in the "
        "catalog's currency (\"1500.00\"); omitted: the catalog's price.",
    )
    collection: Annotated[str, StringConstraints(max_length=20)] = Field(
        description='"card": charged to the card on file now, like a checkout; "invoice": '
        'the invoice stays open for manual payment ("mark paid"), never charged.'
    )


class AssignedInvoice(BaseModel):
    id: int
    number: str | None
    status: str
    amount_due_minor: int


class Assigned(BaseModel):
    organization: str
    plan: str
    price_minor: int
    currency: str
    negotiated: bool = Field(description="The price is not the catalog's.")
    collection: str
    invoice: AssignedInvoice
    demo_requests_handled: int = Field(
        description="How many of the organization's demo requests for the plan this handled."
    )
    subscription: Subscription
