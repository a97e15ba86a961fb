"""Shapes of the corrections API (INV-5): credit notes, goodwill account credit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from tabkeeper.api.schemas import Strict
from tabkeeper.domain.corrections import MAX_MINOR

Minor = Annotated[StrictInt, Field(ge=1, le=MAX_MINOR)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class CreditLineIn(Strict):
    line: Annotated[StrictInt, Field(ge=0, le=100_000)] = Field(
        description="The 0-based index of the invoice line credited."
    )
    amount_minor: Minor = Field(
        description="Credited on that line, minor units; at most what is left of it."
    )


class CreditNoteIn(Strict):
    """Either `amount_minor` (the invoice as a whole) or `lines`, not both."""

    amount_minor: Minor | None = None
    lines: Annotated[list[CreditLineIn], Field(min_length=1, max_length=1000)] | None = None
    refund: StrictBool = Field(
        default=False,
        description="Refund a paid invoice through the provider (what it collected; the "
        "rest to the account credit); false: to the account credit. Refused on an open "
        "invoice, whose amount due the credit note lowers.",
    )
    reason: Reason | None = None


class CreditNoteLine(BaseModel):
    line: int | None = Field(description="The invoice line credited; null: the whole invoice.")
    description: str
    amount_minor: int


class CreditNote(BaseModel):
    id: int
    number: str
    organization: str
    invoice_id: int
    invoice: str | None = Field(description="The number of the invoice credited.")
    currency: str
    total_minor: int = Field(description="refund_minor + credited_minor + applied_minor.")
    refund_minor: int = Field(description="Refunded through the provider.")
    credited_minor: int = Field(description="Added to the organization's account credit.")
    applied_minor: int = Field(description="Taken off the (open) invoice's amount due.")
    refund_status: str | None = Field(description="null | processing | succeeded | failed")
    reason: str | None
    issued_at: datetime
    pdf_url: str
    lines: list[CreditNoteLine] | None = Field(
        default=None, description="The lines, on GET /v1/credit_notes/{id} and when issued."
    )


class AccountCreditIn(Strict):
    amount_minor: Minor = Field(description="Goodwill credit to add, minor units.")
    reason: Reason | None = None


class AccountCredit(BaseModel):
    organization: str
    credit_minor: int = Field(description="The account credit now (SUB-5).")
