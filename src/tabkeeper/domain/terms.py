"""The platform's billing terms: the `settings` section of a scenario (SCENARIOS.md).

Implements the configurable parts of TRI-1 (trial length and sessions, default 14 days
and 50 sessions; `trial: null` means new organizations start with nothing), SUB-4 (which
plan-change timings members may choose, upgrades and downgrades apart, and approval of
downgrades), SUB-8 (grace period, default 7 days, and the payment retry schedule) and the
proration mode of SCENARIOS.md "Proration", and ACL-2's `billing_tab` (default true:
false means the platform handles billing elsewhere and the billing tab is not shown).

Every value checks itself when it is made (`__post_init__`), so terms built in code are as
valid as terms read from a file. Their errors name the field ("days: must be at least 1,
got 0"); `build_terms` reads a document and puts the document's path in front
("settings.trial.days: must be at least 1, got 0"). Every setting is optional.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from tabkeeper.domain import fields
from tabkeeper.domain.anchors import Billing
from tabkeeper.domain.catalog import Catalog
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency
from tabkeeper.domain.periods import ProrationMode
from tabkeeper.domain.taxes import TaxTerms, build_taxes

T = TypeVar("T")

_INVOICE_PREFIX = re.compile(r"[A-Z0-9-]{1,12}")


class Timing(StrEnum):
    """When a plan change takes effect (SUB-4): at once, at the period's end, on a date."""

    IMMEDIATELY = "immediately"
    PERIOD_END = "period_end"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class TrialTerms:
    """The free trial new organizations start on (TRI-1): it ends after `days` or after
    `sessions` billable sessions, whichever comes first (TRI-2), on the catalog plan `plan`."""

    days: int = 14
    sessions: int = 50
    plan: str = "trial"

    def __post_init__(self) -> None:
        fields.whole(self.days, "days", minimum=1)
        fields.whole(self.sessions, "sessions", minimum=1)
        fields.name(self.plan, "plan")


def _timings(value: object, path: str) -> None:
    if not isinstance(value, tuple):
        raise InvalidConfig(path, f"expected a tuple of timings, got {value!r}")
    if not value:
        raise InvalidConfig(path, "needs at least one timing")
    for i, timing in enumerate(value):
        if not isinstance(timing, Timing):
            raise InvalidConfig(fields.at(path, i), f"expected a Timing, got {timing!r}")
        if timing in value[:i]:
            raise InvalidConfig(fields.at(path, i), f"{timing.value!r} is listed twice")


@dataclass(frozen=True, slots=True)
class PlanChangeTerms:
    """Which timings members may choose for upgrades and downgrades (SUB-4). The first
    timing of each list is the one used when a change leaves `when` out. With
    `downgrade_approval`, a downgrade waits as a request until an operator approves it."""

    upgrade: tuple[Timing, ...] = (Timing.IMMEDIATELY, Timing.PERIOD_END, Timing.DATE)
    downgrade: tuple[Timing, ...] = (Timing.PERIOD_END, Timing.IMMEDIATELY, Timing.DATE)
    downgrade_approval: bool = False

    def __post_init__(self) -> None:
        _timings(self.upgrade, "upgrade")
        _timings(self.downgrade, "downgrade")
        fields.flag(self.downgrade_approval, "downgrade_approval")

    def timings(self, is_upgrade: bool) -> tuple[Timing, ...]:
        """The timings allowed for an upgrade (True) or a downgrade (False), default first."""
        return self.upgrade if is_upgrade else self.downgrade


@dataclass(frozen=True, slots=True)
class BillingTerms:
    """A platform's billing terms: the `settings` of SCENARIOS.md, with its defaults."""

    currency: Currency = field(default_factory=lambda: Currency.of("USD"))
    proration: ProrationMode = ProrationMode.SECOND
    trial: TrialTerms | None = field(default_factory=TrialTerms)
    grace_days: int = 7
    payment_retry_days: tuple[int, ...] = (1, 3, 5)
    suspension_days: int = 30
    """SUB-11: days a suspended subscription waits for payment before it ends."""
    invoice_prefix: str = "INV"
    plan_changes: PlanChangeTerms = field(default_factory=PlanChangeTerms)
    billing_tab: bool = True
    """ACL-2: members with billing rights see the billing tab; False hides it for all."""
    billing: Billing = Billing.ANNIVERSARY
    """SUB-16: periods anchored on each start, or calendar billing on the 1st."""
    taxes: TaxTerms = field(default_factory=TaxTerms)
    """INV-7: the platform's tax rates per country and reverse charge (domain/taxes.py)."""

    def __post_init__(self) -> None:
        if not isinstance(self.currency, Currency):
            raise InvalidConfig("currency", f"expected a Currency, got {self.currency!r}")
        if not isinstance(self.proration, ProrationMode):
            raise InvalidConfig("proration", f"expected a ProrationMode, got {self.proration!r}")
        if self.trial is not None and not isinstance(self.trial, TrialTerms):
            raise InvalidConfig("trial", f"expected TrialTerms or None, got {self.trial!r}")
        fields.whole(self.grace_days, "grace_days")
        fields.whole(self.suspension_days, "suspension_days")
        _retry_days(self.payment_retry_days, "payment_retry_days")
        if not isinstance(self.invoice_prefix, str) or not _INVOICE_PREFIX.fullmatch(
            self.invoice_prefix
        ):
            raise InvalidConfig(
                "invoice_prefix",
                f"{self.invoice_prefix!r} is not a valid prefix; "
                "use 1 to 12 characters of A-Z, 0-9 and '-'",
            )
        if not isinstance(self.plan_changes, PlanChangeTerms):
            raise InvalidConfig(
                "plan_changes", f"expected PlanChangeTerms, got {self.plan_changes!r}"
            )
        fields.flag(self.billing_tab, "billing_tab")
        if not isinstance(self.billing, Billing):
            raise InvalidConfig(
                "billing", f"expected anniversary or calendar, got {self.billing!r}"
            )
        if not isinstance(self.taxes, TaxTerms):
            raise InvalidConfig("taxes", f"expected TaxTerms, got {self.taxes!r}")

    def default_timing(self, is_upgrade: bool) -> Timing:
        """The timing of a change that leaves `when` out: the first one allowed (SUB-4)."""
        return self.plan_changes.timings(is_upgrade)[0]

    def allows(self, is_upgrade: bool, timing: Timing) -> bool:
        """Whether members may choose `timing` for an upgrade or a downgrade (SUB-4)."""
        return timing in self.plan_changes.timings(is_upgrade)


def _retry_days(value: object, path: str) -> None:
    if not isinstance(value, tuple):
        raise InvalidConfig(path, f"expected a tuple of whole numbers, got {value!r}")
    for i, day in enumerate(value):
        fields.whole(day, fields.at(path, i), minimum=1)
        if i and day <= value[i - 1]:
            raise InvalidConfig(
                fields.at(path, i),
                f"days must be strictly increasing; {day} is not after {value[i - 1]}",
            )


_SETTINGS = (
    "currency",
    "proration",
    "trial",
    "grace_days",
    "payment_retry_days",
    "suspension_days",
    "invoice_prefix",
    "plan_changes",
    "billing_tab",
    "billing",  # SUB-16
    "taxes",  # INV-7
)


def build_terms(data: object, path: str = "settings") -> BillingTerms:
    """The terms described by `data` (None: every default); InvalidConfig names the path."""
    if data is None:
        return BillingTerms()
    doc = fields.mapping(data, path)
    fields.only_keys(doc, _SETTINGS, path)
    currency = _currency(doc.get("currency", "USD"), fields.at(path, "currency"))
    proration = ProrationMode.parse(
        doc.get("proration", ProrationMode.SECOND.value), fields.at(path, "proration")
    )
    trial = _trial(doc.get("trial", {}), fields.at(path, "trial"))
    grace_days = fields.whole(doc.get("grace_days", 7), fields.at(path, "grace_days"))
    retry_path = fields.at(path, "payment_retry_days")
    retry_days = tuple(
        fields.whole(day, fields.at(retry_path, i), minimum=1)
        for i, day in enumerate(_list(doc.get("payment_retry_days", [1, 3, 5]), retry_path))
    )
    suspension_days = fields.whole(
        doc.get("suspension_days", 30), fields.at(path, "suspension_days")
    )
    prefix = doc.get("invoice_prefix", "INV")
    if not isinstance(prefix, str):
        raise InvalidConfig(fields.at(path, "invoice_prefix"), f"expected a text, got {prefix!r}")
    plan_changes = _plan_changes(doc.get("plan_changes", {}), fields.at(path, "plan_changes"))
    billing_tab = fields.flag(doc.get("billing_tab", True), fields.at(path, "billing_tab"))
    billing = Billing.parse(doc.get("billing", "anniversary"), fields.at(path, "billing"))
    taxes = build_taxes(doc.get("taxes"), fields.at(path, "taxes"))  # INV-7
    return _made(
        path,
        lambda: BillingTerms(
            currency=currency,
            proration=proration,
            trial=trial,
            grace_days=grace_days,
            payment_retry_days=retry_days,
            suspension_days=suspension_days,
            invoice_prefix=prefix,
            plan_changes=plan_changes,
            billing_tab=billing_tab,
            billing=billing,
            taxes=taxes,
        ),
    )


def check_terms_with_catalog(terms: BillingTerms, catalog: Catalog, path: str = "settings") -> None:
    """Refuse terms that name what the catalog lacks: the trial plan (TRI-1)."""
    if terms.trial is not None and terms.trial.plan not in catalog.plans:
        raise InvalidConfig(
            fields.at(fields.at(path, "trial"), "plan"), f"unknown plan {terms.trial.plan!r}"
        )


def _made(path: str, make: Callable[[], T]) -> T:
    """`make()`, with the path of the document put in front of the path of its errors."""
    try:
        return make()
    except InvalidConfig as error:
        raise InvalidConfig(fields.at(path, error.path), error.problem) from None


def _list(value: object, path: str) -> list[object] | tuple[object, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidConfig(path, f"expected a list, got {value!r}")
    return value


def _currency(value: object, path: str) -> Currency:
    if not isinstance(value, str):
        raise InvalidConfig(path, f"expected an ISO 4217 code such as USD, got {value!r}")
    try:
        return Currency.of(value)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message) from None


def _trial(value: object, path: str) -> TrialTerms | None:
    if value is None:
        return None
    doc = fields.mapping(value, path)
    fields.only_keys(doc, ("days", "sessions", "plan"), path)
    days = fields.whole(doc.get("days", 14), fields.at(path, "days"), minimum=1)
    sessions = fields.whole(doc.get("sessions", 50), fields.at(path, "sessions"), minimum=1)
    plan = fields.name(doc.get("plan", "trial"), fields.at(path, "plan"))
    return _made(path, lambda: TrialTerms(days=days, sessions=sessions, plan=plan))


def _plan_changes(value: object, path: str) -> PlanChangeTerms:
    doc = fields.mapping(value, path)
    fields.only_keys(doc, ("upgrade", "downgrade", "downgrade_approval"), path)
    defaults = PlanChangeTerms()
    upgrade = _timing_list(doc.get("upgrade", defaults.upgrade), fields.at(path, "upgrade"))
    downgrade = _timing_list(doc.get("downgrade", defaults.downgrade), fields.at(path, "downgrade"))
    approval = fields.flag(
        doc.get("downgrade_approval", False), fields.at(path, "downgrade_approval")
    )
    return _made(
        path,
        lambda: PlanChangeTerms(upgrade=upgrade, downgrade=downgrade, downgrade_approval=approval),
    )


def _timing_list(value: object, path: str) -> tuple[Timing, ...]:
    return tuple(
        Timing(fields.choice(item, Timing, fields.at(path, i), "timing"))
        for i, item in enumerate(_list(value, path))
    )
