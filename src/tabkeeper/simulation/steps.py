"""The steps of a scenario's timeline (SCENARIOS.md "Steps"), one frozen class per `do`.

Every step has `index` (its 0-based position in `timeline`, as in error paths), `at` (a
UTC instant), `org` and `actor` (the member named by `as`; default the organization's
first owner). `Events` alone may leave `org` out (each event names its own organization);
its `org` and `actor` are then None. `STEPS` maps each `do` name to its class; `Step` is
the union of the classes, for exhaustive matching in the runner.

Split from scenario.py (which reads a file into these) to keep both modules small. The
closed sets of names a file uses for organizations are here too: payment methods (the
sandbox test cards of PAY-1) and member roles (ACL-1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from tabkeeper.domain.decisions import Action
from tabkeeper.domain.money import Money
from tabkeeper.domain.terms import Timing


class PaymentMethodChoice(StrEnum):
    """An organization's payment method in a simulation: a sandbox card (PAY-1) or none."""

    CARD_OK = "card_ok"
    CARD_DECLINED = "card_declined"
    CARD_FAILS_LATER = "card_fails_later"
    NONE = "none"


class Role(StrEnum):
    """A member's role (ACL-1)."""

    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """What every step has: its position in the timeline and its time."""

    do: ClassVar[str] = ""
    index: int
    at: datetime


@dataclass(frozen=True, slots=True)
class OrganizationStep(TimelineStep):
    """A step one member of one organization takes."""

    org: str
    actor: str


@dataclass(frozen=True, slots=True)
class Subscribe(OrganizationStep):
    do: ClassVar[str] = "subscribe"
    plan: str
    addons: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    anchor: int | None = None
    """SUB-16: the day of the month periods start on; a value out of 1..31 is a refused
    step (`invalid_anchor`), as in the API."""
    coupon: str | None = None  # INV-6: redeemed for this subscription


@dataclass(frozen=True, slots=True)
class ChangePlan(OrganizationStep):
    """`when`: a Timing, an instant (a change on that date), or None (the terms' default)."""

    do: ClassVar[str] = "change_plan"
    plan: str
    when: Timing | datetime | None = None

    @property
    def timing(self) -> Timing | None:
        """The chosen timing: DATE for an instant; None when the file leaves it out."""
        return Timing.DATE if isinstance(self.when, datetime) else self.when


@dataclass(frozen=True, slots=True)
class CancelScheduledChange(OrganizationStep):
    do: ClassVar[str] = "cancel_scheduled_change"


@dataclass(frozen=True, slots=True)
class ApproveChange(OrganizationStep):
    do: ClassVar[str] = "approve_change"


@dataclass(frozen=True, slots=True)
class Cancel(OrganizationStep):
    """Cancel at the period's end (SUB-7)."""

    do: ClassVar[str] = "cancel"


@dataclass(frozen=True, slots=True)
class Resume(OrganizationStep):
    """Undo a cancellation that waits for the period's end (SUB-7)."""

    do: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True)
class SetPaymentMethod(OrganizationStep):
    do: ClassVar[str] = "set_payment_method"
    method: PaymentMethodChoice


@dataclass(frozen=True, slots=True)
class Pay(OrganizationStep):
    """Settle the organization's open invoices."""

    do: ClassVar[str] = "pay"


@dataclass(frozen=True, slots=True)
class PayNow(OrganizationStep):
    """ "Pay now" (SUB-12): the open invoices collected at once, oldest first, stopping
    at the first decline; nothing open is not a refusal."""

    do: ClassVar[str] = "pay_now"


@dataclass(frozen=True, slots=True)
class SetSessionLimit(OrganizationStep):
    do: ClassVar[str] = "set_session_limit"
    limit: int


@dataclass(frozen=True, slots=True)
class ResetSessionLimit(OrganizationStep):
    do: ClassVar[str] = "reset_session_limit"


@dataclass(frozen=True, slots=True)
class AddSlots(OrganizationStep):
    do: ClassVar[str] = "add_slots"
    addon: str
    quantity: int


@dataclass(frozen=True, slots=True)
class RemoveSlots(OrganizationStep):
    do: ClassVar[str] = "remove_slots"
    addon: str
    quantity: int


@dataclass(frozen=True, slots=True)
class TopUp(OrganizationStep):
    """`price`: the total of the purchase; None means credits × the catalog's credit_price."""

    do: ClassVar[str] = "top_up"
    credits: int
    price: Money | None = None


@dataclass(frozen=True, slots=True)
class Events(TimelineStep):
    """A batch of usage events, checked field by field only when the step runs (USE-2).
    Each event is a read-only mapping whose values are private copies of the document's,
    as plain data (nested dicts and lists, ready to be stored as JSON)."""

    do: ClassVar[str] = "events"
    org: str | None
    actor: str | None
    events: tuple[Mapping[str, object], ...]


@dataclass(frozen=True, slots=True)
class Check(OrganizationStep):
    """The real-time check (LIM-1); `feature` is set exactly for `use_ai`."""

    do: ClassVar[str] = "check"
    action: Action
    feature: str | None = None
    channel: str | None = None
    """CAT-7: set exactly for `connect_channel`."""


@dataclass(frozen=True, slots=True)
class StartSession(OrganizationStep):
    """Check and reserve a new session in one."""

    do: ClassVar[str] = "start_session"
    agent: str
    conversation: str


@dataclass(frozen=True, slots=True)
class CreateAgent(OrganizationStep):
    do: ClassVar[str] = "create_agent"
    agent: str


@dataclass(frozen=True, slots=True)
class ArchiveAgent(OrganizationStep):
    do: ClassVar[str] = "archive_agent"
    agent: str


@dataclass(frozen=True, slots=True)
class AddMember(OrganizationStep):
    do: ClassVar[str] = "add_member"
    member: str
    role: Role


@dataclass(frozen=True, slots=True)
class RemoveMember(OrganizationStep):
    do: ClassVar[str] = "remove_member"
    member: str


@dataclass(frozen=True, slots=True)
class AddPhoneNumber(OrganizationStep):
    do: ClassVar[str] = "add_phone_number"
    number: str


@dataclass(frozen=True, slots=True)
class ReleasePhoneNumber(OrganizationStep):
    do: ClassVar[str] = "release_phone_number"
    number: str


@dataclass(frozen=True, slots=True)
class ConnectChannel(OrganizationStep):
    """CAT-7: connect a channel the plan allows, under `limits.channels`."""

    do: ClassVar[str] = "connect_channel"
    channel: str


@dataclass(frozen=True, slots=True)
class DisconnectChannel(OrganizationStep):
    do: ClassVar[str] = "disconnect_channel"
    channel: str


@dataclass(frozen=True, slots=True)
class RequestDemo(OrganizationStep):
    """Ask for a sales-led plan ("Book a demo", CAT-2)."""

    do: ClassVar[str] = "request_demo"
    plan: str


@dataclass(frozen=True, slots=True)
class VoidInvoice(OrganizationStep):
    """The platform voids the organization's open invoice numbered `invoice` (INV-5)."""

    do: ClassVar[str] = "void_invoice"
    invoice: str


@dataclass(frozen=True, slots=True)
class MarkUncollectible(OrganizationStep):
    """The platform writes the organization's open invoice `invoice` off (INV-5)."""

    do: ClassVar[str] = "mark_uncollectible"
    invoice: str


@dataclass(frozen=True, slots=True)
class MarkPaid(OrganizationStep):
    """The platform marks the open invoice `invoice` paid outside the provider (INV-5)."""

    do: ClassVar[str] = "mark_paid"
    invoice: str


@dataclass(frozen=True, slots=True)
class IssueCreditNote(OrganizationStep):
    """The platform credits the invoice `invoice` (INV-5): `amount`, or `lines` as
    (0-based invoice line index, amount) pairs; `refund`: back to the card."""

    do: ClassVar[str] = "credit_note"
    invoice: str
    amount: Money | None = None
    lines: tuple[tuple[int, Money], ...] | None = None
    refund: bool = False


@dataclass(frozen=True, slots=True)
class GrantAccountCredit(OrganizationStep):
    """The platform grants goodwill account credit (INV-5, SUB-5)."""

    do: ClassVar[str] = "grant_account_credit"
    amount: Money
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AssignPlan(OrganizationStep):
    """The platform puts the organization on `plan` (CAT-9): at `price` (a decimal string,
    None for the catalog's), collected by `collection` ("card" or "invoice")."""

    do: ClassVar[str] = "assign_plan"
    plan: str
    collection: str
    price: str | None = None


@dataclass(frozen=True, slots=True)
class HoldCredits(OrganizationStep):
    """CRD-5: reserve `credits` for a call of the AI feature `feature`, as the hold named
    `hold` (the scenario's name for it); `timeout_seconds` until the clock releases it."""

    do: ClassVar[str] = "hold_credits"
    hold: str
    credits: int
    feature: str
    agent: str | None = None
    timeout_seconds: int | None = None
    """None: the default (domain/holds.py)."""


@dataclass(frozen=True, slots=True)
class SettleHold(OrganizationStep):
    """CRD-5: the call of the hold `hold` cost `credits`."""

    do: ClassVar[str] = "settle_hold"
    hold: str
    credits: int


@dataclass(frozen=True, slots=True)
class ReleaseHold(OrganizationStep):
    """CRD-5: the call of the hold `hold` did not happen."""

    do: ClassVar[str] = "release_hold"
    hold: str


@dataclass(frozen=True, slots=True)
class SetCreditAlert(OrganizationStep):
    """CRD-7: `credits.low` when the balance falls below `threshold` (None: off)."""

    do: ClassVar[str] = "set_credit_alert"
    threshold: int | None


# -- INV-6, INV-7: coupons and billing details ------------------------------------------
@dataclass(frozen=True, slots=True)
class ApplyCoupon(OrganizationStep):
    """INV-6: the coupon redeemed for the organization's subscription (by the acting
    member, as in the billing tab)."""

    do: ClassVar[str] = "apply_coupon"
    coupon: str


@dataclass(frozen=True, slots=True)
class SetBillingDetails(OrganizationStep):
    """INV-7: the organization's billing details, as typed (checked when the step runs)."""

    do: ClassVar[str] = "set_billing_details"
    legal_name: object
    country: object
    tax_id: object = None
    address: object = ""


@dataclass(frozen=True, slots=True)
class SetSpendCap(OrganizationStep):
    """LIM-6: the cap on what is charged beyond the plan this period."""

    do: ClassVar[str] = "set_spend_cap"
    amount: Money


@dataclass(frozen=True, slots=True)
class ResetSpendCap(OrganizationStep):
    """LIM-6: no spend cap."""

    do: ClassVar[str] = "reset_spend_cap"


@dataclass(frozen=True, slots=True)
class SetAutoTopUp(OrganizationStep):
    """CRD-6: buy `credits` whenever the balance falls below `threshold`."""

    do: ClassVar[str] = "set_auto_top_up"
    threshold: int
    credits: int


@dataclass(frozen=True, slots=True)
class DisableAutoTopUp(OrganizationStep):
    """CRD-6: auto top-up off."""

    do: ClassVar[str] = "disable_auto_top_up"


Step = (
    Subscribe
    | ChangePlan
    | CancelScheduledChange
    | ApproveChange
    | Cancel
    | Resume
    | SetPaymentMethod
    | Pay
    | PayNow
    | SetSessionLimit
    | ResetSessionLimit
    | AddSlots
    | RemoveSlots
    | TopUp
    | Events
    | Check
    | StartSession
    | CreateAgent
    | ArchiveAgent
    | AddMember
    | RemoveMember
    | AddPhoneNumber
    | ReleasePhoneNumber
    | RequestDemo
    | VoidInvoice
    | MarkUncollectible
    | MarkPaid
    | IssueCreditNote
    | GrantAccountCredit
    | AssignPlan
    | ConnectChannel
    | DisconnectChannel
    | HoldCredits
    | SettleHold
    | ReleaseHold
    | SetCreditAlert
    | ApplyCoupon
    | SetBillingDetails
    | SetSpendCap
    | ResetSpendCap
    | SetAutoTopUp
    | DisableAutoTopUp
)

STEPS: Mapping[str, type[Step]] = MappingProxyType(
    {
        kind.do: kind
        for kind in (
            Subscribe,
            ChangePlan,
            CancelScheduledChange,
            ApproveChange,
            Cancel,
            Resume,
            SetPaymentMethod,
            Pay,
            PayNow,
            SetSessionLimit,
            ResetSessionLimit,
            AddSlots,
            RemoveSlots,
            TopUp,
            Events,
            Check,
            StartSession,
            CreateAgent,
            ArchiveAgent,
            AddMember,
            RemoveMember,
            AddPhoneNumber,
            ReleasePhoneNumber,
            RequestDemo,
            VoidInvoice,
            MarkUncollectible,
            MarkPaid,
            IssueCreditNote,
            GrantAccountCredit,
            AssignPlan,
            ConnectChannel,
            DisconnectChannel,
            HoldCredits,
            SettleHold,
            ReleaseHold,
            SetCreditAlert,
            ApplyCoupon,
            SetBillingDetails,
            SetSpendCap,
            ResetSpendCap,
            SetAutoTopUp,
            DisableAutoTopUp,
        )
    }
)
"""Each step class by its `do` name."""
