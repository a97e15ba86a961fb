"""Shapes of the spend cap (LIM-6) and auto top-up (CRD-6). Request bodies are `Strict`
(unknown fields are refused); amounts are decimal strings in major units of the
platform's currency; credits are JSON integers from 1 to 10,000,000."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.domain.ledger import MAX_CREDITS

CreditCount = Annotated[StrictInt, Field(ge=1, le=MAX_CREDITS)]


class SpendCapIn(Strict):
    organization: Code
    amount: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        description='The cap in major units of the platform\'s currency ("50.00"), more '
        "than 0; null resets it (no cap)."
    )


class SpendCapOut(BaseModel):
    organization: str
    amount: str | None = Field(description="The cap; null: no cap.")
    spent: str = Field(
        description="What counts against the cap this billing period: overage at its "
        "price, credit purchases and auto top-ups."
    )
    currency: str
    percent: int | None = Field(description="How much of the cap is spent (0 to 100).")


class AutoTopUpIn(Strict):
    organization: Code
    threshold: CreditCount | None = Field(
        description="A use taking the balance below it buys `credits`; null (with credits "
        "null) turns auto top-up off."
    )
    credits: CreditCount | None = Field(description="How many credits each top-up buys.")


class AutoTopUpOut(BaseModel):
    organization: str
    threshold: int | None
    credits: int | None
    in_flight: bool = Field(description="A top-up is being bought now.")
    balance: int
