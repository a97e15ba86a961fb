"""The timeline of a scenario file (SCENARIOS.md "Steps"), read step by step.

`build_timeline(data, terms, catalog, members)` reads the `timeline` list of a scenario
into the step classes of steps.py; scenario.py calls it with the organizations
already read. Every error is an InvalidConfig naming the path in the file
(`timeline[3].plan: unknown plan 'gold'`, `timeline[2].do: unknown step 'upgrade'; ...`).

Checked: the `do` name, unknown and missing fields, the organization (`org`; only an
`events` step may leave it out), the acting member (`as`), plans, add-ons and AI features
against the catalog, whole numbers of at least 1 (limits, quantities, credits), times
(ISO 8601 with a timezone), and that steps are in time order (equal times keep file
order). A `check` takes `feature` exactly when its action is `use_ai` (LIM-1). A `top_up`
without `price` needs the catalog's `credit_price` (CRD-1). Not checked: what the rules
refuse at run time (see scenario.py), and the fields of each event (USE-2: refused one by
one when the step runs; here each event is only checked to be a mapping, then copied).

Members: `as` names the acting member (default: the organization's first owner). It must
be a member of the step's organization as declared, or added by an earlier `add_member`
step; `remove_member` must name such a member too. A member removed by an earlier step
still passes here: acting after removal is a run-time refusal (ACL-1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

from tabkeeper.domain import fields
from tabkeeper.domain.catalog import Catalog
from tabkeeper.domain.decisions import Action
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Money
from tabkeeper.domain.terms import BillingTerms, Timing
from tabkeeper.domain.utc import format_instant, parse_instant, require_utc
from tabkeeper.simulation.steps import (
    STEPS,
    AddMember,
    AddPhoneNumber,
    AddSlots,
    ApplyCoupon,
    ApproveChange,
    ArchiveAgent,
    AssignPlan,
    Cancel,
    CancelScheduledChange,
    ChangePlan,
    Check,
    ConnectChannel,
    CreateAgent,
    DisableAutoTopUp,
    DisconnectChannel,
    Events,
    GrantAccountCredit,
    HoldCredits,
    IssueCreditNote,
    MarkPaid,
    MarkUncollectible,
    Pay,
    PaymentMethodChoice,
    PayNow,
    ReleaseHold,
    ReleasePhoneNumber,
    RemoveMember,
    RemoveSlots,
    RequestDemo,
    ResetSessionLimit,
    ResetSpendCap,
    Resume,
    Role,
    SetAutoTopUp,
    SetBillingDetails,
    SetCreditAlert,
    SetPaymentMethod,
    SetSessionLimit,
    SetSpendCap,
    SettleHold,
    StartSession,
    Step,
    Subscribe,
    TimelineStep,
    TopUp,
    VoidInvoice,
)

_COMMON = ("at", "do", "org", "as")
_WHEN = "immediately, period_end or an ISO 8601 time such as 2026-01-01T00:00:00Z"


def read_instant(value: object, path: str) -> datetime:
    """An ISO 8601 time with a timezone as a UTC datetime; a timezone-aware datetime (what
    YAML makes of an unquoted time) is taken as it is. InvalidConfig names `path`."""
    try:
        if isinstance(value, datetime):
            return require_utc(value, path)
        return parse_instant(value, path)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message.removeprefix(f"{path}: ")) from None


def first_owner(members: Mapping[str, Role]) -> str:
    """The first owner in `members` (in order): who steps act as when they leave `as` out."""
    return next(member for member, role in members.items() if role is Role.OWNER)


def build_timeline(
    data: object,
    terms: BillingTerms,
    catalog: Catalog,
    members: Mapping[str, Mapping[str, Role]],
    path: str = "timeline",
) -> tuple[Step, ...]:
    """The steps of `data` (None: no steps) for the organizations of `members` (each
    organization's members in order, owners among them); InvalidConfig names the path."""
    if data is None:
        return ()
    if not isinstance(data, list | tuple):
        raise InvalidConfig(path, f"expected a list of steps, got {data!r}")
    context = _Context(terms, catalog, members)
    steps: list[Step] = []
    for index, raw in enumerate(data):
        step = _step(raw, fields.at(path, index), index, context)
        if steps and step.at < steps[-1].at:
            raise InvalidConfig(
                fields.at(fields.at(path, index), "at"),
                f"steps must be in time order; {format_instant(step.at)} is before the "
                f"previous step's {format_instant(steps[-1].at)}",
            )
        steps.append(step)
    return tuple(steps)


@dataclass(slots=True)
class _Context:
    """What reading a step needs. `members` starts as declared and grows with `add_member`
    steps; `org` and `values` are those of the step being read (its fields read so far)."""

    terms: BillingTerms
    catalog: Catalog
    declared: Mapping[str, Mapping[str, Role]]
    members: dict[str, set[str]] = field(default_factory=dict)
    org: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = {org: set(names) for org, names in self.declared.items()}


Reader = Callable[[object, str, _Context], object]
"""Reads one field of a step: (value, None when left out; path of the field; context)."""


def _step(raw: object, path: str, index: int, context: _Context) -> Step:
    doc = fields.mapping(raw, path)
    do = fields.choice(fields.required(doc, "do", path), STEPS, fields.at(path, "do"), "step")
    kind: type[TimelineStep] = STEPS[do]
    readers = _FIELDS[kind]
    fields.only_keys(doc, (*_COMMON, *readers), path)
    moment = read_instant(fields.required(doc, "at", path), fields.at(path, "at"))
    org, actor = _org_and_actor(doc, path, context, org_required=kind is not Events)
    context.org = org
    context.values = {"index": index, "at": moment, "org": org, "actor": actor}
    for key, read in readers.items():
        context.values[key] = read(doc.get(key), fields.at(path, key), context)
    return cast(Step, kind(**context.values))


def _org_and_actor(
    doc: Mapping[str, object], path: str, context: _Context, *, org_required: bool
) -> tuple[str | None, str | None]:
    org = doc.get("org")
    if org is None:
        if org_required:
            raise InvalidConfig(fields.at(path, "org"), "is required")
        if doc.get("as") is not None:
            raise InvalidConfig(fields.at(path, "as"), "needs org: a member of which one?")
        return None, None
    if not isinstance(org, str) or org not in context.declared:
        raise InvalidConfig(fields.at(path, "org"), f"unknown organization {org!r}")
    actor = doc.get("as")
    if actor is None:
        return org, first_owner(context.declared[org])
    if not isinstance(actor, str) or actor not in context.members[org]:
        raise InvalidConfig(fields.at(path, "as"), f"{actor!r} is not a member of {org}")
    return org, actor


# Readers of step fields: (value or None when left out, path of the field, context).


def _required(read: Reader) -> Reader:
    def reader(value: object, path: str, context: _Context) -> object:
        if value is None:
            raise InvalidConfig(path, "is required")
        return read(value, path, context)

    return reader


def _known(what: str, entries: Callable[[Catalog], Mapping[str, object]]) -> Reader:
    """A code of the catalog: a plan, an add-on or an AI feature."""

    def read(value: object, path: str, context: _Context) -> object:
        if not isinstance(value, str) or value not in entries(context.catalog):
            raise InvalidConfig(path, f"unknown {what} {value!r}")
        return value

    return _required(read)


_PLAN = _known("plan", lambda catalog: catalog.plans)
_ADDON = _known("add-on", lambda catalog: catalog.addons)
_AI_FEATURE = _known("AI feature", lambda catalog: catalog.ai_features)
_COUNT = _required(lambda value, path, _: fields.whole(value, path, minimum=1))
_TEXT = _required(lambda value, path, _: fields.text(value, path))
_ROLE = _required(lambda value, path, _: Role(fields.choice(value, Role, path, "role")))
_METHOD = _required(
    lambda value, path, _: PaymentMethodChoice(
        fields.choice(value, PaymentMethodChoice, path, "payment method")
    )
)


def _addon_quantities(value: object, path: str, context: _Context) -> Mapping[str, int]:
    if value is None:
        return MappingProxyType({})
    quantities = {}
    for code, quantity in fields.mapping(value, path).items():
        here = fields.at(path, code)
        _ADDON(code, here, context)
        quantities[code] = fields.whole(quantity, here, minimum=1)
    return MappingProxyType(quantities)


def _when(value: object, path: str, _: _Context) -> Timing | datetime | None:
    if value is None:
        return None
    if value in (Timing.IMMEDIATELY.value, Timing.PERIOD_END.value):
        return Timing(value)
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InvalidConfig(path, f"{value!r} is not {_WHEN}") from None
    elif not isinstance(value, datetime):
        raise InvalidConfig(path, f"expected {_WHEN}, got {value!r}")
    return read_instant(value, path)


def _price(value: object, path: str, context: _Context) -> Money | None:
    if value is None:
        if context.catalog.credit_price is None:
            raise InvalidConfig(path, "is required: the catalog has no credit_price")
        return None
    amount = fields.decimal(value, path)
    try:
        return Money.parse(f"{amount:f}", context.terms.currency, path)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message.removeprefix(f"{path}: ")) from None


def _amount(value: object, path: str, context: _Context) -> Money:
    """A positive amount of the scenario's currency, a decimal string in major units."""
    amount = fields.decimal(value, path)
    try:
        money = Money.parse(f"{amount:f}", context.terms.currency, path)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message.removeprefix(f"{path}: ")) from None
    if money.minor <= 0:
        raise InvalidConfig(path, f"expected a positive amount, got {value!r}")
    return money


def _optional_amount(value: object, path: str, context: _Context) -> Money | None:
    """INV-5: `amount` of a credit note; exactly one of `amount` and `lines`."""
    if value is None:
        return None
    return _amount(value, path, context)


def _credit_lines(
    value: object, path: str, context: _Context
) -> tuple[tuple[int, Money], ...] | None:
    """INV-5: `lines: [{line: index, amount}]` of a credit note, or `amount` instead."""
    has_amount = context.values.get("amount") is not None
    if value is None:
        if not has_amount:
            raise InvalidConfig(path, "give amount or lines")
        return None
    if has_amount:
        raise InvalidConfig(path, "give amount or lines, not both")
    if not isinstance(value, list | tuple) or not value:
        raise InvalidConfig(path, f"expected a list of {{line, amount}}, got {value!r}")
    found = []
    for i, raw in enumerate(value):
        here = fields.at(path, i)
        doc = fields.mapping(raw, here)
        fields.only_keys(doc, ("line", "amount"), here)
        line = fields.whole(fields.required(doc, "line", here), fields.at(here, "line"))
        found.append(
            (
                line,
                _amount(fields.required(doc, "amount", here), fields.at(here, "amount"), context),
            )
        )
    return tuple(found)


def _flag(value: object, path: str, _: _Context) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidConfig(path, f"expected true or false, got {value!r}")
    return value


def _optional_text(value: object, path: str, _: _Context) -> str | None:
    return None if value is None else fields.text(value, path)


def _events(value: object, path: str, _: _Context) -> tuple[Mapping[str, object], ...]:
    if not isinstance(value, list | tuple):
        raise InvalidConfig(path, f"expected a list of events, got {value!r}")
    return tuple(
        MappingProxyType(
            {key: _plain(item) for key, item in fields.mapping(event, fields.at(path, i)).items()}
        )
        for i, event in enumerate(value)
    )


def _plain(value: object) -> object:
    """A private copy of `value` as plain data (dicts and lists, ready for JSON), so that
    the scenario shares nothing mutable with the document it was read from."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _action(value: object, path: str, _: _Context) -> Action:
    try:
        return Action.parse(value, path)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message.removeprefix(f"{path}: ")) from None


def _feature(value: object, path: str, context: _Context) -> object:
    """Required for a use_ai check, refused for any other (LIM-1)."""
    if context.values["action"] is Action.USE_AI:
        return _AI_FEATURE(value, path, context)
    if value is not None:
        raise InvalidConfig(path, "only a use_ai check takes a feature")
    return None


_CHANNEL = _known("channel", lambda catalog: {c: c for c in catalog.channels()})
"""CAT-7: a channel some plan of the catalog lists."""


def _check_channel(value: object, path: str, context: _Context) -> object:
    """Required for a connect_channel check, refused for any other (CAT-7)."""
    if context.values["action"] is Action.CONNECT_CHANNEL:
        return _CHANNEL(value, path, context)
    if value is not None:
        raise InvalidConfig(path, "only a connect_channel check takes a channel")
    return None


def _new_member(value: object, path: str, context: _Context) -> str:
    member = fields.name(value, path)
    context.members[_org(context)].add(member)
    return member


def _member(value: object, path: str, context: _Context) -> str:
    org = _org(context)
    if not isinstance(value, str) or value not in context.members[org]:
        raise InvalidConfig(path, f"{value!r} is not a member of {org}")
    return value


def _org(context: _Context) -> str:
    assert context.org is not None, "only an events step has no org, and it names no member"
    return context.org


_COLLECTION = _required(
    lambda value, path, _: fields.choice(value, ("card", "invoice"), path, "collection")
)


def _negotiated_price(value: object, path: str, _: _Context) -> str | None:
    """CAT-9: a negotiated price as written ("1500.00"), checked when the step runs."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidConfig(path, f'expected a decimal string such as "1500.00", got {value!r}')
    return value


def _optional_count(value: object, path: str, _: _Context) -> int | None:
    """A whole number of at least 1, or nothing (the step's default)."""
    return None if value is None else fields.whole(value, path, minimum=1)


def _anchor(value: object, path: str, _: _Context) -> int | None:
    """SUB-16: a whole number, or nothing; its range (1..31) is the rules' to refuse."""
    return None if value is None else fields.whole(value, path, minimum=-(10**6))


_FIELDS: Mapping[type[TimelineStep], Mapping[str, Reader]] = MappingProxyType(
    {
        Subscribe: {"plan": _PLAN, "addons": _addon_quantities, "anchor": _anchor},
        ChangePlan: {"plan": _PLAN, "when": _when},
        CancelScheduledChange: {},
        ApproveChange: {},
        Cancel: {},
        Resume: {},
        SetPaymentMethod: {"method": _METHOD},
        Pay: {},
        PayNow: {},
        SetSessionLimit: {"limit": _COUNT},
        ResetSessionLimit: {},
        AddSlots: {"addon": _ADDON, "quantity": _COUNT},
        RemoveSlots: {"addon": _ADDON, "quantity": _COUNT},
        TopUp: {"credits": _COUNT, "price": _price},
        Events: {"events": _required(_events)},
        Check: {"action": _required(_action), "feature": _feature, "channel": _check_channel},
        StartSession: {"agent": _TEXT, "conversation": _TEXT},
        CreateAgent: {"agent": _TEXT},
        ArchiveAgent: {"agent": _TEXT},
        AddMember: {"member": _required(_new_member), "role": _ROLE},
        RemoveMember: {"member": _required(_member)},
        AddPhoneNumber: {"number": _TEXT},
        ReleasePhoneNumber: {"number": _TEXT},
        RequestDemo: {"plan": _PLAN},
        VoidInvoice: {"invoice": _TEXT},
        MarkUncollectible: {"invoice": _TEXT},
        MarkPaid: {"invoice": _TEXT},
        IssueCreditNote: {
            "invoice": _TEXT,
            "amount": _optional_amount,
            "lines": _credit_lines,
            "refund": _flag,
        },
        GrantAccountCredit: {"amount": _required(_amount), "reason": _optional_text},
        AssignPlan: {"plan": _PLAN, "collection": _COLLECTION, "price": _negotiated_price},
        ConnectChannel: {"channel": _CHANNEL},
        DisconnectChannel: {"channel": _CHANNEL},
        HoldCredits: {
            "hold": _TEXT,
            "credits": _COUNT,
            "feature": _AI_FEATURE,
            "agent": _optional_text,
            "timeout_seconds": _optional_count,
        },
        SettleHold: {"hold": _TEXT, "credits": _COUNT},
        ReleaseHold: {"hold": _TEXT},
        SetCreditAlert: {"threshold": _optional_count},
        SetSpendCap: {"amount": _required(_amount)},
        ResetSpendCap: {},
        SetAutoTopUp: {"threshold": _COUNT, "credits": _COUNT},
        DisableAutoTopUp: {},
    }
)


# -- INV-6, INV-7: coupons and billing details ------------------------------------------
def _coupon(value: object, path: str, context: _Context) -> str | None:
    """A coupon of the catalog (an unknown one is a mistake in the file, like a plan)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in context.catalog.coupons:
        raise InvalidConfig(path, f"unknown coupon {value!r}")
    return value


def _as_typed(value: object, path: str, _: _Context) -> object:
    """A billing detail as typed: checked when the step runs (a refusal, as in the tab)."""
    return value


_FIELDS = MappingProxyType(
    {
        **_FIELDS,
        Subscribe: {**_FIELDS[Subscribe], "coupon": _coupon},
        ApplyCoupon: {"coupon": _required(_coupon)},
        SetBillingDetails: {
            "legal_name": _required(_as_typed),
            "country": _required(_as_typed),
            "tax_id": _as_typed,
            "address": lambda value, path, context: "" if value is None else value,
        },
    }
)
