"""The vocabulary of the subscription life: events in, effects and notices out.

Split from lifecycle.py (which holds the states, the transition table and `transition`)
to keep modules small; import these names from either module. Events carry the data a
transition needs and validate it on construction (SUB-7, SUB-8, TRI-1); effects are what
the caller must carry out after a transition (SUB-7, SUB-8, SUB-9, TRI-2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.utc import require_utc


class Notice(StrEnum):
    """The notice kinds a transition produces (SCENARIOS.md names)."""

    TRIAL_ENDED = "trial.ended"
    PAYMENT_FAILED = "payment.failed"
    PAST_DUE = "subscription.past_due"
    SUSPENDED = "subscription.suspended"
    RENEWED = "subscription.renewed"
    CHANGED = "subscription.changed"
    CANCELED = "subscription.canceled"
    ENDED = "subscription.ended"
    TRIAL_CONVERTED = "subscription.trial_converted"  # SUB-15


def utc_or_none(owner: object, name: str) -> None:
    """Normalise the optional datetime field `name` of a frozen dataclass to UTC."""
    value = getattr(owner, name)
    if value is not None:
        object.__setattr__(owner, name, require_utc(value, name))


def whole_number(value: object, what: str, *, least: int) -> None:
    """Refuse anything but an int (not a bool) of at least `least`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidInput(f"{what}: expected a whole number >= {least}, got {value!r}")


# ---------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Event:
    """Base of the events; `name` is the key in TRANSITIONS."""

    name: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True)
class TrialStarted(Event):
    """TRI-1: a new organization starts its free trial of `days` days."""

    name: ClassVar[str] = "trial_started"
    days: int = 14

    def __post_init__(self) -> None:
        whole_number(self.days, "trial days", least=1)


@dataclass(frozen=True, slots=True)
class TrialSessionsUsedUp(Event):
    """TRI-2: the last trial session was used."""

    name: ClassVar[str] = "trial_sessions_used_up"


@dataclass(frozen=True, slots=True)
class TrialDaysRanOut(Event):
    """TRI-2: trial_ends_at has come."""

    name: ClassVar[str] = "trial_days_ran_out"


@dataclass(frozen=True, slots=True)
class WithPeriodEnd(Event):
    period_end: datetime | None = None
    period_end_required: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.period_end is None and self.period_end_required:
            raise InvalidInput(f"{self.name}: period_end is required")
        utc_or_none(self, "period_end")


@dataclass(frozen=True, slots=True)
class CheckoutPaid(WithPeriodEnd):
    """SUB-3: the first payment of a paid plan succeeded; the first period ends at
    `period_end` (required)."""

    name: ClassVar[str] = "checkout_paid"
    period_end_required: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class PeriodRenewed(WithPeriodEnd):
    """The period boundary passed and a new period began, ending at `period_end`
    (required). Its invoice is collected apart: a failed charge is PaymentFailed."""

    name: ClassVar[str] = "period_renewed"
    period_end_required: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class PlanChanged(WithPeriodEnd):
    """SUB-5: the plan changed now; `period_end` is given when a new period starts (a
    change of interval), else the period keeps its end."""

    name: ClassVar[str] = "plan_changed"


@dataclass(frozen=True, slots=True)
class PaymentSucceeded(WithPeriodEnd):
    """The open balance of a past_due or suspended subscription was paid (SUB-8, SUB-9);
    `period_end` is given when restoring starts a new period."""

    name: ClassVar[str] = "payment_succeeded"


@dataclass(frozen=True, slots=True)
class PaymentFailed(Event):
    """SUB-8: a renewal payment failed. From active it starts `grace_days` of grace with
    retries `retry_days` days after now (only those before the grace ends)."""

    name: ClassVar[str] = "payment_failed"
    grace_days: int = 7
    retry_days: tuple[int, ...] = (1, 3, 5)

    def __post_init__(self) -> None:
        whole_number(self.grace_days, "grace days", least=0)
        if not isinstance(self.retry_days, tuple):
            raise InvalidInput("payment retry days: expected a list of whole numbers")
        for day in self.retry_days:
            whole_number(day, "payment retry days", least=1)


@dataclass(frozen=True, slots=True)
class GraceExpired(Event):
    """SUB-9: grace_ends_at has come and the balance is still open. The subscription is
    suspended; still unpaid `suspension_days` later it ends (SUB-11)."""

    name: ClassVar[str] = "grace_expired"
    suspension_days: int = 30

    def __post_init__(self) -> None:
        whole_number(self.suspension_days, "suspension days", least=0)


@dataclass(frozen=True, slots=True)
class SuspensionExpired(Event):
    """SUB-11: still unpaid `suspension_days` after the suspension: the subscription ends
    (reason unpaid), its open invoices become uncollectible, data is kept
    `retention_days` (the plan's) and then purged."""

    name: ClassVar[str] = "suspension_expired"
    retention_days: int

    def __post_init__(self) -> None:
        whole_number(self.retention_days, "retention days", least=0)


@dataclass(frozen=True, slots=True)
class CancelRequested(Event):
    """SUB-7: cancel at the end of the current period."""

    name: ClassVar[str] = "cancel_requested"


@dataclass(frozen=True, slots=True)
class CancelUndone(Event):
    """SUB-7: resume, i.e. undo a waiting cancellation before the period ends."""

    name: ClassVar[str] = "cancel_undone"


@dataclass(frozen=True, slots=True)
class PeriodEnded(Event):
    """SUB-7: the period of a canceling subscription ended; data is kept
    `retention_days` (the plan's) and then purged."""

    name: ClassVar[str] = "period_ended"
    retention_days: int

    def __post_init__(self) -> None:
        whole_number(self.retention_days, "retention days", least=0)


@dataclass(frozen=True, slots=True)
class RetentionExpired(Event):
    """SUB-7: retention_ends_at has come: purge the data."""

    name: ClassVar[str] = "retention_expired"


# -- SUB-15: a plan's own trial, which converts into the paid plan at its end (issue 17)
@dataclass(frozen=True, slots=True)
class PaidTrialStarted(Event):
    """SUB-15: checkout of a plan with `trial_days` saved a payment method; the plan's
    trial of `days` days begins, and converts into the paid plan at its end."""

    name: ClassVar[str] = "paid_trial_started"
    days: int

    def __post_init__(self) -> None:
        whole_number(self.days, "trial days", least=1)


@dataclass(frozen=True, slots=True)
class TrialConverted(WithPeriodEnd):
    """SUB-15: the plan's trial ended uncanceled; the first paid period began, ending at
    `period_end` (required). Its invoice is collected apart: a failed charge is
    PaymentFailed (past_due)."""

    name: ClassVar[str] = "trial_converted"
    period_end_required: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class TrialCanceled(Event):
    """SUB-15: canceled during the plan's trial: it ends now, nothing is charged; data is
    kept `retention_days` (the plan's) and then purged."""

    name: ClassVar[str] = "trial_canceled"
    retention_days: int

    def __post_init__(self) -> None:
        whole_number(self.retention_days, "retention days", least=0)


EVENTS: tuple[type[Event], ...] = (
    TrialStarted,
    TrialSessionsUsedUp,
    TrialDaysRanOut,
    CheckoutPaid,
    PeriodRenewed,
    PlanChanged,
    PaymentSucceeded,
    PaymentFailed,
    GraceExpired,
    SuspensionExpired,
    CancelRequested,
    CancelUndone,
    PeriodEnded,
    RetentionExpired,
    PaidTrialStarted,
    TrialConverted,
    TrialCanceled,
)


# ---------------------------------------------------------------- effects
@dataclass(frozen=True, slots=True)
class Effect:
    """Base of the effects: what the caller must carry out after a transition."""

    name: ClassVar[str] = "effect"


@dataclass(frozen=True, slots=True)
class Notify(Effect):
    """Send the notice (e-mail and webhook, through the outbox)."""

    name: ClassVar[str] = "notify"
    notice: Notice


@dataclass(frozen=True, slots=True)
class StopAgents(Effect):
    """Agents stop taking new sessions."""

    name: ClassVar[str] = "stop_agents"


@dataclass(frozen=True, slots=True)
class RestoreService(Effect):
    """Agents may run again."""

    name: ClassVar[str] = "restore_service"


@dataclass(frozen=True, slots=True)
class ReleasePhoneNumbers(Effect):
    """Release the resources the plan held; the caller emits an event naming them."""

    name: ClassVar[str] = "release_phone_numbers"


@dataclass(frozen=True, slots=True)
class StartTrial(Effect):
    """The trial runs until `ends_at` (TRI-1); at that time send TrialDaysRanOut."""

    name: ClassVar[str] = "start_trial"
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class StartPaidTrial(Effect):
    """The plan's trial runs until `ends_at` (SUB-15): remind 3 days before, and at that
    time convert it (TrialConverted)."""

    name: ClassVar[str] = "start_paid_trial"
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class StartGrace(Effect):
    """Grace runs until `ends_at` (SUB-8); at that time send GraceExpired."""

    name: ClassVar[str] = "start_grace"
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class StartSuspension(Effect):
    """Service is off until the open balance is paid; unpaid at `ends_at`, send
    SuspensionExpired (SUB-11)."""

    name: ClassVar[str] = "start_suspension"
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class EndSuspension(Effect):
    """Drop the scheduled end of a suspension: the balance was paid (SUB-11)."""

    name: ClassVar[str] = "end_suspension"


@dataclass(frozen=True, slots=True)
class WriteOffInvoices(Effect):
    """The open invoices become uncollectible (SUB-11)."""

    name: ClassVar[str] = "write_off_invoices"


@dataclass(frozen=True, slots=True)
class ScheduleRetry(Effect):
    """Retry the open renewal payment at `at` (SUB-8)."""

    name: ClassVar[str] = "schedule_retry"
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelRetries(Effect):
    """Drop the payment retries still scheduled."""

    name: ClassVar[str] = "cancel_retries"


@dataclass(frozen=True, slots=True)
class SchedulePurge(Effect):
    """Purge the data at `at` (SUB-7); at that time send RetentionExpired."""

    name: ClassVar[str] = "schedule_purge"
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelPurge(Effect):
    """Drop the scheduled purge: the organization subscribed again in time."""

    name: ClassVar[str] = "cancel_purge"


@dataclass(frozen=True, slots=True)
class PurgeData(Effect):
    """Delete the organization's retained data now (SUB-7)."""

    name: ClassVar[str] = "purge_data"
