"""Invoicing: invoice lines and drafts from the facts of a period (INV-1, INV-2, SUB-5)."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.catalog import AddOn, Plan, Resource
from tabkeeper.domain.errors import CurrencyMismatch, InvalidInput
from tabkeeper.domain.invoicing import (
    InvoiceDraft,
    LineDraft,
    LineKind,
    addon_line,
    addon_proration_line,
    addon_unused_credit_line,
    credits_line,
    describe_period,
    plan_line,
    proration_lines,
    settle,
    unused_credit_line,
    usage_line,
)
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.periods import Interval, Period, ProrationMode, boundary
from tabkeeper.domain.pricing import Graduated, PerUnit, PricingConfig, Tier

USD = Currency.of("USD")
JPY = Currency.of("JPY")
KWD = Currency.of("KWD")
D = Decimal
DAY = ProrationMode.DAY
SECOND = ProrationMode.SECOND
NONE = ProrationMode.NONE


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


JAN = Period(utc(2026, 1, 1), utc(2026, 2, 1), 0)
APR = Period(utc(2026, 4, 1), utc(2026, 5, 1), 3)


def plan(
    code: str,
    name: str,
    price: str,
    *,
    currency: Currency = USD,
    interval: Interval = Interval.MONTH,
    includes: dict[str, Decimal] | None = None,
    overage: dict[str, PricingConfig] | None = None,
) -> Plan:
    return Plan(
        code=code,
        name=name,
        price=Money.parse(price, currency),
        interval=interval,
        includes=MappingProxyType(includes or {}),
        overage=MappingProxyType(overage or {}),
        limits=MappingProxyType({}),
        features=frozenset(),
    )


BASIC = plan("basic", "Basic", "30.00")
PRO = plan("pro", "Pro", "60.00")
STARTER = plan(
    "starter",
    "Starter",
    "49.00",
    includes={"minutes": D(500)},
    overage={"minutes": PerUnit(D("0.10"))},
)
SLOT = AddOn(
    "extra_agent",
    "Additional chatbot slot",
    MappingProxyType({Interval.MONTH: Money.parse("10.00", USD)}),
    MappingProxyType({Resource.AGENTS: 1}),
)
M = Interval.MONTH


def line(amount: int, kind: LineKind = LineKind.SUBSCRIPTION) -> LineDraft:
    return LineDraft(kind, "a line", D(1), None, amount, None, None, {})


# -- describe_period -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "shown"),
    [
        (utc(2026, 1, 1), utc(2026, 2, 1), "Jan 1 – Feb 1"),
        (utc(2026, 4, 16, 12), utc(2026, 5, 1), "Apr 16 – May 1"),
        (utc(2026, 1, 31, 10, 30), utc(2026, 2, 28, 10, 30), "Jan 31 – Feb 28"),
        (utc(2026, 12, 15), utc(2027, 1, 15), "Dec 15, 2026 – Jan 15, 2027"),
        (utc(2026, 1, 1), utc(2027, 1, 1), "Jan 1, 2026 – Jan 1, 2027"),
        (utc(2026, 3, 1), utc(2028, 2, 29), "Mar 1, 2026 – Feb 29, 2028"),
        (utc(2026, 11, 30, 23, 59), utc(2026, 12, 1), "Nov 30 – Dec 1"),
        # UTC dates: 19:00 on Dec 31 in New York is Jan 1 in UTC
        (
            datetime(2025, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 1, 31, 19, tzinfo=timezone(timedelta(hours=-5))),
            "Jan 1 – Feb 1",
        ),
    ],
)
def test_describe_period(start: datetime, end: datetime, shown: str) -> None:
    """INV-2: line items show their period, as UTC dates."""
    assert describe_period(start, end) == shown


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (utc(2026, 2, 1), utc(2026, 1, 1), "must be after"),
        (utc(2026, 2, 1), utc(2026, 2, 1), "must be after"),
        (datetime(2026, 1, 1), utc(2026, 2, 1), "no timezone"),
        (utc(2026, 1, 1), "2026-02-01", "expected a datetime"),
    ],
)
def test_describe_period_refuses_bad_periods(start: datetime, end: datetime, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        describe_period(start, end)


# -- plan and add-on lines (INV-1) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "unit_amount", "amount"),
    [
        (STARTER, D("49.00"), 4900),
        (plan("yen", "Yen", "4900", currency=JPY), D("4900"), 4900),
        (plan("dinar", "Dinar", "12.345", currency=KWD), D("12.345"), 12345),
        (plan("free", "Free", "0"), D("0.00"), 0),
    ],
)
def test_plan_line_bills_the_plan_in_advance_inv_1(
    subject: Plan, unit_amount: Decimal, amount: int
) -> None:
    """INV-1: the plan fee of the period, with the period and quantity (INV-2)."""
    drafted = plan_line(subject, JAN)
    assert drafted == LineDraft(
        LineKind.SUBSCRIPTION,
        f"{subject.name} (Jan 1 – Feb 1)",
        D(1),
        unit_amount,
        amount,
        JAN.start,
        JAN.end,
        {"plan": subject.code},
    )
    assert str(drafted.unit_amount) == str(unit_amount)


@pytest.mark.parametrize(
    ("quantity", "description", "amount"),
    [
        (1, "Additional chatbot slot (Jan 1 – Feb 1)", 1000),
        (2, "Additional chatbot slot × 2 (Jan 1 – Feb 1)", 2000),
        (12, "Additional chatbot slot × 12 (Jan 1 – Feb 1)", 12000),
    ],
)
def test_addon_line_bills_slots_in_advance_inv_1(
    quantity: int, description: str, amount: int
) -> None:
    """INV-1, ADD-1: add-on slots are billed with the plan, per slot."""
    drafted = addon_line(SLOT, quantity, JAN, M)
    assert drafted.kind is LineKind.ADDON
    assert drafted.description == description
    assert drafted.quantity == quantity
    assert str(drafted.unit_amount) == "10.00"
    assert drafted.amount_minor == amount
    assert (drafted.period_start, drafted.period_end) == (JAN.start, JAN.end)
    assert drafted.details == {"addon": "extra_agent"}


@pytest.mark.parametrize("quantity", [0, -1, True, "2", 1.0])
def test_addon_line_refuses_bad_quantities(quantity: object) -> None:
    with pytest.raises(InvalidInput, match="slots"):
        addon_line(SLOT, quantity, JAN, M)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="slots"):
        addon_proration_line(SLOT, quantity, APR, M, utc(2026, 4, 11), DAY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: plan_line("starter", JAN), "plan: expected Plan"),  # type: ignore[arg-type]
        (lambda: plan_line(STARTER, (JAN.start, JAN.end)), "period: expected Period"),  # type: ignore[arg-type]
        (lambda: addon_line(BASIC, 1, JAN, M), "add-on: expected AddOn"),  # type: ignore[arg-type]
        (lambda: unused_credit_line(SLOT, APR, utc(2026, 4, 2), DAY), "old plan"),  # type: ignore[arg-type]
        (lambda: proration_lines(BASIC, SLOT, APR, utc(2026, 4, 2), DAY), "new plan"),  # type: ignore[arg-type]
        (lambda: proration_lines(BASIC, PRO, None, utc(2026, 4, 2), DAY), "period"),  # type: ignore[arg-type]
        (lambda: proration_lines(BASIC, PRO, APR, datetime(2026, 4, 2), DAY), "no timezone"),
        (lambda: proration_lines(BASIC, PRO, APR, utc(2026, 5, 2), DAY), "outside the period"),
        (lambda: proration_lines(BASIC, PRO, APR, utc(2026, 4, 2), "daily"), "proration mode"),  # type: ignore[arg-type]
    ],
)
def test_line_builders_refuse_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()  # type: ignore[operator]


# -- usage lines (INV-1, CAT-4, USE-5) -----------------------------------------------------


def test_voice_overage_worked_example_use_5() -> None:
    """USE-5, CAT-4, INV-1 (voice-overage.yaml): 520 minutes used, 500 included, 0.10 a
    minute over: a usage line of 20 minutes, 200, in arrears for January."""
    drafted = usage_line("minutes", STARTER, D(520), JAN)
    assert drafted == LineDraft(
        LineKind.USAGE,
        "Minutes: 20 over 500 included (Jan 1 – Feb 1)",
        D(20),
        D("0.10"),
        200,
        JAN.start,
        JAN.end,
        {
            "model": "per_unit",
            "units": "20",
            "unit_price": "0.10",
            "used": "520",
            "free_units": "500",
        },
    )
    invoice = settle(USD, [plan_line(STARTER, FEB), drafted], 0)
    assert invoice.total_minor == 5100


FEB = Period(utc(2026, 2, 1), utc(2026, 3, 1), 1)


@pytest.mark.parametrize(
    ("meter", "used"),
    [
        ("minutes", D(500)),  # exactly the included quantity
        ("minutes", D(12)),
        ("minutes", Fraction(0)),
        ("sessions", D(10_000)),  # no overage price: a hard stop, never billed
    ],
)
def test_no_usage_line_when_nothing_is_billable(meter: str, used: Decimal | Fraction) -> None:
    """SCENARIOS "Usage and pricing": a quantity of 0 over the included gives no line."""
    assert usage_line(meter, STARTER, used, JAN) is None


def test_usage_line_with_nothing_included_and_a_label() -> None:
    """CAT-4: the model prices every unit when the plan includes none."""
    metered = plan("metered", "Metered", "0.00", overage={"calls": PerUnit(D("0.015"))})
    drafted = usage_line("calls", metered, D(3), JAN, meter_label="API calls")
    assert drafted is not None
    assert drafted.description == "API calls: 3 (Jan 1 – Feb 1)"
    assert drafted.amount_minor == 5  # 0.045 rounded once, half up


def test_usage_line_rounds_once_from_the_exact_quantity_use_5() -> None:
    """USE-5, INV-2: per-second minutes (30728/60 = 512.1333…) are shown and billed as
    512.133333 (quantities are decimals): 12.133333 over, 1.2133333 rounds once to 121."""
    drafted = usage_line("minutes", STARTER, Fraction(30728, 60), JAN)
    assert drafted is not None
    assert drafted.quantity == D("12.133333")
    assert drafted.amount_minor == 121
    assert drafted.description == "Minutes: 12.133333 over 500 included (Jan 1 – Feb 1)"
    assert drafted.details["used"] == "512.133333"
    assert drafted.details["units"] == "12.133333"


def test_tiered_usage_line_has_no_single_unit_amount_cat_4() -> None:
    """CAT-4: graduated tiers have no single unit price; the breakdown is in details."""
    tiered = plan(
        "tiered",
        "Tiered",
        "10.00",
        includes={"sessions": D(100)},
        overage={"sessions": Graduated((Tier(D(100), D("0.50")), Tier(None, D("0.25"))))},
    )
    drafted = usage_line("sessions", tiered, D(250), JAN)
    assert drafted is not None
    assert drafted.unit_amount is None
    assert drafted.amount_minor == 5000 + 1250
    assert drafted.details["model"] == "graduated"
    assert len(drafted.details["tiers"]) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (("", STARTER, D(1), JAN), "meter code"),
        ((None, STARTER, D(1), JAN), "meter code"),
        (("minutes", STARTER, D(-1), JAN), "negative"),
        (("minutes", STARTER, 520.0, JAN), "exact number"),
        (("minutes", STARTER, D("NaN"), JAN), "finite"),
        (("minutes", STARTER, D(520), JAN, ""), "meter label"),
        (("minutes", "starter", D(520), JAN), "plan"),
    ],
)
def test_usage_line_refuses_bad_arguments(arguments: tuple[object, ...], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        usage_line(*arguments)  # type: ignore[arg-type]


# -- prorations (SUB-5) --------------------------------------------------------------------


def test_upgrade_day_proration_worked_example_sub_5() -> None:
    """SUB-5 (upgrade-day-proration.yaml): Basic 30.00 → Pro 60.00 on Apr 16 12:00, day
    proration, 15 of April's 30 days remain: −1500 + 3000 = 1500."""
    at = utc(2026, 4, 16, 12)
    credit, charge = proration_lines(BASIC, PRO, APR, at, DAY)
    assert credit == LineDraft(
        LineKind.PRORATION,
        "Unused time on Basic (Apr 16 – May 1)",
        D(1),
        None,
        -1500,
        at,
        APR.end,
        {"plan": "basic", "unit_price": "30.00", "fraction": "1/2", "proration": "day"},
    )
    assert charge == LineDraft(
        LineKind.PRORATION,
        "Remaining time on Pro (Apr 16 – May 1)",
        D(1),
        None,
        3000,
        at,
        APR.end,
        {"plan": "pro", "unit_price": "60.00", "fraction": "1/2", "proration": "day"},
    )
    invoice = settle(USD, [credit, charge], 0)
    assert (invoice.total_minor, invoice.amount_due_minor) == (1500, 1500)


def test_immediate_downgrade_is_credited_never_refunded_sub_5() -> None:
    """SUB-5: an immediate downgrade credits the unused difference to the account credit
    balance; nothing is due and nothing is paid out."""
    lines = proration_lines(PRO, BASIC, APR, utc(2026, 4, 16, 12), DAY)
    assert [ln.amount_minor for ln in lines] == [-3000, 1500]
    invoice = settle(USD, lines, 200)
    assert invoice.total_minor == -1500
    assert invoice.credit_applied_minor == 0
    assert invoice.amount_due_minor == 0
    assert invoice.account_credit_after_minor == 1700


@pytest.mark.parametrize(
    ("old_price", "new_price", "at", "mode", "amounts", "fraction"),
    [
        ("30.00", "60.00", utc(2026, 4, 16, 12), SECOND, [-1450, 2900], "29/60"),
        ("30.00", "60.00", utc(2026, 4, 1), DAY, [-3000, 6000], "1/1"),
        ("30.00", "60.00", utc(2026, 4, 30, 23), DAY, [-100, 200], "1/30"),
        ("0.01", "0.01", utc(2026, 4, 16), DAY, [-1, 1], "1/2"),  # halves away from zero
        ("0.03", "0.05", utc(2026, 4, 16), DAY, [-2, 3], "1/2"),  # −1.5 → −2, 2.5 → 3
        ("0.00", "49.00", utc(2026, 4, 11), DAY, [0, 3267], "2/3"),  # a free plan keeps its line
    ],
)
def test_proration_lines_round_each_line_once(
    old_price: str,
    new_price: str,
    at: datetime,
    mode: ProrationMode,
    amounts: list[int],
    fraction: str,
) -> None:
    """SUB-5, SCENARIOS "Proration": quantity × unit price × fraction, each line rounded
    once, ROUND_HALF_UP; a negative half goes away from zero."""
    lines = proration_lines(plan("a", "A", old_price), plan("b", "B", new_price), APR, at, mode)
    assert [ln.amount_minor for ln in lines] == amounts
    assert {ln.details["fraction"] for ln in lines} == {fraction}
    assert {ln.details["proration"] for ln in lines} == {str(mode)}


@pytest.mark.parametrize(
    ("at", "mode"),
    [
        (utc(2026, 4, 16, 12), NONE),  # no proration at all
        (APR.end, SECOND),  # nothing of the period remains
        (APR.end, DAY),
    ],
)
def test_no_proration_lines_when_nothing_is_prorated(at: datetime, mode: ProrationMode) -> None:
    """SCENARIOS "Proration": mode none applies changes with no proration lines."""
    assert proration_lines(BASIC, PRO, APR, at, mode) == ()
    assert unused_credit_line(BASIC, APR, at, mode) is None
    assert addon_proration_line(SLOT, 2, APR, M, at, mode) is None


def test_change_to_another_interval_credits_the_unused_part_sub_5() -> None:
    """SUB-5, SCENARIOS "Plan changes": monthly Basic → yearly Pro on Apr 16 12:00 ends the
    April period now (credit for its unused part) and bills a new year in full."""
    yearly = plan("pro_year", "Pro yearly", "600.00", interval=Interval.YEAR)
    at = utc(2026, 4, 16, 12)
    with pytest.raises(InvalidInput, match="unused_credit_line and plan_line"):
        proration_lines(BASIC, yearly, APR, at, DAY)
    credit = unused_credit_line(BASIC, APR, at, DAY)
    assert credit is not None
    assert credit.amount_minor == -1500
    assert credit.description == "Unused time on Basic (Apr 16 – May 1)"
    year = Period(at, boundary(at, Interval.YEAR, 1), 0)
    charge = plan_line(yearly, year)
    assert charge.description == "Pro yearly (Apr 16, 2026 – Apr 16, 2027)"
    assert settle(USD, [credit, charge], 0).total_minor == 58500


def test_change_between_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        euro = plan("eur", "Euro", "60.00", currency=Currency.of("EUR"))
        proration_lines(BASIC, euro, APR, utc(2026, 4, 2), DAY)


@pytest.mark.parametrize(
    ("quantity", "at", "mode", "description", "amount", "fraction"),
    [
        (
            2,
            utc(2026, 4, 11),
            DAY,
            "Additional chatbot slot × 2 (Apr 11 – May 1, prorated)",
            1333,
            "2/3",
        ),
        (
            1,
            utc(2026, 4, 11),
            DAY,
            "Additional chatbot slot (Apr 11 – May 1, prorated)",
            667,
            "2/3",
        ),
        (
            3,
            utc(2026, 4, 16),
            SECOND,
            "Additional chatbot slot × 3 (Apr 16 – May 1, prorated)",
            1500,
            "1/2",
        ),
    ],
)
def test_addon_proration_line_add_2(
    quantity: int, at: datetime, mode: ProrationMode, description: str, amount: int, fraction: str
) -> None:
    """ADD-2, INV-1: adding slots mid-period charges quantity × slot price × remaining
    fraction at once, rounded once: 2 × 10.00 × 20/30 = 13.33."""
    drafted = addon_proration_line(SLOT, quantity, APR, M, at, mode)
    assert drafted == LineDraft(
        LineKind.PRORATION,
        description,
        D(quantity),
        None,
        amount,
        at,
        APR.end,
        {"addon": "extra_agent", "unit_price": "10.00", "fraction": fraction, "proration": mode},
    )


# -- credits (CRD-1) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credits", "price", "description", "unit_amount"),
    [
        (1000, Money(1000, USD), "1,000 AI credits", "0.01"),
        (1, Money(100, USD), "1 AI credit", "1.00"),
        (2000, Money(1000, USD), "2,000 AI credits", "0.005"),
        (200, Money(1, USD), "200 AI credits", "0.00005"),
        (10_000, Money(1, USD), "10,000 AI credits", "0.000001"),
        (100_000, Money(1, USD), "100,000 AI credits", None),  # 7 places
        (3, Money(100, USD), "3 AI credits", None),  # 0.333…
        (100, Money(0, USD), "100 AI credits", "0.00"),
        (500, Money(1000, JPY), "500 AI credits", "2"),
        (8, Money(1000, KWD), "8 AI credits", "0.125"),
    ],
)
def test_credits_line_crd_1(
    credits: int, price: Money, description: str, unit_amount: str | None
) -> None:
    """CRD-1, INV-1: a top-up makes a credits line for its total price."""
    drafted = credits_line(credits, price)
    assert drafted.kind is LineKind.CREDITS
    assert drafted.description == description
    assert drafted.quantity == credits
    assert (None if drafted.unit_amount is None else str(drafted.unit_amount)) == unit_amount
    assert drafted.amount_minor == price.minor
    assert (drafted.period_start, drafted.period_end) == (None, None)
    assert drafted.details == {"credits": credits}


@pytest.mark.parametrize(
    ("credits", "price", "match"),
    [
        (0, Money(100, USD), "credits"),
        (-5, Money(100, USD), "credits"),
        (True, Money(100, USD), "credits"),
        (10, Money(-100, USD), "negative"),
        (10, "1.00", "credit price"),
    ],
)
def test_credits_line_refuses_bad_input(credits: int, price: Money, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        credits_line(credits, price)


# -- settle (INV-2, SUB-5) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amounts", "credit", "total", "applied", "due", "after"),
    [
        ([4900], 0, 4900, 0, 4900, 0),
        ([4900, 200], 0, 5100, 0, 5100, 0),
        ([4900], 1000, 4900, 1000, 3900, 0),
        ([4900], 6000, 4900, 4900, 0, 1100),
        ([4900], 4900, 4900, 4900, 0, 0),
        ([-1500, 3000], 0, 1500, 0, 1500, 0),
        ([-3000, 1500], 0, -1500, 0, 0, 1500),
        ([-3000, 1500], 700, -1500, 0, 0, 2200),
        ([0], 300, 0, 0, 0, 300),
    ],
)
def test_settle_applies_the_account_credit_inv_2(
    amounts: list[int], credit: int, total: int, applied: int, due: int, after: int
) -> None:
    """INV-2: the total is the exact sum of the lines. SUB-5, SCENARIOS "Money owed back":
    account credit pays what it can; a negative total goes to the account credit."""
    lines = [line(amount) for amount in amounts]
    invoice = settle(USD, lines, credit)
    assert invoice == InvoiceDraft(USD, tuple(lines), total, applied, due, after)


@pytest.mark.parametrize(
    ("currency", "lines", "credit", "match"),
    [
        (USD, [line(100)], -1, "must not be negative"),
        (USD, [line(100)], True, "account credit"),
        (USD, [line(100)], 1.0, "account credit"),
        (USD, [], 0, "at least one line"),
        (USD, [100], 0, "expected LineDraft"),
        (USD, "lines", 0, "sequence"),
        (USD, iter([line(100)]), 0, "sequence"),
        ("USD", [line(100)], 0, "expected Currency"),
    ],
)
def test_settle_refuses_bad_input(
    currency: Currency, lines: Sequence[LineDraft], credit: int, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        settle(currency, lines, credit)


@pytest.mark.parametrize(
    "numbers",
    [
        (4901, 0, 4900, 0),  # a total that is not the sum of the lines
        (4900, 0, 4800, 0),  # amount due that ignores no credit
        (4900, 100, 4900, 0),  # credit applied but not taken off
        (4900, 100, 4800, 5),  # credit left over while some was due
        (4900, 5000, -100, 0),
        (-100, 0, 0, 0),  # money owed back lost
        (4900, 0, 4900, True),
    ],
)
def test_invoice_draft_refuses_numbers_that_do_not_add_up_inv_2(
    numbers: tuple[int, int, int, int],
) -> None:
    """INV-2: an invoice's totals are always the exact sum of its lines."""
    amount = numbers[0] if numbers[0] < 0 else 4900
    with pytest.raises(InvalidInput, match="invoice"):
        InvoiceDraft(USD, (line(amount),), *numbers)


def test_invoice_draft_refuses_lines_not_in_a_tuple() -> None:
    with pytest.raises(InvalidInput, match="at least one line"):
        InvoiceDraft(USD, [line(1)], 1, 0, 1, 0)  # type: ignore[arg-type]


# -- LineDraft -----------------------------------------------------------------------------


def test_line_draft_takes_a_kind_by_name_and_copies_details() -> None:
    details: dict[str, object] = {"plan": "basic"}
    drafted = LineDraft("usage", "x", D(1), None, 1, None, None, details)  # type: ignore[arg-type]
    details["plan"] = "pro"
    assert drafted.kind is LineKind.USAGE
    assert drafted.details == {"plan": "basic"}
    assert type(drafted.details) is dict


def test_line_kinds_are_those_of_scenarios() -> None:
    """INV-2: SCENARIOS.md "The result" names the line kinds; "More of the format" adds
    `discount` (INV-6) and `tax` (INV-7)."""
    assert [kind.value for kind in LineKind] == [
        "subscription",
        "proration",
        "addon",
        "usage",
        "credits",
        "discount",
        "tax",
    ]


def test_line_draft_converts_its_period_to_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    drafted = LineDraft(
        LineKind.SUBSCRIPTION, "x", D(1), D(1), 100,
        datetime(2026, 1, 1, 1, tzinfo=plus_one), datetime(2026, 2, 1, 1, tzinfo=plus_one), {},
    )  # fmt: skip
    assert drafted.period_start == utc(2026, 1, 1)
    assert drafted.period_start.tzinfo is UTC


GOOD: tuple[object, ...] = (LineKind.USAGE, "x", D(1), D(1), 100, JAN.start, JAN.end, {})


@pytest.mark.parametrize(
    ("index", "value", "match"),
    [
        (0, "refund", "line kind"),
        (0, None, "line kind"),
        (1, "", "description"),
        (1, None, "description"),
        (2, 1, "quantity"),
        (2, D("NaN"), "quantity"),
        (3, 0.5, "unit_amount"),
        (3, D("Infinity"), "unit_amount"),
        (4, 1.5, "amount_minor"),
        (4, False, "amount_minor"),
        (5, None, "both"),
        (6, None, "both"),
        (5, JAN.end, "must be after"),
        (5, datetime(2026, 1, 1), "no timezone"),
        (7, None, "details"),
        (7, [("a", 1)], "details"),
    ],
)
def test_line_draft_refuses_bad_fields(index: int, value: object, match: str) -> None:
    fields = list(GOOD)
    fields[index] = value
    with pytest.raises(InvalidInput, match=match):
        LineDraft(*fields)  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------

amounts = st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=12)
credits = st.integers(0, 10**9)


@given(amounts=amounts, credit=credits)
def test_total_is_the_exact_sum_of_the_lines(amounts: list[int], credit: int) -> None:
    """Property: an invoice's total is the exact sum of its lines (INV-2)."""
    assert settle(USD, [line(a) for a in amounts], credit).total_minor == sum(amounts)


@given(amounts=amounts, credit=credits)
def test_amount_due_is_never_negative(amounts: list[int], credit: int) -> None:
    """Property: the amount due is never below zero (SCENARIOS "Money owed back")."""
    assert settle(USD, [line(a) for a in amounts], credit).amount_due_minor >= 0


@given(amounts=amounts, credit=credits)
def test_account_credit_is_conserved(amounts: list[int], credit: int) -> None:
    """Property: no credit is made or lost (SUB-5): credit after + credit applied ==
    credit before + max(0, −total), and amount due == max(0, total) − credit applied."""
    invoice = settle(USD, [line(a) for a in amounts], credit)
    total = invoice.total_minor
    assert invoice.account_credit_after_minor + invoice.credit_applied_minor == credit + max(
        0, -total
    )
    assert invoice.amount_due_minor == max(0, total) - invoice.credit_applied_minor
    assert 0 <= invoice.credit_applied_minor <= credit


anchors = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)
prices = st.integers(0, 10**7)


@st.composite
def changes(draw: st.DrawFn) -> tuple[Period, datetime, ProrationMode, Interval]:
    """A period, a change time inside it (its ends included) and a proration mode."""
    interval = draw(st.sampled_from(Interval))
    anchor = draw(anchors)
    period = Period(anchor, boundary(anchor, interval, 1), 0)
    offset = draw(st.integers(0, period.length // timedelta(microseconds=1)))
    at = period.start + timedelta(microseconds=offset)
    return period, at, draw(st.sampled_from(ProrationMode)), interval


@given(change=changes(), minor=prices, currency=st.sampled_from([USD, JPY, KWD]))
def test_a_change_to_the_same_plan_prorates_to_zero(
    change: tuple[Period, datetime, ProrationMode, Interval], minor: int, currency: Currency
) -> None:
    """Property: an immediate change to the same plan prorates to exactly zero (SUB-5:
    the credit and the charge are rounded alike, halves away from zero on both sides)."""
    period, at, mode, interval = change
    price = Money(minor, currency).major_str()
    same = plan("p", "P", price, currency=currency, interval=interval)
    lines = proration_lines(same, same, period, at, mode)
    assert sum(ln.amount_minor for ln in lines) == 0


@given(change=changes(), old_minor=prices, new_minor=prices, slots=st.integers(1, 50))
def test_prorations_never_exceed_the_full_price(
    change: tuple[Period, datetime, ProrationMode, Interval],
    old_minor: int,
    new_minor: int,
    slots: int,
) -> None:
    """Property: a proration line is never more than the full price it prorates, the
    credit is never positive and the charge never negative (SUB-5, ADD-2)."""
    period, at, mode, interval = change
    old = plan("old", "Old", Money(old_minor, USD).major_str(), interval=interval)
    new = plan("new", "New", Money(new_minor, USD).major_str(), interval=interval)
    lines = proration_lines(old, new, period, at, mode)
    if lines:
        assert -old_minor <= lines[0].amount_minor <= 0
        assert 0 <= lines[-1].amount_minor <= new_minor
    both = AddOn(
        "extra_agent",
        "Additional chatbot slot",
        MappingProxyType({Interval.MONTH: Money(1000, USD), Interval.YEAR: Money(10000, USD)}),
        MappingProxyType({Resource.AGENTS: 1}),
    )
    added = addon_proration_line(both, slots, period, interval, at, mode)
    if added is not None:
        assert 0 <= added.amount_minor <= slots * both.price_for(interval).minor
    credit = addon_unused_credit_line(both, slots, period, interval, at, mode)
    if credit is not None:  # SUB-14: the credit mirrors the charge
        assert added is not None and credit.amount_minor == -added.amount_minor
