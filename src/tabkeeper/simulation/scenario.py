"""A scenario file (SCENARIOS.md "The file"), read and validated whole.

`build_scenario(data)` takes the document already loaded from YAML or JSON (no YAML here,
and no I/O) and returns a frozen `Scenario`: the billing terms (`settings`,
domain/terms.py), the catalog (domain/catalog.py), the organizations and the timeline of
steps (steps.py, read by timeline.py), up to `until` (required). An invalid
file gives ONE InvalidConfig naming its path in the file (`timeline[3].plan: unknown plan
'gold'`); catalog paths start with "catalog.". Unknown keys are errors everywhere: a typo
must not pass. The error reported is the first in document order (settings, catalog,
organizations, timeline, until), except that organizations' `parent`s are checked once all
organizations are read, so that a sub-account may name a parent written after it.

Checked here is what makes a file meaningless: references to what does not exist
(organizations, plans, add-ons, AI features, members), times that are not ISO 8601 with a
timezone, steps out of time order, `until` before the last step (or, with no steps, before
the first organization exists). Not checked here is what the rules refuse at run time,
because refusals are what a simulation exercises: a step before its organization exists,
a plan-change timing the terms do not allow (SUB-4), an add-on on a plan it does not fit,
a sales-led or private plan, a role without the right (ACL-1), and each event's own fields
(USE-2: bad events are refused one by one when their step runs).

Organizations (SUB-2, ACL-1): `created_at` and `payment_method` are required; `members`
defaults to one owner named "owner" and needs at least one owner; `parent` makes a
sub-account and must name another organization that is not itself a sub-account (so
there are no cycles).

The step classes and the closed sets of names (payment methods, roles) live in
steps.py and reading the timeline in timeline.py, to keep modules small;
this module re-exports them, so callers import everything from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from tabkeeper.domain import fields
from tabkeeper.domain.billing_details import BillingDetails
from tabkeeper.domain.catalog import Catalog, build_catalog
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.terms import BillingTerms, build_terms, check_terms_with_catalog
from tabkeeper.domain.utc import format_instant
from tabkeeper.simulation.steps import (
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
    SetPaymentMethod,
    SetSessionLimit,
    StartSession,
    Step,
    Subscribe,
    TimelineStep,
    TopUp,
)
from tabkeeper.simulation.timeline import build_timeline, first_owner, read_instant

__all__ = [
    "STEPS",
    "AddMember",
    "AddPhoneNumber",
    "AddSlots",
    "ApproveChange",
    "ArchiveAgent",
    "AssignPlan",
    "Cancel",
    "CancelScheduledChange",
    "ChangePlan",
    "Check",
    "CreateAgent",
    "Events",
    "OrganizationSpec",
    "OrganizationStep",
    "Pay",
    "PayNow",
    "PaymentMethodChoice",
    "ReleasePhoneNumber",
    "RemoveMember",
    "RemoveSlots",
    "RequestDemo",
    "ResetSessionLimit",
    "Resume",
    "Role",
    "Scenario",
    "SetPaymentMethod",
    "SetSessionLimit",
    "StartSession",
    "Step",
    "Subscribe",
    "TimelineStep",
    "TopUp",
    "build_scenario",
]

_SECTIONS = ("settings", "catalog", "organizations", "timeline", "until")


@dataclass(frozen=True, slots=True)
class OrganizationSpec:
    """An organization as a scenario declares it; `members` in file order."""

    code: str
    created_at: datetime
    payment_method: PaymentMethodChoice
    members: Mapping[str, Role] = field(
        default_factory=lambda: MappingProxyType({"owner": Role.OWNER})
    )
    parent: str | None = None
    billing_details: BillingDetails | None = None  # INV-7

    @property
    def first_owner(self) -> str:
        """The member steps act as when they leave `as` out."""
        return first_owner(self.members)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole scenario file, validated; organizations in file order."""

    terms: BillingTerms
    catalog: Catalog
    organizations: Mapping[str, OrganizationSpec]
    timeline: tuple[Step, ...]
    until: datetime

    def start(self) -> datetime:
        """Where the simulated clock starts: the earliest organization creation or step."""
        moments = [spec.created_at for spec in self.organizations.values()]
        moments.extend(step.at for step in self.timeline[:1])
        return min(moments)


def build_scenario(data: object) -> Scenario:
    """The scenario described by `data` (a loaded YAML or JSON document), validated whole;
    the first mistake raises InvalidConfig naming its path in the file."""
    if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
        raise InvalidConfig("", f"a scenario must be a mapping of {', '.join(_SECTIONS)}")
    fields.only_keys(data, _SECTIONS, "")
    terms = build_terms(data.get("settings"), "settings")
    catalog = build_catalog(fields.required(data, "catalog", ""), terms.currency, "catalog")
    check_terms_with_catalog(terms, catalog, "settings")
    organizations = _organizations(fields.required(data, "organizations", ""))
    members = {code: spec.members for code, spec in organizations.items()}
    timeline = build_timeline(data.get("timeline"), terms, catalog, members)
    until = read_instant(fields.required(data, "until", ""), "until")
    scenario = Scenario(terms, catalog, organizations, timeline, until)
    if timeline and until < timeline[-1].at:
        raise InvalidConfig(
            "until",
            f"{format_instant(until)} is before the last step's {format_instant(timeline[-1].at)}",
        )
    if until < scenario.start():
        raise InvalidConfig(
            "until",
            f"{format_instant(until)} is before the first organization's creation "
            f"{format_instant(scenario.start())}",
        )
    return scenario


# Organizations


def _organizations(data: object) -> Mapping[str, OrganizationSpec]:
    path = "organizations"
    doc = fields.mapping(data, path)
    if not doc:
        raise InvalidConfig(path, "needs at least one organization")
    specs = {}
    for code, raw in doc.items():
        here = fields.at(path, code)
        fields.name(code, here)
        specs[code] = _organization(code, raw, here)
    for code, spec in specs.items():
        parent = spec.parent
        here = fields.at(fields.at(path, code), "parent")
        if parent == code:
            raise InvalidConfig(here, "an organization cannot be its own parent")
        if parent is not None and parent not in specs:
            raise InvalidConfig(here, f"unknown organization {parent!r}")
        if parent is not None and specs[parent].parent is not None:
            raise InvalidConfig(
                here,
                f"{parent!r} is itself a sub-account of {specs[parent].parent!r}; "
                "a sub-account cannot have sub-accounts",
            )
    return MappingProxyType(specs)


def _organization(code: str, raw: object, path: str) -> OrganizationSpec:
    doc = fields.mapping(raw, path)
    fields.only_keys(
        doc, ("created_at", "payment_method", "members", "parent", "billing_details"), path
    )
    created_at = read_instant(
        fields.required(doc, "created_at", path), fields.at(path, "created_at")
    )
    method = fields.choice(
        fields.required(doc, "payment_method", path),
        PaymentMethodChoice,
        fields.at(path, "payment_method"),
        "payment method",
    )
    members = _members(doc.get("members", {"owner": Role.OWNER.value}), fields.at(path, "members"))
    parent = doc.get("parent")
    return OrganizationSpec(
        code=code,
        created_at=created_at,
        payment_method=PaymentMethodChoice(method),
        members=members,
        parent=None if parent is None else fields.name(parent, fields.at(path, "parent")),
        billing_details=_billing_details(doc.get("billing_details"), path),
    )


def _billing_details(raw: object, path: str) -> BillingDetails | None:
    """INV-7: `billing_details: {legal_name, country, tax_id, address}` of an organization."""
    if raw is None:
        return None
    here = fields.at(path, "billing_details")
    doc = fields.mapping(raw, here)
    fields.only_keys(doc, ("legal_name", "country", "tax_id", "address"), here)
    try:
        return BillingDetails.read(
            doc.get("legal_name"), doc.get("country"), doc.get("tax_id"), doc.get("address")
        )
    except InvalidInput as error:
        raise InvalidConfig(here, error.message) from None


def _members(raw: object, path: str) -> Mapping[str, Role]:
    doc = fields.mapping(raw, path)
    members = {}
    for member, role in doc.items():
        here = fields.at(path, member)
        fields.name(member, here)
        members[member] = Role(fields.choice(role, Role, here, "role"))
    if Role.OWNER not in members.values():
        raise InvalidConfig(path, "needs at least one owner")
    return MappingProxyType(members)
