"""Shapes of credit holds (CRD-5) and the low-balance alert (CRD-7).

Request bodies are `Strict` (unknown fields are refused); credits are JSON integers from
1 to 10,000,000 (2.0, "2" and 2.5 are refused); a hold's timeout is whole seconds from 1
to 86,400 (one day).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.api.schemas_credits import Credits, Feature
from tabkeeper.domain.holds import DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS
from tabkeeper.domain.ledger import MAX_CREDITS


class HoldIn(Strict):
    organization: Code
    feature: Feature = Field(description="The AI feature the call is for.")
    credits: Credits = Field(description=f"The estimate to reserve: 1 to {MAX_CREDITS:,}.")
    agent: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        description=f"Seconds until the billing clock releases the hold: 1 to "
        f"{MAX_TIMEOUT_SECONDS:,}.",
    )


class SettleIn(Strict):
    credits: Credits = Field(description="The real cost of the call.")
    organization: Code | None = Field(
        default=None, description="When given, the hold must be this organization's."
    )


class ReleaseIn(Strict):
    organization: Code | None = Field(
        default=None, description="When given, the hold must be this organization's."
    )


class HoldOut(BaseModel):
    """A hold (CRD-5) and the organization's balance after the change."""

    id: int
    organization: str
    feature: str
    agent: str | None
    credits: int = Field(description="The estimate held.")
    state: str = Field(description="held | settled | released | expired")
    expires_at: datetime
    settled_credits: int | None = Field(description="The real cost it was settled at.")
    shortfall: int | None = Field(
        description="What the balance could not cover at the settle (owed; the next "
        "top-up repays it first)."
    )
    balance: int = Field(description="The balance after the change (held credits left out).")
    held: int = Field(description="The credits the organization's open holds reserve.")


class LowAlertIn(Strict):
    organization: Code
    threshold: Annotated[StrictInt, Field(ge=1, le=MAX_CREDITS)] | None = Field(
        description="`credits.low` when the balance falls below it; null turns it off."
    )


class LowAlertOut(BaseModel):
    organization: str
    threshold: int | None
    balance: int
