"""Shapes of the credits API: balance and grants, the ledger, spend per feature and per
agent, top-ups, consumption (one use or a batch), adjustments (CRD-1..4, INV-1).

Request bodies are `Strict` (unknown fields are refused). Credits and uses are whole
numbers (JSON integers: 2.0, "2" and 2.5 are refused): a top-up or grant 1 to
10,000,000 credits, a consumption 1 to 10,000 uses, a batch 1 to 1,000 consumptions.
Money is integer minor units with its currency; a price in a request is a decimal string
in major units ("7.50"). Times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.api.schemas_billing import Invoice
from tabkeeper.domain.ledger import (
    DEFAULT_PRIORITY,
    LOWEST_PRIORITY,
    MAX_BATCH_USES,
    MAX_CREDITS,
    MAX_USES,
)

Credits = Annotated[StrictInt, Field(ge=1, le=MAX_CREDITS)]
UseId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Feature = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TopUpIn(Strict):
    organization: Code
    credits: Credits = Field(description=f"How many credits to buy: 1 to {MAX_CREDITS:,}.")
    price: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None,
        description=(
            'The total price in major units ("7.50"); platform API key only. Default: '
            "credits × the catalog's credit price, rounded once."
        ),
    )


class ConsumeIn(Strict):
    organization: Code
    feature: Feature = Field(description="The AI feature used (its rate is the catalog's).")
    id: UseId = Field(
        description="The client's id of this use: a second consumption with the same id "
        "takes nothing and answers as the first (as an `ai.used` event with this id would)."
    )
    agent: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_USES)] = Field(
        default=1, description=f"Uses of the feature: 1 to {MAX_USES:,}."
    )


class ConsumeBatchIn(Strict):
    uses: Annotated[list[ConsumeIn], Field(min_length=1, max_length=MAX_BATCH_USES)] = Field(
        description=(
            f"1 to {MAX_BATCH_USES:,} consumptions, each as for `POST /v1/credits/consume`, "
            "taken in one transaction and each accepted or refused on its own, in this order."
        )
    )


class GrantIn(Strict):
    organization: Code
    credits: Credits
    id: Code = Field(description="The platform's id of this grant: a second one is ignored.")
    priority: Annotated[StrictInt, Field(ge=0, le=LOWEST_PRIORITY)] = Field(
        default=DEFAULT_PRIORITY, description="0 to 100; lower is used first (CRD-2)."
    )
    expires_at: datetime | None = Field(default=None, description="Null: never expires.")
    description: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class Grant(BaseModel):
    """A grant with what is left of it (CRD-2)."""

    id: int
    kind: str = Field(description="purchased | included | adjustment")
    amount: int
    remaining: int
    priority: int
    granted_at: datetime
    expires_at: datetime | None
    description: str
    invoice_id: int | None


class CreditsView(BaseModel):
    """An organization's credits now (CRD-1): the balance, the part of it the plan
    included (used first, expiring at the period's end), and the live grants in the order
    they will be used."""

    organization: str
    balance: int
    included: int
    purchased: int
    next_grant_at: datetime | None = Field(
        description="When the plan next grants included credits."
    )
    next_grant: int | None
    held: int = Field(
        default=0, description="Credits reserved by open holds (CRD-5), not in the balance."
    )
    owed: int = Field(
        default=0,
        description="What settles above the balance left unpaid (CRD-5); the "
        "next top-up repays it first.",
    )
    low_threshold: int | None = Field(
        default=None, description="`credits.low` is told when the balance falls below it."
    )
    grants: list[Grant]


class Entry(BaseModel):
    """A ledger entry (CRD-2): grant (+), use (−) or expiry (−)."""

    id: int
    kind: str = Field(description="grant | use | expiry | hold | release | repayment")
    amount: int
    balance_after: int
    at: datetime
    grant_id: int | None
    feature: str | None
    agent: str | None
    quantity: int | None = Field(description="Uses of the feature (uses only).")
    used_by: str | None = Field(description="The organization whose agent used them.")
    shortfall: int | None = Field(
        default=None, description="On a hold's settle: what the balance could not cover."
    )


class Spent(BaseModel):
    uses: int
    credits: int


class Spend(BaseModel):
    """Where AI credits went in [since, until) (CRD-4)."""

    organization: str
    since: datetime
    until: datetime
    total: Spent
    features: dict[str, Spent]
    agents: dict[str, Spent] = Field(description='Per agent; "" for uses without an agent.')


class Consumed(BaseModel):
    organization: str
    feature: str
    agent: str | None
    quantity: int
    credits: int = Field(description="Credits the use took.")
    balance: int = Field(description="The balance after it.")
    at: datetime
    duplicate: bool = Field(description="True: taken before under this id; nothing now.")


class ConsumeOutcome(BaseModel):
    """What became of one consumption of a batch."""

    index: int = Field(description="Its position in the batch, from 0.")
    id: str
    organization: str
    accepted: bool = Field(
        description="True: taken now, or before under this id (`consumed.duplicate`); "
        "false: refused, nothing taken."
    )
    consumed: Consumed | None
    code: str | None = Field(
        description="Why it was refused: credits_exhausted, unknown_feature, not_found, or "
        "the check's reason code (feature_not_in_plan, no_subscription, ...)."
    )
    message: str | None


class ConsumedBatch(BaseModel):
    """A batch of consumptions: the good ones are kept when others are refused."""

    accepted: int = Field(description="Consumptions taken now.")
    duplicates: int = Field(description="Consumptions whose id was taken before: nothing now.")
    refused: int = Field(description="Consumptions refused: nothing taken for them.")
    results: list[ConsumeOutcome]


class ToppedUp(BaseModel):
    message: str
    organization: str
    credits: int
    price_minor: int
    currency: str
    balance: int
    invoice: Invoice


class Granted(BaseModel):
    organization: str
    grant: Grant
    balance: int
    duplicate: bool
