"""Shapes of the billing API's requests and responses: agents and phone numbers,
subscriptions and plan changes (SUB-1, SUB-3, SUB-4, SUB-7), demo requests (CAT-2),
payment methods (PAY-2), invoices (INV-2) and notices (NOT-1).

Request bodies are `Strict` (unknown fields are refused). Money is integer minor units
with its currency; times are UTC. A payment method never carries a card number (PAY-2).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from tabkeeper.api.schemas import Code, Strict
from tabkeeper.domain.terms import Timing
from tabkeeper.payments.provider import CheckoutStatus

PhoneNumberText = Annotated[
    str, StringConstraints(pattern=r"^\+?[0-9][0-9 ().\-]{1,30}[0-9]$", max_length=32)
]
ReturnUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
CardText = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class InvoiceStatus(StrEnum):
    """INV-2: a finalized invoice is open, paid, void or uncollectible."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class ChangeStatus(StrEnum):
    """Where a plan change stands (SUB-4)."""

    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    APPLIED = "applied"
    CANCELED = "canceled"
    FAILED = "failed"


# ------------------------------------------------------------ agents and phone numbers
class AgentIn(Strict):
    organization: Code
    code: Code


class Agent(BaseModel):
    id: int
    organization: str
    code: str
    status: Literal["active", "archived"]
    created_at: datetime
    archived_at: datetime | None


class PhoneNumberIn(Strict):
    organization: Code
    number: PhoneNumberText


class PhoneNumber(BaseModel):
    id: int
    organization: str
    number: str
    status: Literal["active", "released"]
    added_at: datetime
    released_at: datetime | None


# ------------------------------------------------------------------- subscriptions
class SubscribeIn(Strict):
    organization: Code
    plan: Code
    addons: dict[Code, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=dict, max_length=50, description="Add-on slots: code -> quantity."
    )
    return_url: ReturnUrl | None = Field(
        default=None,
        description="Where the hosted checkout sends the member after paying; "
        "`{CHECKOUT_ID}` in it is replaced by the checkout's id. Default: the checkout "
        "page itself, which then shows the outcome.",
    )
    anchor: StrictInt | None = Field(
        default=None,
        description="SUB-16: the day of the month (1 to 31) the billing periods start on; "
        "the first period, up to it, is prorated. Default: the start (or the 1st under "
        "calendar billing). A plan with its own trial (SUB-15) needs a card on file and "
        "begins the trial at once.",
    )


class ChangeIn(Strict):
    plan: Code
    when: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None,
        description='"immediately", "period_end", an ISO 8601 time with a zone '
        "(a custom date), or null for the platform's default timing (SUB-4).",
    )


class TrialSessions(BaseModel):
    included: int
    used: int
    left: int


class AddonSlots(BaseModel):
    code: str
    quantity: int
    quantity_next_period: int


class UpcomingChange(BaseModel):
    """The "Upcoming subscription" card (SUB-1, SUB-4)."""

    id: int
    plan: str
    plan_name: str
    starts_at: datetime | None
    timing: Timing
    status: ChangeStatus
    badge: str


class MeterUsage(BaseModel):
    used: str
    included: str | None
    level: str | None
    period_start: str


class Subscription(BaseModel):
    id: int
    organization: str
    state: str
    badge: str = Field(description='The card\'s badge (SUB-1), e.g. "Active subscription".')
    payment_pending: bool = Field(description='Show the "Payment pending" banner (SUB-1).')
    plan: str
    plan_name: str
    price_minor: int
    currency: str
    interval: str
    period_start: datetime
    period_end: datetime
    next_billing_at: datetime | None
    ends_at: datetime | None = Field(
        description="When a canceled subscription ends (or ended); None otherwise."
    )
    cancel_at_period_end: bool
    trial_ends_at: datetime | None
    trial_sessions: TrialSessions | None
    grace_ends_at: datetime | None
    session_limit: int | None
    addons: list[AddonSlots]
    upcoming: UpcomingChange | None
    usage: dict[str, MeterUsage]
    started_at: datetime
    ended_at: datetime | None


class Checkout(BaseModel):
    id: str
    url: str | None
    amount_minor: int
    currency: str
    status: CheckoutStatus


class Subscribed(BaseModel):
    """An open checkout to pay (SUB-3), or, for a plan that costs nothing, the subscription
    already started."""

    checkout: Checkout
    subscription: Subscription | None


class PlanChange(BaseModel):
    id: int
    subscription: int
    plan: str
    timing: Timing
    starts_at: datetime | None
    status: ChangeStatus
    is_upgrade: bool
    requested_by: str | None
    requested_at: datetime
    decided_at: datetime | None


class DemoRequestIn(Strict):
    organization: Code
    plan: Code


class DemoRequested(BaseModel):
    message: str


class DemoRequest(BaseModel):
    id: int
    organization: str
    plan: str
    member: str | None
    created_at: datetime
    status: str = Field(
        default="pending", description='"pending", or "handled" once the plan is assigned (CAT-9).'
    )
    handled_at: datetime | None = None


# ----------------------------------------------------------------- payment methods
class PaymentMethodIn(Strict):
    organization: Code
    card: CardText = Field(
        description="What the provider needs to find the card: with the sandbox a test "
        "card's name (card_ok, card_declined, card_fails_later) or number."
    )


class PaymentMethod(BaseModel):
    """A card on file (PAY-2): brand, last 4 and expiry, never the number."""

    id: int
    organization: str
    provider: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    default: bool
    created_at: datetime


# ------------------------------------------------------------------------ invoices
class InvoiceLine(BaseModel):
    kind: str
    description: str
    quantity: str
    unit_amount: str | None
    amount_minor: int
    period_start: datetime | None
    period_end: datetime | None
    details: dict[str, Any]


class Invoice(BaseModel):
    id: int
    number: str | None
    organization: str
    status: InvoiceStatus
    currency: str
    total_minor: int
    credit_applied_minor: int
    amount_due_minor: int
    issued_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    paid_at: datetime | None
    paid_via: str | None = Field(
        default=None,
        description="How a paid invoice was settled when not by the provider or account "
        'credit (INV-5): "out_of_band" (marked paid by the platform) or "credit_note".',
    )
    pdf_url: str = Field(description="Where the invoice downloads as a PDF (INV-3).")
    lines: list[InvoiceLine] | None = Field(
        default=None, description="The lines, on GET /v1/invoices/{id} (not in lists)."
    )
    disputed_at: datetime | None = Field(
        default=None,
        description="When the payment provider reported a dispute of the invoice's payment "
        "(PAY-3; Stripe's charge.dispute.created); null when there is none.",
    )


# ------------------------------------------------------------------------- notices
class Notice(BaseModel):
    id: int
    at: datetime
    organization: str
    kind: str
    payload: dict[str, Any]
