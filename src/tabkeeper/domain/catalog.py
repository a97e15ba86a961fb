"""The catalog: meters, plans, add-ons and AI feature rates (CAT-1..5).

`build_catalog` reads the `catalog` section of a scenario or import file (SCENARIOS.md)
and validates it whole: every error names the exact path of the mistake
("plans.starter.overage.minuts: unknown meter"). What it returns is frozen.

Plans are composed of parts (DESIGN.md rule 4): included quantities per meter, an overage
pricing per meter (none: a hard stop at the included quantity), capacity limits, feature
flags, included credits; not of boolean switches per product.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import TypeVar

from tabkeeper.domain import fields
from tabkeeper.domain.catalog_limits import check_invoice_limits
from tabkeeper.domain.coupons import Coupon, build_coupons
from tabkeeper.domain.errors import InvalidConfig, InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.periods import MAX_INTERVAL_COUNT, Interval, interval_days
from tabkeeper.domain.pricing import PricingConfig, parse_pricing

T = TypeVar("T")


class MeterKind(StrEnum):
    BILLABLE_SESSIONS = "billable_sessions"  # USE-3, USE-4
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"


class Rounding(StrEnum):
    """How a `sum` meter rounds once converted to its unit (USE-5)."""

    NONE = "none"
    PER_EVENT_UP = "per_event_up"  # each event up to a whole unit (each call to the minute)
    TOTAL_UP = "total_up"  # the period's total up to a whole unit


class Resource(StrEnum):
    """Capacity a plan limits and add-on slots raise."""

    AGENTS = "agents"
    SEATS = "seats"
    PHONE_NUMBERS = "phone_numbers"
    CHANNELS = "channels"


class CreditExpiry(StrEnum):
    PERIOD_END = "period_end"
    NEVER = "never"


FilterValue = str | int | bool

EVENT_FIELDS = ("agent", "conversation")
"""Names a meter's field may take from the event itself rather than its properties
(domain/ingestion.py). They are texts (an agent's code, a conversation's id): a meter may
count their distinct values (unique_count), never add them up (sum) or take the largest
(max), and a catalog that asks for that is refused (CAT-3)."""
_NUMERIC_KINDS = (MeterKind.SUM, MeterKind.MAX)


@dataclass(frozen=True, slots=True)
class Meter:
    """A declared meter (CAT-3): what events it reads and how it aggregates them."""

    code: str
    kind: MeterKind
    event: str
    field_name: str | None = None
    filter: Mapping[str, FilterValue] = dataclass_field(
        default_factory=lambda: MappingProxyType({})
    )
    unit_seconds: int | None = None
    rounding: Rounding = Rounding.NONE


@dataclass(frozen=True, slots=True)
class IncludedCredits:
    """AI credits a plan grants each period (CRD-2)."""

    amount: int
    expires: CreditExpiry = CreditExpiry.PERIOD_END
    rollover_max: int | None = None
    """CRD-8: the most unused included credits of a period that carry into the next
    (None: none carry); what carries is used first and expires after that one period."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan (CAT-1, CAT-2). `limits` leaves out what is unlimited; 0 means none at all."""

    code: str
    name: str
    price: Money
    interval: Interval
    includes: Mapping[str, Decimal]
    overage: Mapping[str, PricingConfig]
    limits: Mapping[Resource, int]
    features: frozenset[str]
    answered_only: bool = False
    credits: IncludedCredits | None = None
    retention_days: int = 30
    rank: int = 0
    sales_led: bool = False
    visible_to: tuple[str, ...] | None = None
    channels: tuple[str, ...] = ()
    """CAT-7: the channels (webchat, whatsapp, slack, ...) an organization on the plan may
    connect; how many at once is `limits.channels` (unlimited up to the list when absent)."""
    # -- SUB-15, SUB-16 (issue 17: trials that convert, anchors and intervals)
    interval_count: int = 1
    """SUB-16: intervals per billing period (3 with interval month: quarterly); `price` is
    the price of one such period."""
    trial_days: int | None = None
    """SUB-15: days of trial a subscription to the plan begins with (None: none)."""

    @property
    def cadence(self) -> tuple[Interval, int]:
        """How often the plan bills: (interval, interval_count). Two plans of one cadence
        share their periods (a change between them keeps the period, SUB-5)."""
        return self.interval, self.interval_count

    def limit(self, resource: Resource) -> int | None:
        """The plan's capacity for `resource`, or None when unlimited."""
        return self.limits.get(resource)

    def is_hard_stop(self, meter: str) -> bool:
        """True when usage of `meter` stops at the included quantity (no overage price)."""
        return meter in self.includes and meter not in self.overage

    def price_per_day(self) -> Fraction:
        """Price divided by the days of the period (30 a month, 365 a year, times the
        interval_count: 90 a quarter)."""
        return self.price.as_fraction() / (interval_days(self.interval) * self.interval_count)

    def is_visible_to(self, organization: str) -> bool:
        return self.visible_to is None or organization in self.visible_to


@dataclass(frozen=True, slots=True)
class AddOn:
    """A per-slot add-on (CAT-5, CAT-8): its price per slot for each interval it is sold
    with (month, year or both) and what a slot adds."""

    code: str
    name: str
    prices: Mapping[Interval, Money]
    adds: Mapping[Resource, int]
    features: frozenset[str] = frozenset()
    requires_plans: tuple[str, ...] | None = None

    def allowed_on(self, plan: str) -> bool:
        return self.requires_plans is None or plan in self.requires_plans

    def has_price_for(self, interval: Interval) -> bool:
        return interval in self.prices

    def price_for(self, interval: Interval) -> Money:
        """CAT-8: the price per slot for a period of `interval`, never another interval's.
        Refused (`addon_interval_unpriced`) when the add-on has no price for it."""
        price = self.prices.get(interval)
        if price is None:
            raise Refused(
                f"{self.name} has no {ADJECTIVES[interval]} price: it is sold with "
                f"{' and '.join(ADJECTIVES[i] for i in self.prices)} plans only.",
                code="addon_interval_unpriced",
            )
        return price


ADJECTIVES: Mapping[Interval, str] = MappingProxyType(
    {Interval.MONTH: "monthly", Interval.YEAR: "yearly"}
)
"""How a price of each interval is called in messages (CAT-8)."""


@dataclass(frozen=True, slots=True)
class AiFeature:
    """An AI feature and the credits one use consumes (CRD-1)."""

    code: str
    credits: int


@dataclass(frozen=True, slots=True)
class Catalog:
    currency: Currency
    meters: Mapping[str, Meter]
    plans: Mapping[str, Plan]
    addons: Mapping[str, AddOn]
    ai_features: Mapping[str, AiFeature]
    credit_price: Decimal | None = None
    coupons: Mapping[str, Coupon] = dataclass_field(default_factory=dict)  # INV-6

    def plan(self, code: str) -> Plan:
        if code not in self.plans:
            raise InvalidInput(f"unknown plan {code!r}", code="unknown_plan")
        return self.plans[code]

    def addon(self, code: str) -> AddOn:
        if code not in self.addons:
            raise InvalidInput(f"unknown add-on {code!r}", code="unknown_addon")
        return self.addons[code]

    def is_upgrade(self, old: Plan, new: Plan) -> bool:
        """SCENARIOS.md: an upgrade costs more per day, or the same with a higher rank."""
        old_rate, new_rate = old.price_per_day(), new.price_per_day()
        return new_rate > old_rate or (new_rate == old_rate and new.rank > old.rank)

    def meters_of_event(self, event_type: str) -> tuple[Meter, ...]:
        return tuple(m for m in self.meters.values() if m.event == event_type)

    def channels(self) -> frozenset[str]:
        """CAT-7: every channel some plan of the catalog lists (the known channels)."""
        return frozenset(c for plan in self.plans.values() for c in plan.channels)

    def lowest_plan_with_channel(self, channel: str) -> Plan | None:
        """CAT-7: the lowest-ranked plan (then by code) that allows `channel`, private and
        sales-led ones included; None when no plan does."""
        having = [p for p in self.plans.values() if channel in p.channels]
        return min(having, key=lambda p: (p.rank, p.code), default=None)


def build_catalog(data: object, currency: Currency, path: str = "") -> Catalog:
    """The catalog described by `data`, validated whole; InvalidConfig names the path."""
    doc = fields.mapping(data, path or "catalog")
    fields.only_keys(
        doc, ("meters", "plans", "addons", "ai_features", "credit_price", *_INV6_KEYS), path
    )
    meters = _named(doc.get("meters", {}), fields.at(path, "meters"), _meter)
    plans = _named(
        fields.required(doc, "plans", path),
        fields.at(path, "plans"),
        lambda code, raw, here: _plan(code, raw, here, currency, meters),
    )
    if not plans:
        raise InvalidConfig(fields.at(path, "plans"), "needs at least one plan")
    addons = _named(
        doc.get("addons", {}),
        fields.at(path, "addons"),
        lambda code, raw, here: _addon(code, raw, here, currency, plans),
    )
    _check_addon_intervals(addons, plans, fields.at(path, "addons"))
    ai_features = _named(doc.get("ai_features", {}), fields.at(path, "ai_features"), _ai_feature)
    # Issue 12 item 7: what invoices take from the catalog fits their columns.
    check_invoice_limits(
        path,
        {code: (p.name, p.price.minor, dict(p.overage)) for code, p in plans.items()},
        {
            code: (a.name, max((abs(p.minor) for p in a.prices.values()), default=0))
            for code, a in addons.items()
        },
    )
    credit_price = doc.get("credit_price")
    # INV-6: coupons, for the catalog's plans and add-ons (domain/coupons.py)
    coupons = build_coupons(
        doc.get("coupons") or {}, currency, frozenset(plans) | frozenset(addons),
        fields.at(path, "coupons"),
    )  # fmt: skip
    return Catalog(
        currency=currency,
        meters=meters,
        plans=plans,
        addons=addons,
        ai_features=ai_features,
        credit_price=None
        if credit_price is None
        else fields.decimal(credit_price, fields.at(path, "credit_price")),
        coupons=coupons,
    )


_INV6_KEYS = ("coupons",)


def _named(data: object, path: str, build: Callable[[str, object, str], T]) -> Mapping[str, T]:
    """A mapping of code to entry, each built by `build(code, raw, path)`."""
    entries = {} if data is None else fields.mapping(data, path)
    built = {}
    for code, raw in entries.items():
        here = fields.at(path, code)
        fields.name(code, here)  # the code first: `built[k] = v` evaluates v before k
        built[code] = build(code, raw, here)
    return MappingProxyType(built)


_METER_FIELDS: Mapping[MeterKind, tuple[str, ...]] = {
    MeterKind.BILLABLE_SESSIONS: ("kind", "event"),
    MeterKind.COUNT: ("kind", "event", "filter"),
    MeterKind.SUM: ("kind", "event", "field", "filter", "unit_seconds", "rounding"),
    MeterKind.MAX: ("kind", "event", "field", "filter"),
    MeterKind.UNIQUE_COUNT: ("kind", "event", "field", "filter"),
}


def _meter(code: str, raw: object, path: str) -> Meter:
    doc = fields.mapping(raw, path)
    kind = MeterKind(
        fields.choice(
            fields.required(doc, "kind", path), MeterKind, fields.at(path, "kind"), "meter kind"
        )
    )
    fields.only_keys(doc, _METER_FIELDS[kind], path)
    if kind is MeterKind.BILLABLE_SESSIONS:
        event = fields.name(doc.get("event", "message"), fields.at(path, "event"))
        return Meter(code, kind, event)
    event = fields.name(fields.required(doc, "event", path), fields.at(path, "event"))
    field_name = None
    if kind is not MeterKind.COUNT:
        field_name = fields.name(fields.required(doc, "field", path), fields.at(path, "field"))
    if kind in _NUMERIC_KINDS and field_name in EVENT_FIELDS:
        raise InvalidConfig(
            fields.at(path, "field"),
            f"a {kind} meter needs a number, and {field_name!r} is the event's {field_name}"
            f" (a text); count its distinct values with unique_count",
        )
    unit_seconds = doc.get("unit_seconds")
    rounding = doc.get("rounding", Rounding.NONE.value)
    return Meter(
        code=code,
        kind=kind,
        event=event,
        field_name=field_name,
        filter=_filter(doc.get("filter"), fields.at(path, "filter")),
        unit_seconds=None
        if unit_seconds is None
        else fields.whole(unit_seconds, fields.at(path, "unit_seconds"), minimum=1),
        rounding=Rounding(
            fields.choice(rounding, Rounding, fields.at(path, "rounding"), "rounding")
        ),
    )


def _filter(raw: object, path: str) -> Mapping[str, FilterValue]:
    if raw is None:
        return MappingProxyType({})
    doc = fields.mapping(raw, path)
    result: dict[str, FilterValue] = {}
    for key, value in doc.items():
        fields.name(key, fields.at(path, key))
        if not isinstance(value, str | int | bool):
            raise InvalidConfig(
                fields.at(path, key), f"expected a text, number or flag, got {value!r}"
            )
        result[key] = value
    return MappingProxyType(result)


_PLAN_FIELDS = (
    "name", "price", "interval", "includes", "overage", "limits", "features", "answered_only",
    "credits", "retention_days", "rank", "sales_led", "visible_to", "channels",
    "interval_count", "trial_days",  # SUB-15, SUB-16
)  # fmt: skip

MAX_TRIAL_DAYS = 365
"""SUB-15: the longest trial a plan may give."""


def _plan(
    code: str, raw: object, path: str, currency: Currency, meters: Mapping[str, Meter]
) -> Plan:
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, _PLAN_FIELDS, path)
    includes = {
        meter: fields.decimal(value, fields.at(fields.at(path, "includes"), meter))
        for meter, value in _meter_keyed(
            doc.get("includes"), fields.at(path, "includes"), meters
        ).items()
    }
    overage = {
        meter: parse_pricing(value, fields.at(fields.at(path, "overage"), meter))
        for meter, value in _meter_keyed(
            doc.get("overage"), fields.at(path, "overage"), meters
        ).items()
    }
    visible_to = doc.get("visible_to")
    limits = _resources(doc.get("limits"), fields.at(path, "limits"), minimum=0)
    channels = _channels(doc.get("channels"), fields.at(path, "channels"), limits, path)
    return Plan(
        code=code,
        name=fields.text(fields.required(doc, "name", path), fields.at(path, "name")),
        price=_price(fields.required(doc, "price", path), currency, fields.at(path, "price")),
        interval=Interval.parse(doc.get("interval", "month"), fields.at(path, "interval")),
        includes=MappingProxyType(includes),
        overage=MappingProxyType(overage),
        limits=limits,
        features=frozenset(fields.names(doc.get("features", []), fields.at(path, "features"))),
        answered_only=fields.flag(
            doc.get("answered_only", False), fields.at(path, "answered_only")
        ),
        credits=_credits(doc.get("credits"), fields.at(path, "credits")),
        retention_days=fields.whole(
            doc.get("retention_days", 30), fields.at(path, "retention_days")
        ),
        rank=fields.whole(doc.get("rank", 0), fields.at(path, "rank")),
        sales_led=fields.flag(doc.get("sales_led", False), fields.at(path, "sales_led")),
        visible_to=None
        if visible_to is None
        else fields.names(visible_to, fields.at(path, "visible_to")),
        channels=channels,
        interval_count=_bounded(
            doc.get("interval_count", 1), fields.at(path, "interval_count"), MAX_INTERVAL_COUNT
        ),
        trial_days=_trial_days(doc.get("trial_days"), fields.at(path, "trial_days")),
    )


def _trial_days(raw: object, path: str) -> int | None:
    """SUB-15: a plan's own trial, 1 to MAX_TRIAL_DAYS days, or none."""
    return None if raw is None else _bounded(raw, path, MAX_TRIAL_DAYS)


def _bounded(raw: object, path: str, most: int) -> int:
    """A whole number from 1 to `most`."""
    value = fields.whole(raw, path, minimum=1)
    if value > most:
        raise InvalidConfig(path, f"must be at most {most}, got {value}")
    return value


def _channels(
    raw: object, path: str, limits: Mapping[Resource, int], plan_path: str
) -> tuple[str, ...]:
    """CAT-7: the plan's channels, distinct names; `limits.channels` may not exceed how
    many are listed (a limit no organization could reach is a mistake in the catalog)."""
    channels = () if raw is None else fields.names(raw, path)
    limit = limits.get(Resource.CHANNELS)
    if limit is not None and limit > len(channels):
        raise InvalidConfig(
            fields.at(fields.at(plan_path, "limits"), "channels"),
            f"{limit} is more than the {len(channels)} channel"
            f"{'' if len(channels) == 1 else 's'} the plan lists in channels",
        )
    return channels


def _meter_keyed(raw: object, path: str, meters: Mapping[str, Meter]) -> Mapping[str, object]:
    if raw is None:
        return {}
    doc = fields.mapping(raw, path)
    for meter in doc:
        if meter not in meters:
            raise InvalidConfig(fields.at(path, meter), "unknown meter")
    return doc


def _resources(raw: object, path: str, minimum: int) -> Mapping[Resource, int]:
    if raw is None:
        return MappingProxyType({})
    doc = fields.mapping(raw, path)
    result = {}
    for key, value in doc.items():
        here = fields.at(path, key)
        resource = Resource(fields.choice(key, Resource, here, "resource"))
        result[resource] = fields.whole(value, here, minimum=minimum)
    return MappingProxyType(result)


def _credits(raw: object, path: str) -> IncludedCredits | None:
    if raw is None:
        return None
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, ("amount", "expires", "rollover"), path)
    amount = fields.whole(
        fields.required(doc, "amount", path), fields.at(path, "amount"), minimum=1
    )
    expires = CreditExpiry(
        fields.choice(
            doc.get("expires", CreditExpiry.PERIOD_END.value),
            CreditExpiry,
            fields.at(path, "expires"),
            "expiry",
        )
    )
    rollover_max = _rollover(doc.get("rollover"), fields.at(path, "rollover"), expires)
    return IncludedCredits(amount, expires, rollover_max)


def _rollover(raw: object, path: str, expires: CreditExpiry) -> int | None:
    """CRD-8: `rollover: {max: N}`, N a whole number >= 1 of credits; only for included
    credits that expire at the period's end (credits that never expire have nothing to
    carry over)."""
    if raw is None:
        return None
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, ("max",), path)
    if expires is not CreditExpiry.PERIOD_END:
        raise InvalidConfig(path, "only included credits that expire at period_end can roll over")
    return fields.whole(fields.required(doc, "max", path), fields.at(path, "max"), minimum=1)


def _price(raw: object, currency: Currency, path: str) -> Money:
    amount = fields.decimal(raw, path)
    try:
        return Money.parse(f"{amount:f}", currency, path)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message.removeprefix(f"{path}: ")) from None


def _addon(
    code: str, raw: object, path: str, currency: Currency, plans: Mapping[str, Plan]
) -> AddOn:
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, ("name", "price", "interval", "adds", "features", "requires_plans"), path)
    requires = doc.get("requires_plans")
    requires_plans = None
    if requires is not None:
        requires_plans = fields.names(requires, fields.at(path, "requires_plans"))
        for i, plan in enumerate(requires_plans):
            if plan not in plans:
                raise InvalidConfig(
                    fields.at(fields.at(path, "requires_plans"), i), f"unknown plan {plan!r}"
                )
    return AddOn(
        code=code,
        name=fields.text(fields.required(doc, "name", path), fields.at(path, "name")),
        prices=_addon_prices(doc, currency, path),
        adds=_resources(doc.get("adds"), fields.at(path, "adds"), minimum=1),
        features=frozenset(fields.names(doc.get("features", []), fields.at(path, "features"))),
        requires_plans=requires_plans,
    )


def _addon_prices(
    doc: Mapping[str, object], currency: Currency, path: str
) -> Mapping[Interval, Money]:
    """CAT-8: `price: {month: "10.00", year: "100.00"}` (one or both), or a plain price
    for the one interval `interval` names (default month), as catalogs before CAT-8 said."""
    raw = fields.required(doc, "price", path)
    here = fields.at(path, "price")
    if not isinstance(raw, Mapping):
        interval = Interval.parse(doc.get("interval", "month"), fields.at(path, "interval"))
        return MappingProxyType({interval: _price(raw, currency, here)})
    if "interval" in doc:
        raise InvalidConfig(
            fields.at(path, "interval"),
            "give the price of each interval in price ({month: ..., year: ...}), not interval",
        )
    prices = fields.mapping(raw, here)
    if not prices:
        raise InvalidConfig(here, 'needs a price for month, year or both, e.g. {month: "10.00"}')
    result = {}
    for key, value in prices.items():
        interval = Interval.parse(key, fields.at(here, key))
        result[interval] = _price(value, currency, fields.at(here, key))
    return MappingProxyType({i: result[i] for i in Interval if i in result})


def _check_addon_intervals(
    addons: Mapping[str, AddOn], plans: Mapping[str, Plan], path: str
) -> None:
    """CAT-8: an add-on is offered with every plan it allows (all plans without
    `requires_plans`), and each of those plans bills it at its own interval's price: a
    plan of an interval the add-on has no price for is refused, naming both."""
    for code, addon in addons.items():
        for plan in plans.values():
            if addon.allowed_on(plan.code) and not addon.has_price_for(plan.interval):
                raise InvalidConfig(
                    fields.at(fields.at(path, code), "price"),
                    f"no {ADJECTIVES[plan.interval]} price, but it is offered with plan "
                    f"{plan.code} ({plan.interval.value})",
                )


def _ai_feature(code: str, raw: object, path: str) -> AiFeature:
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, ("credits",), path)
    return AiFeature(
        code,
        fields.whole(fields.required(doc, "credits", path), fields.at(path, "credits"), minimum=1),
    )
