"""The catalog (CAT-1..CAT-5): building it from its document (SCENARIOS.md `catalog`),
every error naming its path, the plan and catalog helpers; and the document readers of
fields.py that every error path comes from."""

import copy
import re
from dataclasses import FrozenInstanceError
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain import fields
from tabkeeper.domain.catalog import (
    AddOn,
    AiFeature,
    Catalog,
    CreditExpiry,
    IncludedCredits,
    Meter,
    MeterKind,
    Plan,
    Resource,
    Rounding,
    build_catalog,
)
from tabkeeper.domain.catalog_limits import AMOUNT_MAX
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.periods import Interval
from tabkeeper.domain.pricing import Graduated, Package, PerUnit, Tier, Volume

USD = Currency.of("USD")
JPY = Currency.of("JPY")
KWD = Currency.of("KWD")
D = Decimal

# The `catalog` of SCENARIOS.md "The file", as written there, plus minimal `pro` and
# `enterprise` plans (the example's timeline and its `max` add-on name them). `enterprise`
# is monthly: the example's add-ons have a monthly price only, and `extra_agent` (no
# `requires_plans`) and `max` are offered with it, so a yearly enterprise plan would be
# refused at import (CAT-8).
EXAMPLE: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "interactions": {"kind": "count", "event": "message", "filter": {"direction": "inbound"}},
        "minutes": {
            "kind": "sum",
            "event": "call.ended",
            "field": "duration_seconds",
            "unit_seconds": 60,
            "rounding": "per_event_up",
        },
    },
    "plans": {
        "trial": {
            "name": "Free trial",
            "price": "0",
            "interval": "month",
            "includes": {"sessions": 50},
            "limits": {"agents": 1, "seats": 2},
        },
        "starter": {
            "name": "Starter",
            "price": "49.00",
            "interval": "month",
            "includes": {"minutes": 500},
            "overage": {"minutes": {"model": "per_unit", "unit_price": "0.10"}},
            "limits": {"agents": 1, "seats": 2, "phone_numbers": 1},
            "features": ["webchat", "smart_reply"],
            "answered_only": False,
            "credits": {"amount": 100, "expires": "period_end"},
            "retention_days": 30,
            "rank": 1,
            "sales_led": False,
            "visible_to": None,
        },
        "pro": {"name": "Pro", "price": "99.00", "rank": 2},
        "enterprise": {
            "name": "Enterprise",
            "price": "5000.00",
            "interval": "month",
            "rank": 3,
            "sales_led": True,
            "visible_to": ["acme", "globex"],
        },
    },
    "addons": {
        "extra_agent": {"name": "Additional chatbot slot", "price": "10.00", "adds": {"agents": 1}},
        "max": {
            "name": "Enterprise Max",
            "price": "500.00",
            "adds": {},
            "requires_plans": ["enterprise"],
        },
    },
    "ai_features": {"smart_reply": {"credits": 1}, "kb_answer": {"credits": 2}},
    "credit_price": "0.01",
}
ADDED_PLANS = ("pro", "enterprise")

SCENARIO_FILES = {
    "voice-overage.yaml": ("starter",),
    "upgrade-day-proration.yaml": ("basic", "pro"),
    "sessions-answered-only.yaml": ("agent",),
}


def _shared(relative: str) -> Path:
    """A file of the shared specs, which sit beside the repository (../shared) in every
    checkout and CI run; /work/shared is the same folder on a developer's machine."""
    here = Path(__file__).resolve().parents[2]
    for root in (here.parent / "shared", Path("/work/shared")):
        if (root / relative).exists():
            return root / relative
    raise AssertionError(f"cannot find {relative} in ../shared beside the repository")


@pytest.fixture(scope="module")
def example() -> Catalog:
    return build_catalog(copy.deepcopy(EXAMPLE), USD)


# -- the example catalog ---------------------------------------------------------------


def test_example_is_the_one_in_scenarios_md() -> None:
    """The dict above is SCENARIOS.md's example catalog (plus the two added plans)."""
    text = _shared("SCENARIOS.md").read_text(encoding="utf-8")
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)["catalog"]
    ours = copy.deepcopy(EXAMPLE)
    for code in ADDED_PLANS:
        del ours["plans"][code]
    assert documented == ours


def test_example_meters_cat_3(example: Catalog) -> None:
    """CAT-3: the declared meters, with the billable-sessions meter reading `message`."""
    assert example.currency == USD
    assert list(example.meters) == ["sessions", "interactions", "minutes"]
    assert example.meters["sessions"] == Meter("sessions", MeterKind.BILLABLE_SESSIONS, "message")
    assert example.meters["interactions"] == Meter(
        "interactions",
        MeterKind.COUNT,
        "message",
        filter=MappingProxyType({"direction": "inbound"}),
    )
    assert example.meters["minutes"] == Meter(
        code="minutes",
        kind=MeterKind.SUM,
        event="call.ended",
        field_name="duration_seconds",
        unit_seconds=60,
        rounding=Rounding.PER_EVENT_UP,
    )


def test_example_plan_parts_cat_1(example: Catalog) -> None:
    """CAT-1: a plan is its parts: price per interval, includes, overage, limits, features,
    credits, retention and rank; money in minor units, quantities as Decimal."""
    starter = example.plan("starter")
    assert starter.code == "starter"
    assert starter.name == "Starter"
    assert starter.price == Money(4900, USD)
    assert starter.interval is Interval.MONTH
    assert dict(starter.includes) == {"minutes": D(500)}
    assert isinstance(starter.includes["minutes"], Decimal)
    assert dict(starter.overage) == {"minutes": PerUnit(D("0.10"))}
    assert dict(starter.limits) == {
        Resource.AGENTS: 1,
        Resource.SEATS: 2,
        Resource.PHONE_NUMBERS: 1,
    }
    assert all(isinstance(key, Resource) for key in starter.limits)
    assert starter.features == frozenset({"webchat", "smart_reply"})
    assert starter.answered_only is False
    assert starter.credits == IncludedCredits(100, CreditExpiry.PERIOD_END)
    assert starter.retention_days == 30
    assert starter.rank == 1
    assert starter.sales_led is False
    assert starter.visible_to is None

    trial = example.plan("trial")
    assert trial.price == Money(0, USD)
    assert dict(trial.includes) == {"sessions": D(50)}
    assert dict(trial.overage) == {}
    assert dict(trial.limits) == {Resource.AGENTS: 1, Resource.SEATS: 2}


def test_plan_defaults_cat_1(example: Catalog) -> None:
    """CAT-1: what a plan leaves out: monthly, nothing included, unlimited, no features."""
    pro = example.plan("pro")
    assert pro == Plan(
        code="pro",
        name="Pro",
        price=Money(9900, USD),
        interval=Interval.MONTH,
        includes=MappingProxyType({}),
        overage=MappingProxyType({}),
        limits=MappingProxyType({}),
        features=frozenset(),
        rank=2,
    )
    assert (pro.answered_only, pro.credits, pro.retention_days) == (False, None, 30)
    assert (pro.rank, pro.sales_led, pro.visible_to) == (2, False, None)


def test_example_private_sales_led_plan_cat_2(example: Catalog) -> None:
    """CAT-2: a plan private to named organizations, and sales-led (a price is still kept)."""
    enterprise = example.plan("enterprise")
    assert enterprise.sales_led is True
    assert enterprise.visible_to == ("acme", "globex")
    assert enterprise.interval is Interval.MONTH
    assert enterprise.price == Money(500000, USD)
    assert enterprise.is_visible_to("acme")
    assert enterprise.is_visible_to("globex")
    assert not enterprise.is_visible_to("initech")
    assert example.plan("starter").is_visible_to("initech")


def test_example_addons_cat_5(example: Catalog) -> None:
    """CAT-5: an add-on's price per slot per interval, what a slot adds, the plans it needs."""
    extra = example.addon("extra_agent")
    assert extra == AddOn(
        code="extra_agent",
        name="Additional chatbot slot",
        prices=MappingProxyType({Interval.MONTH: Money(1000, USD)}),
        adds=MappingProxyType({Resource.AGENTS: 1}),
    )
    assert extra.price_for(Interval.MONTH) == Money(1000, USD)
    assert extra.requires_plans is None
    assert extra.allowed_on("trial") and extra.allowed_on("enterprise")
    enterprise_max = example.addon("max")
    assert dict(enterprise_max.prices) == {Interval.MONTH: Money(50000, USD)}
    assert dict(enterprise_max.adds) == {}
    assert enterprise_max.features == frozenset()
    assert enterprise_max.requires_plans == ("enterprise",)
    assert enterprise_max.allowed_on("enterprise")
    assert not enterprise_max.allowed_on("starter")


def test_example_ai_features_and_credit_price(example: Catalog) -> None:
    """CRD-1: credits one use of each AI feature consumes; the price of one credit."""
    assert dict(example.ai_features) == {
        "smart_reply": AiFeature("smart_reply", 1),
        "kb_answer": AiFeature("kb_answer", 2),
    }
    assert example.credit_price == D("0.01")


def test_built_catalog_is_frozen(example: Catalog) -> None:
    """What build_catalog returns cannot be changed."""
    with pytest.raises(TypeError):
        example.plans["gold"] = example.plan("pro")  # type: ignore[index]
    with pytest.raises(TypeError):
        example.plan("starter").limits[Resource.AGENTS] = 9  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        example.plan("starter").rank = 9  # type: ignore[misc]


def test_building_leaves_the_document_unchanged() -> None:
    document = copy.deepcopy(EXAMPLE)
    build_catalog(document, USD)
    assert document == EXAMPLE


@pytest.mark.parametrize(("name", "plans"), SCENARIO_FILES.items())
def test_worked_example_catalogs_build(name: str, plans: tuple[str, ...]) -> None:
    """The catalogs of the three worked examples build in their settings' currency."""
    scenario = yaml.safe_load(_shared(f"scenarios/{name}").read_text(encoding="utf-8"))
    catalog = build_catalog(scenario["catalog"], Currency.of(scenario["settings"]["currency"]))
    assert tuple(catalog.plans) == plans
    assert all(plan.price.currency == catalog.currency for plan in catalog.plans.values())


def test_worked_example_voice_overage_catalog() -> None:
    """CAT-1, CAT-3, CAT-4: Starter 49.00 with 500 minutes, 0.10 a minute over, each call
    rounded up to the minute."""
    scenario = yaml.safe_load(_shared("scenarios/voice-overage.yaml").read_text("utf-8"))
    catalog = build_catalog(scenario["catalog"], USD)
    starter = catalog.plan("starter")
    assert starter.price.minor == 4900
    assert starter.includes["minutes"] == 500
    assert starter.overage["minutes"] == PerUnit(D("0.10"))
    assert not starter.is_hard_stop("minutes")
    minutes = catalog.meters["minutes"]
    assert (minutes.unit_seconds, minutes.rounding) == (60, Rounding.PER_EVENT_UP)


def test_path_prefix_names_where_the_catalog_sits() -> None:
    """Inside a bigger document the paths start with the catalog's own path."""
    document = {"plans": {"starter": {"name": "Starter", "price": 49.0}}}
    message = 'catalog.plans.starter.price: expected a decimal string such as "0.10", got 49.0'
    with pytest.raises(InvalidConfig, match=f"^{re.escape(message)}$"):
        build_catalog(document, USD, "catalog")
    built = build_catalog({"plans": {"starter": {"name": "Starter", "price": "1"}}}, USD, "x")
    assert built.plan("starter").price == Money(100, USD)


# -- meters, overage models, prices ----------------------------------------------------


def test_every_meter_kind_cat_3() -> None:
    """CAT-3: count, sum, max and unique_count over events of a type, with filters of
    text, number and flag values; plus billable_sessions on any event."""
    catalog = build_catalog(
        {
            "meters": {
                "inbound": {"kind": "count", "event": "message", "filter": None},
                "tokens": {"kind": "sum", "event": "ai.used", "field": "tokens"},
                "tokens_up": {
                    "kind": "sum",
                    "event": "ai.used",
                    "field": "tokens",
                    "rounding": "total_up",
                },
                "peak_lines": {"kind": "max", "event": "call.ended", "field": "lines"},
                "callers": {
                    "kind": "unique_count",
                    "event": "call.ended",
                    "field": "caller",
                    "filter": {"channel": "voice", "answered": True, "priority": 2},
                },
                "voice_sessions": {"kind": "billable_sessions", "event": "call.ended"},
            },
            "plans": {"basic": {"name": "Basic", "price": "1"}},
        },
        USD,
    )
    meters = catalog.meters
    assert meters["inbound"] == Meter("inbound", MeterKind.COUNT, "message")
    assert meters["tokens"] == Meter("tokens", MeterKind.SUM, "ai.used", "tokens")
    assert meters["tokens"].rounding is Rounding.NONE
    assert meters["tokens_up"].rounding is Rounding.TOTAL_UP
    assert meters["peak_lines"] == Meter("peak_lines", MeterKind.MAX, "call.ended", "lines")
    assert meters["callers"].kind is MeterKind.UNIQUE_COUNT
    assert meters["callers"].field_name == "caller"
    assert dict(meters["callers"].filter) == {"channel": "voice", "answered": True, "priority": 2}
    assert meters["voice_sessions"].event == "call.ended"
    assert catalog.meters_of_event("call.ended") == (
        meters["peak_lines"],
        meters["callers"],
        meters["voice_sessions"],
    )


_SUM_OF_AGENT = (
    "a sum meter needs a number, and 'agent' is the event's agent (a text); count its"
    " distinct values with unique_count"
)
_SUM_OF_CONVERSATION = (
    "a sum meter needs a number, and 'conversation' is the event's conversation (a text);"
    " count its distinct values with unique_count"
)
_MAX_OF_AGENT = (
    "a max meter needs a number, and 'agent' is the event's agent (a text); count its"
    " distinct values with unique_count"
)
_MAX_OF_CONVERSATION = (
    "a max meter needs a number, and 'conversation' is the event's conversation (a text);"
    " count its distinct values with unique_count"
)
_TEXT_FIELD_METERS = [
    ("sum of agent", {"kind": "sum", "event": "message", "field": "agent"}, _SUM_OF_AGENT),
    ("sum of conversation", {"kind": "sum", "event": "message", "field": "conversation"},
     _SUM_OF_CONVERSATION),
    ("max of agent", {"kind": "max", "event": "call.ended", "field": "agent"}, _MAX_OF_AGENT),
    ("max of conversation", {"kind": "max", "event": "message", "field": "conversation"},
     _MAX_OF_CONVERSATION),
    ("sum of agent in minutes, rounded",
     {"kind": "sum", "event": "call.ended", "field": "agent", "unit_seconds": 60,
      "rounding": "per_event_up"},
     _SUM_OF_AGENT),
    ("sum of conversation with a filter",
     {"kind": "sum", "event": "message", "field": "conversation",
      "filter": {"direction": "inbound"}},
     _SUM_OF_CONVERSATION),
    ("max of agent on a custom event", {"kind": "max", "event": "ai.used", "field": "agent"},
     _MAX_OF_AGENT),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "problem"),
    [pytest.param(spec, problem, id=name) for name, spec, problem in _TEXT_FIELD_METERS],
)
def test_cat3_sum_and_max_meters_of_agent_or_conversation_are_refused(
    spec: dict[str, Any], problem: str
) -> None:
    """CAT-3: a meter may read the event's own `agent` and `conversation`, but those are
    texts: a sum or max of one is refused when the catalog is built, with an error at the
    meter's field that names the meter, the field and what to use instead (unique_count).
    Tried: sum and max of each, in minutes with rounding, with a filter, on message,
    call.ended and a custom event."""
    with pytest.raises(InvalidConfig) as error:
        build_catalog(_meter(spec, code="talk"), USD, "catalog")
    assert str(error.value) == f"catalog.meters.talk.field: {problem}"
    assert error.value.path == "catalog.meters.talk.field"
    assert error.value.problem == problem
    assert error.value.code == "invalid_config"


def test_cat3_unique_count_of_agent_or_conversation_and_sums_of_lookalikes_build() -> None:
    """CAT-3: counting distinct agents or conversations stays allowed, and so do sums and
    maxima of properties whose names only resemble them."""
    catalog = build_catalog(
        {
            "meters": {
                "agents": {"kind": "unique_count", "event": "message", "field": "agent"},
                "conversations": {
                    "kind": "unique_count",
                    "event": "message",
                    "field": "conversation",
                },
                "agent_seconds": {"kind": "sum", "event": "call.ended", "field": "agent_seconds"},
                "conversations_open": {
                    "kind": "max",
                    "event": "status",
                    "field": "conversations",
                },
            },
            "plans": {"basic": {"name": "Basic", "price": "1"}},
        },
        USD,
    )
    assert catalog.meters["agents"].field_name == "agent"
    assert catalog.meters["conversations"].kind is MeterKind.UNIQUE_COUNT
    assert catalog.meters["agent_seconds"].kind is MeterKind.SUM
    assert catalog.meters["conversations_open"].kind is MeterKind.MAX


def test_meters_of_event(example: Catalog) -> None:
    """CAT-3: the meters an event type feeds, in declaration order."""
    assert [m.code for m in example.meters_of_event("message")] == ["sessions", "interactions"]
    assert [m.code for m in example.meters_of_event("call.ended")] == ["minutes"]
    assert example.meters_of_event("ai.used") == ()


def test_no_meters_at_all() -> None:
    """CAT-3: meters are optional; without them nothing can be included."""
    catalog = build_catalog({"meters": None, "plans": {"flat": {"name": "Flat", "price": 5}}}, USD)
    assert dict(catalog.meters) == {}
    assert dict(catalog.addons) == {}
    assert dict(catalog.ai_features) == {}
    assert catalog.credit_price is None
    assert catalog.plan("flat").price == Money(500, USD)


def test_overage_models_come_from_the_registry_cat_4() -> None:
    """CAT-4: each meter's overage uses a pricing model of the registry."""
    tiers = [{"up_to": 100, "unit_price": "0.02"}, {"up_to": None, "unit_price": "0.01"}]
    catalog = build_catalog(
        {
            "meters": {
                "a": {"kind": "count", "event": "message"},
                "b": {"kind": "count", "event": "message"},
                "c": {"kind": "count", "event": "message"},
                "d": {"kind": "count", "event": "message"},
            },
            "plans": {
                "metered": {
                    "name": "Metered",
                    "price": "0",
                    "includes": {"a": "10.5"},
                    "overage": {
                        "a": {"model": "per_unit", "unit_price": "0.001"},
                        "b": {"model": "package", "size": 1000, "price": "5"},
                        "c": {"model": "graduated", "tiers": tiers},
                        "d": {"model": "volume", "tiers": tiers},
                    },
                }
            },
        },
        USD,
    )
    plan = catalog.plan("metered")
    expected_tiers = (Tier(D(100), D("0.02")), Tier(None, D("0.01")))
    assert dict(plan.overage) == {
        "a": PerUnit(D("0.001")),
        "b": Package(D(1000), D(5)),
        "c": Graduated(expected_tiers),
        "d": Volume(expected_tiers),
    }
    assert plan.includes["a"] == D("10.5")
    assert not plan.is_hard_stop("b")  # overage with nothing included


@pytest.mark.parametrize(
    ("currency", "price", "minor"),
    [
        (USD, "49.00", 4900),
        (USD, "49", 4900),
        (USD, 49, 4900),
        (USD, "0.5", 50),
        (USD, "49.010", 4901),
        (JPY, "500", 500),
        (JPY, 5000, 5000),
        (KWD, "1.234", 1234),
        (KWD, "0", 0),
    ],
)
def test_price_in_minor_units_cat_1(currency: Currency, price: object, minor: int) -> None:
    """CAT-1: a price in major units (decimal string or whole number) becomes integer minor
    units of the catalog's currency."""
    catalog = build_catalog({"plans": {"p": {"name": "P", "price": price}}}, currency)
    assert catalog.plan("p").price == Money(minor, currency)


def test_credits_that_never_expire() -> None:
    """CRD-2: included credits expire at the period end unless told otherwise."""
    plans = {
        "a": {"name": "A", "price": "1", "credits": {"amount": 5, "expires": "never"}},
        "b": {"name": "B", "price": "1", "credits": {"amount": 7}},
    }
    catalog = build_catalog({"plans": plans}, USD)
    assert catalog.plan("a").credits == IncludedCredits(5, CreditExpiry.NEVER)
    assert catalog.plan("b").credits == IncludedCredits(7, CreditExpiry.PERIOD_END)


def test_addon_with_features_yearly_on_plans_cat_5() -> None:
    """CAT-5: an add-on may add several resources per slot, features, and a yearly price
    (`interval: year` beside a plain price); the plans it requires are yearly (CAT-8)."""
    yearly = {"interval": "year"}
    catalog = build_catalog(
        {
            "plans": {
                "a": {"name": "A", "price": "1", **yearly},
                "b": {"name": "B", "price": "2", **yearly},
            },
            "addons": {
                "voice_pack": {
                    "name": "Voice pack",
                    "price": "120.00",
                    "interval": "year",
                    "adds": {"phone_numbers": 2, "channels": 1},
                    "features": ["voice"],
                    "requires_plans": ["b", "a"],
                }
            },
        },
        USD,
    )
    pack = catalog.addon("voice_pack")
    assert dict(pack.prices) == {Interval.YEAR: Money(12000, USD)}
    assert dict(pack.adds) == {Resource.PHONE_NUMBERS: 2, Resource.CHANNELS: 1}
    assert pack.features == frozenset({"voice"})
    assert pack.requires_plans == ("b", "a")


# -- bad catalogs ----------------------------------------------------------------------

_METERS: dict[str, Any] = {
    "sessions": {"kind": "billable_sessions"},
    "minutes": {"kind": "sum", "event": "call.ended", "field": "duration_seconds"},
}
_DROP = object()


def _plan(**changes: object) -> dict[str, Any]:
    """A catalog whose plan `starter` is a good plan with `changes` (_DROP: left out)."""
    starter: dict[str, Any] = {"name": "Starter", "price": "49.00"}
    starter.update(changes)
    return {
        "meters": copy.deepcopy(_METERS),
        "plans": {"starter": {k: v for k, v in starter.items() if v is not _DROP}},
    }


def _meter(spec: object, code: str = "calls") -> dict[str, Any]:
    return {"meters": {code: spec}, "plans": {"starter": {"name": "Starter", "price": "1"}}}


def _addon(spec: object, code: str = "extra_agent") -> dict[str, Any]:
    return {"plans": {"starter": {"name": "Starter", "price": "1"}}, "addons": {code: spec}}


def _top(**top: object) -> dict[str, Any]:
    return {"plans": {"starter": {"name": "Starter", "price": "1"}}, **top}


_KINDS = "billable_sessions, count, max, sum, unique_count"
_NAME_RULE = "is not a valid name (lower-case letters, digits, _ - .)"
_PLAN_FIELDS = (
    "answered_only, channels, credits, features, includes, interval, interval_count, limits, "
    "name, overage, price, rank, retention_days, sales_led, trial_days, visible_to"
)

BAD_CATALOGS = [
    # the document itself
    ("not a mapping", [], USD, "catalog", "expected a mapping of names to values"),
    (
        "unknown top-level field",
        _top(plan={}),
        USD,
        "plan",
        "unknown field; expected one of addons, ai_features, coupons, credit_price, meters, plans",
    ),
    ("plans missing", {"meters": {}}, USD, "plans", "is required"),
    ("plans null", {"plans": None}, USD, "plans", "is required"),
    ("plans empty", {"plans": {}}, USD, "plans", "needs at least one plan"),
    ("plans a list", {"plans": ["starter"]}, USD, "plans", "expected a mapping of names to values"),
    (
        "meters a list",
        _top(meters=["sessions"]),
        USD,
        "meters",
        "expected a mapping of names to values",
    ),
    # plans: name and price
    (
        "plan not a mapping",
        {"plans": {"starter": "49.00"}},
        USD,
        "plans.starter",
        "expected a mapping of names to values",
    ),
    (
        "plan unknown field",
        _plan(prices="49.00"),
        USD,
        "plans.starter.prices",
        f"unknown field; expected one of {_PLAN_FIELDS}",
    ),
    ("plan missing name", _plan(name=_DROP), USD, "plans.starter.name", "is required"),
    (
        "plan blank name",
        _plan(name="  "),
        USD,
        "plans.starter.name",
        "expected a non-empty text, got '  '",
    ),
    ("plan missing price", _plan(price=_DROP), USD, "plans.starter.price", "is required"),
    (
        "price a float",
        _plan(price=49.0),
        USD,
        "plans.starter.price",
        'expected a decimal string such as "0.10", got 49.0',
    ),
    (
        "price an exponent",
        _plan(price="4.9e1"),
        USD,
        "plans.starter.price",
        "expected a decimal string such as \"0.10\", got '4.9e1'",
    ),
    (
        "price a flag",
        _plan(price=True),
        USD,
        "plans.starter.price",
        'expected a decimal string such as "0.10", got True',
    ),
    (
        "price negative",
        _plan(price="-1.00"),
        USD,
        "plans.starter.price",
        "must be at least 0, got -1.00",
    ),
    (
        "price 3 decimals in USD",
        _plan(price="49.001"),
        USD,
        "plans.starter.price",
        "49.001 has more decimals than USD allows (2)",
    ),
    (
        "price decimals in JPY",
        _plan(price="4900.5"),
        JPY,
        "plans.starter.price",
        "4900.5 has more decimals than JPY allows (0)",
    ),
    (
        "price 4 decimals in KWD",
        _plan(price="1.2345"),
        KWD,
        "plans.starter.price",
        "1.2345 has more decimals than KWD allows (3)",
    ),
    (
        "unknown interval",
        _plan(interval="week"),
        USD,
        "plans.starter.interval",
        "unknown interval 'week'; expected month or year",
    ),
    (
        "interval not text",
        _plan(interval=1),
        USD,
        "plans.starter.interval",
        "expected an interval (month or year), got 1",
    ),
    # plans: includes and overage
    (
        "includes unknown meter",
        _plan(includes={"calls": 5}),
        USD,
        "plans.starter.includes.calls",
        "unknown meter",
    ),
    (
        "includes negative",
        _plan(includes={"minutes": -5}),
        USD,
        "plans.starter.includes.minutes",
        "must be at least 0, got -5",
    ),
    (
        "includes a float",
        _plan(includes={"minutes": 0.5}),
        USD,
        "plans.starter.includes.minutes",
        'expected a decimal string such as "0.10", got 0.5',
    ),
    (
        "includes a list",
        _plan(includes=["minutes"]),
        USD,
        "plans.starter.includes",
        "expected a mapping of names to values",
    ),
    (
        "overage unknown model",
        _plan(overage={"minutes": {"model": "flat"}}),
        USD,
        "plans.starter.overage.minutes.model",
        "unknown pricing model 'flat'; expected one of graduated, package, per_unit, volume",
    ),
    (
        "overage no model",
        _plan(overage={"minutes": {"unit_price": "0.10"}}),
        USD,
        "plans.starter.overage.minutes.model",
        "is required",
    ),
    (
        "overage not a mapping",
        _plan(overage={"minutes": "0.10"}),
        USD,
        "plans.starter.overage.minutes",
        "expected a mapping of names to values",
    ),
    (
        "overage bad price",
        _plan(overage={"minutes": {"model": "per_unit", "unit_price": 0.1}}),
        USD,
        "plans.starter.overage.minutes.unit_price",
        'expected a decimal string such as "0.10", got 0.1',
    ),
    # plans: limits, features, flags
    (
        "limits unknown resource",
        _plan(limits={"gpus": 1}),
        USD,
        "plans.starter.limits.gpus",
        "unknown resource 'gpus'; expected one of agents, channels, phone_numbers, seats",
    ),
    (
        "limit negative",
        _plan(limits={"agents": -1}),
        USD,
        "plans.starter.limits.agents",
        "must be at least 0, got -1",
    ),
    (
        "limit a string",
        _plan(limits={"agents": "2"}),
        USD,
        "plans.starter.limits.agents",
        "expected a whole number, got '2'",
    ),
    (
        "limit a fraction",
        _plan(limits={"seats": 1.5}),
        USD,
        "plans.starter.limits.seats",
        "expected a whole number, got 1.5",
    ),
    (
        "limit a flag",
        _plan(limits={"seats": True}),
        USD,
        "plans.starter.limits.seats",
        "expected a whole number, got True",
    ),
    (
        "limits a number",
        _plan(limits=3),
        USD,
        "plans.starter.limits",
        "expected a mapping of names to values",
    ),
    (
        "features not a list",
        _plan(features="webchat"),
        USD,
        "plans.starter.features",
        "expected a list of names, got 'webchat'",
    ),
    (
        "features duplicated",
        _plan(features=["webchat", "voice", "webchat"]),
        USD,
        "plans.starter.features[2]",
        "'webchat' is listed twice",
    ),
    (
        "feature bad name",
        _plan(features=["Web Chat"]),
        USD,
        "plans.starter.features[0]",
        f"'Web Chat' {_NAME_RULE}",
    ),
    (
        "answered_only not a flag",
        _plan(answered_only="yes"),
        USD,
        "plans.starter.answered_only",
        "expected true or false, got 'yes'",
    ),
    (
        "sales_led not a flag",
        _plan(sales_led=1),
        USD,
        "plans.starter.sales_led",
        "expected true or false, got 1",
    ),
    (
        "credits amount 0",
        _plan(credits={"amount": 0}),
        USD,
        "plans.starter.credits.amount",
        "must be at least 1, got 0",
    ),
    (
        "credits amount missing",
        _plan(credits={"expires": "never"}),
        USD,
        "plans.starter.credits.amount",
        "is required",
    ),
    (
        "credits unknown expiry",
        _plan(credits={"amount": 5, "expires": "forever"}),
        USD,
        "plans.starter.credits.expires",
        "unknown expiry 'forever'; expected one of never, period_end",
    ),
    (
        "credits unknown field",
        _plan(credits={"amount": 5, "carry": True}),
        USD,
        "plans.starter.credits.carry",
        "unknown field; expected one of amount, expires, rollover",
    ),
    (
        "credits a number",
        _plan(credits=100),
        USD,
        "plans.starter.credits",
        "expected a mapping of names to values",
    ),
    (
        "retention negative",
        _plan(retention_days=-1),
        USD,
        "plans.starter.retention_days",
        "must be at least 0, got -1",
    ),
    (
        "rank a string",
        _plan(rank="1"),
        USD,
        "plans.starter.rank",
        "expected a whole number, got '1'",
    ),
    (
        "rank a fraction",
        _plan(rank=1.5),
        USD,
        "plans.starter.rank",
        "expected a whole number, got 1.5",
    ),
    (
        "visible_to not a list",
        _plan(visible_to="acme"),
        USD,
        "plans.starter.visible_to",
        "expected a list of names, got 'acme'",
    ),
    (
        "visible_to bad org",
        _plan(visible_to=["acme", "Acme Corp"]),
        USD,
        "plans.starter.visible_to[1]",
        f"'Acme Corp' {_NAME_RULE}",
    ),
    # meters
    (
        "meter not a mapping",
        _meter("count"),
        USD,
        "meters.calls",
        "expected a mapping of names to values",
    ),
    (
        "meter unknown kind",
        _meter({"kind": "average", "event": "call.ended"}),
        USD,
        "meters.calls.kind",
        "unknown meter kind 'average'; expected one of " + _KINDS,
    ),
    (
        "meter missing kind",
        _meter({"event": "call.ended"}),
        USD,
        "meters.calls.kind",
        "is required",
    ),
    ("meter missing event", _meter({"kind": "count"}), USD, "meters.calls.event", "is required"),
    (
        "meter bad event",
        _meter({"kind": "count", "event": "Call Ended"}),
        USD,
        "meters.calls.event",
        f"'Call Ended' {_NAME_RULE}",
    ),
    (
        "sum without field",
        _meter({"kind": "sum", "event": "call.ended"}),
        USD,
        "meters.calls.field",
        "is required",
    ),
    (
        "unique_count without field",
        _meter({"kind": "unique_count", "event": "message"}),
        USD,
        "meters.calls.field",
        "is required",
    ),
    (
        "unknown rounding",
        _meter({"kind": "sum", "event": "e", "field": "f", "rounding": "nearest"}),
        USD,
        "meters.calls.rounding",
        "unknown rounding 'nearest'; expected one of none, per_event_up, total_up",
    ),
    (
        "unit_seconds 0",
        _meter({"kind": "sum", "event": "e", "field": "f", "unit_seconds": 0}),
        USD,
        "meters.calls.unit_seconds",
        "must be at least 1, got 0",
    ),
    (
        "unit_seconds a decimal",
        _meter({"kind": "sum", "event": "e", "field": "f", "unit_seconds": "60"}),
        USD,
        "meters.calls.unit_seconds",
        "expected a whole number, got '60'",
    ),
    (
        "filter value a list",
        _meter(
            {"kind": "count", "event": "message", "filter": {"direction": ["inbound", "outbound"]}}
        ),
        USD,
        "meters.calls.filter.direction",
        "expected a text, number or flag, got ['inbound', 'outbound']",
    ),
    (
        "filter value null",
        _meter({"kind": "count", "event": "message", "filter": {"direction": None}}),
        USD,
        "meters.calls.filter.direction",
        "expected a text, number or flag, got None",
    ),
    (
        "filter bad key",
        _meter({"kind": "count", "event": "message", "filter": {"Direction": "inbound"}}),
        USD,
        "meters.calls.filter.Direction",
        f"'Direction' {_NAME_RULE}",
    ),
    (
        "filter a list",
        _meter({"kind": "count", "event": "message", "filter": ["inbound"]}),
        USD,
        "meters.calls.filter",
        "expected a mapping of names to values",
    ),
    (
        "count with a field",
        _meter({"kind": "count", "event": "message", "field": "x"}),
        USD,
        "meters.calls.field",
        "unknown field; expected one of event, filter, kind",
    ),
    (
        "max with unit_seconds",
        _meter({"kind": "max", "event": "e", "field": "f", "unit_seconds": 60}),
        USD,
        "meters.calls.unit_seconds",
        "unknown field; expected one of event, field, filter, kind",
    ),
    (
        "billable_sessions with filter",
        _meter({"kind": "billable_sessions", "filter": {}}),
        USD,
        "meters.calls.filter",
        "unknown field; expected one of event, kind",
    ),
    # add-ons
    (
        "addon requires unknown plan",
        _addon(
            {"name": "Max", "price": "500.00", "requires_plans": ["starter", "enterprise"]}, "max"
        ),
        USD,
        "addons.max.requires_plans[1]",
        "unknown plan 'enterprise'",
    ),
    (
        "addon requires_plans not a list",
        _addon({"name": "Max", "price": "5", "requires_plans": "starter"}, "max"),
        USD,
        "addons.max.requires_plans",
        "expected a list of names, got 'starter'",
    ),
    (
        "addon adds 0 slots",
        _addon({"name": "Agent", "price": "10.00", "adds": {"agents": 0}}),
        USD,
        "addons.extra_agent.adds.agents",
        "must be at least 1, got 0",
    ),
    (
        "addon adds unknown resource",
        _addon({"name": "Agent", "price": "10.00", "adds": {"gpus": 1}}),
        USD,
        "addons.extra_agent.adds.gpus",
        "unknown resource 'gpus'; expected one of agents, channels, phone_numbers, seats",
    ),
    (
        "addon unknown field",
        _addon({"name": "Agent", "price": "10.00", "plan": "starter"}),
        USD,
        "addons.extra_agent.plan",
        "unknown field; expected one of adds, features, interval, name, price, requires_plans",
    ),
    (
        "addon missing price",
        _addon({"name": "Agent"}),
        USD,
        "addons.extra_agent.price",
        "is required",
    ),
    (
        "addon missing name",
        _addon({"price": "10.00"}),
        USD,
        "addons.extra_agent.name",
        "is required",
    ),
    (
        "addon price decimals in JPY",
        _addon({"name": "Agent", "price": "10.5"}),
        JPY,
        "addons.extra_agent.price",
        "10.5 has more decimals than JPY allows (0)",
    ),
    (
        "addon unknown interval",
        _addon({"name": "Agent", "price": "10", "interval": "day"}),
        USD,
        "addons.extra_agent.interval",
        "unknown interval 'day'; expected month or year",
    ),
    # AI features and credits
    (
        "ai_features credits 0",
        _top(ai_features={"smart_reply": {"credits": 0}}),
        USD,
        "ai_features.smart_reply.credits",
        "must be at least 1, got 0",
    ),
    (
        "ai_features credits missing",
        _top(ai_features={"smart_reply": {}}),
        USD,
        "ai_features.smart_reply.credits",
        "is required",
    ),
    (
        "ai_features unknown field",
        _top(ai_features={"smart_reply": {"credits": 1, "price": "1"}}),
        USD,
        "ai_features.smart_reply.price",
        "unknown field; expected one of credits",
    ),
    (
        "credit_price not a number",
        _top(credit_price="abc"),
        USD,
        "credit_price",
        "expected a decimal string such as \"0.10\", got 'abc'",
    ),
    (
        "credit_price a float",
        _top(credit_price=0.01),
        USD,
        "credit_price",
        'expected a decimal string such as "0.10", got 0.01',
    ),
    (
        "credit_price negative",
        _top(credit_price="-0.01"),
        USD,
        "credit_price",
        "must be at least 0, got -0.01",
    ),
    # names
    (
        "plan name upper case",
        {"plans": {"Starter": {"name": "S", "price": "1"}}},
        USD,
        "plans.Starter",
        f"'Starter' {_NAME_RULE}",
    ),
    (
        "plan name with a space",
        {"plans": {"my plan": {"name": "S", "price": "1"}}},
        USD,
        "plans.my plan",
        f"'my plan' {_NAME_RULE}",
    ),
    (
        "plan name checked before body",
        {"plans": {"Bad": 5}},
        USD,
        "plans.Bad",
        f"'Bad' {_NAME_RULE}",
    ),
    (
        "plan name leading dash",
        {"plans": {"-x": {"name": "S", "price": "1"}}},
        USD,
        "plans.-x",
        f"'-x' {_NAME_RULE}",
    ),
    (
        "plan name too long",
        {"plans": {"p" * 65: {"name": "S", "price": "1"}}},
        USD,
        "plans." + "p" * 65,
        f"'{'p' * 65}' {_NAME_RULE}",
    ),
    (
        "meter name upper case",
        _meter({"kind": "count", "event": "message"}, "Calls"),
        USD,
        "meters.Calls",
        f"'Calls' {_NAME_RULE}",
    ),
    (
        "addon name with a space",
        _addon({"name": "A", "price": "1"}, "extra agent"),
        USD,
        "addons.extra agent",
        f"'extra agent' {_NAME_RULE}",
    ),
    (
        "ai feature upper case",
        _top(ai_features={"Smart": {"credits": 1}}),
        USD,
        "ai_features.Smart",
        f"'Smart' {_NAME_RULE}",
    ),
]


@pytest.mark.parametrize(
    ("document", "currency", "path", "problem"),
    [pytest.param(*row[1:], id=str(row[0])) for row in BAD_CATALOGS],
)
def test_bad_catalog_names_the_path(
    document: object, currency: Currency, path: str, problem: str
) -> None:
    """CAT-1..CAT-5: every mistake is refused with InvalidConfig naming its exact path.

    Tried: a document that is not a mapping; an unknown top-level field; plans missing,
    null, empty or a list; meters a list; a plan that is not a mapping or has an unknown
    field; a plan with no name, a blank name or no price; a price as a YAML float (49.0),
    with an exponent, as a flag, negative, with 3 decimals in USD, any decimals in JPY,
    4 decimals in KWD; an unknown or non-text interval; includes for an unknown meter,
    negative, a float, or a list; overage with an unknown or missing model, not a mapping,
    or a float unit price; limits with an unknown resource, negative, a string, a fraction,
    a flag, or not a mapping; features not a list, duplicated, or badly named;
    answered_only and sales_led not flags; credits with amount 0 or missing, an unknown
    expiry, an unknown field, or not a mapping; negative retention_days; rank a string or
    a fraction; visible_to not a list or naming a bad organization; a meter that is not a
    mapping, with an unknown or missing kind, a missing or badly named event, sum and
    unique_count without field, an unknown rounding, unit_seconds 0 or a string, a filter
    value that is a list or null, a badly named filter key, a filter that is a list, and
    fields its kind does not have (count with field, max with unit_seconds,
    billable_sessions with filter); add-ons requiring an unknown plan or with
    requires_plans not a list, adding 0 slots or an unknown resource, with an unknown
    field, no price, no name, decimals in JPY or an unknown interval; ai_features with
    credits 0, missing, or an unknown field; credit_price "abc", a float, negative; names
    of plans, meters, add-ons and AI features in upper case, with spaces, with a leading
    dash or 65 characters long (and a bad plan name is reported before its bad body).
    """
    with pytest.raises(InvalidConfig, match=f"^{re.escape(f'{path}: {problem}')}$") as error:
        build_catalog(document, currency)
    assert error.value.path == path
    assert error.value.problem == problem
    assert error.value.code == "invalid_config"


def test_misspelled_overage_meter_names_its_path() -> None:
    """CAT-1, CAT-3: the issue's example: an overage keyed `minuts` (a typo of `minutes`)
    fails with the exact message, not silently as a meter with no overage."""
    document = copy.deepcopy(EXAMPLE)
    starter = document["plans"]["starter"]
    starter["overage"] = {"minuts": starter["overage"]["minutes"]}
    with pytest.raises(InvalidConfig) as error:
        build_catalog(document, USD)
    assert str(error.value) == "plans.starter.overage.minuts: unknown meter"
    assert error.value.message == "plans.starter.overage.minuts: unknown meter"
    assert error.value.path == "plans.starter.overage.minuts"


# -- plan and catalog helpers ----------------------------------------------------------


def _catalog(plans: dict[str, Any]) -> Catalog:
    return build_catalog({"meters": copy.deepcopy(_METERS), "plans": plans}, USD)


def test_hard_stop_without_overage_cat_1(example: Catalog) -> None:
    """CAT-1: a meter with includes and no overage stops at the included quantity; one with
    overage does not; a meter the plan does not mention is not a hard stop."""
    assert example.plan("trial").is_hard_stop("sessions")
    assert not example.plan("starter").is_hard_stop("minutes")
    assert not example.plan("starter").is_hard_stop("sessions")
    zero = _catalog({"none": {"name": "None", "price": "1", "includes": {"minutes": 0}}})
    assert zero.plan("none").is_hard_stop("minutes")


def test_limit_none_when_unlimited_zero_when_none_at_all_cat_1() -> None:
    """CAT-1: a limit left out is unlimited (None); 0 means none at all."""
    plan = _catalog(
        {"p": {"name": "P", "price": "1", "limits": {"agents": 3, "phone_numbers": 0}}}
    ).plan("p")
    assert plan.limit(Resource.AGENTS) == 3
    assert plan.limit(Resource.PHONE_NUMBERS) == 0
    assert plan.limit(Resource.SEATS) is None
    assert plan.limit(Resource.CHANNELS) is None


@pytest.mark.parametrize(
    ("currency", "price", "interval", "per_day"),
    [
        (USD, "49.00", "month", Fraction(49, 30)),
        (USD, "30.00", "month", Fraction(1)),
        (USD, "365.00", "year", Fraction(1)),
        (USD, "100.00", "year", Fraction(20, 73)),
        (USD, "0", "month", Fraction(0)),
        (USD, "0.01", "month", Fraction(1, 3000)),
        (JPY, "1000", "month", Fraction(100, 3)),
        (KWD, "1.001", "year", Fraction(1001, 365000)),
    ],
)
def test_price_per_day_is_exact(
    currency: Currency, price: str, interval: str, per_day: Fraction
) -> None:
    """SCENARIOS.md "Plan changes": price per day = price / 30 (month) or / 365 (year),
    an exact Fraction in major units."""
    plans = {"p": {"name": "P", "price": price, "interval": interval}}
    result = build_catalog({"plans": plans}, currency).plan("p").price_per_day()
    assert isinstance(result, Fraction)
    assert result == per_day


def test_public_plan_is_visible_to_everyone_private_to_the_named_cat_2() -> None:
    """CAT-2: public (visible_to null), private to named organizations; an empty list is
    visible to no one."""
    catalog = _catalog(
        {
            "public": {"name": "Public", "price": "1"},
            "private": {"name": "Private", "price": "1", "visible_to": ["acme"]},
            "hidden": {"name": "Hidden", "price": "1", "visible_to": []},
        }
    )
    assert catalog.plan("public").is_visible_to("anyone")
    assert catalog.plan("private").is_visible_to("acme")
    assert not catalog.plan("private").is_visible_to("globex")
    assert catalog.plan("hidden").visible_to == ()
    assert not catalog.plan("hidden").is_visible_to("acme")


def test_unknown_plan_or_addon_code(example: Catalog) -> None:
    """Asking the catalog for a code it does not have is an InvalidInput with a code."""
    with pytest.raises(InvalidInput, match=r"^unknown plan 'gold'$") as plan_error:
        example.plan("gold")
    assert plan_error.value.code == "unknown_plan"
    assert not isinstance(plan_error.value, InvalidConfig)
    with pytest.raises(InvalidInput, match=r"^unknown add-on 'extra_seat'$") as addon_error:
        example.addon("extra_seat")
    assert addon_error.value.code == "unknown_addon"


_UPGRADES = {
    "basic": {"name": "Basic", "price": "30.00", "rank": 1},
    "pro": {"name": "Pro", "price": "60.00", "rank": 2},
    "basic_yearly": {"name": "Basic yearly", "price": "365.00", "interval": "year", "rank": 2},
    "twin": {"name": "Twin", "price": "30.00", "rank": 0},
    "same": {"name": "Same", "price": "30.00", "rank": 1},
    "cheap_yearly": {"name": "Cheap", "price": "300.00", "interval": "year", "rank": 9},
}


@pytest.mark.parametrize(
    ("old", "new", "upgrade"),
    [
        ("basic", "pro", True),  # costs more per day
        ("pro", "basic", False),
        ("basic", "basic_yearly", True),  # 30.00/30 == 365.00/365: the higher rank wins
        ("basic_yearly", "basic", False),
        ("basic", "twin", False),  # same price, lower rank: a downgrade
        ("twin", "basic", True),
        ("basic", "same", False),  # same price, same rank: not an upgrade
        ("basic", "basic", False),
        ("basic", "cheap_yearly", False),  # cheaper per day beats a higher rank
        ("cheap_yearly", "basic", True),
    ],
)
def test_is_upgrade_per_scenarios_plan_changes(old: str, new: str, upgrade: bool) -> None:
    """SCENARIOS.md "Plan changes": an upgrade costs more per day, or the same with a
    higher rank; otherwise a downgrade (CAT-1: rank orders plans)."""
    catalog = _catalog(copy.deepcopy(_UPGRADES))
    assert catalog.is_upgrade(catalog.plan(old), catalog.plan(new)) is upgrade


_PLAN_SHAPE = st.tuples(
    st.integers(min_value=0, max_value=10**7),
    st.sampled_from(["month", "year"]),
    st.integers(min_value=0, max_value=3),
)


@given(_PLAN_SHAPE, _PLAN_SHAPE)
def test_is_upgrade_is_a_strict_order(a: tuple[int, str, int], b: tuple[int, str, int]) -> None:
    """Property: between two plans exactly one direction is an upgrade, unless they cost
    the same per day and have the same rank; then neither is."""
    plans = {
        code: {"name": code, "price": Money(minor, USD).major_str(), "interval": i, "rank": r}
        for code, (minor, i, r) in (("a", a), ("b", b))
    }
    catalog = build_catalog({"plans": plans}, USD)
    plan_a, plan_b = catalog.plan("a"), catalog.plan("b")
    forward = catalog.is_upgrade(plan_a, plan_b)
    backward = catalog.is_upgrade(plan_b, plan_a)
    tied = plan_a.price_per_day() == plan_b.price_per_day() and plan_a.rank == plan_b.rank
    assert (forward, backward).count(True) == (0 if tied else 1)


@given(
    st.sampled_from([USD, JPY, KWD]),
    st.integers(min_value=0, max_value=10**12),
)
def test_price_string_round_trips_to_minor_units(currency: Currency, minor: int) -> None:
    """Property: a price written with the currency's decimals builds to exactly those
    minor units, and one more decimal digit (not 0) is refused."""
    text = Money(minor, currency).major_str()
    if minor > AMOUNT_MAX:  # issue 12 item 7: more than an invoice's columns hold
        with pytest.raises(InvalidConfig, match=r"^plans\.p\.price: at most 2147483647 "):
            build_catalog({"plans": {"p": {"name": "P", "price": text}}}, currency)
    else:
        catalog = build_catalog({"plans": {"p": {"name": "P", "price": text}}}, currency)
        assert catalog.plan("p").price == Money(minor, currency)
    too_precise = text + ("5" if "." in text else ".5")
    with pytest.raises(InvalidConfig, match=r"^plans\.p\.price: .* has more decimals than "):
        build_catalog({"plans": {"p": {"name": "P", "price": too_precise}}}, currency)


# -- fields.py: the document readers ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("plans", "starter", "plans.starter"),
        ("", "plans", "plans"),
        ("plans.starter.features", 2, "plans.starter.features[2]"),
        ("", 0, "[0]"),
        ("a[1]", "b", "a[1].b"),
    ],
)
def test_at_builds_paths(path: str, key: str | int, expected: str) -> None:
    assert fields.at(path, key) == expected


def test_mapping_needs_text_keys() -> None:
    proxy = MappingProxyType({"a": 1})
    assert fields.mapping(proxy, "p") is proxy
    assert fields.mapping({}, "p") == {}
    for bad in ({1: "a"}, {"a": 1, None: 2}, [("a", 1)], "a", None):
        with pytest.raises(InvalidConfig, match=r"^p: expected a mapping of names to values$"):
            fields.mapping(bad, "p")


def test_only_keys_and_required() -> None:
    fields.only_keys({"a": 1}, ("a", "b"), "p")
    fields.only_keys({}, (), "p")
    with pytest.raises(InvalidConfig, match=r"^p\.c: unknown field; expected one of a, b$"):
        fields.only_keys({"a": 1, "c": 2}, iter(("b", "a")), "p")
    assert fields.required({"a": 0}, "a", "p") == 0
    assert fields.required({"a": False}, "a", "") is False
    with pytest.raises(InvalidConfig, match=r"^p\.a: is required$"):
        fields.required({"a": None}, "a", "p")
    with pytest.raises(InvalidConfig, match=r"^a: is required$"):
        fields.required({}, "a", "")


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [
        ("0.10", D(0), D("0.10")),
        ("0", D(0), D(0)),
        (7, D(0), D(7)),
        ("-5.5", None, D("-5.5")),
        (-3, None, D(-3)),
        ("-2", D(-2), D(-2)),
        ("123456789012345678901234567890.000001", D(0), D("123456789012345678901234567890.000001")),
    ],
)
def test_decimal_reads(value: object, minimum: Decimal | None, expected: Decimal) -> None:
    result = fields.decimal(value, "p", minimum=minimum)
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize(
    "value",
    [0.1, 1.0, True, False, None, "", " 1", "1 ", "01", "1.", ".5", "+1", "1e3", "NaN",
     "Infinity", "1,000", "1_000", "١", [], {}, D("1")],
)  # fmt: skip
def test_decimal_refuses(value: object) -> None:
    with pytest.raises(InvalidConfig, match=r'^p: expected a decimal string such as "0\.10", got '):
        fields.decimal(value, "p", minimum=None)


def test_decimal_minimum_and_positive() -> None:
    with pytest.raises(InvalidConfig, match=r"^p: must be at least 0, got -0\.01$"):
        fields.decimal("-0.01", "p")
    with pytest.raises(InvalidConfig, match=r"^p: must be at least 1, got 0\.5$"):
        fields.decimal("0.5", "p", minimum=D(1))
    assert fields.positive_decimal("0.001", "p") == D("0.001")
    assert fields.positive_decimal(3, "p") == D(3)
    with pytest.raises(InvalidConfig, match=r"^p: must be greater than 0, got 0$"):
        fields.positive_decimal("0", "p")
    with pytest.raises(InvalidConfig, match=r"^p: must be at least 0, got -1$"):
        fields.positive_decimal(-1, "p")


def test_whole() -> None:
    assert fields.whole(0, "p") == 0
    assert fields.whole(5, "p", minimum=5) == 5
    assert fields.whole(-3, "p", minimum=-3) == -3
    for bad in (True, False, 1.0, "1", None, D(1), Fraction(1)):
        with pytest.raises(InvalidConfig, match=r"^p: expected a whole number, got "):
            fields.whole(bad, "p")
    with pytest.raises(InvalidConfig, match=r"^p: must be at least 1, got 0$"):
        fields.whole(0, "p", minimum=1)


def test_flag_and_text() -> None:
    assert fields.flag(True, "p") is True
    assert fields.flag(False, "p") is False
    for bad in (0, 1, "true", None):
        with pytest.raises(InvalidConfig, match=r"^p: expected true or false, got "):
            fields.flag(bad, "p")
    assert fields.text("Starter", "p") == "Starter"
    assert fields.text(" Pro ", "p") == " Pro "
    for bad_text in ("", "   ", "\n", None, 5, ["a"]):
        with pytest.raises(InvalidConfig, match=r"^p: expected a non-empty text, got "):
            fields.text(bad_text, "p")


@pytest.mark.parametrize(
    "value", ["a", "0", "starter", "call.ended", "gpt-4o", "a_b", "9" * 64, "a-", "a."]
)
def test_name_accepts(value: str) -> None:
    assert fields.name(value, "p") == value


@pytest.mark.parametrize(
    "value",
    ["", "A", "Starter", "my plan", "-a", "_a", ".a", "a" * 65, "é", "a/b", "a\n", 5, None],
)
def test_name_refuses(value: object) -> None:
    message = f"p: {value!r} {_NAME_RULE}"
    with pytest.raises(InvalidConfig, match=f"^{re.escape(message)}$"):
        fields.name(value, "p")


def test_names() -> None:
    assert fields.names([], "p") == ()
    assert fields.names(["a", "b"], "p") == ("a", "b")
    assert fields.names(("b", "a"), "p") == ("b", "a")
    for bad in ("a", {"a": 1}, {"a"}, None):
        with pytest.raises(InvalidConfig, match=r"^p: expected a list of names, got "):
            fields.names(bad, "p")
    with pytest.raises(InvalidConfig, match=r"^p\[1\]: 'B' "):
        fields.names(["a", "B"], "p")
    with pytest.raises(InvalidConfig, match=r"^p\[3\]: 'b' is listed twice$"):
        fields.names(["a", "b", "c", "b"], "p")


def test_choice() -> None:
    assert fields.choice("month", ("year", "month"), "p", "interval") == "month"
    assert fields.choice("never", CreditExpiry, "p", "expiry") == "never"
    for bad in ("week", 3, None, ["month"]):
        message = f"p: unknown interval {bad!r}; expected one of month, year"
        with pytest.raises(InvalidConfig, match=f"^{re.escape(message)}$"):
            fields.choice(bad, ("year", "month"), "p", "interval")
