"""Subscription life: states, events, ONE transition table, pure transitions, badges.

Implements SUB-1 (badges), SUB-3 (a paid subscription starts when checkout is paid),
SUB-5 (plan change while active), SUB-7 (cancel at period end, resume, end, release,
retention then purge; no pausing), SUB-8 (failed renewal: past_due with grace and retries),
SUB-9 (grace over unpaid: suspended; paying restores at once), SUB-10 (expired),
SUB-11 (a suspended subscription does not renew; unpaid `suspension_days` on, it ends),
TRI-1..TRI-4 (trial start, end by days or sessions, one trial ever),
SUB-15 (a plan's own trial, begun at checkout with a payment method, converting into the
paid plan at its end).

`transition(status, event, now)` looks up `(status.state, event.name)` in `TRANSITIONS`;
a pair not in the table, or a rule whose guard fails, raises IllegalTransition. A rule
gives the target state, a guard on the flags, and the effects the caller must carry out
(stop agents, notify, schedule a retry, ...): the domain decides, the caller acts.

Decisions a caller must know:
- `none` is "no subscription yet"; nothing leads back to it, so after any subscription
  (trial or paid) there is no way back to a trial (TRI-4). `trial_used` guards a `none`
  status loaded from storage for an organization whose trial already happened.
- A past_due or suspended subscription may be canceled (at period end) and resumed; it may
  NOT change plan (pay first). A canceling subscription may not change plan or renew
  (resume first); at period end the caller sends PeriodEnded instead of a renewal.
- PaymentFailed in past_due is a failed retry: the grace keeps its end. In suspended it is
  a failed attempt to pay the open balance.
- Suspension stops billing (SUB-11): `period_renewed` is not in the table for a suspended
  subscription, so no renewal can be billed while service is off. Paying restores it
  (PaymentSucceeded, with a new `period_end` when the paid period is over and a new one
  starts at the payment); unpaid `suspension_days` after the suspension, SuspensionExpired
  ends it: canceled, its open invoices written off. `ENDED_REASONS` names why each ending
  event ended a subscription.
- Deadlines live only in the states that use them: trial_ends_at in trialing,
  grace_ends_at in past_due, period_end in active/past_due/suspended, retention_ends_at in
  canceled (None once the data is purged). Status refuses other combinations.
- An expired trial keeps its data (no purge is scheduled); only SUB-7 schedules a purge.
- SUB-15: a plan's trial is `trialing` with `trial_converts` set. It begins from none, from
  the platform's trial or from an expired one (never after a paid subscription: a canceled
  one subscribes with no trial), converts at its end (TrialConverted: active, the first
  period billed; a failed charge then is PaymentFailed, past_due) and, canceled during it,
  ends at once with nothing charged (TrialCanceled: canceled, reason `canceled`, data
  kept the plan's retention days). The platform's trial (TRI-1..4) does neither: its rules
  are guarded `not_converting`, and the plan trial's rules `converting`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from tabkeeper.domain.errors import IllegalTransition, InvalidInput
from tabkeeper.domain.lifecycle_events import (
    EVENTS,
    CancelPurge,
    CancelRequested,
    CancelRetries,
    CancelUndone,
    CheckoutPaid,
    Effect,
    EndSuspension,
    Event,
    GraceExpired,
    Notice,
    Notify,
    PaidTrialStarted,
    PaymentFailed,
    PaymentSucceeded,
    PeriodEnded,
    PeriodRenewed,
    PlanChanged,
    PurgeData,
    ReleasePhoneNumbers,
    RestoreService,
    RetentionExpired,
    SchedulePurge,
    ScheduleRetry,
    StartGrace,
    StartPaidTrial,
    StartSuspension,
    StartTrial,
    StopAgents,
    SuspensionExpired,
    TrialCanceled,
    TrialConverted,
    TrialDaysRanOut,
    TrialSessionsUsedUp,
    TrialStarted,
    WithPeriodEnd,
    WriteOffInvoices,
    utc_or_none,
    whole_number,
)
from tabkeeper.domain.utc import require_utc

__all__ = [
    "ACTIVE_BADGE",
    "CANCELED_BADGE",
    "ENDED_REASONS",
    "EVENTS",
    "EXPIRED_BADGE",
    "NEW_ORGANIZATION",
    "NO_SUBSCRIPTION_BADGE",
    "PAYMENT_ISSUE_BADGE",
    "PAYMENT_PENDING_BANNER",
    "TRANSITIONS",
    "TRIAL_BADGE",
    "TRIAL_ENDING_SOON_BADGE",
    "TRIAL_ENDING_SOON_DAYS",
    "TRIAL_ENDING_SOON_PERCENT",
    "UPCOMING_BADGE",
    "CancelPurge",
    "CancelRequested",
    "CancelRetries",
    "CancelUndone",
    "CheckoutPaid",
    "Computed",
    "Effect",
    "EndSuspension",
    "Event",
    "GraceExpired",
    "Guard",
    "Notice",
    "Notify",
    "PaidTrialStarted",
    "PaymentFailed",
    "PaymentSucceeded",
    "PeriodEnded",
    "PeriodRenewed",
    "PlanChanged",
    "PurgeData",
    "ReleasePhoneNumbers",
    "RestoreService",
    "RetentionExpired",
    "Rule",
    "SchedulePurge",
    "ScheduleRetry",
    "StartGrace",
    "StartPaidTrial",
    "StartSuspension",
    "StartTrial",
    "State",
    "Status",
    "StopAgents",
    "SuspensionExpired",
    "TrialCanceled",
    "TrialConverted",
    "TrialDaysRanOut",
    "TrialSessionsUsedUp",
    "TrialStarted",
    "WriteOffInvoices",
    "badge",
    "transition",
]


class State(StrEnum):
    NONE = "none"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    CANCELED = "canceled"
    EXPIRED = "expired"


_BILLED = frozenset({State.ACTIVE, State.PAST_DUE, State.SUSPENDED})
_DEADLINE_STATES: Mapping[str, frozenset[State]] = {
    "trial_ends_at": frozenset({State.TRIALING}),
    "grace_ends_at": frozenset({State.PAST_DUE}),
    "period_end": _BILLED,
    "retention_ends_at": frozenset({State.CANCELED}),
}


@dataclass(frozen=True, slots=True)
class Status:
    """Where a subscription is in its life, with the deadlines the transitions set."""

    state: State = State.NONE
    cancel_at_period_end: bool = False
    """A cancellation waits for the period end (SUB-7); only in active/past_due/suspended."""
    trial_used: bool = False
    """The organization has had its one trial (TRI-4); never goes back to False."""
    trial_ends_at: datetime | None = None
    grace_ends_at: datetime | None = None
    period_end: datetime | None = None
    retention_ends_at: datetime | None = None
    """When the data of an ended subscription is purged; None once purged."""
    trial_converts: bool = False
    """SUB-15: the trial is a plan's own, converting into it at its end; only in trialing."""

    def __post_init__(self) -> None:
        if not isinstance(self.state, State):
            raise InvalidInput(f"state: expected one of {', '.join(State)}, got {self.state!r}")
        if self.trial_converts is True and self.state is not State.TRIALING:
            raise InvalidInput(f"trial_converts: a '{self.state}' subscription has no trial")
        for flag in ("cancel_at_period_end", "trial_used", "trial_converts"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(f"{flag}: expected true or false")
        if self.cancel_at_period_end and self.state not in _BILLED:
            raise InvalidInput(f"cancel_at_period_end: a '{self.state}' subscription cannot wait")
        for name, states in _DEADLINE_STATES.items():
            utc_or_none(self, name)
            if getattr(self, name) is not None and self.state not in states:
                raise InvalidInput(f"{name}: does not apply to a '{self.state}' subscription")

    def describe(self) -> str:
        """The state with the flags that guards look at, e.g. "active (canceling)"."""
        details = [
            text
            for on, text in (
                (self.cancel_at_period_end, "canceling"),
                (self.state is State.NONE and self.trial_used, "trial used"),
                (self.state is State.CANCELED and self.retention_ends_at is None, "purged"),
                (self.trial_converts, "plan trial"),
            )
            if on
        ]
        return f"{self.state} ({', '.join(details)})" if details else str(self.state)


NEW_ORGANIZATION = Status()
"""An organization that has not subscribed and has not had a trial."""


class Computed(StrEnum):
    """Effects whose data comes from `now` and the event; expanded by `transition`."""

    START_TRIAL = "start_trial"
    START_GRACE_AND_RETRIES = "start_grace_and_retries"
    START_SUSPENSION = "start_suspension"
    SCHEDULE_PURGE = "schedule_purge"
    CANCEL_PURGE = "cancel_purge"  # only while the data is not purged yet
    START_PAID_TRIAL = "start_paid_trial"  # SUB-15


class Guard(StrEnum):
    ALWAYS = "always"
    CANCELING = "canceling"
    NOT_CANCELING = "not_canceling"
    TRIAL_UNUSED = "trial_unused"
    NOT_PURGED = "not_purged"
    CONVERTING = "converting"  # SUB-15: a plan's own trial
    NOT_CONVERTING = "not_converting"  # the platform's trial (TRI-1..4)


@dataclass(frozen=True, slots=True)
class Rule:
    target: State
    effects: tuple[Effect | Computed, ...] = ()
    guard: Guard = Guard.ALWAYS


# ---------------------------------------------------------------- the table
_S = State
_STOP, _RESTORE, _RELEASE, _NO_RETRY = (
    StopAgents(),
    RestoreService(),
    ReleasePhoneNumbers(),
    CancelRetries(),
)
_N = {notice: Notify(notice) for notice in Notice}
_TRIAL_END = Rule(_S.EXPIRED, (_N[Notice.TRIAL_ENDED], _STOP), Guard.NOT_CONVERTING)
_CANCEL = (_N[Notice.CANCELED],)
_RESUME = (_N[Notice.CHANGED],)
_END = (_RELEASE, Computed.SCHEDULE_PURGE, _N[Notice.ENDED])

TRANSITIONS: Mapping[tuple[State, str], Rule] = MappingProxyType(
    {
        (_S.NONE, "trial_started"): Rule(_S.TRIALING, (Computed.START_TRIAL,), Guard.TRIAL_UNUSED),
        (_S.NONE, "checkout_paid"): Rule(_S.ACTIVE),
        (_S.TRIALING, "checkout_paid"): Rule(_S.ACTIVE),
        (_S.TRIALING, "trial_sessions_used_up"): _TRIAL_END,
        (_S.TRIALING, "trial_days_ran_out"): _TRIAL_END,
        (_S.EXPIRED, "checkout_paid"): Rule(_S.ACTIVE, (_RESTORE,)),
        (_S.CANCELED, "checkout_paid"): Rule(_S.ACTIVE, (Computed.CANCEL_PURGE, _RESTORE)),
        (_S.CANCELED, "retention_expired"): Rule(_S.CANCELED, (PurgeData(),), Guard.NOT_PURGED),
        (_S.ACTIVE, "period_renewed"): Rule(_S.ACTIVE, (_N[Notice.RENEWED],), Guard.NOT_CANCELING),
        (_S.ACTIVE, "plan_changed"): Rule(_S.ACTIVE, (_N[Notice.CHANGED],), Guard.NOT_CANCELING),
        (_S.ACTIVE, "payment_failed"): Rule(
            _S.PAST_DUE,
            (_N[Notice.PAYMENT_FAILED], _N[Notice.PAST_DUE], Computed.START_GRACE_AND_RETRIES),
            Guard.NOT_CANCELING,
        ),
        (_S.ACTIVE, "cancel_requested"): Rule(_S.ACTIVE, _CANCEL, Guard.NOT_CANCELING),
        (_S.ACTIVE, "cancel_undone"): Rule(_S.ACTIVE, _RESUME, Guard.CANCELING),
        (_S.ACTIVE, "period_ended"): Rule(_S.CANCELED, (_STOP, *_END), Guard.CANCELING),
        (_S.PAST_DUE, "period_renewed"): Rule(_S.PAST_DUE, (), Guard.NOT_CANCELING),
        (_S.PAST_DUE, "payment_failed"): Rule(_S.PAST_DUE, (_N[Notice.PAYMENT_FAILED],)),
        (_S.PAST_DUE, "payment_succeeded"): Rule(_S.ACTIVE, (_NO_RETRY, _N[Notice.RENEWED])),
        (_S.PAST_DUE, "grace_expired"): Rule(
            _S.SUSPENDED, (_NO_RETRY, _STOP, Computed.START_SUSPENSION, _N[Notice.SUSPENDED])
        ),
        (_S.PAST_DUE, "cancel_requested"): Rule(_S.PAST_DUE, _CANCEL, Guard.NOT_CANCELING),
        (_S.PAST_DUE, "cancel_undone"): Rule(_S.PAST_DUE, _RESUME, Guard.CANCELING),
        (_S.PAST_DUE, "period_ended"): Rule(
            _S.CANCELED, (_NO_RETRY, _STOP, *_END), Guard.CANCELING
        ),
        (_S.SUSPENDED, "payment_failed"): Rule(_S.SUSPENDED, (_N[Notice.PAYMENT_FAILED],)),
        (_S.SUSPENDED, "payment_succeeded"): Rule(
            _S.ACTIVE, (EndSuspension(), _RESTORE, _N[Notice.RENEWED])
        ),
        (_S.SUSPENDED, "suspension_expired"): Rule(_S.CANCELED, (WriteOffInvoices(), *_END)),
        (_S.SUSPENDED, "cancel_requested"): Rule(_S.SUSPENDED, _CANCEL, Guard.NOT_CANCELING),
        (_S.SUSPENDED, "cancel_undone"): Rule(_S.SUSPENDED, _RESUME, Guard.CANCELING),
        (_S.SUSPENDED, "period_ended"): Rule(
            _S.CANCELED, (EndSuspension(), *_END), Guard.CANCELING
        ),
        # SUB-15: a plan's own trial (issue 17)
        (_S.NONE, "paid_trial_started"): Rule(_S.TRIALING, (Computed.START_PAID_TRIAL,)),
        (_S.TRIALING, "paid_trial_started"): Rule(
            _S.TRIALING, (Computed.START_PAID_TRIAL,), Guard.NOT_CONVERTING
        ),
        (_S.EXPIRED, "paid_trial_started"): Rule(
            _S.TRIALING, (Computed.START_PAID_TRIAL, _RESTORE)
        ),
        (_S.TRIALING, "trial_converted"): Rule(
            _S.ACTIVE, (_N[Notice.TRIAL_CONVERTED],), Guard.CONVERTING
        ),
        (_S.TRIALING, "trial_canceled"): Rule(
            _S.CANCELED, (_STOP, _N[Notice.CANCELED], *_END), Guard.CONVERTING
        ),
    }
)
"""(state, event name) -> Rule. A pair not here is illegal."""

ENDED_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "period_ended": "canceled",
        "suspension_expired": "unpaid",
        "trial_days_ran_out": "trial_ended",
        "trial_sessions_used_up": "trial_ended",
        "trial_canceled": "canceled",
    }
)
"""Why a subscription ended (`ended_reason`), by the event that ended it (SUB-7, SUB-11,
TRI-2); every rule that ends a subscription (canceled or expired) is keyed here."""


def _guard_holds(guard: Guard, status: Status) -> bool:
    return {
        Guard.ALWAYS: True,
        Guard.CANCELING: status.cancel_at_period_end,
        Guard.NOT_CANCELING: not status.cancel_at_period_end,
        Guard.TRIAL_UNUSED: not status.trial_used,
        Guard.NOT_PURGED: status.retention_ends_at is not None,
        Guard.CONVERTING: status.trial_converts,
        Guard.NOT_CONVERTING: not status.trial_converts,
    }[guard]


def _days(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


def _expand(item: Effect | Computed, status: Status, event: Event, now: datetime) -> list[Effect]:
    if isinstance(item, Effect):
        return [item]
    if item is Computed.START_TRIAL and isinstance(event, TrialStarted):
        return [StartTrial(_days(now, event.days))]
    if item is Computed.START_GRACE_AND_RETRIES and isinstance(event, PaymentFailed):
        ends_at = _days(now, event.grace_days)
        retries = [_days(now, d) for d in sorted(set(event.retry_days))]
        return [StartGrace(ends_at), *(ScheduleRetry(at) for at in retries if at < ends_at)]
    if item is Computed.START_SUSPENSION and isinstance(event, GraceExpired):
        return [StartSuspension(_days(now, event.suspension_days))]
    if item is Computed.START_PAID_TRIAL and isinstance(event, PaidTrialStarted):
        return [StartPaidTrial(_days(now, event.days))]
    if item is Computed.SCHEDULE_PURGE and isinstance(
        event, PeriodEnded | SuspensionExpired | TrialCanceled
    ):
        return [SchedulePurge(_days(now, event.retention_days))]
    if item is Computed.CANCEL_PURGE:
        return [CancelPurge()] if status.retention_ends_at is not None else []
    raise AssertionError(f"{item} does not go with {event.name}")  # pragma: no cover


def _period_end(status: Status, event: Event, now: datetime) -> datetime | None:
    if isinstance(event, WithPeriodEnd) and event.period_end is not None:
        if event.period_end <= now:
            raise InvalidInput(
                f"{event.name}: period_end {event.period_end.isoformat()} is not after now"
            )
        return event.period_end
    return status.period_end


def _next_status(
    status: Status, rule: Rule, effects: list[Effect], event: Event, period_end: datetime | None
) -> Status:
    target = rule.target
    cancel = status.cancel_at_period_end
    if isinstance(event, CancelRequested | CancelUndone):
        cancel = isinstance(event, CancelRequested)
    deadlines: dict[str, datetime | None] = {
        "trial_ends_at": status.trial_ends_at,
        "grace_ends_at": status.grace_ends_at,
        "period_end": period_end,
        "retention_ends_at": status.retention_ends_at,
    }
    for effect in effects:
        if isinstance(effect, StartTrial | StartPaidTrial):
            deadlines["trial_ends_at"] = effect.ends_at
        elif isinstance(effect, StartGrace):
            deadlines["grace_ends_at"] = effect.ends_at
        elif isinstance(effect, SchedulePurge):
            deadlines["retention_ends_at"] = effect.at
        elif isinstance(effect, PurgeData):
            deadlines["retention_ends_at"] = None
    for name, states in _DEADLINE_STATES.items():
        if target not in states:
            deadlines[name] = None
    return replace(
        status,
        state=target,
        cancel_at_period_end=cancel and target in _BILLED,
        trial_used=status.trial_used or isinstance(event, TrialStarted),
        trial_converts=target is State.TRIALING
        and (status.trial_converts or isinstance(event, PaidTrialStarted)),
        **deadlines,
    )


def transition(status: Status, event: Event, now: datetime) -> tuple[Status, tuple[Effect, ...]]:
    """The status after `event` at `now`, and the effects to carry out, in order.

    Raises IllegalTransition when the table has no rule for (state, event) or the rule's
    guard refuses (the state text then names the flag, e.g. "active (canceling)"), and
    InvalidInput for bad event data (a period_end missing or not after now).
    """
    now = require_utc(now, "now")
    if not isinstance(status, Status) or not isinstance(event, Event):
        raise InvalidInput(f"transition: expected a Status and an Event, got {status!r}, {event!r}")
    rule = TRANSITIONS.get((status.state, event.name))
    if rule is None:
        raise IllegalTransition(str(status.state), event.name)
    if not _guard_holds(rule.guard, status):
        raise IllegalTransition(status.describe(), event.name)
    period_end = _period_end(status, event, now)
    effects = [e for item in rule.effects for e in _expand(item, status, event, now)]
    return _next_status(status, rule, effects, event, period_end), tuple(effects)


# ---------------------------------------------------------------- badges (SUB-1)
TRIAL_BADGE = "Trial subscription"
TRIAL_ENDING_SOON_BADGE = "Trial ending soon"
ACTIVE_BADGE = "Active subscription"
PAYMENT_ISSUE_BADGE = "Payment issue"
PAYMENT_PENDING_BANNER = "Payment pending"
CANCELED_BADGE = "Canceled subscription"
EXPIRED_BADGE = "Expired subscription"
UPCOMING_BADGE = "Upcoming subscription"
NO_SUBSCRIPTION_BADGE = "No subscription"

TRIAL_ENDING_SOON_DAYS = 2
"""TRI-3: "Trial ending soon" shows from this many days left ..."""
TRIAL_ENDING_SOON_PERCENT = 90
"""... or from this share of the trial sessions used."""


def badge(
    status: Status, now: datetime, trial_sessions_used: int = 0, trial_sessions: int | None = None
) -> str:
    """The badge of the subscription card (SUB-1, TRI-3).

    Payment trouble wins over a waiting cancellation: a past_due or suspended subscription
    shows "Payment issue" even while canceling. `none` shows "No subscription".
    """
    now = require_utc(now, "now")
    whole_number(trial_sessions_used, "trial sessions used", least=0)
    if trial_sessions is not None:
        whole_number(trial_sessions, "trial sessions", least=1)
    if status.state is State.TRIALING:
        ends_at = status.trial_ends_at
        days_soon = ends_at is not None and ends_at - now <= timedelta(TRIAL_ENDING_SOON_DAYS)
        sessions_soon = (
            trial_sessions is not None
            and trial_sessions_used * 100 >= trial_sessions * TRIAL_ENDING_SOON_PERCENT
        )
        return TRIAL_ENDING_SOON_BADGE if days_soon or sessions_soon else TRIAL_BADGE
    if status.state in (State.PAST_DUE, State.SUSPENDED):
        return PAYMENT_ISSUE_BADGE
    if status.state is State.CANCELED or status.cancel_at_period_end:
        return CANCELED_BADGE
    return {
        State.NONE: NO_SUBSCRIPTION_BADGE,
        State.ACTIVE: ACTIVE_BADGE,
        State.EXPIRED: EXPIRED_BADGE,
    }[status.state]
