"""Scenario files (SCENARIOS.md "The file"): the three worked examples parse with their
values; every step kind parses with all its fields and its defaults; a bad file gives ONE
InvalidConfig whose message names the path in the file. Covers scenario.py,
scenario_steps.py and scenario_timeline.py."""

import copy
import json
from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.catalog import MeterKind, Rounding
from tabkeeper.domain.decisions import Action
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.periods import ProrationMode
from tabkeeper.domain.terms import BillingTerms, Timing, TrialTerms
from tabkeeper.simulation.scenario import (
    STEPS,
    AddMember,
    AddPhoneNumber,
    AddSlots,
    ApproveChange,
    ArchiveAgent,
    AssignPlan,
    Cancel,
    CancelScheduledChange,
    ChangePlan,
    Check,
    CreateAgent,
    Events,
    OrganizationSpec,
    OrganizationStep,
    Pay,
    PaymentMethodChoice,
    PayNow,
    ReleasePhoneNumber,
    RemoveMember,
    RemoveSlots,
    RequestDemo,
    ResetSessionLimit,
    Resume,
    Role,
    Scenario,
    SetPaymentMethod,
    SetSessionLimit,
    StartSession,
    Step,
    Subscribe,
    TimelineStep,
    TopUp,
    build_scenario,
)
from tabkeeper.simulation.steps import (
    ApplyCoupon,
    ConnectChannel,
    DisableAutoTopUp,
    DisconnectChannel,
    GrantAccountCredit,
    HoldCredits,
    IssueCreditNote,
    MarkPaid,
    MarkUncollectible,
    ReleaseHold,
    ResetSpendCap,
    SetAutoTopUp,
    SetBillingDetails,
    SetCreditAlert,
    SetSpendCap,
    SettleHold,
    VoidInvoice,
)

USD = Currency.of("USD")
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
T0 = "2026-01-05T00:00:00Z"
AT = datetime(2026, 1, 5, tzinfo=UTC)

CATALOG: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "minutes": {"kind": "sum", "event": "call.ended", "field": "duration_seconds"},
    },
    "plans": {
        "trial": {"name": "Free trial", "price": "0", "includes": {"sessions": 50}},
        "starter": {
            "name": "Starter",
            "price": "49.00",
            "rank": 1,
            "overage": {"minutes": {"model": "per_unit", "unit_price": "0.10"}},
        },
        "pro": {"name": "Pro", "price": "99.00", "rank": 2, "channels": ["webchat", "whatsapp"]},
        "enterprise": {"name": "Enterprise", "price": "0", "rank": 3, "sales_led": True},
    },
    "addons": {
        "extra_agent": {"name": "Additional chatbot slot", "price": "10.00", "adds": {"agents": 1}}
    },
    "ai_features": {"smart_reply": {"credits": 1}, "kb_answer": {"credits": 2}},
    "credit_price": "0.01",
    "coupons": {"launch": {"percent_off": "20"}},  # INV-6
}


def document(*steps: dict[str, Any]) -> dict[str, Any]:
    """A valid scenario: acme (three members) and its sub-account acme-eu (the default
    single owner), with `steps` as the timeline."""
    return {
        "settings": {"currency": "USD", "grace_days": 5},
        "catalog": copy.deepcopy(CATALOG),
        "organizations": {
            "acme": {
                "created_at": "2026-01-01T00:00:00Z",
                "payment_method": "card_ok",
                "members": {"alice": "owner", "bob": "billing_admin", "carol": "member"},
            },
            "acme-eu": {
                "created_at": "2026-01-02T00:00:00Z",
                "payment_method": "none",
                "parent": "acme",
            },
        },
        "timeline": list(steps),
        "until": "2026-03-01T00:00:00Z",
    }


def step(do: str, *, at: str = T0, org: str | None = "acme", **values: Any) -> dict[str, Any]:
    """A step document; `as_` stands for the `as` key."""
    raw: dict[str, Any] = {"at": at, "do": do}
    if org is not None:
        raw["org"] = org
    if "as_" in values:
        raw["as"] = values.pop("as_")
    return raw | values


def one_step(raw: dict[str, Any]) -> Step:
    scenario = build_scenario(document(raw))
    assert len(scenario.timeline) == 1
    return scenario.timeline[0]


def invalid(data: object) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as raised:
        build_scenario(data)
    return raised.value


def _shared_scenarios() -> Path:
    """The worked examples sit beside the repository (../shared/scenarios); /work/shared
    is the same folder on a developer's machine."""
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios"
    return beside if beside.is_dir() else Path("/work/shared/scenarios")


def load(name: str) -> Scenario:
    text = (_shared_scenarios() / name).read_text(encoding="utf-8")
    return build_scenario(yaml.safe_load(text))


# -- the three worked examples ----------------------------------------------------------------


def test_voice_overage_example() -> None:
    """SCENARIOS.md voice-overage.yaml: Starter with 500 minutes, calls rounded up to the
    minute (USE-5), no trial; one subscribe and one batch of nine events (a retry
    included: events are not deduplicated here, USE-1 is a run-time rule)."""
    scenario = load("voice-overage.yaml")
    assert scenario.terms == BillingTerms(trial=None)
    minutes = scenario.catalog.meters["minutes"]
    assert (minutes.kind, minutes.unit_seconds, minutes.rounding) == (
        MeterKind.SUM,
        60,
        Rounding.PER_EVENT_UP,
    )
    assert scenario.catalog.plans["starter"].price == Money(4900, USD)
    assert dict(scenario.organizations) == {
        "acme": OrganizationSpec(
            "acme", JAN_1, PaymentMethodChoice.CARD_OK, MappingProxyType({"owner": Role.OWNER})
        )
    }
    subscribe, events = scenario.timeline
    assert subscribe == Subscribe(0, JAN_1, "acme", "owner", "starter")
    assert isinstance(events, Events)
    assert (events.index, events.at, events.org, events.actor) == (
        1,
        datetime(2026, 1, 20, 18, tzinfo=UTC),
        None,
        None,
    )
    assert len(events.events) == 9
    assert [event["id"] for event in events.events] == [f"c{i}" for i in range(1, 9)] + ["c8"]
    assert events.events[0] == {
        "id": "c1",
        "type": "call.ended",
        "org": "acme",
        "agent": "a1",
        "time": "2026-01-05T10:00:00Z",
        "properties": {"duration_seconds": 3841},
    }
    assert scenario.until == datetime(2026, 2, 2, tzinfo=UTC)
    assert scenario.start() == JAN_1


def test_upgrade_day_proration_example() -> None:
    """SCENARIOS.md upgrade-day-proration.yaml: proration by day; Basic, then Pro
    immediately on Apr 16 (SUB-4, SUB-5)."""
    scenario = load("upgrade-day-proration.yaml")
    assert scenario.terms.proration is ProrationMode.DAY
    assert scenario.terms.trial is None
    assert list(scenario.catalog.plans) == ["basic", "pro"]
    apr_1 = datetime(2026, 4, 1, tzinfo=UTC)
    assert scenario.organizations["acme"].created_at == apr_1
    assert scenario.timeline == (
        Subscribe(0, apr_1, "acme", "owner", "basic"),
        ChangePlan(
            1, datetime(2026, 4, 16, 12, tzinfo=UTC), "acme", "owner", "pro", Timing.IMMEDIATELY
        ),
    )
    assert scenario.until == datetime(2026, 5, 2, tzinfo=UTC)
    assert scenario.start() == apr_1


def test_sessions_answered_only_example() -> None:
    """SCENARIOS.md sessions-answered-only.yaml: an answered-only plan (USE-4); six message
    events out of order, kept in file order with their own times."""
    scenario = load("sessions-answered-only.yaml")
    assert scenario.catalog.plans["agent"].answered_only is True
    assert scenario.terms.trial is None
    subscribe, events = scenario.timeline
    assert subscribe == Subscribe(0, JAN_1, "acme", "owner", "agent")
    assert isinstance(events, Events)
    assert [event["id"] for event in events.events] == ["m4", "m1", "m5", "m2", "m3", "m6"]
    assert events.events[3]["properties"] == {"direction": "inbound"}
    assert events.events[5]["conversation"] == "k2"
    assert scenario.until == datetime(2026, 1, 10, tzinfo=UTC)


# -- the whole document -----------------------------------------------------------------------


def test_document_parts() -> None:
    """Settings, catalog (in the settings' currency), organizations in file order with
    their members, parent (SUB-2) and payment method, the timeline and until."""
    scenario = build_scenario(document(step("subscribe", plan="starter")))
    assert scenario.terms.grace_days == 5
    assert scenario.catalog.currency == USD
    assert list(scenario.organizations) == ["acme", "acme-eu"]
    acme, eu = scenario.organizations.values()
    assert acme == OrganizationSpec(
        code="acme",
        created_at=JAN_1,
        payment_method=PaymentMethodChoice.CARD_OK,
        members={"alice": Role.OWNER, "bob": Role.BILLING_ADMIN, "carol": Role.MEMBER},
        parent=None,
    )
    assert list(acme.members) == ["alice", "bob", "carol"]
    assert acme.first_owner == "alice"
    assert eu == OrganizationSpec(
        "acme-eu", datetime(2026, 1, 2, tzinfo=UTC), PaymentMethodChoice.NONE, parent="acme"
    )
    assert dict(eu.members) == {"owner": Role.OWNER}
    assert scenario.until == datetime(2026, 3, 1, tzinfo=UTC)


def test_defaults_of_a_minimal_document() -> None:
    """SCENARIOS.md: settings all optional (TRI-1 trial 14 days / 50 sessions, SUB-8 grace
    7 days), timeline optional; members default to one owner named "owner"."""
    minimal = {
        "catalog": {"plans": {"trial": {"name": "Free trial", "price": "0"}}},
        "organizations": {"acme": {"created_at": "2026-01-01T00:00:00Z", "payment_method": "none"}},
        "until": "2026-02-01T00:00:00Z",
    }
    scenario = build_scenario(minimal)
    assert scenario.terms == BillingTerms()
    assert scenario.terms.trial == TrialTerms(14, 50, "trial")
    assert scenario.terms.grace_days == 7
    assert scenario.timeline == ()
    assert dict(scenario.organizations["acme"].members) == {"owner": Role.OWNER}
    assert scenario.start() == JAN_1
    assert build_scenario(minimal | {"timeline": None}).timeline == ()


def test_json_document() -> None:
    """The caller may load JSON instead of YAML: the same mapping, the same scenario."""
    raw = document(step("subscribe", plan="pro"))
    assert build_scenario(json.loads(json.dumps(raw))) == build_scenario(raw)


def test_yaml_unquoted_times_are_taken_when_they_have_a_timezone() -> None:
    """YAML reads an unquoted time as a datetime: one with a timezone is the same instant
    (converted to UTC); one without is refused, like its text."""
    text = """
catalog: {plans: {trial: {name: T, price: "0"}}}
organizations: {acme: {created_at: 2026-01-01T01:00:00+01:00, payment_method: none}}
timeline: [{at: 2026-01-05T00:00:00Z, do: change_plan, org: acme, plan: trial,
            when: 2026-02-01T00:00:00Z}]
until: 2026-03-01T00:00:00Z
"""
    scenario = build_scenario(yaml.safe_load(text))
    assert scenario.organizations["acme"].created_at == JAN_1
    assert scenario.organizations["acme"].created_at.tzinfo is UTC
    step_ = scenario.timeline[0]
    assert isinstance(step_, ChangePlan)
    assert step_.when == datetime(2026, 2, 1, tzinfo=UTC)
    naive = yaml.safe_load(text.replace("2026-03-01T00:00:00Z", "2026-03-01T00:00:00"))
    assert str(invalid(naive)) == "until: 2026-03-01T00:00:00 has no timezone; use UTC"


def test_times_in_other_timezones_become_utc() -> None:
    raw = document(step("pay", at="2026-01-05T02:00:00+02:00"))
    assert build_scenario(raw).timeline[0].at == AT


@pytest.mark.parametrize(
    ("created", "first_step", "expected"),
    [
        (("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"), T0, JAN_1),
        (("2026-01-10T00:00:00Z", "2026-01-02T00:00:00Z"), T0, datetime(2026, 1, 2, tzinfo=UTC)),
        (("2026-01-10T00:00:00Z", "2026-01-12T00:00:00Z"), T0, AT),
        (("2026-01-10T00:00:00Z", "2026-01-12T00:00:00Z"), None, datetime(2026, 1, 10, tzinfo=UTC)),
    ],
    ids=["first-org", "second-org", "first-step", "no-steps"],
)
def test_start_is_the_earliest_creation_or_step(
    created: tuple[str, str], first_step: str | None, expected: datetime
) -> None:
    """The simulated clock starts at the earliest organization creation or first step (a
    step may come before its organization exists: a run-time refusal, not an error)."""
    raw = document() if first_step is None else document(step("pay", at=first_step))
    for code, moment in zip(("acme", "acme-eu"), created, strict=True):
        raw["organizations"][code]["created_at"] = moment
    assert build_scenario(raw).start() == expected


def test_steps_at_the_same_time_and_until_at_the_last_step() -> None:
    """Steps in time order may share an instant (file order is kept); `until` may equal
    the last step's time."""
    raw = document(step("pay"), step("cancel"), step("resume"))
    raw["until"] = T0
    scenario = build_scenario(raw)
    assert [type(s) for s in scenario.timeline] == [Pay, Cancel, Resume]
    assert [s.index for s in scenario.timeline] == [0, 1, 2]
    assert scenario.until == AT


def test_sub_account_may_name_a_parent_written_after_it_sub_2() -> None:
    """SUB-2: a sub-account names its organization; the order in the file does not matter."""
    raw = document()
    organizations = raw["organizations"]
    raw["organizations"] = {"acme-eu": organizations["acme-eu"], "acme": organizations["acme"]}
    scenario = build_scenario(raw)
    assert list(scenario.organizations) == ["acme-eu", "acme"]
    assert scenario.organizations["acme-eu"].parent == "acme"


def test_building_leaves_the_document_unchanged() -> None:
    raw = document(
        step("events", org=None, events=[{"id": "e1", "properties": {"tags": ["a"]}}]),
        step("subscribe", plan="starter", addons={"extra_agent": 1}),
    )
    before = copy.deepcopy(raw)
    build_scenario(raw)
    assert raw == before


def test_scenario_is_frozen() -> None:
    """What is parsed is read-only (dataclasses, mappings, each event); an event's nested
    values are private plain copies (dicts and lists, ready for JSON), not the document's."""
    properties_in = {"tags": ("a", {"k": 1})}
    scenario = build_scenario(
        document(
            step("subscribe", plan="starter", addons={"extra_agent": 1}),
            step("events", events=[{"id": "e1", "properties": properties_in}]),
        )
    )
    with pytest.raises(FrozenInstanceError):
        scenario.until = JAN_1  # type: ignore[misc]
    with pytest.raises(TypeError):
        scenario.organizations["x"] = scenario.organizations["acme"]  # type: ignore[index]
    with pytest.raises(TypeError):
        scenario.organizations["acme"].members["dave"] = Role.OWNER  # type: ignore[index]
    subscribe, events = scenario.timeline
    assert isinstance(subscribe, Subscribe)
    with pytest.raises(FrozenInstanceError):
        subscribe.plan = "pro"  # type: ignore[misc]
    with pytest.raises(TypeError):
        subscribe.addons["extra_agent"] = 3  # type: ignore[index]
    assert isinstance(events, Events)
    event = events.events[0]
    with pytest.raises(TypeError):
        event["id"] = "e2"  # type: ignore[index]
    assert isinstance(event, MappingProxyType)
    properties = event["properties"]
    assert properties == {"tags": ["a", {"k": 1}]}
    assert properties is not properties_in
    assert json.loads(json.dumps(dict(event))) == {"id": "e1", "properties": properties}


# -- every step kind ----------------------------------------------------------------------------


def _base(index: int = 0, org: str = "acme", actor: str = "alice") -> dict[str, Any]:
    return {"index": index, "at": AT, "org": org, "actor": actor}


STEP_CASES: list[tuple[str, dict[str, Any], Step]] = [
    (
        "subscribe",
        step("subscribe", plan="starter", addons={"extra_agent": 2}),
        Subscribe(**_base(), plan="starter", addons={"extra_agent": 2}),
    ),
    ("subscribe-defaults", step("subscribe", plan="pro"), Subscribe(**_base(), plan="pro")),
    (
        "change_plan-immediately",
        step("change_plan", plan="pro", when="immediately"),
        ChangePlan(**_base(), plan="pro", when=Timing.IMMEDIATELY),
    ),
    (
        "change_plan-period_end",
        step("change_plan", plan="starter", when="period_end"),
        ChangePlan(**_base(), plan="starter", when=Timing.PERIOD_END),
    ),
    (
        "change_plan-date",
        step("change_plan", plan="pro", when="2026-01-20T12:00:00+00:00"),
        ChangePlan(**_base(), plan="pro", when=datetime(2026, 1, 20, 12, tzinfo=UTC)),
    ),
    (
        "change_plan-defaults",
        step("change_plan", plan="pro"),
        ChangePlan(**_base(), plan="pro", when=None),
    ),
    (
        "cancel_scheduled_change",
        step("cancel_scheduled_change", as_="bob"),
        CancelScheduledChange(**_base(actor="bob")),
    ),
    ("approve_change", step("approve_change"), ApproveChange(**_base())),
    ("cancel", step("cancel"), Cancel(**_base())),
    ("resume", step("resume", org="acme-eu"), Resume(**_base(org="acme-eu", actor="owner"))),
    (
        "set_payment_method",
        step("set_payment_method", method="card_fails_later"),
        SetPaymentMethod(**_base(), method=PaymentMethodChoice.CARD_FAILS_LATER),
    ),
    ("pay", step("pay", as_="carol"), Pay(**_base(actor="carol"))),
    ("pay_now", step("pay_now"), PayNow(**_base())),
    (
        "set_session_limit",
        step("set_session_limit", limit=800),
        SetSessionLimit(**_base(), limit=800),
    ),
    ("reset_session_limit", step("reset_session_limit"), ResetSessionLimit(**_base())),
    (
        "add_slots",
        step("add_slots", addon="extra_agent", quantity=3),
        AddSlots(**_base(), addon="extra_agent", quantity=3),
    ),
    (
        "remove_slots",
        step("remove_slots", addon="extra_agent", quantity=1),
        RemoveSlots(**_base(), addon="extra_agent", quantity=1),
    ),
    (
        "top_up",
        step("top_up", credits=500, price="4.50"),
        TopUp(**_base(), credits=500, price=Money(450, USD)),
    ),
    ("top_up-defaults", step("top_up", credits=500), TopUp(**_base(), credits=500, price=None)),
    (
        "events",
        step("events", org=None, events=[{"id": "e1", "type": "message"}, {"id": "e2"}]),
        Events(0, AT, None, None, ({"id": "e1", "type": "message"}, {"id": "e2"})),
    ),
    (
        "events-with-org",
        step("events", events=[], as_="bob"),
        Events(0, AT, "acme", "bob", ()),
    ),
    (
        "events-with-org-defaults",
        step("events", org="acme-eu", events=[{"bad": None}]),
        Events(0, AT, "acme-eu", "owner", ({"bad": None},)),
    ),
    (
        "check-use_ai",
        step("check", action="use_ai", feature="kb_answer"),
        Check(**_base(), action=Action.USE_AI, feature="kb_answer"),
    ),
    (
        "check-defaults",
        step("check", action="add_seat"),
        Check(**_base(), action=Action.ADD_SEAT, feature=None),
    ),
    (
        "start_session",
        step("start_session", agent="a1", conversation="Conv 7"),
        StartSession(**_base(), agent="a1", conversation="Conv 7"),
    ),
    (
        "create_agent",
        step("create_agent", agent="Support Bot"),
        CreateAgent(**_base(), agent="Support Bot"),
    ),
    ("archive_agent", step("archive_agent", agent="a1"), ArchiveAgent(**_base(), agent="a1")),
    (
        "add_member",
        step("add_member", member="dave", role="billing_admin"),
        AddMember(**_base(), member="dave", role=Role.BILLING_ADMIN),
    ),
    (
        "remove_member",
        step("remove_member", member="carol"),
        RemoveMember(**_base(), member="carol"),
    ),
    (
        "add_phone_number",
        step("add_phone_number", number="+15551234567"),
        AddPhoneNumber(**_base(), number="+15551234567"),
    ),
    (
        "release_phone_number",
        step("release_phone_number", number="+15551234567"),
        ReleasePhoneNumber(**_base(), number="+15551234567"),
    ),
    (
        "request_demo",
        step("request_demo", plan="enterprise"),
        RequestDemo(**_base(), plan="enterprise"),
    ),
    # INV-5: corrections by the platform
    (
        "void_invoice",
        step("void_invoice", invoice="INV-000002"),
        VoidInvoice(**_base(), invoice="INV-000002"),
    ),
    (
        "mark_uncollectible",
        step("mark_uncollectible", invoice="INV-000002"),
        MarkUncollectible(**_base(), invoice="INV-000002"),
    ),
    (
        "mark_paid",
        step("mark_paid", invoice="INV-000002"),
        MarkPaid(**_base(), invoice="INV-000002"),
    ),
    (
        "credit_note",
        step(
            "credit_note", invoice="INV-000001", lines=[{"line": 1, "amount": "2.50"}], refund=True
        ),
        IssueCreditNote(
            **_base(),
            invoice="INV-000001",
            lines=((1, Money(250, Currency.of("USD"))),),
            refund=True,
        ),
    ),
    (
        "grant_account_credit",
        step("grant_account_credit", amount="5.00"),
        GrantAccountCredit(**_base(), amount=Money(500, Currency.of("USD"))),
    ),
    (
        "assign_plan",
        step("assign_plan", plan="enterprise", price="1500.00", collection="invoice"),
        AssignPlan(**_base(), plan="enterprise", collection="invoice", price="1500.00"),
    ),
    (  # CAT-7
        "connect_channel",
        step("connect_channel", channel="whatsapp"),
        ConnectChannel(**_base(), channel="whatsapp"),
    ),
    (
        "disconnect_channel",
        step("disconnect_channel", channel="webchat"),
        DisconnectChannel(**_base(), channel="webchat"),
    ),
    (
        "check-connect-channel",
        step("check", action="connect_channel", channel="whatsapp"),
        Check(**_base(), action=Action.CONNECT_CHANNEL, channel="whatsapp"),
    ),
    (  # CRD-5
        "hold_credits",
        step("hold_credits", hold="h1", credits=30, feature="smart_reply", agent="a1",
             timeout_seconds=60),
        HoldCredits(**_base(), hold="h1", credits=30, feature="smart_reply", agent="a1",
                    timeout_seconds=60),
    ),
    (
        "hold_credits-defaults",
        step("hold_credits", hold="h1", credits=30, feature="smart_reply"),
        HoldCredits(**_base(), hold="h1", credits=30, feature="smart_reply"),
    ),
    (
        "settle_hold",
        step("settle_hold", hold="h1", credits=20),
        SettleHold(**_base(), hold="h1", credits=20),
    ),
    ("release_hold", step("release_hold", hold="h1"), ReleaseHold(**_base(), hold="h1")),
    (  # CRD-7
        "set_credit_alert",
        step("set_credit_alert", threshold=50),
        SetCreditAlert(**_base(), threshold=50),
    ),
    (  # INV-6
        "subscribe-coupon",
        step("subscribe", plan="pro", coupon="launch"),
        Subscribe(**_base(), plan="pro", coupon="launch"),
    ),
    (
        "apply_coupon",
        step("apply_coupon", coupon="launch"),
        ApplyCoupon(**_base(), coupon="launch"),
    ),
    (  # INV-7: values as typed, checked when the step runs
        "set_billing_details",
        step("set_billing_details", legal_name="Acme GmbH", country="DE", tax_id="DE123456789",
             address="Hauptstr. 1"),
        SetBillingDetails(**_base(), legal_name="Acme GmbH", country="DE",
                          tax_id="DE123456789", address="Hauptstr. 1"),
    ),
    (
        "set_billing_details-defaults",
        step("set_billing_details", legal_name="Acme", country="US"),
        SetBillingDetails(**_base(), legal_name="Acme", country="US", tax_id=None, address=""),
    ),
    (  # LIM-6
        "set_spend_cap",
        step("set_spend_cap", amount="50.00"),
        SetSpendCap(**_base(), amount=Money(5000, USD)),
    ),
    ("reset_spend_cap", step("reset_spend_cap"), ResetSpendCap(**_base())),
    (  # CRD-6
        "set_auto_top_up",
        step("set_auto_top_up", threshold=100, credits=500),
        SetAutoTopUp(**_base(), threshold=100, credits=500),
    ),
    ("disable_auto_top_up", step("disable_auto_top_up"), DisableAutoTopUp(**_base())),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"), [c[1:] for c in STEP_CASES], ids=[c[0] for c in STEP_CASES]
)
def test_each_step_kind_with_its_fields_and_defaults(raw: dict[str, Any], expected: Step) -> None:
    """Each `do` of SCENARIOS.md "Steps" with all its fields, and again with its defaults:
    `as` defaults to the organization's first owner; `addons` to none; `when`, `price` and
    `feature` to None; `events` may leave `org` out."""
    parsed = one_step(raw)
    assert type(parsed) is type(expected)
    assert parsed == expected
    assert STEPS[raw["do"]] is type(expected)


def test_every_step_kind_has_a_case() -> None:
    assert {raw["do"] for _, raw, _ in STEP_CASES} == set(STEPS)


def test_steps_registry() -> None:
    """STEPS maps every `do` of SCENARIOS.md to its class, whose `do` is that name; every
    class has index, at, org and actor."""
    assert sorted(STEPS) == sorted(
        "subscribe change_plan cancel_scheduled_change approve_change cancel resume "
        "set_payment_method pay set_session_limit reset_session_limit add_slots remove_slots "
        "top_up events check start_session create_agent archive_agent add_member "
        "remove_member add_phone_number release_phone_number request_demo".split()
        + "void_invoice mark_uncollectible mark_paid credit_note grant_account_credit".split()
        + ["assign_plan"]
        + ["pay_now"]
        + ["connect_channel", "disconnect_channel"]
        + "hold_credits settle_hold release_hold set_credit_alert".split()  # CRD-5, CRD-7
        + ["apply_coupon", "set_billing_details"]  # INV-6, INV-7
        + "set_spend_cap reset_spend_cap set_auto_top_up disable_auto_top_up".split()  # LIM-6
    )
    for do, kind in STEPS.items():
        assert kind.do == do
        assert issubclass(kind, TimelineStep)
        assert [f.name for f in fields(kind)][:4] == ["index", "at", "org", "actor"]
        assert issubclass(kind, OrganizationStep) == (kind is not Events)


@pytest.mark.parametrize(
    ("when", "timing"),
    [
        (Timing.IMMEDIATELY, Timing.IMMEDIATELY),
        (Timing.PERIOD_END, Timing.PERIOD_END),
        (datetime(2026, 2, 1, tzinfo=UTC), Timing.DATE),
        (None, None),
    ],
)
def test_change_plan_timing_sub_4(when: Timing | datetime | None, timing: Timing | None) -> None:
    """SUB-4: a change is immediate, at period end, or on a date (an instant in `when`);
    None leaves the choice to the terms' default."""
    assert ChangePlan(**_base(), plan="pro", when=when).timing == timing


def test_step_indexes_are_positions_in_the_timeline() -> None:
    scenario = build_scenario(
        document(step("pay"), step("events", org=None, events=[]), step("cancel"))
    )
    assert [s.index for s in scenario.timeline] == [0, 1, 2]


# -- members acting in steps (ACL-1) ------------------------------------------------------------


def test_a_member_added_earlier_may_act_acl_1() -> None:
    """ACL-1: `as` names a member of the organization, or one an earlier step added; a
    member removed by an earlier step still parses (acting then is a run-time refusal)."""
    scenario = build_scenario(
        document(
            step("add_member", member="dave", role="owner"),
            step("pay", as_="dave"),
            step("remove_member", member="dave", as_="alice"),
            step("pay", as_="dave"),
            step("remove_member", member="dave"),
        )
    )
    assert [s.actor for s in scenario.timeline] == ["alice", "dave", "alice", "dave", "alice"]


def test_members_added_to_one_organization_only_acl_1() -> None:
    """ACL-1: a member added to acme is not a member of acme-eu."""
    error = invalid(
        document(
            step("add_member", member="dave", role="member"),
            step("pay", org="acme-eu", as_="dave"),
        )
    )
    assert str(error) == "timeline[1].as: 'dave' is not a member of acme-eu"


def test_default_actor_is_the_first_owner() -> None:
    raw = document(step("pay"))
    raw["organizations"]["acme"]["members"] = {"carol": "member", "zed": "owner", "amy": "owner"}
    assert build_scenario(raw).timeline[0].actor == "zed"


# -- bad files ----------------------------------------------------------------------------------


def _set(*path: str | int, value: Any) -> Any:
    """An edit of the document: the value at `path` becomes `value` (DELETE: removed)."""

    def edit(raw: dict[str, Any]) -> None:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


DELETE = object()


def _edits(*edits: Any) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        for one in edits:
            one(raw)

    return edit


ORDER = ", ".join(sorted(STEPS))

BAD_DOCUMENTS: list[tuple[str, Any, str]] = [
    (
        "top-not-a-mapping",
        None,
        "a scenario must be a mapping of settings, catalog, organizations, timeline, until",
    ),
    (
        "top-unknown-key",
        _set("timelines", value=[]),
        "timelines: unknown field; expected one of catalog, organizations, settings, timeline, "
        "until",
    ),
    ("catalog-missing", _set("catalog", value=DELETE), "catalog: is required"),
    ("organizations-missing", _set("organizations", value=DELETE), "organizations: is required"),
    ("until-missing", _set("until", value=DELETE), "until: is required"),
    ("until-null", _set("until", value=None), "until: is required"),
    (
        "until-not-a-time",
        _set("until", value="March"),
        "until: 'March' is not an ISO 8601 time such as 2026-01-01T00:00:00Z",
    ),
    (
        "until-a-date",
        _set("until", value="2026-03-01"),
        "until: 2026-03-01T00:00:00 has no timezone; use UTC",
    ),
    (
        "until-a-number",
        _set("until", value=20260301),
        "until: expected an ISO 8601 time such as 2026-01-01T00:00:00Z",
    ),
    (
        "settings-bad",
        _set("settings", "proration", value="hour"),
        "settings.proration: unknown proration mode 'hour'; expected second, day or none",
    ),
    (
        "settings-unknown-key",
        _set("settings", "grace", value=3),
        "settings.grace: unknown field; expected one of billing, billing_tab, currency, "
        "grace_days, invoice_prefix, payment_retry_days, plan_changes, proration, "
        "suspension_days, taxes, trial",
    ),
    (
        "catalog-typo",
        _set(
            "catalog",
            "plans",
            "starter",
            "overage",
            "minuts",
            value={"model": "per_unit", "unit_price": "0.10"},
        ),
        "catalog.plans.starter.overage.minuts: unknown meter",
    ),
    (
        "catalog-unknown-key",
        _set("catalog", "plan", value={}),
        "catalog.plan: unknown field; expected one of addons, ai_features, coupons, "
        "credit_price, meters, plans",
    ),
    (
        "catalog-in-the-settings-currency",
        _edits(
            _set("settings", "currency", value="JPY"),
            _set("catalog", "plans", "starter", "price", value="49.50"),
        ),
        "catalog.plans.starter.price: 49.50 has more decimals than JPY allows (0)",
    ),
    (
        "trial-plan-not-in-catalog",
        _set("catalog", "plans", "trial", value=DELETE),
        "settings.trial.plan: unknown plan 'trial'",
    ),
    (
        "organizations-empty",
        _set("organizations", value={}),
        "organizations: needs at least one organization",
    ),
    (
        "organizations-a-list",
        _set("organizations", value=["acme"]),
        "organizations: expected a mapping of names to values",
    ),
    (
        "organization-code",
        _set(
            "organizations",
            "Acme",
            value={"created_at": "2026-01-01T00:00:00Z", "payment_method": "none"},
        ),
        "organizations.Acme: 'Acme' is not a valid name (lower-case letters, digits, _ - .)",
    ),
    (
        "organization-not-a-mapping",
        _set("organizations", "acme", value="card_ok"),
        "organizations.acme: expected a mapping of names to values",
    ),
    (
        "payment-method-unknown",
        _set("organizations", "acme", "payment_method", value="visa"),
        "organizations.acme.payment_method: unknown payment method 'visa'; expected one of "
        "card_declined, card_fails_later, card_ok, none",
    ),
    (
        "payment-method-missing",
        _set("organizations", "acme", "payment_method", value=DELETE),
        "organizations.acme.payment_method: is required",
    ),
    (
        "created-at-missing",
        _set("organizations", "acme", "created_at", value=DELETE),
        "organizations.acme.created_at: is required",
    ),
    (
        "created-at-naive",
        _set("organizations", "acme", "created_at", value="2026-01-01T00:00:00"),
        "organizations.acme.created_at: 2026-01-01T00:00:00 has no timezone; use UTC",
    ),
    (
        "created-at-text",
        _set("organizations", "acme", "created_at", value="yesterday"),
        "organizations.acme.created_at: 'yesterday' is not an ISO 8601 time such as "
        "2026-01-01T00:00:00Z",
    ),
    (
        "organization-unknown-key",
        _set("organizations", "acme", "plan", value="starter"),
        "organizations.acme.plan: unknown field; expected one of billing_details, created_at, "
        "members, parent, payment_method",
    ),
    (
        "members-no-owner",
        _set("organizations", "acme", "members", value={"bob": "billing_admin"}),
        "organizations.acme.members: needs at least one owner",
    ),
    (
        "members-empty",
        _set("organizations", "acme", "members", value={}),
        "organizations.acme.members: needs at least one owner",
    ),
    (
        "members-unknown-role",
        _set("organizations", "acme", "members", "bob", value="admin"),
        "organizations.acme.members.bob: unknown role 'admin'; expected one of billing_admin, "
        "member, owner",
    ),
    (
        "members-bad-name",
        _set("organizations", "acme", "members", "Bob Smith", value="member"),
        "organizations.acme.members.Bob Smith: 'Bob Smith' is not a valid name (lower-case "
        "letters, digits, _ - .)",
    ),
    (
        "members-a-list",
        _set("organizations", "acme", "members", value=["alice"]),
        "organizations.acme.members: expected a mapping of names to values",
    ),
    (
        "parent-self",
        _set("organizations", "acme", "parent", value="acme"),
        "organizations.acme.parent: an organization cannot be its own parent",
    ),
    (
        "parent-unknown",
        _set("organizations", "acme-eu", "parent", value="acme-us"),
        "organizations.acme-eu.parent: unknown organization 'acme-us'",
    ),
    (
        "parent-not-a-name",
        _set("organizations", "acme-eu", "parent", value=7),
        "organizations.acme-eu.parent: 7 is not a valid name (lower-case letters, digits, _ - .)",
    ),
    (
        "parent-a-sub-account",
        _set(
            "organizations",
            "acme-eu-west",
            value={
                "created_at": "2026-01-03T00:00:00Z",
                "payment_method": "none",
                "parent": "acme-eu",
            },
        ),
        "organizations.acme-eu-west.parent: 'acme-eu' is itself a sub-account of 'acme'; a "
        "sub-account cannot have sub-accounts",
    ),
    (
        "parent-cycle",
        _set("organizations", "acme", "parent", value="acme-eu"),
        "organizations.acme.parent: 'acme-eu' is itself a sub-account of 'acme'; a sub-account "
        "cannot have sub-accounts",
    ),
    (
        "timeline-not-a-list",
        _set("timeline", value="subscribe"),
        "timeline: expected a list of steps, got 'subscribe'",
    ),
    (
        "timeline-a-mapping",
        _set("timeline", value={"at": T0}),
        "timeline: expected a list of steps, got {'at': '2026-01-05T00:00:00Z'}",
    ),
    (
        "until-before-the-first-organization",
        _set("until", value="2025-12-31T00:00:00Z"),
        "until: 2025-12-31T00:00:00Z is before the first organization's creation "
        "2026-01-01T00:00:00Z",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_bad_document_names_its_path(edit: Any, message: str) -> None:
    """A bad file gives ONE InvalidConfig naming the path in the file. Tried: a document
    that is not a mapping; an unknown top-level key; catalog, organizations or until
    missing; until null, not a time, a date, a number, or before the first organization
    exists; bad and unknown settings; a catalog typo (prefixed "catalog."); an unknown
    catalog key; a catalog price with more decimals than the settings' currency; a trial
    plan the catalog lacks; no organizations or a list of them; an organization code that
    is not a name, an organization that is not a mapping; an unknown, missing payment
    method; created_at missing, naive or not a time; an unknown organization key; members
    without an owner, empty, with an unknown role, a bad name, as a list; a parent that is
    the organization itself, unknown, not a name, a sub-account, a cycle; a timeline that
    is not a list."""
    raw: Any = document()
    if edit is None:
        raw = ["not", "a", "mapping"]
    else:
        edit(raw)
    error = invalid(raw)
    assert str(error) == message
    assert error.message == message
    assert isinstance(error, InvalidInput)


def test_not_a_mapping_at_all() -> None:
    assert (
        str(invalid(None))
        == "a scenario must be a mapping of settings, catalog, organizations, timeline, until"
    )
    assert invalid({1: "x"}).path == ""


BAD_STEPS: list[tuple[str, list[dict[str, Any]], str]] = [
    (
        "unknown-plan-in-the-fourth-step",
        [
            step("create_agent", agent="a1"),
            step("pay"),
            step("cancel"),
            step("subscribe", plan="gold"),
        ],
        "timeline[3].plan: unknown plan 'gold'",
    ),
    (
        "step-not-a-mapping",
        [step("pay"), "pay"],
        "timeline[1]: expected a mapping of names to values",
    ),  # type: ignore[list-item]
    (
        "unknown-do",
        [step("pay"), step("cancel"), step("upgrade", plan="pro")],
        f"timeline[2].do: unknown step 'upgrade'; expected one of {ORDER}",
    ),
    ("do-missing", [{"at": T0, "org": "acme"}], "timeline[0].do: is required"),
    (
        "do-not-text",
        [{"at": T0, "do": 3, "org": "acme"}],
        f"timeline[0].do: unknown step 3; expected one of {ORDER}",
    ),
    ("at-missing", [{"do": "pay", "org": "acme"}], "timeline[0].at: is required"),
    (
        "at-naive",
        [step("pay", at="2026-01-05T00:00:00")],
        "timeline[0].at: 2026-01-05T00:00:00 has no timezone; use UTC",
    ),
    (
        "at-a-number",
        [step("pay", at=5)],
        "timeline[0].at: expected an ISO 8601 time such as 2026-01-01T00:00:00Z",
    ),  # type: ignore[arg-type]
    (
        "at-text",
        [step("pay", at="soon")],
        "timeline[0].at: 'soon' is not an ISO 8601 time such as 2026-01-01T00:00:00Z",
    ),
    (
        "out-of-time-order",
        [
            step("pay", at="2026-01-01T00:00:00Z"),
            step("pay", at="2026-01-15T00:00:00Z"),
            step("pay", at="2026-01-20T00:00:00Z"),
            step("pay", at="2026-02-01T00:00:00Z"),
            step("pay", at="2026-01-01T00:00:00Z"),
        ],
        "timeline[4].at: steps must be in time order; 2026-01-01T00:00:00Z is before the "
        "previous step's 2026-02-01T00:00:00Z",
    ),
    (
        "until-before-the-last-step",
        [step("pay", at="2026-02-01T00:00:00Z"), step("pay", at="2026-03-02T00:00:00Z")],
        "until: 2026-03-01T00:00:00Z is before the last step's 2026-03-02T00:00:00Z",
    ),
    (
        "unknown-field",
        [step("subscribe", plan="pro", plna="pro")],
        "timeline[0].plna: unknown field; expected one of addons, anchor, as, at, coupon, do, "
        "org, plan",
    ),
    (
        "field-of-another-step",
        [step("cancel", plan="pro")],
        "timeline[0].plan: unknown field; expected one of as, at, do, org",
    ),
    ("org-missing", [step("pay", org=None)], "timeline[0].org: is required"),
    ("org-unknown", [step("pay", org="acmee")], "timeline[0].org: unknown organization 'acmee'"),
    ("org-not-text", [step("pay", org=["acme"])], "timeline[0].org: unknown organization ['acme']"),  # type: ignore[arg-type]
    (
        "as-not-a-member",
        [step("pay", as_="dave")],
        "timeline[0].as: 'dave' is not a member of acme",
    ),
    (
        "as-a-member-of-another-org",
        [step("pay", as_="owner")],
        "timeline[0].as: 'owner' is not a member of acme",
    ),
    ("as-not-text", [step("pay", as_=1)], "timeline[0].as: 1 is not a member of acme"),
    ("plan-missing", [step("subscribe")], "timeline[0].plan: is required"),
    ("plan-not-text", [step("subscribe", plan=1)], "timeline[0].plan: unknown plan 1"),
    (
        "addon-unknown",
        [step("subscribe", plan="pro", addons={"extra_seat": 1})],
        "timeline[0].addons.extra_seat: unknown add-on 'extra_seat'",
    ),
    (
        "addon-zero",
        [step("subscribe", plan="pro", addons={"extra_agent": 0})],
        "timeline[0].addons.extra_agent: must be at least 1, got 0",
    ),
    (
        "addons-a-list",
        [step("subscribe", plan="pro", addons=["extra_agent"])],
        "timeline[0].addons: expected a mapping of names to values",
    ),
    (
        "change-plan-unknown",
        [step("change_plan", plan="gold")],
        "timeline[0].plan: unknown plan 'gold'",
    ),
    (
        "when-text",
        [step("change_plan", plan="pro", when="tomorrow")],
        "timeline[0].when: 'tomorrow' is not immediately, period_end or an ISO 8601 time such as "
        "2026-01-01T00:00:00Z",
    ),
    (
        "when-date-word",
        [step("change_plan", plan="pro", when="date")],
        "timeline[0].when: 'date' is not immediately, period_end or an ISO 8601 time such as "
        "2026-01-01T00:00:00Z",
    ),
    (
        "when-naive",
        [step("change_plan", plan="pro", when="2026-02-01T00:00:00")],
        "timeline[0].when: 2026-02-01T00:00:00 has no timezone; use UTC",
    ),
    (
        "when-a-number",
        [step("change_plan", plan="pro", when=5)],
        "timeline[0].when: expected immediately, period_end or an ISO 8601 time such as "
        "2026-01-01T00:00:00Z, got 5",
    ),
    (
        "method-unknown",
        [step("set_payment_method", method="visa")],
        "timeline[0].method: unknown payment method 'visa'; expected one of card_declined, "
        "card_fails_later, card_ok, none",
    ),
    ("method-missing", [step("set_payment_method")], "timeline[0].method: is required"),
    (
        "limit-zero",
        [step("set_session_limit", limit=0)],
        "timeline[0].limit: must be at least 1, got 0",
    ),
    (
        "limit-text",
        [step("set_session_limit", limit="800")],
        "timeline[0].limit: expected a whole number, got '800'",
    ),
    (
        "limit-float",
        [step("set_session_limit", limit=8.5)],
        "timeline[0].limit: expected a whole number, got 8.5",
    ),
    (
        "add-slots-addon-unknown",
        [step("add_slots", addon="extra_seat", quantity=1)],
        "timeline[0].addon: unknown add-on 'extra_seat'",
    ),
    (
        "add-slots-quantity-missing",
        [step("add_slots", addon="extra_agent")],
        "timeline[0].quantity: is required",
    ),
    (
        "remove-slots-quantity-negative",
        [step("remove_slots", addon="extra_agent", quantity=-1)],
        "timeline[0].quantity: must be at least 1, got -1",
    ),
    (
        "top-up-credits-zero",
        [step("top_up", credits=0)],
        "timeline[0].credits: must be at least 1, got 0",
    ),
    (
        "top-up-price-float",
        [step("top_up", credits=5, price=5.0)],
        'timeline[0].price: expected a decimal string such as "0.10", got 5.0',
    ),
    (
        "top-up-price-decimals",
        [step("top_up", credits=5, price="5.001")],
        "timeline[0].price: 5.001 has more decimals than USD allows (2)",
    ),
    (
        "top-up-price-negative",
        [step("top_up", credits=5, price="-1.00")],
        "timeline[0].price: must be at least 0, got -1.00",
    ),
    ("events-missing", [step("events", org=None)], "timeline[0].events: is required"),
    (
        "events-not-a-list",
        [step("events", org=None, events={"id": "e1"})],
        "timeline[0].events: expected a list of events, got {'id': 'e1'}",
    ),
    (
        "event-not-a-mapping",
        [step("events", org=None, events=[{"id": "e1"}, "e2"])],
        "timeline[0].events[1]: expected a mapping of names to values",
    ),
    (
        "events-as-without-org",
        [step("events", org=None, events=[], as_="alice")],
        "timeline[0].as: needs org: a member of which one?",
    ),
    (
        "events-org-unknown",
        [step("events", org="globex", events=[])],
        "timeline[0].org: unknown organization 'globex'",
    ),
    (
        "events-unknown-field",
        [step("events", org=None, events=[], event={})],
        "timeline[0].event: unknown field; expected one of as, at, do, events, org",
    ),
    (
        "check-action-unknown",
        [step("check", action="fly")],
        "timeline[0].action: unknown action 'fly'; expected one of start_session, use_ai, "
        "add_agent, add_seat, add_phone_number, connect_channel",
    ),
    ("check-action-missing", [step("check")], "timeline[0].action: is required"),
    (
        "check-use-ai-without-feature",
        [step("check", action="use_ai")],
        "timeline[0].feature: is required",
    ),
    (  # CAT-7
        "check-connect-channel-without-channel",
        [step("check", action="connect_channel")],
        "timeline[0].channel: is required",
    ),
    (
        "check-channel-for-another-action",
        [step("check", action="add_agent", channel="webchat")],
        "timeline[0].channel: only a connect_channel check takes a channel",
    ),
    (
        "connect-channel-no-plan-lists",
        [step("connect_channel", channel="teams")],
        "timeline[0].channel: unknown channel 'teams'",
    ),
    (
        "disconnect-channel-missing",
        [step("disconnect_channel")],
        "timeline[0].channel: is required",
    ),
    (
        "check-use-ai-unknown-feature",
        [step("check", action="use_ai", feature="summarize")],
        "timeline[0].feature: unknown AI feature 'summarize'",
    ),
    (
        "check-feature-for-another-action",
        [step("check", action="start_session", feature="smart_reply")],
        "timeline[0].feature: only a use_ai check takes a feature",
    ),
    (
        "start-session-conversation-missing",
        [step("start_session", agent="a1")],
        "timeline[0].conversation: is required",
    ),
    (
        "start-session-agent-empty",
        [step("start_session", agent="", conversation="k1")],
        "timeline[0].agent: expected a non-empty text, got ''",
    ),
    (
        "create-agent-agent-not-text",
        [step("create_agent", agent=1)],
        "timeline[0].agent: expected a non-empty text, got 1",
    ),
    ("archive-agent-agent-missing", [step("archive_agent")], "timeline[0].agent: is required"),
    (
        "add-member-role-unknown",
        [step("add_member", member="dave", role="admin")],
        "timeline[0].role: unknown role 'admin'; expected one of billing_admin, member, owner",
    ),
    (
        "add-member-role-missing",
        [step("add_member", member="dave")],
        "timeline[0].role: is required",
    ),
    (
        "add-member-bad-name",
        [step("add_member", member="Dave", role="member")],
        "timeline[0].member: 'Dave' is not a valid name (lower-case letters, digits, _ - .)",
    ),
    (
        "remove-member-unknown",
        [step("remove_member", member="dave")],
        "timeline[0].member: 'dave' is not a member of acme",
    ),
    ("remove-member-missing", [step("remove_member")], "timeline[0].member: is required"),
    ("add-phone-number-missing", [step("add_phone_number")], "timeline[0].number: is required"),
    (
        "release-phone-number-blank",
        [step("release_phone_number", number="  ")],
        "timeline[0].number: expected a non-empty text, got '  '",
    ),
    (
        "request-demo-unknown-plan",
        [step("request_demo", plan="platinum")],
        "timeline[0].plan: unknown plan 'platinum'",
    ),
    (  # CAT-9
        "assign-plan-unknown-collection",
        [step("assign_plan", plan="enterprise", collection="cash")],
        "timeline[0].collection: unknown collection 'cash'; expected one of card, invoice",
    ),
    (
        "assign-plan-number-price",
        [step("assign_plan", plan="enterprise", price=1500, collection="card")],
        'timeline[0].price: expected a decimal string such as "1500.00", got 1500',
    ),
]


@pytest.mark.parametrize(
    ("steps", "message"), [c[1:] for c in BAD_STEPS], ids=[c[0] for c in BAD_STEPS]
)
def test_bad_step_names_its_path(steps: list[dict[str, Any]], message: str) -> None:
    """A bad step gives ONE InvalidConfig naming its path, with 0-based step indexes
    (`timeline[3].plan: unknown plan 'gold'`). Tried: an unknown plan in the fourth step;
    a step that is not a mapping; an unknown, missing or non-text `do`; `at` missing,
    naive, a number or not a time; steps out of time order; until before the last step;
    an unknown field and a field of another step kind; org missing, unknown or not text;
    `as` not a member, a member of another organization, not text; plan missing, not
    text; an unknown add-on, 0 slots, add-ons as a list; change_plan to an unknown plan;
    `when` as text, as the word "date", naive, a number; an unknown or missing payment
    method; a session limit of 0, as text, as a float; add/remove slots with an unknown
    add-on, no quantity, a negative one; top-up of 0 credits, a float price, a price with
    too many decimals, a negative price; events missing, not a list, an event that is not
    a mapping, `as` without org, an unknown org, an unknown field; check with an unknown or
    missing action, use_ai without a feature or with an unknown one, a feature on another
    action; start_session without conversation or with an empty agent; create/archive
    agent without a text agent; add_member with an unknown or missing role or a bad
    name; remove_member of a non-member or without member; phone numbers missing or
    blank; request_demo of an unknown plan."""
    error = invalid(document(*steps))
    assert str(error) == message
    assert isinstance(error, InvalidConfig)


def test_top_up_without_price_needs_a_credit_price_crd_1() -> None:
    """CRD-1: a top-up is paid; with no `price` it costs credits × the catalog's
    credit_price, so a catalog without one makes `price` required."""
    raw = document(step("top_up", credits=100))
    del raw["catalog"]["credit_price"]
    assert str(invalid(raw)) == "timeline[0].price: is required: the catalog has no credit_price"


def test_top_up_price_in_the_settings_currency() -> None:
    raw = document(step("top_up", credits=100, price="1000"))
    raw["settings"]["currency"] = "JPY"
    for plan in raw["catalog"]["plans"].values():
        plan["price"] = "0"
    del raw["catalog"]["plans"]["starter"]["overage"]
    top_up = build_scenario(raw).timeline[0]
    assert isinstance(top_up, TopUp)
    assert top_up.price == Money(1000, Currency("JPY", 0))


def test_the_first_error_in_document_order_is_the_one() -> None:
    """ONE error: the first in document order (here the step before the bad until)."""
    raw = document(step("subscribe", plan="gold"))
    raw["until"] = "never"
    assert str(invalid(raw)) == "timeline[0].plan: unknown plan 'gold'"


def test_not_checked_at_parse_time_are_run_time_refusals() -> None:
    """What the rules refuse while the simulation runs is not a file error: a step before
    its organization exists, a plan-change timing the terms forbid (SUB-4), a sales-led
    plan subscribed to (CAT-2), a member without the role (ACL-1), bad events (USE-2), a
    `when` before the step."""
    raw = document(
        step("subscribe", at="2025-12-01T00:00:00Z", plan="enterprise", as_="carol"),
        step("change_plan", plan="pro", when="2025-01-01T00:00:00Z"),
        step(
            "events", org=None, events=[{"type": "unknown", "properties": {"duration_seconds": -5}}]
        ),
    )
    raw["settings"]["plan_changes"] = {"upgrade": ["period_end"]}
    scenario = build_scenario(raw)
    assert len(scenario.timeline) == 3
    assert scenario.start() == datetime(2025, 12, 1, tzinfo=UTC)


# -- properties ----------------------------------------------------------------------------------

_OFFSETS = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=8)


@given(_OFFSETS)
def test_steps_in_time_order_are_accepted_and_others_refused_at_the_first(
    offsets: list[int],
) -> None:
    """Property: a timeline whose times never decrease is accepted with its steps in file
    order; otherwise the error names the first step earlier than the one before it."""
    moments = [JAN_1 + timedelta(minutes=minutes) for minutes in offsets]
    raw = document(*(step("pay", at=moment.isoformat()) for moment in moments))
    raw["until"] = (JAN_1 + timedelta(days=30)).isoformat()
    first = next((i for i in range(1, len(moments)) if moments[i] < moments[i - 1]), None)
    if first is None:
        assert [s.at for s in build_scenario(raw).timeline] == moments
    else:
        assert invalid(raw).path == f"timeline[{first}].at"


@given(
    st.integers(min_value=-14 * 60, max_value=14 * 60),
    st.integers(min_value=0, max_value=10**6),
)
def test_any_timezone_gives_the_same_utc_instant(offset_minutes: int, seconds: int) -> None:
    """Property: a time written in any timezone is read as the same instant, in UTC."""
    instant = JAN_1 + timedelta(days=3, seconds=seconds)
    written = instant.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()
    raw = document(step("pay", at=written))
    parsed = build_scenario(raw).timeline[0].at
    assert parsed == instant
    assert parsed.tzinfo is UTC


_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_PLACES = st.sampled_from(
    [
        ("settings",),
        ("organizations",),
        ("organizations", "acme"),
        ("organizations", "acme", "members"),
        ("organizations", "acme", "parent"),
        ("timeline",),
        ("timeline", 0),
        ("timeline", 0, "addons"),
        ("timeline", 1, "when"),
        ("timeline", 2, "events"),
        ("timeline", 3, "feature"),
        ("until",),
    ]
)


@given(_PLACES, _JUNK)
def test_junk_anywhere_gives_a_scenario_or_invalid_config(
    place: tuple[Any, ...], junk: Any
) -> None:
    """Property: whatever value replaces a part of a valid document, build_scenario returns
    a Scenario or raises InvalidConfig, never another exception."""
    raw = document(
        step("subscribe", plan="starter", addons={"extra_agent": 1}),
        step("change_plan", plan="pro", when="period_end"),
        step("events", org=None, events=[{"id": "e1"}]),
        step("check", action="use_ai", feature="smart_reply"),
    )
    _set(*place, value=junk)(raw)
    try:
        assert isinstance(build_scenario(raw), Scenario)
    except InvalidConfig as error:
        assert error.message
