"""The real-time check: a snapshot of an organization in, a Decision out (LIM-1, LIM-2).

`decide(snapshot, action, now, feature)` answers "may this organization's agent start a
new session / use AI feature F / add one more agent, seat or phone number now?" with
allowed, a reason code (SCENARIOS.md), a message for a person and the numbers behind it.
Implements LIM-1, LIM-2, the refusal texts of SUB-9 and SUB-10, TRI-2 (a trial ends by
days or sessions), SUB-8 (past_due within grace keeps working), LIM-4 (session cap),
ADD-4 (seat refusals) and CRD-3 (credits pause AI features only).

Order of the checks: first the subscription (no subscription; expired trial; ended
subscription; grace over), deciding from the deadlines too, so the answer is exact even
when the billing clock has not run yet; then the action's own limits:
- start_session: the session cap (LIM-4), then every hard-stop meter (includes and no
  overage price) in meter-name order. The credit balance does not matter (CRD-3).
- use_ai: the feature must be in the plan, then the balance must cover its cost.
- connect_channel (CAT-7): the channel must be in the plan (`channel_not_in_plan`, naming
  the lowest plan that has it), then under `limits.channels` (`channel_limit_reached`,
  naming the lowest plan with room for one more), then as add_agent below.
- add_agent / add_seat / add_phone_number: in_use must be below the limit (None:
  unlimited; 0: none at all), then below what a waiting reduction will leave (SUB-13: a
  downgrade scheduled for later, a slot removal at the next billing date), refused with
  `scheduled_change_limit` and a message naming the change.
A deadline equal to `now` has passed; a count equal to its limit is full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from tabkeeper.domain.catalog import Resource
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.lifecycle import State, Status
from tabkeeper.domain.money import decimal_string
from tabkeeper.domain.utc import format_instant, require_utc

Number = int | str | None


class Action(StrEnum):
    START_SESSION = "start_session"
    USE_AI = "use_ai"
    ADD_AGENT = "add_agent"
    ADD_SEAT = "add_seat"
    ADD_PHONE_NUMBER = "add_phone_number"
    CONNECT_CHANNEL = "connect_channel"

    @classmethod
    def parse(cls, value: object, path: str = "action") -> Action:
        """`value` as an Action; anything else is InvalidInput naming `path`."""
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        raise InvalidInput(f"{path}: unknown action {value!r}; expected one of {', '.join(cls)}")


class Reason(StrEnum):
    OK = "ok"
    NO_SUBSCRIPTION = "no_subscription"
    TRIAL_ENDED = "trial_ended"
    SUBSCRIPTION_ENDED = "subscription_ended"
    GRACE_EXPIRED = "grace_expired"
    SESSION_LIMIT_REACHED = "session_limit_reached"
    QUOTA_EXHAUSTED = "quota_exhausted"
    CAPACITY_FULL = "capacity_full"
    FEATURE_NOT_IN_PLAN = "feature_not_in_plan"
    CREDITS_EXHAUSTED = "credits_exhausted"
    SCHEDULED_CHANGE_LIMIT = "scheduled_change_limit"
    CHANNEL_NOT_IN_PLAN = "channel_not_in_plan"
    CHANNEL_LIMIT_REACHED = "channel_limit_reached"
    SPEND_CAP_REACHED = "spend_cap_reached"


RESOURCE_OF: Mapping[Action, Resource] = MappingProxyType(
    {
        Action.ADD_AGENT: Resource.AGENTS,
        Action.ADD_SEAT: Resource.SEATS,
        Action.ADD_PHONE_NUMBER: Resource.PHONE_NUMBERS,
        Action.CONNECT_CHANNEL: Resource.CHANNELS,
    }
)

# The messages, exactly; the API and the billing tab reuse them.
OK_MESSAGE = "Allowed."
NO_SUBSCRIPTION_MESSAGE = "There is no subscription. Please choose a plan to continue."
SUBSCRIPTION_ENDED_MESSAGE = "Your subscription has ended. Please upgrade your plan to continue."
"""SUB-10; also for an ended trial (TRI-2)."""
GRACE_EXPIRED_MESSAGE = "Your payment is overdue and the grace period has expired."
"""SUB-9."""
SESSION_LIMIT_ALMOST_REACHED_WARNING = "Session limit almost reached"
SESSION_LIMIT_REACHED_WARNING = "Session limit has been reached"
"""LIM-4 warnings (80% and 100%)."""
SESSION_LIMIT_MESSAGE = (
    f"{SESSION_LIMIT_REACHED_WARNING}. New sessions start again when the limit is raised "
    "or the next billing period begins."
)
QUOTA_EXHAUSTED_MESSAGE = (
    "Your plan's included usage for this period is used up. Please upgrade your plan to continue."
)
FEATURE_NOT_IN_PLAN_MESSAGE = "This feature is not included in your plan. Upgrade to use it."
CREDITS_EXHAUSTED_MESSAGE = "Not enough AI credits for this feature. Top up credits to continue."
UPGRADE_TO_USE_TEAM_MESSAGE = "Upgrade to use team"
"""ADD-4: the plan offers no team at all."""
BUY_MORE_SEATS_MESSAGE = "Buy more seats"
"""ADD-4: at the seat limit."""
AGENT_LIMIT_MESSAGE = "Agent limit reached. Buy more agent slots or upgrade your plan."
PHONE_NUMBER_LIMIT_MESSAGE = "Phone number limit reached. Upgrade your plan to add more."
SPEND_CAP_MESSAGE = (
    "Your spend cap for this billing period is reached. Raise the cap or wait for the next "
    "billing period to continue."
)
"""LIM-6."""


def channel_not_in_plan_message(channel: str, plan: str | None) -> str:
    """CAT-7: the channel is not in the plan; `plan` names the lowest plan that has it."""
    where = "" if plan is None else f" Upgrade to {plan} to connect it."
    return f"The {channel} channel is not included in your plan.{where}"


def channel_limit_message(limit: int, plan: str | None) -> str:
    """CAT-7: every channel the plan allows at once is connected; `plan` names the lowest
    plan with room for one more, if any."""
    noun = "channel" if limit == 1 else "channels"
    where = f" or upgrade to {plan}" if plan is not None else ""
    return (
        f"Channel limit reached: your plan allows {limit} connected {noun}. "
        f"Disconnect a channel{where} to connect another."
    )


def _count(value: object, what: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidInput(f"{what}: expected a whole number >= {least}, got {value!r}")
    return value


def _quantity(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInput(f"{what}: expected a whole or decimal number, got {value!r}")
    quantity = Decimal(value)
    if not quantity.is_finite() or quantity < 0:
        raise InvalidInput(f"{what}: expected a number >= 0, got {value!r}")
    return quantity


@dataclass(frozen=True, slots=True)
class MeterUsage:
    """This period's use of a meter. `included` None: the plan includes none of it and
    sets no quota. With `included` and no overage price the meter is a hard stop."""

    used: Decimal | int
    included: Decimal | int | None = None
    has_overage: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "used", _quantity(self.used, "meter used"))
        if self.included is not None:
            object.__setattr__(self, "included", _quantity(self.included, "meter included"))
        if not isinstance(self.has_overage, bool):
            raise InvalidInput("meter has_overage: expected true or false")

    @property
    def hard_stop(self) -> bool:
        return self.included is not None and not self.has_overage


@dataclass(frozen=True, slots=True)
class ScheduledLimit:
    """SUB-13: the capacity a waiting reduction will leave. `change` names it for a person
    ("A change to Starter on 2026-05-01"), `remedy` says how to add more anyway."""

    limit: int
    change: str
    at: datetime | None
    remedy: str

    def __post_init__(self) -> None:
        _count(self.limit, "scheduled limit")
        if not isinstance(self.change, str) or not self.change:
            raise InvalidInput("scheduled change: expected a description")
        if self.at is not None:
            object.__setattr__(self, "at", require_utc(self.at, "scheduled change at"))


@dataclass(frozen=True, slots=True)
class Capacity:
    """A capacity limit and what is in use. `limit` None: unlimited; 0: none at all.
    `purchasable`: an add-on sells more of it (ADD-4)."""

    in_use: int = 0
    limit: int | None = None
    purchasable: bool = False
    scheduled: ScheduledLimit | None = None
    """SUB-13: the lower limit a waiting reduction will leave, if any."""

    def __post_init__(self) -> None:
        _count(self.in_use, "capacity in_use")
        if self.limit is not None:
            _count(self.limit, "capacity limit")
        if not isinstance(self.purchasable, bool):
            raise InvalidInput("capacity purchasable: expected true or false")
        if self.scheduled is not None and not isinstance(self.scheduled, ScheduledLimit):
            raise InvalidInput("capacity scheduled: expected a ScheduledLimit")


def _frozen_map(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{what}: expected a mapping with names as keys")
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the check needs to know about one organization, read from counters (DESIGN
    rule 7). Deadlines come from `status`; `now` is passed to `decide`."""

    status: Status
    trial_sessions_used: int = 0
    trial_sessions: int | None = None
    """The trial's session allowance (TRI-1); None: the trial is limited by days only."""
    sessions_used: int = 0
    """Billable sessions this period (USE-3)."""
    session_limit: int | None = None
    """The customer-set cap (LIM-4); None: no cap."""
    meters: Mapping[str, MeterUsage] = field(default_factory=dict)
    features: frozenset[str] = frozenset()
    capacity: Mapping[str, Capacity] = field(default_factory=dict)
    """Per Resource; a resource left out is unlimited."""
    credit_balance: int = 0
    credits_held: int = 0
    """Credits reserved by open holds (CRD-5), not in `credit_balance`; shown apart."""
    feature_credits: Mapping[str, int] = field(default_factory=dict)
    """Credits one use of each AI feature costs (CRD-1); a feature left out costs 0."""
    channels: frozenset[str] = frozenset()
    """CAT-7: the channels the plan allows."""
    channel_plans: Mapping[str, str] = field(default_factory=dict)
    """CAT-7: every channel of the catalog, with the name of the lowest plan that has it."""
    channel_upgrades: Mapping[str, str] = field(default_factory=dict)
    """CAT-7: per channel, the lowest plan that has it with room for one more connected
    channel than now (left out: none has)."""
    spend_cap: int | None = None
    """LIM-6: the cap on what is charged beyond the plan this period, minor units (None:
    no cap)."""
    spent: int = 0
    """LIM-6: what counts against the cap this period (overage at its price, purchases)."""

    def __post_init__(self) -> None:
        if not isinstance(self.status, Status):
            raise InvalidInput(f"status: expected a Status, got {self.status!r}")
        _count(self.trial_sessions_used, "trial_sessions_used")
        if self.trial_sessions is not None:
            _count(self.trial_sessions, "trial_sessions", least=1)
        _count(self.sessions_used, "sessions_used")
        if self.session_limit is not None:
            _count(self.session_limit, "session_limit", least=1)
        meters = _frozen_map(self.meters, "meters")
        for name, usage in meters.items():
            if not isinstance(usage, MeterUsage):
                raise InvalidInput(f"meters.{name}: expected a MeterUsage, got {usage!r}")
        object.__setattr__(self, "meters", meters)
        if not isinstance(self.features, frozenset) or not all(
            isinstance(f, str) for f in self.features
        ):
            raise InvalidInput("features: expected a frozenset of feature names")
        capacity = _frozen_map(self.capacity, "capacity")
        for name, limit in capacity.items():
            if name not in Resource._value2member_map_:
                raise InvalidInput(f"capacity: unknown resource {name!r}")
            if not isinstance(limit, Capacity):
                raise InvalidInput(f"capacity.{name}: expected a Capacity, got {limit!r}")
        object.__setattr__(self, "capacity", capacity)
        _count(self.credit_balance, "credit_balance")
        _count(self.credits_held, "credits_held")
        costs = _frozen_map(self.feature_credits, "feature_credits")
        for name, cost in costs.items():
            _count(cost, f"feature_credits.{name}")
        object.__setattr__(self, "feature_credits", costs)
        if not isinstance(self.channels, frozenset) or not all(
            isinstance(c, str) for c in self.channels
        ):
            raise InvalidInput("channels: expected a frozenset of channel names")
        if self.spend_cap is not None:
            _count(self.spend_cap, "spend_cap", least=1)
        _count(self.spent, "spent")
        for name in ("channel_plans", "channel_upgrades"):
            plans = _frozen_map(getattr(self, name), name)
            if not all(isinstance(v, str) for v in plans.values()):
                raise InvalidInput(f"{name}: expected plan names")
            object.__setattr__(self, name, plans)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    message: str
    numbers: Mapping[str, Number] = field(default_factory=dict)


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


def _number(value: Decimal) -> str | int:
    return int(value) if value == value.to_integral_value() else decimal_string(value)


def _refuse(reason: Reason, message: str, **numbers: Number) -> Decision:
    return Decision(False, reason, message, MappingProxyType(numbers))


def _allow(**numbers: Number) -> Decision:
    return Decision(True, Reason.OK, OK_MESSAGE, MappingProxyType(numbers))


def _subscription_refusal(snapshot: Snapshot, now: datetime) -> Decision | None:
    status = snapshot.status
    state = status.state
    trial = {
        "trial_sessions_used": snapshot.trial_sessions_used,
        "trial_sessions": snapshot.trial_sessions,
        "trial_ends_at": _instant(status.trial_ends_at),
    }
    if state is State.NONE:
        return _refuse(Reason.NO_SUBSCRIPTION, NO_SUBSCRIPTION_MESSAGE)
    if state is State.EXPIRED:
        return _refuse(Reason.TRIAL_ENDED, SUBSCRIPTION_ENDED_MESSAGE, **trial)
    if state is State.CANCELED:
        return _refuse(Reason.SUBSCRIPTION_ENDED, SUBSCRIPTION_ENDED_MESSAGE)
    if state is State.SUSPENDED:
        return _refuse(Reason.GRACE_EXPIRED, GRACE_EXPIRED_MESSAGE)
    if state is State.TRIALING and (
        (status.trial_ends_at is not None and status.trial_ends_at <= now)
        or (
            snapshot.trial_sessions is not None
            and snapshot.trial_sessions_used >= snapshot.trial_sessions
        )
    ):
        return _refuse(Reason.TRIAL_ENDED, SUBSCRIPTION_ENDED_MESSAGE, **trial)
    if state is State.PAST_DUE and status.grace_ends_at is not None and status.grace_ends_at <= now:
        return _refuse(
            Reason.GRACE_EXPIRED,
            GRACE_EXPIRED_MESSAGE,
            grace_ends_at=_instant(status.grace_ends_at),
        )
    if status.cancel_at_period_end and status.period_end is not None and status.period_end <= now:
        return _refuse(
            Reason.SUBSCRIPTION_ENDED,
            SUBSCRIPTION_ENDED_MESSAGE,
            period_end=_instant(status.period_end),
        )
    return None


def _start_session(snapshot: Snapshot) -> Decision:
    used, limit = snapshot.sessions_used, snapshot.session_limit
    if limit is not None and used >= limit:
        return _refuse(
            Reason.SESSION_LIMIT_REACHED, SESSION_LIMIT_MESSAGE, used=used, limit=limit, remaining=0
        )
    for name in sorted(snapshot.meters):
        meter = snapshot.meters[name]
        included = meter.included
        if meter.hard_stop and included is not None and Decimal(meter.used) >= included:
            return _refuse(
                Reason.QUOTA_EXHAUSTED,
                QUOTA_EXHAUSTED_MESSAGE,
                meter=name,
                used=_number(Decimal(meter.used)),
                included=_number(Decimal(included)),
                remaining=0,
            )
    if snapshot.spend_cap is not None and snapshot.spent >= snapshot.spend_cap:
        refused = _spend_cap_refusal(snapshot)  # LIM-6: overage meters stop like hard stops
        if refused is not None:
            return refused
    remaining = None if limit is None else limit - used
    return _allow(used=used, limit=limit, remaining=remaining)


def _spend_cap_refusal(snapshot: Snapshot) -> Decision | None:
    """LIM-6: at the spend cap, a meter billed as overage whose included part is used up
    stops as a hard-stop quota does (the first in meter-name order)."""
    for name in sorted(snapshot.meters):
        meter = snapshot.meters[name]
        included = meter.included if meter.included is not None else Decimal(0)
        if meter.has_overage and Decimal(meter.used) >= included:
            return _refuse(
                Reason.SPEND_CAP_REACHED,
                SPEND_CAP_MESSAGE,
                meter=name,
                spent=snapshot.spent,
                spend_cap=snapshot.spend_cap,
                remaining=0,
            )
    return None


def _use_ai(snapshot: Snapshot, feature: str) -> Decision:
    if feature not in snapshot.features:
        return _refuse(Reason.FEATURE_NOT_IN_PLAN, FEATURE_NOT_IN_PLAN_MESSAGE, feature=feature)
    if feature not in snapshot.feature_credits:
        raise InvalidInput(
            f"feature: unknown AI feature {feature!r}; the platform sets no credit rate for it",
            code="unknown_feature",
        )
    balance, cost = snapshot.credit_balance, snapshot.feature_credits[feature]
    numbers: dict[str, Number] = {"feature": feature, "balance": balance, "cost": cost}
    if snapshot.credits_held:
        numbers["held"] = snapshot.credits_held  # CRD-5: apart from the balance
    if balance < cost:
        return _refuse(Reason.CREDITS_EXHAUSTED, CREDITS_EXHAUSTED_MESSAGE, **numbers)
    return _allow(**numbers, remaining=balance - cost)


def _capacity_message(resource: Resource, capacity: Capacity) -> str:
    if resource is Resource.SEATS:
        no_team = capacity.limit == 0 and not capacity.purchasable
        return UPGRADE_TO_USE_TEAM_MESSAGE if no_team else BUY_MORE_SEATS_MESSAGE
    if resource is Resource.AGENTS:
        return AGENT_LIMIT_MESSAGE
    return PHONE_NUMBER_LIMIT_MESSAGE


NOUNS: Mapping[Resource, tuple[str, str]] = MappingProxyType(
    {
        Resource.AGENTS: ("agent", "agents"),
        Resource.SEATS: ("seat", "seats"),
        Resource.PHONE_NUMBERS: ("phone number", "phone numbers"),
        Resource.CHANNELS: ("channel", "channels"),
    }
)


def scheduled_change_message(resource: Resource, scheduled: ScheduledLimit) -> str:
    """SUB-13: "A change to Starter on 2026-05-01 leaves room for 2 agents; ..."."""
    one, many = NOUNS[resource]
    noun = one if scheduled.limit == 1 else many
    return f"{scheduled.change} leaves room for {scheduled.limit} {noun}; {scheduled.remedy}"


def _add(snapshot: Snapshot, resource: Resource) -> Decision:
    capacity = snapshot.capacity.get(resource, Capacity())
    in_use, limit = capacity.in_use, capacity.limit
    numbers: dict[str, Number] = {"resource": str(resource), "in_use": in_use, "limit": limit}
    if limit is not None and in_use >= limit:
        message = _capacity_message(resource, capacity)
        return _refuse(Reason.CAPACITY_FULL, message, **numbers, remaining=0)
    scheduled = capacity.scheduled
    if scheduled is not None and in_use >= scheduled.limit:
        return _refuse(
            Reason.SCHEDULED_CHANGE_LIMIT,
            scheduled_change_message(resource, scheduled),
            **numbers,
            scheduled_limit=scheduled.limit,
            scheduled_at=_instant(scheduled.at),
            remaining=0,
        )
    remaining = None if limit is None else limit - in_use
    if scheduled is not None:
        numbers["scheduled_limit"] = scheduled.limit
        remaining = (
            scheduled.limit - in_use
            if remaining is None
            else min(remaining, scheduled.limit - in_use)
        )
    return _allow(**numbers, remaining=remaining)


def _connect_channel(snapshot: Snapshot, channel: str) -> Decision:
    """CAT-7: the channel must be in the plan, then fit under `limits.channels` (and what
    a waiting reduction leaves, SUB-13)."""
    if channel not in snapshot.channel_plans:
        known = ", ".join(sorted(snapshot.channel_plans)) or "none"
        raise InvalidInput(
            f"channel: unknown channel {channel!r}; the plans list: {known}",
            code="unknown_channel",
        )
    if channel not in snapshot.channels:
        plan = snapshot.channel_plans[channel]
        return _refuse(
            Reason.CHANNEL_NOT_IN_PLAN,
            channel_not_in_plan_message(channel, plan),
            channel=channel,
            plan=plan,
        )
    decision = _add(snapshot, Resource.CHANNELS)
    if decision.reason is Reason.CAPACITY_FULL:
        limit = snapshot.capacity[Resource.CHANNELS].limit
        assert limit is not None
        upgrade = snapshot.channel_upgrades.get(channel)
        return _refuse(
            Reason.CHANNEL_LIMIT_REACHED,
            channel_limit_message(limit, upgrade),
            channel=channel,
            **decision.numbers,
            plan=upgrade,
        )
    return Decision(
        decision.allowed,
        decision.reason,
        decision.message,
        MappingProxyType({"channel": channel, **decision.numbers}),
    )


def decide(
    snapshot: Snapshot,
    action: Action | str,
    now: datetime,
    feature: str | None = None,
    *,
    channel: str | None = None,
) -> Decision:
    """May the organization of `snapshot` do `action` at `now`? (LIM-1, LIM-2)

    `feature` names the AI feature of use_ai and is refused with any other action;
    `channel` names the channel of connect_channel (CAT-7), likewise.
    """
    if not isinstance(snapshot, Snapshot):
        raise InvalidInput(f"snapshot: expected a Snapshot, got {snapshot!r}")
    action = Action.parse(action)
    now = require_utc(now, "now")
    if action is Action.USE_AI:
        if not isinstance(feature, str) or not feature:
            raise InvalidInput("feature: use_ai needs the name of the AI feature")
    elif feature is not None:
        raise InvalidInput(f"feature: only use_ai takes a feature, not {action}")
    if action is Action.CONNECT_CHANNEL:
        if not isinstance(channel, str) or not channel:
            raise InvalidInput("channel: connect_channel needs the name of the channel")
    elif channel is not None:
        raise InvalidInput(f"channel: only connect_channel takes a channel, not {action}")
    refusal = _subscription_refusal(snapshot, now)
    if refusal is not None:
        return refusal
    if action is Action.START_SESSION:
        return _start_session(snapshot)
    if action is Action.USE_AI:
        assert feature is not None
        return _use_ai(snapshot, feature)
    if action is Action.CONNECT_CHANNEL:
        assert channel is not None
        return _connect_channel(snapshot, channel)
    return _add(snapshot, RESOURCE_OF[action])
