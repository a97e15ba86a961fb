"""The real-time check (LIM-1, LIM-2; SUB-8, SUB-9, SUB-10, TRI-2, LIM-4, ADD-4, CRD-3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.decisions import (
    AGENT_LIMIT_MESSAGE,
    BUY_MORE_SEATS_MESSAGE,
    CREDITS_EXHAUSTED_MESSAGE,
    FEATURE_NOT_IN_PLAN_MESSAGE,
    GRACE_EXPIRED_MESSAGE,
    NO_SUBSCRIPTION_MESSAGE,
    OK_MESSAGE,
    PHONE_NUMBER_LIMIT_MESSAGE,
    QUOTA_EXHAUSTED_MESSAGE,
    SESSION_LIMIT_MESSAGE,
    SPEND_CAP_MESSAGE,
    SUBSCRIPTION_ENDED_MESSAGE,
    UPGRADE_TO_USE_TEAM_MESSAGE,
    Action,
    Capacity,
    Decision,
    MeterUsage,
    Reason,
    Resource,
    ScheduledLimit,
    Snapshot,
    decide,
)
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.lifecycle import State, Status

NOW = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
ACTIVE = Status(State.ACTIVE, period_end=NOW + 10 * DAY)
TRIAL = Status(State.TRIALING, trial_used=True, trial_ends_at=NOW + 5 * DAY)


CHANNEL_PLANS = {"webchat": "Basic", "whatsapp": "Pro"}
"""CAT-7: the lowest plan of each channel of the catalog."""

DOWNGRADE_LEAVES_2 = ScheduledLimit(
    2,
    "A change to Starter on 2026-05-01",
    datetime(2026, 5, 1, tzinfo=UTC),
    "cancel the scheduled change to add more.",
)
"""SUB-13: a waiting downgrade that leaves room for 2."""


def snap(status: Status = ACTIVE, **kwargs: Any) -> Snapshot:
    return Snapshot(status=status, **kwargs)


def test_sub_9_and_sub_10_messages_are_exact() -> None:
    """SUB-9, SUB-10, ADD-4, LIM-4: the texts the spec quotes, exactly."""
    assert GRACE_EXPIRED_MESSAGE == "Your payment is overdue and the grace period has expired."
    assert SUBSCRIPTION_ENDED_MESSAGE == (
        "Your subscription has ended. Please upgrade your plan to continue."
    )
    assert UPGRADE_TO_USE_TEAM_MESSAGE == "Upgrade to use team"
    assert BUY_MORE_SEATS_MESSAGE == "Buy more seats"
    assert SESSION_LIMIT_MESSAGE.startswith("Session limit has been reached")


# fmt: off
ROWS = [
    # ---- the subscription gate (LIM-2), for every action
    pytest.param(
        snap(Status()), Action.START_SESSION, None, False,
        Reason.NO_SUBSCRIPTION, NO_SUBSCRIPTION_MESSAGE, {},
        id="LIM-2-no-subscription",
    ),
    pytest.param(
        snap(Status(State.EXPIRED, trial_used=True)), Action.START_SESSION, None, False,
        Reason.TRIAL_ENDED, SUBSCRIPTION_ENDED_MESSAGE, {"trial_ends_at": None},
        id="SUB-10-TRI-2-expired-trial",
    ),
    pytest.param(
        snap(Status(State.CANCELED)), Action.START_SESSION, None, False,
        Reason.SUBSCRIPTION_ENDED, SUBSCRIPTION_ENDED_MESSAGE, {},
        id="SUB-10-canceled",
    ),
    pytest.param(
        snap(Status(State.CANCELED)), Action.ADD_AGENT, None, False,
        Reason.SUBSCRIPTION_ENDED, SUBSCRIPTION_ENDED_MESSAGE, {},
        id="SUB-10-canceled-add-agent",
    ),
    pytest.param(
        snap(Status(State.SUSPENDED)), Action.START_SESSION, None, False,
        Reason.GRACE_EXPIRED, GRACE_EXPIRED_MESSAGE, {},
        id="SUB-9-suspended",
    ),
    pytest.param(
        snap(Status(State.SUSPENDED), features=frozenset({"smart_reply"}), credit_balance=9),
        Action.USE_AI, "smart_reply", False,
        Reason.GRACE_EXPIRED, GRACE_EXPIRED_MESSAGE, {},
        id="SUB-9-suspended-use-ai",
    ),
    # ---- deadlines decide even before the billing clock ran
    pytest.param(
        snap(Status(State.TRIALING, trial_ends_at=NOW)), Action.START_SESSION, None, False,
        Reason.TRIAL_ENDED, SUBSCRIPTION_ENDED_MESSAGE, {"trial_ends_at": "2026-03-05T09:30:00Z"},
        id="TRI-2-trial-days-end-exactly-now",
    ),
    pytest.param(
        snap(Status(State.TRIALING, trial_ends_at=NOW + timedelta(seconds=1))),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="TRI-2-trial-one-second-left",
    ),
    pytest.param(
        snap(TRIAL, trial_sessions_used=50, trial_sessions=50), Action.START_SESSION, None, False,
        Reason.TRIAL_ENDED, SUBSCRIPTION_ENDED_MESSAGE,
        {"trial_sessions_used": 50, "trial_sessions": 50},
        id="TRI-2-trial-sessions-used-up",
    ),
    pytest.param(
        snap(TRIAL, trial_sessions_used=49, trial_sessions=50), Action.START_SESSION, None, True,
        Reason.OK, OK_MESSAGE, {},
        id="TRI-2-trial-one-session-left",
    ),
    pytest.param(
        snap(Status(State.PAST_DUE, grace_ends_at=NOW)), Action.START_SESSION, None, False,
        Reason.GRACE_EXPIRED, GRACE_EXPIRED_MESSAGE, {"grace_ends_at": "2026-03-05T09:30:00Z"},
        id="SUB-9-grace-ends-exactly-now",
    ),
    pytest.param(
        snap(Status(State.PAST_DUE, grace_ends_at=NOW + timedelta(seconds=1))),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="SUB-8-past-due-within-grace-keeps-working",
    ),
    pytest.param(
        snap(Status(State.PAST_DUE)), Action.ADD_SEAT, None, True, Reason.OK, OK_MESSAGE, {},
        id="SUB-8-past-due-no-deadline-known",
    ),
    pytest.param(
        snap(Status(State.ACTIVE, cancel_at_period_end=True, period_end=NOW)),
        Action.START_SESSION, None, False,
        Reason.SUBSCRIPTION_ENDED, SUBSCRIPTION_ENDED_MESSAGE,
        {"period_end": "2026-03-05T09:30:00Z"},
        id="SUB-7-SUB-10-canceling-period-ends-now",
    ),
    pytest.param(
        snap(Status(State.ACTIVE, cancel_at_period_end=True, period_end=NOW + DAY)),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="SUB-7-canceling-usable-until-period-end",
    ),
    pytest.param(
        snap(Status(State.ACTIVE, period_end=NOW - DAY)), Action.START_SESSION, None, True,
        Reason.OK, OK_MESSAGE, {},
        id="LIM-1-renewal-pending-not-canceling-is-allowed",
    ),
    # ---- start_session
    pytest.param(
        snap(sessions_used=100, session_limit=100), Action.START_SESSION, None, False,
        Reason.SESSION_LIMIT_REACHED, SESSION_LIMIT_MESSAGE,
        {"used": 100, "limit": 100, "remaining": 0},
        id="LIM-4-session-limit-reached-exactly",
    ),
    pytest.param(
        snap(sessions_used=99, session_limit=100), Action.START_SESSION, None, True,
        Reason.OK, OK_MESSAGE, {"used": 99, "limit": 100, "remaining": 1},
        id="LIM-4-one-session-left",
    ),
    pytest.param(
        snap(sessions_used=5000), Action.START_SESSION, None, True,
        Reason.OK, OK_MESSAGE, {"used": 5000, "limit": None, "remaining": None},
        id="LIM-1-no-session-limit",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(Decimal("500"), 500)}),
        Action.START_SESSION, None, False, Reason.QUOTA_EXHAUSTED, QUOTA_EXHAUSTED_MESSAGE,
        {"meter": "minutes", "used": 500, "included": 500, "remaining": 0},
        id="LIM-2-hard-stop-quota-used-up",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(Decimal("499.5"), 500)}),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="LIM-2-hard-stop-quota-half-a-minute-left",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(Decimal("500.25"), 500)}),
        Action.START_SESSION, None, False, Reason.QUOTA_EXHAUSTED, QUOTA_EXHAUSTED_MESSAGE,
        {"meter": "minutes", "used": "500.25", "included": 500},
        id="LIM-2-hard-stop-quota-over",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(900, 500, has_overage=True), "chats": MeterUsage(7)}),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="LIM-2-overage-priced-meter-never-stops",
    ),
    pytest.param(
        snap(
            meters={"b_minutes": MeterUsage(10, 10), "a_sessions": MeterUsage(3, 3)},
            sessions_used=3,
            session_limit=3,
        ),
        Action.START_SESSION, None, False, Reason.SESSION_LIMIT_REACHED, SESSION_LIMIT_MESSAGE, {},
        id="LIM-2-session-limit-before-quota",
    ),
    pytest.param(
        snap(meters={"b_minutes": MeterUsage(10, 10), "a_sessions": MeterUsage(3, 3)}),
        Action.START_SESSION, None, False, Reason.QUOTA_EXHAUSTED, QUOTA_EXHAUSTED_MESSAGE,
        {"meter": "a_sessions"},
        id="LIM-2-first-meter-by-name",
    ),
    pytest.param(
        snap(credit_balance=0, feature_credits={"smart_reply": 5}), Action.START_SESSION, None,
        True, Reason.OK, OK_MESSAGE, {},
        id="CRD-3-sessions-ignore-credit-balance",
    ),
    # ---- use_ai
    pytest.param(
        snap(features=frozenset({"webchat"})), Action.USE_AI, "smart_reply", False,
        Reason.FEATURE_NOT_IN_PLAN, FEATURE_NOT_IN_PLAN_MESSAGE, {"feature": "smart_reply"},
        id="LIM-2-feature-not-in-plan",
    ),
    pytest.param(
        snap(features=frozenset({"kb_answer"}), credit_balance=1, feature_credits={"kb_answer": 2}),
        Action.USE_AI, "kb_answer", False, Reason.CREDITS_EXHAUSTED, CREDITS_EXHAUSTED_MESSAGE,
        {"feature": "kb_answer", "balance": 1, "cost": 2},
        id="CRD-3-credits-exhausted",
    ),
    pytest.param(
        snap(features=frozenset({"kb_answer"}), credit_balance=2, feature_credits={"kb_answer": 2}),
        Action.USE_AI, "kb_answer", True, Reason.OK, OK_MESSAGE,
        {"feature": "kb_answer", "balance": 2, "cost": 2, "remaining": 0},
        id="CRD-3-balance-exactly-covers",
    ),
    pytest.param(
        snap(features=frozenset({"kb_answer"}), credit_balance=0, feature_credits={"kb_answer": 0}),
        Action.USE_AI, "kb_answer", True, Reason.OK, OK_MESSAGE, {"cost": 0},
        id="CRD-1-feature-at-rate-zero-is-free",
    ),
    pytest.param(
        snap(
            features=frozenset({"smart_reply"}), credit_balance=0,
            feature_credits={"smart_reply": 1}, sessions_used=10, session_limit=10,
        ),
        Action.USE_AI, "smart_reply", False, Reason.CREDITS_EXHAUSTED, CREDITS_EXHAUSTED_MESSAGE,
        {},
        id="LIM-1-session-limit-does-not-stop-ai",
    ),
    # ---- capacity (LIM-2, ADD-4)
    pytest.param(
        snap(capacity={"agents": Capacity(in_use=2, limit=2, purchasable=True)}),
        Action.ADD_AGENT, None, False, Reason.CAPACITY_FULL, AGENT_LIMIT_MESSAGE,
        {"resource": "agents", "in_use": 2, "limit": 2, "remaining": 0},
        id="LIM-2-agents-full-exactly",
    ),
    pytest.param(
        snap(capacity={"agents": Capacity(in_use=1, limit=2)}),
        Action.ADD_AGENT, None, True, Reason.OK, OK_MESSAGE,
        {"resource": "agents", "in_use": 1, "limit": 2, "remaining": 1},
        id="LIM-2-agents-one-left",
    ),
    pytest.param(
        snap(capacity={"agents": Capacity(in_use=400, limit=None)}),
        Action.ADD_AGENT, None, True, Reason.OK, OK_MESSAGE,
        {"in_use": 400, "limit": None, "remaining": None},
        id="LIM-2-agents-unlimited",
    ),
    pytest.param(
        snap(), Action.ADD_PHONE_NUMBER, None, True, Reason.OK, OK_MESSAGE,
        {"resource": "phone_numbers", "in_use": 0, "limit": None},
        id="LIM-2-resource-left-out-is-unlimited",
    ),
    pytest.param(
        snap(capacity={"phone_numbers": Capacity(in_use=0, limit=0)}),
        Action.ADD_PHONE_NUMBER, None, False, Reason.CAPACITY_FULL, PHONE_NUMBER_LIMIT_MESSAGE,
        {"in_use": 0, "limit": 0},
        id="LIM-2-phone-numbers-limit-zero",
    ),
    pytest.param(
        snap(capacity={"seats": Capacity(in_use=0, limit=0, purchasable=False)}),
        Action.ADD_SEAT, None, False, Reason.CAPACITY_FULL, UPGRADE_TO_USE_TEAM_MESSAGE,
        {"resource": "seats", "limit": 0},
        id="ADD-4-no-team-at-all-upgrade",
    ),
    pytest.param(
        snap(capacity={"seats": Capacity(in_use=0, limit=0, purchasable=True)}),
        Action.ADD_SEAT, None, False, Reason.CAPACITY_FULL, BUY_MORE_SEATS_MESSAGE, {},
        id="ADD-4-no-seats-but-seats-for-sale",
    ),
    pytest.param(
        snap(capacity={"seats": Capacity(in_use=3, limit=3)}),
        Action.ADD_SEAT, None, False, Reason.CAPACITY_FULL, BUY_MORE_SEATS_MESSAGE,
        {"in_use": 3, "limit": 3},
        id="ADD-4-at-seat-limit-buy-more",
    ),
    pytest.param(
        snap(capacity={"seats": Capacity(in_use=2, limit=3)}),
        Action.ADD_SEAT, None, True, Reason.OK, OK_MESSAGE, {"remaining": 1},
        id="ADD-4-seat-left",
    ),
    pytest.param(
        snap(capacity={"agents": Capacity(in_use=2, limit=4, scheduled=DOWNGRADE_LEAVES_2)}),
        Action.ADD_AGENT, None, False, Reason.SCHEDULED_CHANGE_LIMIT,
        "A change to Starter on 2026-05-01 leaves room for 2 agents; cancel the scheduled "
        "change to add more.",
        {"in_use": 2, "limit": 4, "scheduled_limit": 2, "scheduled_at": "2026-05-01T00:00:00Z",
         "remaining": 0},
        id="SUB-13-a-waiting-downgrade-leaves-no-room",
    ),
    pytest.param(
        snap(capacity={"agents": Capacity(in_use=1, limit=4, scheduled=DOWNGRADE_LEAVES_2)}),
        Action.ADD_AGENT, None, True, Reason.OK, OK_MESSAGE,
        {"in_use": 1, "limit": 4, "scheduled_limit": 2, "remaining": 1},
        id="SUB-13-room-left-under-the-waiting-downgrade",
    ),
    pytest.param(
        snap(capacity={"agents": Capacity(in_use=4, limit=4, scheduled=DOWNGRADE_LEAVES_2)}),
        Action.ADD_AGENT, None, False, Reason.CAPACITY_FULL, AGENT_LIMIT_MESSAGE,
        {"in_use": 4, "limit": 4},
        id="SUB-13-full-today-says-capacity-full-first",
    ),
    # ---- CAT-7: connect_channel (the "feature" column holds the channel)
    pytest.param(
        snap(channels=frozenset({"webchat"}), channel_plans=CHANNEL_PLANS,
             channel_upgrades=CHANNEL_PLANS),
        Action.CONNECT_CHANNEL, "whatsapp", False, Reason.CHANNEL_NOT_IN_PLAN,
        "The whatsapp channel is not included in your plan. Upgrade to Pro to connect it.",
        {"channel": "whatsapp", "plan": "Pro"},
        id="CAT-7-channel-not-in-plan-names-the-lowest-plan",
    ),
    pytest.param(
        snap(channels=frozenset({"webchat", "whatsapp"}), channel_plans=CHANNEL_PLANS,
             channel_upgrades={"whatsapp": "Business"},
             capacity={"channels": Capacity(in_use=1, limit=1)}),
        Action.CONNECT_CHANNEL, "whatsapp", False, Reason.CHANNEL_LIMIT_REACHED,
        "Channel limit reached: your plan allows 1 connected channel. Disconnect a channel "
        "or upgrade to Business to connect another.",
        {"channel": "whatsapp", "in_use": 1, "limit": 1, "plan": "Business"},
        id="CAT-7-channel-limit-reached-names-a-plan-with-room",
    ),
    pytest.param(
        snap(channels=frozenset({"webchat", "whatsapp"}), channel_plans=CHANNEL_PLANS,
             capacity={"channels": Capacity(in_use=1, limit=2)}),
        Action.CONNECT_CHANNEL, "whatsapp", True, Reason.OK, OK_MESSAGE,
        {"channel": "whatsapp", "in_use": 1, "limit": 2, "remaining": 1},
        id="CAT-7-channel-in-plan-with-room",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(900, 500, has_overage=True)}, spend_cap=5000,
             spent=5000),
        Action.START_SESSION, None, False, Reason.SPEND_CAP_REACHED, SPEND_CAP_MESSAGE,
        {"meter": "minutes", "spent": 5000, "spend_cap": 5000, "remaining": 0},
        id="LIM-6-spend-cap-stops-overage-meter",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(900, 500, has_overage=True)}, spend_cap=5000,
             spent=4999),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="LIM-6-spend-cap-one-cent-left",
    ),
    pytest.param(
        snap(meters={"minutes": MeterUsage(400, 500, has_overage=True)}, spend_cap=5000,
             spent=6000),
        Action.START_SESSION, None, True, Reason.OK, OK_MESSAGE, {},
        id="LIM-6-spend-cap-included-part-left",
    ),
    pytest.param(
        snap(features=frozenset({"smart_reply"}), credit_balance=10,
             feature_credits={"smart_reply": 5}, spend_cap=100, spent=100),
        Action.USE_AI, "smart_reply", True, Reason.OK, OK_MESSAGE, {},
        id="LIM-6-spend-cap-leaves-prepaid-credits-alone",
    ),
]
# fmt: on


@pytest.mark.parametrize(
    ("snapshot", "action", "feature", "allowed", "reason", "message", "numbers"), ROWS
)
def test_decide(
    snapshot: Snapshot,
    action: Action,
    feature: str | None,
    allowed: bool,
    reason: Reason,
    message: str,
    numbers: dict[str, object],
) -> None:
    """LIM-1, LIM-2: one call answers with yes/no, the reason code, the message and the
    numbers behind it (rule ids in the row ids)."""
    if action is Action.CONNECT_CHANNEL:  # CAT-7: the row's feature column is the channel
        decision = decide(snapshot, action, NOW, channel=feature)
    else:
        decision = decide(snapshot, action, NOW, feature)
    assert (decision.allowed, decision.reason, decision.message) == (allowed, reason, message)
    assert {key: decision.numbers[key] for key in numbers} == numbers


def test_every_reason_code_has_a_row() -> None:
    """LIM-2: the table above covers every reason code of SCENARIOS.md."""
    reasons = {row.values[4] for row in ROWS}
    assert reasons == set(Reason)
    assert {str(r) for r in Reason} == {
        "ok", "no_subscription", "trial_ended", "subscription_ended", "grace_expired",
        "session_limit_reached", "quota_exhausted", "capacity_full", "feature_not_in_plan",
        "credits_exhausted", "scheduled_change_limit", "channel_not_in_plan",
        "channel_limit_reached", "spend_cap_reached",
    }  # fmt: skip


@pytest.mark.parametrize("action", list(Action))
def test_actions_accept_their_names(action: Action) -> None:
    """LIM-1: actions may be given by name, as an API or a scenario file does."""
    feature = "smart_reply" if action is Action.USE_AI else None
    channel = "webchat" if action is Action.CONNECT_CHANNEL else None  # CAT-7
    snapshot = snap(
        features=frozenset({"smart_reply"}),
        feature_credits={"smart_reply": 1},
        channels=frozenset({"webchat"}),
        channel_plans={"webchat": "Basic"},
    )
    assert decide(snapshot, str(action), NOW, feature, channel=channel) == decide(
        snapshot, action, NOW, feature, channel=channel
    )
    assert Action.parse(str(action), "check.action") is action


# ---------------------------------------------------------------- bad input
def test_an_ai_feature_without_a_rate_is_refused_as_unknown() -> None:
    """CRD-1: the platform sets a rate per AI feature; asking about one it never priced is
    bad input (code unknown_feature), not a free use."""
    snapshot = snap(features=frozenset({"kb_answer"}), credit_balance=10)
    with pytest.raises(InvalidInput, match="unknown AI feature 'kb_answer'") as raised:
        decide(snapshot, Action.USE_AI, NOW, "kb_answer")
    assert raised.value.code == "unknown_feature"


@pytest.mark.parametrize("value", ["start", "", None, 3, "START_SESSION"])
def test_unknown_action_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"timeline\[2\]\.action: unknown action"):
        Action.parse(value, "timeline[2].action")
    with pytest.raises(InvalidInput, match="action: unknown action"):
        decide(snap(), value, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "feature", "match"),
    [
        (Action.USE_AI, None, "use_ai needs the name"),
        (Action.USE_AI, "", "use_ai needs the name"),
        (Action.START_SESSION, "smart_reply", "only use_ai takes a feature"),
    ],
)
def test_feature_goes_with_use_ai_only(action: Action, feature: str | None, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        decide(snap(), action, NOW, feature)


def test_decide_refuses_bad_now_and_snapshot() -> None:
    with pytest.raises(InvalidInput, match="now"):
        decide(snap(), Action.START_SESSION, datetime(2026, 3, 5))
    with pytest.raises(InvalidInput, match="snapshot"):
        decide(ACTIVE, Action.START_SESSION, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"status": "active"}, "status: expected a Status"),
        ({"trial_sessions_used": -1}, "trial_sessions_used"),
        ({"trial_sessions": 0}, "trial_sessions"),
        ({"sessions_used": -1}, "sessions_used"),
        ({"sessions_used": True}, "sessions_used"),
        ({"session_limit": 0}, "session_limit: expected a whole number >= 1"),
        ({"session_limit": 2.0}, "session_limit"),
        ({"meters": [("minutes", 3)]}, "meters: expected a mapping"),
        ({"meters": {"minutes": 3}}, "meters.minutes: expected a MeterUsage"),
        ({"features": {"webchat"}}, "features: expected a frozenset"),
        ({"features": frozenset({1})}, "features"),
        ({"capacity": {"rooms": Capacity()}}, "capacity: unknown resource 'rooms'"),
        ({"capacity": {"seats": 3}}, "capacity.seats: expected a Capacity"),
        ({"capacity": {1: Capacity()}}, "capacity: expected a mapping with names"),
        ({"credit_balance": "10"}, "credit_balance"),
        ({"credit_balance": False}, "credit_balance"),
        ({"credit_balance": -1}, "credit_balance: expected a whole number >= 0"),
        ({"feature_credits": {"kb_answer": -1}}, "feature_credits.kb_answer"),
    ],
)
def test_bad_snapshot_is_refused(kwargs: dict[str, Any], match: str) -> None:
    """Bad input gets a clear error naming what is wrong."""
    status = kwargs.pop("status", ACTIVE)
    with pytest.raises(InvalidInput, match=match):
        Snapshot(status=status, **kwargs)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MeterUsage(-1), "meter used"),
        (lambda: MeterUsage(1.5), "meter used"),
        (lambda: MeterUsage(Decimal("NaN")), "meter used"),
        (lambda: MeterUsage(True), "meter used"),
        (lambda: MeterUsage(1, Decimal("-2")), "meter included"),
        (lambda: MeterUsage(1, 2, has_overage=1), "has_overage"),
        (lambda: Capacity(in_use=-1), "capacity in_use"),
        (lambda: Capacity(limit=-1), "capacity limit"),
        (lambda: Capacity(purchasable="yes"), "purchasable"),
    ],
)
def test_bad_meter_or_capacity_is_refused(make: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        make()


def test_snapshot_maps_are_frozen_copies() -> None:
    """A snapshot does not change when the caller's dicts do."""
    meters = {"minutes": MeterUsage(1, 10)}
    snapshot = snap(meters=meters, capacity={Resource.SEATS: Capacity(1, 2)})
    meters["minutes"] = MeterUsage(10, 10)
    assert snapshot.meters["minutes"].used == 1
    with pytest.raises(TypeError):
        snapshot.meters["x"] = MeterUsage(0)  # type: ignore[index]


# ---------------------------------------------------------------- properties
@given(used=st.integers(0, 500), limit=st.integers(1, 500))
def test_property_session_limit_admits_exactly_below_the_cap(used: int, limit: int) -> None:
    """Property: with a session cap, a start is allowed exactly when used < limit, and the
    remaining count is limit - used (LIM-4)."""
    decision = decide(snap(sessions_used=used, session_limit=limit), Action.START_SESSION, NOW)
    assert decision.allowed is (used < limit)
    assert decision.numbers["remaining"] == max(limit - used, 0)


@given(
    state=st.sampled_from(list(State)),
    action=st.sampled_from(list(Action)),
    offset_hours=st.integers(-48, 48),
)
def test_property_a_refusal_always_names_a_reason_and_message(
    state: State, action: Action, offset_hours: int
) -> None:
    """Property: every decision is ok-and-allowed or refused-with-another-reason, always
    with a message; ended, suspended and missing subscriptions never allow anything."""
    deadline = NOW + timedelta(hours=offset_hours)
    if state is State.TRIALING:
        status = Status(state, trial_ends_at=deadline)
    elif state is State.PAST_DUE:
        status = Status(state, grace_ends_at=deadline)
    else:
        status = Status(state)
    feature = "smart_reply" if action is Action.USE_AI else None
    channel = "webchat" if action is Action.CONNECT_CHANNEL else None  # CAT-7
    decision: Decision = decide(
        snap(
            status,
            features=frozenset({"smart_reply"}),
            feature_credits={"smart_reply": 1},
            credit_balance=5,
            channels=frozenset({"webchat"}),
            channel_plans={"webchat": "Basic"},
        ),
        action,
        NOW,
        feature,
        channel=channel,
    )
    assert decision.allowed is (decision.reason is Reason.OK)
    assert decision.message
    if state in (State.NONE, State.EXPIRED, State.CANCELED, State.SUSPENDED):
        assert not decision.allowed
    if state in (State.TRIALING, State.PAST_DUE):
        assert decision.allowed is (deadline > NOW)
