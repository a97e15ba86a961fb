"""The answer of "Pay now" (SUB-12): `POST /v1/organizations/{code}/pay_now`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tabkeeper.api.schemas_billing import Invoice


class PayNow(BaseModel):
    """What collecting the open invoices at once did: each paid now, oldest first, and
    what is still open. Nothing open answers with both lists empty."""

    organization: str
    paid: list[Invoice] = Field(description="The invoices paid now, oldest first.")
    open: list[Invoice] = Field(description="The invoices still open afterwards.")
    subscription_state: str | None = Field(
        description="The subscription's state afterwards: `active` again once nothing is "
        "owed (SUB-12); null without a subscription."
    )
