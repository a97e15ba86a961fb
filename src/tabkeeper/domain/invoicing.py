"""Invoicing: the facts of a period in, an invoice draft out (SPEC INV-1, INV-2, SUB-5;
SCENARIOS.md "Periods", "Proration", "Plan changes", "Money owed back", "Usage and
pricing", "Credits", and the invoice lines of "The result").

Every amount on an invoice is explainable line by line. Each line is rounded ONCE, from
an exact amount, ROUND_HALF_UP to the currency's exponent (`Money.times`,
`round_to_minor`, `Priced.minor`); the total is the exact sum of the rounded lines.

Line builders (INV-1):

* `plan_line`: the plan fee of a period, billed in advance.
* `addon_line`: add-on slots of a period, billed in advance with the plan.
* `usage_line`: overage of one meter for a finished period, billed in arrears; None when
  the plan has no overage price for the meter or nothing is over the included quantity.
* `proration_lines`: an immediate change within one interval (SUB-5): a credit for the
  old plan's unused part and a charge for the new plan's remaining part, each
  1 × price × fraction rounded once; a negative half goes away from zero.
  `unused_credit_line` is the credit alone, for a change to another interval (the old
  period ends now, the new one is billed in full with `plan_line`).
* `addon_proration_line`: slots added mid-period, quantity × price × fraction.
  `addon_unused_credit_line`: the credit for slots' unused part when a change to another
  interval ends the period (SUB-14). Add-on lines take the interval of the period they
  bill and use that interval's price, never another's (CAT-8).
* `credits_line`: a purchase of AI credits.

Proration builders return no line (None, or an empty tuple) in mode `none` and when
nothing of the period remains (a fraction of 0): no zero-amount proration lines. A line
for a plan that costs 0 is kept, its amount is simply 0. Proration lines (plan changes
and added slots alike) have kind `proration`, no single unit amount, and details
{"plan" or "addon": code, "unit_price", "fraction" ("n/d", exact), "proration": mode}.

`settle` adds the lines and applies the organization's account credit (SCENARIOS.md
"Money owed back"): the credit pays a positive total as far as it goes; a negative total
(an immediate downgrade) is added to the account credit, never paid out (SUB-5).
`InvoiceDraft` checks these numbers whenever it is built.

Lines carry no currency of their own: the caller builds all lines of one invoice from one
catalog's money and names its currency in `settle`.

Periods are shown by `describe_period`: "Jan 1 – Feb 1", with years on both ends when the
two UTC dates lie in different years ("Dec 15, 2026 – Jan 15, 2027"), which is always the
case for a span of a year or more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from tabkeeper.domain.catalog import AddOn, Plan
from tabkeeper.domain.catalog_limits import DESCRIPTION_MAX, fit_description
from tabkeeper.domain.errors import CurrencyMismatch, InvalidInput
from tabkeeper.domain.metering import quantity_decimal, quantity_string
from tabkeeper.domain.money import Currency, Money, decimal_string, to_fraction
from tabkeeper.domain.periods import Interval, Period, ProrationMode, remaining_fraction
from tabkeeper.domain.pricing import price as price_quantity
from tabkeeper.domain.utc import format_instant, require_utc

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""English month abbreviations (never the locale's: invoices read the same everywhere)."""

UNIT_AMOUNT_PLACES = 6
"""Most decimal places a credit's unit amount is shown with; more gives no unit amount."""


class LineKind(StrEnum):
    """What an invoice line bills (SCENARIOS.md "The result")."""

    SUBSCRIPTION = "subscription"
    PRORATION = "proration"
    ADDON = "addon"
    USAGE = "usage"
    CREDITS = "credits"
    DISCOUNT = "discount"  # INV-6: domain/discounts.py
    TAX = "tax"  # INV-7: domain/taxes.py


@dataclass(frozen=True, slots=True)
class LineDraft:
    """One invoice line (INV-2): what, how many, at what unit amount, for which period.

    `unit_amount` is in major units (Decimal("49.00")), or None where no single unit price
    applies (prorations, tiered or package usage). `amount_minor` is the line's amount,
    already rounded once. `period_start`/`period_end` are both set or both None.
    `details` is a JSON-ready breakdown (texts, ints, bools, None, lists, dicts): a plain
    dict, copied on build, not to be changed afterwards.
    """

    kind: LineKind
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    amount_minor: int
    period_start: datetime | None
    period_end: datetime | None
    details: Mapping[str, object]

    def __post_init__(self) -> None:
        if self.kind not in tuple(LineKind):
            raise InvalidInput(f"line kind: unknown kind {self.kind!r}")
        object.__setattr__(self, "kind", LineKind(self.kind))
        _text(self.description, "line description")
        if len(self.description) > DESCRIPTION_MAX:  # what invoice_lines.description holds
            raise InvalidInput(
                f"line description: at most {DESCRIPTION_MAX} characters, "
                f"got {len(self.description)}"
            )
        _finite_decimal(self.quantity, "line quantity")
        if self.unit_amount is not None:
            _finite_decimal(self.unit_amount, "line unit_amount")
        _whole(self.amount_minor, "line amount_minor")
        if (self.period_start is None) != (self.period_end is None):
            raise InvalidInput("line period: give both period_start and period_end, or neither")
        if self.period_start is not None and self.period_end is not None:
            start = require_utc(self.period_start, "line period_start")
            end = require_utc(self.period_end, "line period_end")
            if end <= start:
                raise InvalidInput(
                    f"line period: end {format_instant(end)} must be after start "
                    f"{format_instant(start)}"
                )
            object.__setattr__(self, "period_start", start)
            object.__setattr__(self, "period_end", end)
        if not isinstance(self.details, Mapping):
            raise InvalidInput(f"line details: expected a mapping, got {self.details!r}")
        object.__setattr__(self, "details", dict(self.details))


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """An invoice before it is numbered and finalized (INV-2). Build it with `settle`.

    `total_minor` is the exact sum of the lines (negative for money owed back);
    `credit_applied_minor` is the account credit used to pay it; `amount_due_minor` what
    is left to pay (never below zero); `account_credit_after_minor` the organization's
    account credit after this invoice. The numbers are checked on every build.
    """

    currency: Currency
    lines: tuple[LineDraft, ...]
    total_minor: int
    credit_applied_minor: int
    amount_due_minor: int
    account_credit_after_minor: int

    def __post_init__(self) -> None:
        _check(self.currency, Currency, "invoice currency")
        _check_lines(self.lines)
        found = (
            self.total_minor,
            self.credit_applied_minor,
            self.amount_due_minor,
            self.account_credit_after_minor,
        )
        for number in found:
            _whole(number, "invoice amount")
        total, applied, _, after = found
        credit_before = after + applied - max(0, -total)
        expected = (
            sum(line.amount_minor for line in self.lines),
            *_apply_credit(total, credit_before),
        )
        if credit_before < 0 or found != expected:
            raise InvalidInput(
                "invoice totals do not add up: expected (total, credit applied, amount due, "
                f"credit after) {expected}, got {found}"
            )


def settle(
    currency: Currency, lines: Sequence[LineDraft], account_credit_minor: int
) -> InvoiceDraft:
    """The invoice of `lines` in `currency`, paid first from the account credit.

    total = the exact sum of the lines; credit applied = min(credit, max(total, 0));
    amount due = max(total, 0) − credit applied; credit after = credit − credit applied
    + max(0, −total): a negative total is credited to the account, never refunded (SUB-5).
    """
    _whole(account_credit_minor, "account credit")
    if account_credit_minor < 0:
        raise InvalidInput(f"account credit must not be negative, got {account_credit_minor}")
    if isinstance(lines, str) or not isinstance(lines, Sequence):
        raise InvalidInput(f"invoice lines: expected a sequence of lines, got {lines!r}")
    drafted = _check_lines(tuple(lines))
    total = sum(line.amount_minor for line in drafted)
    return InvoiceDraft(currency, drafted, total, *_apply_credit(total, account_credit_minor))


def describe_period(start: datetime, end: datetime) -> str:
    """The UTC dates of a period for a person: "Jan 1 – Feb 1"; with years when the
    dates lie in different years: "Dec 15, 2026 – Jan 15, 2027"."""
    start = require_utc(start, "period start")
    end = require_utc(end, "period end")
    if end <= start:
        raise InvalidInput(
            f"period: end {format_instant(end)} must be after start {format_instant(start)}"
        )
    first, last = start.date(), end.date()
    if first.year == last.year:
        return f"{MONTHS[first.month - 1]} {first.day} – {MONTHS[last.month - 1]} {last.day}"
    return (
        f"{MONTHS[first.month - 1]} {first.day}, {first.year} – "
        f"{MONTHS[last.month - 1]} {last.day}, {last.year}"
    )


def plan_line(plan: Plan, period: Period) -> LineDraft:
    """INV-1: the plan fee for `period`, billed in advance: "Starter (Jan 1 – Feb 1)"."""
    _check(plan, Plan, "plan")
    _check(period, Period, "period")
    return _line(
        LineKind.SUBSCRIPTION, plan.name, 1, plan.price.as_decimal(), plan.price.minor,
        period.start, period.end, {"plan": plan.code},
    )  # fmt: skip


def addon_line(addon: AddOn, quantity: int, period: Period, interval: Interval) -> LineDraft:
    """INV-1, CAT-8: `quantity` slots of `addon` for `period`, a period of `interval` (the
    plan's), billed in advance with the plan at that interval's price: "Additional chatbot
    slot × 2 (Jan 1 – Feb 1)" (no "× 1" for one slot)."""
    _check(addon, AddOn, "add-on")
    _at_least_one(quantity, "slots")
    _check(period, Period, "period")
    price = addon.price_for(interval)
    return _line(
        LineKind.ADDON, _slots_name(addon, quantity), quantity, price.as_decimal(),
        price.minor * quantity, period.start, period.end, {"addon": addon.code},
    )  # fmt: skip


def usage_line(
    meter_code: str,
    plan: Plan,
    used: Fraction | Decimal,
    period: Period,
    meter_label: str | None = None,
) -> LineDraft | None:
    """INV-1: overage of `meter_code` in `period`, billed in arrears (CAT-4, USE-5).

    The billable quantity is max(0, used − included); None when it is 0 or when the plan
    has no overage price for the meter. Description: "Minutes: 20 over 500 included
    (Jan 1 – Feb 1)" ("Minutes: 20 (…)" when nothing is included); the label is
    `meter_label`, or the meter code with its first letter capitalized. Details are the
    pricing breakdown (`Priced.details`).

    Quantities are decimals: a used quantity with no finite decimal expansion (per-second
    minutes, 30728/60) is first rounded half up to 6 places (`quantity_decimal`), so the
    quantity the line shows is the quantity it bills; the amount is then rounded once."""
    _text(meter_code, "meter code")
    _check(plan, Plan, "plan")
    _check(period, Period, "period")
    if meter_label is not None:
        _text(meter_label, "meter label")
    if to_fraction(used) < 0:
        raise InvalidInput(f"used quantity: must not be negative, got {used}")
    exact = to_fraction(quantity_decimal(used))  # the quantity shown is the one billed
    config = plan.overage.get(meter_code)
    included = to_fraction(plan.includes.get(meter_code, Decimal(0)))
    billable = max(exact - included, Fraction(0))
    if config is None or billable == 0:
        return None
    priced = price_quantity(config, exact, free_units=included)
    label = meter_label if meter_label is not None else meter_code[:1].upper() + meter_code[1:]
    over = f" over {quantity_string(included)} included" if included else ""
    return _line(
        LineKind.USAGE, f"{label}: {quantity_string(billable)}{over}", quantity_decimal(billable),
        priced.unit_amount, priced.minor(plan.price.currency), period.start, period.end,
        dict(priced.details),
    )  # fmt: skip


def unused_credit_line(
    old: Plan, period: Period, at: datetime, mode: ProrationMode
) -> LineDraft | None:
    """SUB-5: the credit (a negative amount) for the unused part of `old` from `at` to the
    period's end: "Unused time on Basic (Apr 16 – May 1)". None in mode `none` or when
    nothing remains."""
    _check(old, Plan, "old plan")
    name, details = f"Unused time on {old.name}", {"plan": old.code}
    return _prorated(name, details, old.price, 1, period, at, mode, credit=True)


def proration_lines(
    old: Plan, new: Plan, period: Period, at: datetime, mode: ProrationMode
) -> tuple[LineDraft, ...]:
    """SUB-5: an immediate change from `old` to `new` at `at` within one interval: the
    credit for the old plan's unused part, then the charge for the new plan's remaining
    part, each rounded once. Empty in mode `none` or when nothing remains."""
    _check(old, Plan, "old plan")
    _check(new, Plan, "new plan")
    if old.interval != new.interval:
        raise InvalidInput(
            f"proration_lines is for a change within one interval, not {old.interval} to "
            f"{new.interval}: use unused_credit_line and plan_line"
        )
    if old.price.currency != new.price.currency:
        raise CurrencyMismatch(
            f"cannot change from a plan in {old.price.currency} to one in {new.price.currency}"
        )
    credit = unused_credit_line(old, period, at, mode)
    charge = _prorated(
        f"Remaining time on {new.name}", {"plan": new.code}, new.price, 1, period, at, mode
    )
    return tuple(line for line in (credit, charge) if line is not None)


def addon_proration_line(
    addon: AddOn,
    quantity: int,
    period: Period,
    interval: Interval,
    at: datetime,
    mode: ProrationMode,
) -> LineDraft | None:
    """ADD-2, CAT-8: `quantity` slots added at `at` to a period of `interval` charge
    quantity × that interval's price × remaining fraction, rounded once: "Additional
    chatbot slot × 2 (Jan 11 – Feb 1, prorated)". None in mode `none` or when nothing
    remains."""
    _check(addon, AddOn, "add-on")
    _at_least_one(quantity, "slots")
    name, details = _slots_name(addon, quantity), {"addon": addon.code}
    price = addon.price_for(interval)
    return _prorated(name, details, price, quantity, period, at, mode, suffix=", prorated")


def addon_unused_credit_line(
    addon: AddOn,
    quantity: int,
    period: Period,
    interval: Interval,
    at: datetime,
    mode: ProrationMode,
) -> LineDraft | None:
    """SUB-14: the credit (a negative amount) for the unused part of `quantity` slots of
    `addon`, paid at `interval`'s price for `period`, from `at` to the period's end:
    "Unused time on Additional chatbot slot × 2 (Feb 15 – Mar 1)". None in mode `none` or
    when nothing remains."""
    _check(addon, AddOn, "add-on")
    _at_least_one(quantity, "slots")
    name = f"Unused time on {_slots_name(addon, quantity)}"
    price = addon.price_for(interval)
    return _prorated(name, {"addon": addon.code}, price, quantity, period, at, mode, credit=True)


def credits_line(credits: int, price: Money) -> LineDraft:
    """CRD-1: a purchase of `credits` AI credits for `price` in all: "1,000 AI credits".

    The unit amount is price / credits when that is an exact decimal of at most 6 places
    (shown with at least the currency's decimals), else None."""
    _at_least_one(credits, "credits")
    _check(price, Money, "credit price")
    if price.minor < 0:
        raise InvalidInput(f"credit price: must not be negative, got {price}")
    return LineDraft(
        kind=LineKind.CREDITS,
        description=f"{credits:,} AI credit{'s' if credits != 1 else ''}",
        quantity=Decimal(credits),
        unit_amount=_credit_unit_amount(price, credits),
        amount_minor=price.minor,
        period_start=None,
        period_end=None,
        details={"credits": credits},
    )


# -- helpers -------------------------------------------------------------------------------


def _apply_credit(total: int, credit: int) -> tuple[int, int, int]:
    """(credit applied, amount due, credit after) for `total` and an account `credit`."""
    applied = min(credit, max(total, 0))
    return applied, max(total, 0) - applied, credit - applied + max(0, -total)


def _prorated(
    name: str,
    details: Mapping[str, object],
    unit_price: Money,
    quantity: int,
    period: Period,
    at: datetime,
    mode: ProrationMode,
    *,
    credit: bool = False,
    suffix: str = "",
) -> LineDraft | None:
    """quantity × unit_price × the remaining fraction of `period` from `at` on (negated for
    a credit), rounded once by Money.times (ROUND_HALF_UP, halves away from zero)."""
    _check(period, Period, "period")
    fraction = remaining_fraction(period, at, mode)
    if fraction == 0:
        return None
    at = require_utc(at, "change time")
    signed = -unit_price if credit else unit_price
    details = {
        **details,
        "unit_price": unit_price.major_str(),
        "fraction": f"{fraction.numerator}/{fraction.denominator}",
        "proration": str(mode),
    }
    amount = signed.times(quantity * fraction).minor
    return _line(LineKind.PRORATION, name, quantity, None, amount, at, period.end, details, suffix)


def _line(
    kind: LineKind,
    name: str,
    quantity: int | Decimal,
    unit_amount: Decimal | None,
    amount_minor: int,
    start: datetime,
    end: datetime,
    details: dict[str, object],
    suffix: str = "",
) -> LineDraft:
    """A line for [start, end): its description is `name` with the period shown after."""
    description = fit_description(name, f" ({describe_period(start, end)}{suffix})")
    return LineDraft(
        kind, description, Decimal(quantity), unit_amount, amount_minor, start, end, details
    )


def _credit_unit_amount(price: Money, credits: int) -> Decimal | None:
    """price / credits as a Decimal with at least the currency's decimals, when that is
    exact within UNIT_AMOUNT_PLACES places; else None."""
    unit = price.as_fraction() / credits
    try:
        shown = Decimal(decimal_string(unit))
    except InvalidInput:
        return None
    places = -int(shown.as_tuple().exponent)
    if places > UNIT_AMOUNT_PLACES:
        return None
    return shown.quantize(Decimal(1).scaleb(-max(places, price.currency.exponent)))


def _slots_name(addon: AddOn, quantity: int) -> str:
    return addon.name if quantity == 1 else f"{addon.name} × {quantity}"


def _check(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise InvalidInput(f"{what}: expected {kind.__name__}, got {value!r}")


def _check_lines(lines: tuple[LineDraft, ...]) -> tuple[LineDraft, ...]:
    if not isinstance(lines, tuple) or not lines:
        raise InvalidInput("an invoice needs at least one line")
    for line in lines:
        _check(line, LineDraft, "invoice line")
    return lines


def _text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what}: expected a non-empty text, got {value!r}")


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what}: expected a whole number, got {value!r}")
    return value


def _at_least_one(value: object, what: str) -> None:
    if _whole(value, what) < 1:
        raise InvalidInput(f"{what}: must be at least 1, got {value}")


def _finite_decimal(value: object, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInput(f"{what}: expected a finite Decimal, got {value!r}")
