"""Subscription life: the transition table, guards, effects and badges (SUB-1, SUB-3,
SUB-5, SUB-7, SUB-8, SUB-9, SUB-10, TRI-1..TRI-4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import IllegalTransition, InvalidInput
from tabkeeper.domain.lifecycle import (
    ACTIVE_BADGE,
    CANCELED_BADGE,
    ENDED_REASONS,
    EVENTS,
    EXPIRED_BADGE,
    NEW_ORGANIZATION,
    NO_SUBSCRIPTION_BADGE,
    PAYMENT_ISSUE_BADGE,
    TRANSITIONS,
    TRIAL_BADGE,
    TRIAL_ENDING_SOON_BADGE,
    UPCOMING_BADGE,
    CancelPurge,
    CancelRequested,
    CancelRetries,
    CancelUndone,
    CheckoutPaid,
    Effect,
    EndSuspension,
    Event,
    GraceExpired,
    Guard,
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
    StartSuspension,
    StartTrial,
    State,
    Status,
    StopAgents,
    SuspensionExpired,
    TrialCanceled,
    TrialConverted,
    TrialDaysRanOut,
    TrialSessionsUsedUp,
    TrialStarted,
    WriteOffInvoices,
    badge,
    transition,
)

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PERIOD_END = NOW + 20 * DAY
BILLED = {State.ACTIVE, State.PAST_DUE, State.SUSPENDED}


def names(effects: tuple[Effect, ...]) -> list[str]:
    """Effects as short names; Notify shows its notice kind."""
    return [f"notify:{e.notice}" if isinstance(e, Notify) else e.name for e in effects]


# One status per state that every rule of the table accepts, with its deadlines set.
STATUS: dict[State, Status] = {
    State.NONE: Status(),
    State.TRIALING: Status(State.TRIALING, trial_used=True, trial_ends_at=NOW + 4 * DAY),
    State.ACTIVE: Status(State.ACTIVE, trial_used=True, period_end=PERIOD_END),
    State.PAST_DUE: Status(State.PAST_DUE, grace_ends_at=NOW + 3 * DAY, period_end=PERIOD_END),
    State.SUSPENDED: Status(State.SUSPENDED, period_end=PERIOD_END),
    State.CANCELED: Status(State.CANCELED, trial_used=True, retention_ends_at=NOW + 9 * DAY),
    State.EXPIRED: Status(State.EXPIRED, trial_used=True),
}


def canceling(state: State) -> Status:
    """The status of `state` waiting for a cancellation; for trialing (no cancellation
    waits there) the plan's own trial, the flag its rules are guarded by (SUB-15)."""
    if state is State.TRIALING:
        return replace(STATUS[state], trial_converts=True)
    return replace(STATUS[state], cancel_at_period_end=True)


SAMPLE_EVENTS: dict[str, Event] = {
    "trial_started": TrialStarted(days=14),
    "trial_sessions_used_up": TrialSessionsUsedUp(),
    "trial_days_ran_out": TrialDaysRanOut(),
    "checkout_paid": CheckoutPaid(period_end=NOW + 31 * DAY),
    "period_renewed": PeriodRenewed(period_end=NOW + 31 * DAY),
    "plan_changed": PlanChanged(),
    "payment_succeeded": PaymentSucceeded(),
    "payment_failed": PaymentFailed(),
    "grace_expired": GraceExpired(),
    "cancel_requested": CancelRequested(),
    "cancel_undone": CancelUndone(),
    "period_ended": PeriodEnded(retention_days=30),
    "retention_expired": RetentionExpired(),
    "suspension_expired": SuspensionExpired(retention_days=30),
    "paid_trial_started": PaidTrialStarted(days=14),
    "trial_converted": TrialConverted(period_end=NOW + 31 * DAY),
    "trial_canceled": TrialCanceled(retention_days=30),
}

RETRIES = ["start_grace", "schedule_retry", "schedule_retry", "schedule_retry"]
ENDED = ["release_phone_numbers", "schedule_purge", "notify:subscription.ended"]
S = State
# The table written out independently: (state, event) -> (target, effects, from canceling).
EXPECTED: dict[tuple[State, str], tuple[State, list[str], bool]] = {
    (S.NONE, "trial_started"): (S.TRIALING, ["start_trial"], False),
    (S.NONE, "checkout_paid"): (S.ACTIVE, [], False),
    (S.TRIALING, "checkout_paid"): (S.ACTIVE, [], False),
    (S.TRIALING, "trial_sessions_used_up"): (
        S.EXPIRED,
        ["notify:trial.ended", "stop_agents"],
        False,
    ),
    (S.TRIALING, "trial_days_ran_out"): (S.EXPIRED, ["notify:trial.ended", "stop_agents"], False),
    (S.EXPIRED, "checkout_paid"): (S.ACTIVE, ["restore_service"], False),
    (S.CANCELED, "checkout_paid"): (S.ACTIVE, ["cancel_purge", "restore_service"], False),
    (S.CANCELED, "retention_expired"): (S.CANCELED, ["purge_data"], False),
    (S.ACTIVE, "period_renewed"): (S.ACTIVE, ["notify:subscription.renewed"], False),
    (S.ACTIVE, "plan_changed"): (S.ACTIVE, ["notify:subscription.changed"], False),
    (S.ACTIVE, "payment_failed"): (
        S.PAST_DUE,
        ["notify:payment.failed", "notify:subscription.past_due", *RETRIES],
        False,
    ),
    (S.ACTIVE, "cancel_requested"): (S.ACTIVE, ["notify:subscription.canceled"], False),
    (S.ACTIVE, "cancel_undone"): (S.ACTIVE, ["notify:subscription.changed"], True),
    (S.ACTIVE, "period_ended"): (S.CANCELED, ["stop_agents", *ENDED], True),
    (S.PAST_DUE, "period_renewed"): (S.PAST_DUE, [], False),
    (S.PAST_DUE, "payment_failed"): (S.PAST_DUE, ["notify:payment.failed"], False),
    (S.PAST_DUE, "payment_succeeded"): (
        S.ACTIVE,
        ["cancel_retries", "notify:subscription.renewed"],
        False,
    ),
    (S.PAST_DUE, "grace_expired"): (
        S.SUSPENDED,
        ["cancel_retries", "stop_agents", "start_suspension", "notify:subscription.suspended"],
        False,
    ),
    (S.PAST_DUE, "cancel_requested"): (S.PAST_DUE, ["notify:subscription.canceled"], False),
    (S.PAST_DUE, "cancel_undone"): (S.PAST_DUE, ["notify:subscription.changed"], True),
    (S.PAST_DUE, "period_ended"): (S.CANCELED, ["cancel_retries", "stop_agents", *ENDED], True),
    (S.SUSPENDED, "payment_failed"): (S.SUSPENDED, ["notify:payment.failed"], False),
    (S.SUSPENDED, "payment_succeeded"): (
        S.ACTIVE,
        ["end_suspension", "restore_service", "notify:subscription.renewed"],
        False,
    ),
    # SUB-11: unpaid suspension_days on, it ends, with or without a waiting cancellation.
    (S.SUSPENDED, "suspension_expired"): (S.CANCELED, ["write_off_invoices", *ENDED], False),
    (S.SUSPENDED, "cancel_requested"): (S.SUSPENDED, ["notify:subscription.canceled"], False),
    (S.SUSPENDED, "cancel_undone"): (S.SUSPENDED, ["notify:subscription.changed"], True),
    (S.SUSPENDED, "period_ended"): (S.CANCELED, ["end_suspension", *ENDED], True),
    # SUB-15: a plan's own trial; True here means the status is in a converting trial.
    (S.NONE, "paid_trial_started"): (S.TRIALING, ["start_paid_trial"], False),
    (S.TRIALING, "paid_trial_started"): (S.TRIALING, ["start_paid_trial"], False),
    (S.EXPIRED, "paid_trial_started"): (S.TRIALING, ["start_paid_trial", "restore_service"], False),
    (S.TRIALING, "trial_converted"): (S.ACTIVE, ["notify:subscription.trial_converted"], True),
    (S.TRIALING, "trial_canceled"): (
        S.CANCELED,
        ["stop_agents", "notify:subscription.canceled", *ENDED],
        True,
    ),
}

ALL_PAIRS = [(state, event.name) for state in State for event in EVENTS]


def test_table_is_the_expected_table() -> None:
    """SUB-1..SUB-10, TRI-1..TRI-4: the table holds exactly the legal pairs."""
    assert set(TRANSITIONS) == set(EXPECTED)
    assert {e.name for e in EVENTS} == set(SAMPLE_EVENTS)
    assert len({e.name for e in EVENTS}) == len(EVENTS)


@pytest.mark.parametrize(("state", "event_name"), ALL_PAIRS, ids=[f"{s}-{e}" for s, e in ALL_PAIRS])
def test_every_state_event_pair(state: State, event_name: str) -> None:
    """SUB-1..SUB-10, TRI-1..TRI-4: legal pairs give the target and effects; every other
    pair raises IllegalTransition naming the state and the event."""
    event = SAMPLE_EVENTS[event_name]
    expected = EXPECTED.get((state, event_name))
    if expected is None:
        with pytest.raises(IllegalTransition) as caught:
            transition(STATUS[state], event, NOW)
        assert caught.value.state == state
        assert caught.value.event == event_name
        assert f"'{state}'" in caught.value.message
        assert f"'{event_name}'" in caught.value.message
        return
    target, effects, needs_canceling = expected
    before = canceling(state) if needs_canceling else STATUS[state]
    after, done = transition(before, event, NOW)
    assert after.state is target
    assert names(done) == effects


GUARDED = [pair for pair, rule in TRANSITIONS.items() if rule.guard is not Guard.ALWAYS]


@pytest.mark.parametrize(("state", "event_name"), GUARDED, ids=[f"{s}-{e}" for s, e in GUARDED])
def test_guard_refusals_name_the_flag(state: State, event_name: str) -> None:
    """SUB-7, TRI-4: a rule whose flag guard fails raises IllegalTransition with the flag
    in the state text."""
    guard = TRANSITIONS[(state, event_name)].guard
    refused_status, detail = {
        Guard.CANCELING: (STATUS[state], None),
        Guard.NOT_CANCELING: (canceling(state) if state in BILLED else None, "canceling"),
        Guard.TRIAL_UNUSED: (replace(STATUS[state], trial_used=True), "trial used"),
        Guard.NOT_PURGED: (replace(STATUS[state], retention_ends_at=None), "purged"),
        Guard.CONVERTING: (STATUS[state], None),
        Guard.NOT_CONVERTING: (canceling(state) if state is State.TRIALING else None, "plan trial"),
    }[guard]
    assert refused_status is not None
    with pytest.raises(IllegalTransition) as caught:
        transition(refused_status, SAMPLE_EVENTS[event_name], NOW)
    assert caught.value.event == event_name
    if detail is None:
        assert caught.value.state == str(state)
    else:
        assert caught.value.state == f"{state} ({detail})"
        assert f"({detail})" in caught.value.message


# ---------------------------------------------------------------- named rules
def test_tri_1_trial_starts_with_days() -> None:
    """TRI-1: a new organization starts trialing; the trial ends after its days."""
    after, effects = transition(NEW_ORGANIZATION, TrialStarted(days=14), NOW)
    assert after == Status(State.TRIALING, trial_used=True, trial_ends_at=NOW + 14 * DAY)
    assert effects == (StartTrial(NOW + 14 * DAY),)


@pytest.mark.parametrize("event", [TrialDaysRanOut(), TrialSessionsUsedUp()])
def test_tri_2_trial_ends_by_days_or_sessions(event: Event) -> None:
    """TRI-2: the trial ends by days or by sessions, whichever first, and expires with
    the notice trial.ended; agents stop (SUB-10)."""
    after, effects = transition(STATUS[State.TRIALING], event, NOW)
    assert after == Status(State.EXPIRED, trial_used=True)
    assert effects == (Notify(Notice.TRIAL_ENDED), StopAgents())


@pytest.mark.parametrize(
    "status",
    [
        Status(State.NONE, trial_used=True),
        STATUS[State.TRIALING],
        STATUS[State.ACTIVE],
        STATUS[State.EXPIRED],
        STATUS[State.CANCELED],
        Status(State.CANCELED, trial_used=False),
    ],
)
def test_tri_4_no_second_trial(status: Status) -> None:
    """TRI-4: one trial per organization, ever; after a paid plan is canceled there is no
    way back to a trial."""
    with pytest.raises(IllegalTransition):
        transition(status, TrialStarted(), NOW)


def test_tri_4_trial_used_survives_the_whole_life() -> None:
    """TRI-4: trial_used is set by the trial and kept through paid life and cancellation."""
    status, _ = transition(NEW_ORGANIZATION, TrialStarted(days=14), NOW)
    status, _ = transition(status, CheckoutPaid(period_end=NOW + 31 * DAY), NOW + DAY)
    status, _ = transition(status, CancelRequested(), NOW + 2 * DAY)
    status, _ = transition(status, PeriodEnded(retention_days=30), NOW + 31 * DAY)
    assert status.state is State.CANCELED and status.trial_used


@pytest.mark.parametrize("state", [State.NONE, State.TRIALING, State.EXPIRED, State.CANCELED])
def test_sub_3_checkout_paid_starts_the_subscription(state: State) -> None:
    """SUB-3: the subscription starts (active) when the first payment succeeds."""
    after, _ = transition(STATUS[state], CheckoutPaid(period_end=PERIOD_END), NOW)
    assert after == Status(State.ACTIVE, trial_used=STATUS[state].trial_used, period_end=PERIOD_END)


def test_sub_5_plan_change_while_active() -> None:
    """SUB-5: a plan change keeps the period end, or takes a new one on a new interval."""
    active = STATUS[State.ACTIVE]
    same, effects = transition(active, PlanChanged(), NOW)
    assert same == active
    assert effects == (Notify(Notice.CHANGED),)
    new_end = NOW + 365 * DAY
    longer, _ = transition(active, PlanChanged(period_end=new_end), NOW)
    assert longer.period_end == new_end


@pytest.mark.parametrize("status", [STATUS[State.PAST_DUE], canceling(State.ACTIVE)])
def test_sub_5_no_plan_change_while_past_due_or_canceling(status: Status) -> None:
    """SUB-5: a past_due subscription pays first; a canceling one resumes first."""
    with pytest.raises(IllegalTransition):
        transition(status, PlanChanged(), NOW)


def test_sub_7_cancel_resume_and_end_with_purge() -> None:
    """SUB-7: cancel at period end, undo until then; at period end agents stop, phone
    numbers are released, data is kept retention days and then purged."""
    active = STATUS[State.ACTIVE]
    waiting, effects = transition(active, CancelRequested(), NOW)
    assert waiting.state is State.ACTIVE and waiting.cancel_at_period_end
    assert effects == (Notify(Notice.CANCELED),)
    assert badge(waiting, NOW) == CANCELED_BADGE
    with pytest.raises(IllegalTransition, match=r"active \(canceling\)"):
        transition(waiting, CancelRequested(), NOW)
    with pytest.raises(IllegalTransition, match=r"active \(canceling\)"):
        transition(waiting, PeriodRenewed(period_end=PERIOD_END + 30 * DAY), PERIOD_END)

    resumed, _ = transition(waiting, CancelUndone(), NOW + DAY)
    assert resumed == active
    with pytest.raises(IllegalTransition, match="'active'"):
        transition(resumed, CancelUndone(), NOW + DAY)
    with pytest.raises(IllegalTransition, match="'active'"):
        transition(resumed, PeriodEnded(retention_days=30), PERIOD_END)

    waiting, _ = transition(resumed, CancelRequested(), NOW + 2 * DAY)
    ended, effects = transition(waiting, PeriodEnded(retention_days=30), PERIOD_END)
    purge_at = PERIOD_END + 30 * DAY
    assert ended == Status(State.CANCELED, trial_used=True, retention_ends_at=purge_at)
    assert effects == (
        StopAgents(),
        ReleasePhoneNumbers(),
        SchedulePurge(purge_at),
        Notify(Notice.ENDED),
    )
    assert badge(ended, PERIOD_END) == CANCELED_BADGE

    purged, effects = transition(ended, RetentionExpired(), purge_at)
    assert effects == (PurgeData(),)
    assert purged.retention_ends_at is None
    with pytest.raises(IllegalTransition, match=r"canceled \(purged\)"):
        transition(purged, RetentionExpired(), purge_at)


def test_sub_7_subscribe_again_after_cancel() -> None:
    """SUB-7: no pausing; cancel and subscribe again. Before the purge the purge is
    dropped; after it there is nothing to drop."""
    ended = STATUS[State.CANCELED]
    _, effects = transition(ended, CheckoutPaid(period_end=PERIOD_END), NOW)
    assert effects == (CancelPurge(), RestoreService())
    purged, _ = transition(ended, RetentionExpired(), NOW)
    _, effects = transition(purged, CheckoutPaid(period_end=PERIOD_END), NOW)
    assert effects == (RestoreService(),)


def test_sub_7_zero_retention_purges_at_once() -> None:
    """SUB-7: retention 0 days schedules the purge at the period end itself."""
    _, effects = transition(canceling(State.ACTIVE), PeriodEnded(retention_days=0), NOW)
    assert SchedulePurge(NOW) in effects


def test_sub_8_failed_renewal_starts_grace_and_retries() -> None:
    """SUB-8: a failed renewal makes the subscription past_due with grace ending 7 days
    after the failure, retries at 1, 3 and 5 days; a success makes it active again."""
    failed, effects = transition(STATUS[State.ACTIVE], PaymentFailed(), NOW)
    assert failed.state is State.PAST_DUE
    assert failed.grace_ends_at == NOW + 7 * DAY
    assert failed.period_end == PERIOD_END
    assert effects == (
        Notify(Notice.PAYMENT_FAILED),
        Notify(Notice.PAST_DUE),
        StartGrace(NOW + 7 * DAY),
        ScheduleRetry(NOW + 1 * DAY),
        ScheduleRetry(NOW + 3 * DAY),
        ScheduleRetry(NOW + 5 * DAY),
    )
    assert badge(failed, NOW) == PAYMENT_ISSUE_BADGE

    retry_failed, effects = transition(failed, PaymentFailed(grace_days=30), NOW + DAY)
    assert retry_failed == failed  # the grace keeps its end
    assert effects == (Notify(Notice.PAYMENT_FAILED),)

    paid, effects = transition(retry_failed, PaymentSucceeded(), NOW + 3 * DAY)
    assert paid == STATUS[State.ACTIVE]
    assert effects == (CancelRetries(), Notify(Notice.RENEWED))


@pytest.mark.parametrize(
    ("grace_days", "retry_days", "retries"),
    [
        (7, (1, 3, 5), [1, 3, 5]),
        (5, (1, 3, 5), [1, 3]),  # a retry at the grace end itself is too late
        (4, (5, 1, 3, 1), [1, 3]),  # order and duplicates do not matter
        (0, (1,), []),
        (14, (), []),
    ],
)
def test_sub_8_retries_fall_inside_grace(
    grace_days: int, retry_days: tuple[int, ...], retries: list[int]
) -> None:
    """SUB-8: the grace is configurable; retries happen only inside it."""
    _, effects = transition(STATUS[State.ACTIVE], PaymentFailed(grace_days, retry_days), NOW)
    assert StartGrace(NOW + grace_days * DAY) in effects
    assert [e.at for e in effects if isinstance(e, ScheduleRetry)] == [
        NOW + d * DAY for d in retries
    ]


def test_sub_9_suspension_and_restore_on_payment() -> None:
    """SUB-9: when grace ends unpaid agents stop; paying restores service at once."""
    suspended, effects = transition(STATUS[State.PAST_DUE], GraceExpired(), NOW)
    assert suspended == Status(State.SUSPENDED, period_end=PERIOD_END)
    suspension_ends = NOW + 30 * DAY
    assert effects == (
        CancelRetries(),
        StopAgents(),
        StartSuspension(suspension_ends),
        Notify(Notice.SUSPENDED),
    )
    assert badge(suspended, NOW) == PAYMENT_ISSUE_BADGE
    still, effects = transition(suspended, PaymentFailed(), NOW + DAY)
    assert still == suspended and effects == (Notify(Notice.PAYMENT_FAILED),)
    new_end = NOW + 30 * DAY
    restored, effects = transition(suspended, PaymentSucceeded(period_end=new_end), NOW + DAY)
    assert restored == Status(State.ACTIVE, period_end=new_end)
    assert effects == (EndSuspension(), RestoreService(), Notify(Notice.RENEWED))


def test_sub_11_a_suspended_subscription_is_not_renewed_and_ends_unpaid() -> None:
    """SUB-11: suspension stops billing (no renewal while suspended); unpaid
    `suspension_days` after the suspension it ends (reason unpaid), its open invoices
    written off and its data kept for the retention days."""
    suspended, effects = transition(STATUS[State.PAST_DUE], GraceExpired(suspension_days=10), NOW)
    assert StartSuspension(NOW + 10 * DAY) in effects
    with pytest.raises(IllegalTransition):
        transition(suspended, PeriodRenewed(period_end=PERIOD_END + 30 * DAY), PERIOD_END)
    ended, effects = transition(suspended, SuspensionExpired(retention_days=5), NOW + 10 * DAY)
    assert ended == Status(State.CANCELED, retention_ends_at=NOW + 15 * DAY)
    assert effects[0] == WriteOffInvoices()
    assert Notify(Notice.ENDED) in effects and StopAgents() not in effects
    assert ENDED_REASONS["suspension_expired"] == "unpaid"
    for bad in (-1, 1.5, True, "30"):
        with pytest.raises(InvalidInput):
            GraceExpired(suspension_days=bad)  # type: ignore[arg-type]


def test_sub_7_past_due_may_cancel_and_keeps_the_flag_through_suspension() -> None:
    """SUB-7, SUB-9: a past_due subscription may be canceled; the waiting cancellation
    survives suspension and restore, and ends the subscription at period end."""
    waiting, _ = transition(STATUS[State.PAST_DUE], CancelRequested(), NOW)
    suspended, _ = transition(waiting, GraceExpired(), NOW + DAY)
    assert suspended.cancel_at_period_end
    restored, _ = transition(suspended, PaymentSucceeded(), NOW + 2 * DAY)
    assert restored.state is State.ACTIVE and restored.cancel_at_period_end
    ended, effects = transition(suspended, PeriodEnded(retention_days=10), PERIOD_END)
    assert ended.state is State.CANCELED and not ended.cancel_at_period_end
    assert StopAgents() not in effects  # already stopped by the suspension


# ---------------------------------------------------------------- badges (SUB-1)
@pytest.mark.parametrize(
    ("status", "used", "total", "expected"),
    [
        (STATUS[State.NONE], 0, None, NO_SUBSCRIPTION_BADGE),
        (STATUS[State.TRIALING], 0, 50, TRIAL_BADGE),  # 4 days left
        (STATUS[State.TRIALING], 44, 50, TRIAL_BADGE),  # 88%
        (STATUS[State.TRIALING], 45, 50, TRIAL_ENDING_SOON_BADGE),  # 90%
        (STATUS[State.TRIALING], 9, 10, TRIAL_ENDING_SOON_BADGE),
        (Status(State.TRIALING, trial_ends_at=NOW + 2 * DAY), 0, 50, TRIAL_ENDING_SOON_BADGE),
        (
            Status(State.TRIALING, trial_ends_at=NOW + 2 * DAY + timedelta(seconds=1)),
            0,
            50,
            TRIAL_BADGE,
        ),
        (Status(State.TRIALING), 0, None, TRIAL_BADGE),
        (STATUS[State.ACTIVE], 0, None, ACTIVE_BADGE),
        (canceling(State.ACTIVE), 0, None, CANCELED_BADGE),
        (STATUS[State.PAST_DUE], 0, None, PAYMENT_ISSUE_BADGE),
        (canceling(State.PAST_DUE), 0, None, PAYMENT_ISSUE_BADGE),
        (STATUS[State.SUSPENDED], 0, None, PAYMENT_ISSUE_BADGE),
        (STATUS[State.CANCELED], 0, None, CANCELED_BADGE),
        (STATUS[State.EXPIRED], 0, None, EXPIRED_BADGE),
    ],
)
def test_sub_1_badges(status: Status, used: int, total: int | None, expected: str) -> None:
    """SUB-1, TRI-3: the badge of every state; "Trial ending soon" from 2 days left or
    90% of the trial sessions used."""
    assert badge(status, NOW, used, total) == expected


def test_sub_1_upcoming_badge_text() -> None:
    """SUB-1: a scheduled change shows an "Upcoming subscription" card."""
    assert UPCOMING_BADGE == "Upcoming subscription"


@pytest.mark.parametrize(("used", "total"), [(-1, 50), (True, 50), (0, 0), (0, -3), (1.5, 50)])
def test_badge_refuses_bad_counts(used: object, total: object) -> None:
    with pytest.raises(InvalidInput, match="trial sessions"):
        badge(STATUS[State.TRIALING], NOW, used, total)  # type: ignore[arg-type]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TrialStarted(days=0), "trial days"),
        (lambda: TrialStarted(days=True), "trial days"),
        (lambda: PaymentFailed(grace_days=-1), "grace days"),
        (lambda: PaymentFailed(retry_days=[1, 3]), "retry days"),
        (lambda: PaymentFailed(retry_days=(0,)), "retry days"),
        (lambda: PeriodEnded(retention_days=-1), "retention days"),
        (lambda: CheckoutPaid(), "checkout_paid: period_end is required"),
        (lambda: PeriodRenewed(), "period_renewed: period_end is required"),
        (lambda: PlanChanged(period_end=datetime(2026, 2, 1)), "period_end.*no timezone"),
    ],
)
def test_bad_event_data_is_refused(make: Callable[[], Event], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        make()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"state": "active"}, "state: expected one of"),
        ({"state": State.ACTIVE, "trial_used": 1}, "trial_used"),
        ({"state": State.TRIALING, "cancel_at_period_end": True}, "cancel_at_period_end"),
        ({"state": State.ACTIVE, "trial_ends_at": NOW}, "trial_ends_at"),
        ({"state": State.ACTIVE, "grace_ends_at": NOW}, "grace_ends_at"),
        ({"state": State.CANCELED, "period_end": NOW}, "period_end"),
        ({"state": State.ACTIVE, "retention_ends_at": NOW}, "retention_ends_at"),
        ({"state": State.ACTIVE, "period_end": datetime(2026, 2, 1)}, "no timezone"),
    ],
)
def test_bad_status_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Status(**kwargs)  # type: ignore[arg-type]


def test_status_deadlines_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    status = Status(State.ACTIVE, period_end=datetime(2026, 2, 1, 1, 0, tzinfo=paris))
    assert status.period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert status.period_end.tzinfo is UTC


def test_transition_refuses_bad_input_and_changes_nothing() -> None:
    active = STATUS[State.ACTIVE]
    with pytest.raises(InvalidInput, match="now"):
        transition(active, PlanChanged(), datetime(2026, 1, 10))
    with pytest.raises(InvalidInput, match="expected a Status and an Event"):
        transition(active, "plan_changed", NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="plan_changed: period_end .* is not after now"):
        transition(active, PlanChanged(period_end=NOW), NOW)
    with pytest.raises(InvalidInput, match="checkout_paid: period_end"):
        transition(NEW_ORGANIZATION, CheckoutPaid(period_end=NOW - DAY), NOW)
    assert active == STATUS[State.ACTIVE]


# ---------------------------------------------------------------- property
def _reachable() -> set[State]:
    seen, todo = {State.NONE}, [State.NONE]
    while todo:
        state = todo.pop()
        for (source, _), rule in TRANSITIONS.items():
            if source is state and rule.target not in seen:
                seen.add(rule.target)
                todo.append(rule.target)
    return seen


REACHABLE = _reachable()

EVENT_MAKERS: list[Callable[[datetime], Event]] = [
    lambda now: TrialStarted(days=14),
    lambda now: TrialSessionsUsedUp(),
    lambda now: TrialDaysRanOut(),
    lambda now: CheckoutPaid(period_end=now + 30 * DAY),
    lambda now: PeriodRenewed(period_end=now + 30 * DAY),
    lambda now: PlanChanged(),
    lambda now: PlanChanged(period_end=now + 365 * DAY),
    lambda now: PaymentSucceeded(),
    lambda now: PaymentFailed(),
    lambda now: PaymentFailed(grace_days=2, retry_days=(1, 2)),
    lambda now: GraceExpired(),
    lambda now: CancelRequested(),
    lambda now: CancelUndone(),
    lambda now: PeriodEnded(retention_days=30),
    lambda now: RetentionExpired(),
]


@given(
    start_used=st.booleans(),
    steps=st.lists(
        st.tuples(st.sampled_from(EVENT_MAKERS), st.integers(min_value=0, max_value=72)),
        max_size=40,
    ),
)
def test_property_random_event_sequences_stay_in_the_table(
    start_used: bool, steps: list[tuple[Callable[[datetime], Event], int]]
) -> None:
    """Property: any sequence of events either raises IllegalTransition (and changes
    nothing) or yields a state reachable in the table; trial_used never goes back from
    True to False; deadlines only sit in the states that use them (Status checks)."""
    status, now = Status(trial_used=start_used), NOW
    for make, hours in steps:
        now += timedelta(hours=hours)
        event = make(now)
        try:
            after, _ = transition(status, event, now)
        except IllegalTransition as refused:
            assert refused.event == event.name
            continue
        assert after.state in REACHABLE
        assert after.state is TRANSITIONS[(status.state, event.name)].target
        assert after.trial_used or not status.trial_used
        status = after


# ---------------------------------------------------------------- SUB-15 a plan's own trial
def test_sub15_plan_trial_converts_or_is_canceled_and_the_free_trial_cannot() -> None:
    """SUB-15: a plan's trial (trial_converts) converts into active with the first
    period's end, or is canceled at once (reason canceled, purge scheduled); the
    platform's trial (TRI-1..4) can do neither, and a plan trial does not expire by the
    free trial's days or sessions."""
    began, effects = transition(NEW_ORGANIZATION, PaidTrialStarted(days=14), NOW)
    assert began.state is State.TRIALING and began.trial_converts
    assert began.trial_ends_at == NOW + 14 * DAY and not began.trial_used
    assert names(effects) == ["start_paid_trial"]
    active, _ = transition(began, TrialConverted(period_end=NOW + 31 * DAY), NOW + 14 * DAY)
    assert (active.state, active.trial_converts, active.period_end) == (
        State.ACTIVE,
        False,
        NOW + 31 * DAY,
    )
    ended, _ = transition(began, TrialCanceled(retention_days=30), NOW)
    assert ended.state is State.CANCELED and ended.retention_ends_at == NOW + 30 * DAY
    assert ENDED_REASONS["trial_canceled"] == "canceled"
    free = STATUS[State.TRIALING]
    for event in (TrialConverted(period_end=NOW + DAY), TrialCanceled(retention_days=1)):
        with pytest.raises(IllegalTransition):
            transition(free, event, NOW)
    for event in (TrialDaysRanOut(), TrialSessionsUsedUp()):
        with pytest.raises(IllegalTransition, match="plan trial"):
            transition(began, event, NOW)
    with pytest.raises(InvalidInput, match="trial_converts"):
        Status(State.ACTIVE, trial_converts=True)
