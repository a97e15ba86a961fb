"""INV-6 (coupons, the discount line), INV-7 (tax lines, billing details): the pure rules
of domain/coupons.py, domain/discounts.py, domain/taxes.py and domain/billing_details.py,
and a Hypothesis property over random lines, rates and coupons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from babel import Locale
from hypothesis import given, settings
from hypothesis import strategies as st

from tabkeeper.domain.billing_details import COUNTRIES, BillingDetails
from tabkeeper.domain.coupons import Coupon, build_coupons
from tabkeeper.domain.discounts import Redemption, check_redeemable, discount_line
from tabkeeper.domain.errors import InvalidConfig, InvalidInput, Refused
from tabkeeper.domain.invoicing import LineDraft, LineKind, settle
from tabkeeper.domain.money import Currency, Money, round_half_up
from tabkeeper.domain.taxes import TaxRate, breakdown, build_taxes, tax_lines, tax_of

EUR = Currency.of("EUR")
START = datetime(2026, 4, 1, tzinfo=UTC)
END = datetime(2026, 5, 1, tzinfo=UTC)
NEXT_END = datetime(2026, 6, 1, tzinfo=UTC)


def line(
    kind: LineKind,
    amount: int,
    start: datetime = START,
    end: datetime = END,
    code: str = "basic",
) -> LineDraft:
    key = "addon" if kind is LineKind.ADDON else "plan"
    return LineDraft(kind, f"{kind} {amount}", Decimal(1), None, amount, start, end, {key: code})


def percent(value: str, periods: int | None = 1, applies_to: set[str] | None = None) -> Coupon:
    return Coupon(
        "c",
        "C",
        Decimal(value),
        None,
        periods,
        None if applies_to is None else frozenset(applies_to),
    )


def amount_off(minor: int, periods: int | None = None) -> Coupon:
    return Coupon("c", "C", None, Money(minor, EUR), periods)


# -- coupons in the catalog ---------------------------------------------------------------


def test_inv6_coupons_read_from_the_catalog() -> None:
    coupons = build_coupons(
        {
            "launch": {"percent_off": "20", "duration": {"periods": 3}, "applies_to": ["pro"]},
            "fiver": {"amount_off": "5.00", "duration": "forever", "max_redemptions": 2,
                      "redeem_by": "2027-01-01T00:00:00Z", "name": "Five off"},
            "once": {"percent_off": 10},
        },
        EUR,
        frozenset({"pro", "basic"}),
    )  # fmt: skip
    assert coupons["launch"].periods == 3 and coupons["launch"].applies_to == {"pro"}
    assert coupons["fiver"].amount_off == Money(500, EUR) and coupons["fiver"].periods is None
    assert coupons["fiver"].label == "Five off (5.00 off)"
    assert coupons["once"].periods == 1 and coupons["once"].label == "once (10% off)"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"duration": "once"}, "give either percent_off or amount_off"),
        ({"percent_off": "10", "amount_off": "1.00"}, "give either percent_off or amount_off"),
        ({"percent_off": "0"}, "must be greater than 0"),
        ({"percent_off": "101"}, "at most 100"),
        ({"percent_off": 0.5}, "expected a decimal string"),
        ({"amount_off": "0.001"}, "more decimals"),
        ({"amount_off": "0"}, "must be above 0"),
        ({"percent_off": "5", "duration": "weekly"}, "expected once, forever"),
        ({"percent_off": "5", "duration": {"periods": 0}}, "must be at least 1"),
        ({"percent_off": "5", "applies_to": ["gold"]}, "unknown plan or add-on 'gold'"),
        ({"percent_off": "5", "max_redemptions": 0}, "must be at least 1"),
        ({"percent_off": "5", "redeem_by": "soon"}, "ISO 8601"),
        ({"percent_off": "5", "typo": 1}, "unknown field"),
    ],
)
def test_inv6_bad_coupons_name_their_path(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidConfig) as error:
        build_coupons({"bad": raw}, EUR, frozenset({"basic"}), "catalog.coupons")
    assert error.value.path.startswith("catalog.coupons.bad")
    assert problem in error.value.message


def test_inv6_redemption_refusals() -> None:
    """Expired, exhausted, and for another plan: each a Refused with its code."""
    coupon = Coupon("c", "C", Decimal(10), None, 1, frozenset({"pro"}), 2, END)
    check_redeemable(coupon, START, 1, "pro")
    check_redeemable(coupon, START, 0, "basic", ["pro"])  # an add-on code counts too
    check_redeemable(coupon, START, 0, None)  # no plan yet: checked at subscribe
    for now, redeemed, plan, code in [
        (END, 0, "pro", "coupon_expired"),
        (START, 2, "pro", "coupon_exhausted"),
        (START, 0, "basic", "coupon_not_applicable"),
    ]:
        with pytest.raises(Refused) as error:
            check_redeemable(coupon, now, redeemed, plan)
        assert error.value.code == code


# -- the discount line ------------------------------------------------------------------------


def test_inv6_percent_covers_n_periods_and_the_prorations_within() -> None:
    state = Redemption(percent("20", periods=2))
    first, state = discount_line(state, [line(LineKind.SUBSCRIPTION, 3000)], EUR)
    assert first is not None and first.amount_minor == -600 and state.periods_used == 1
    mid = [line(LineKind.PRORATION, -1548, START + timedelta(days=15)),
           line(LineKind.PRORATION, 3097, START + timedelta(days=15))]  # fmt: skip
    within, state = discount_line(state, mid, EUR)
    assert within is not None and within.amount_minor == -310  # 20% of 1549, rounded once
    second, state = discount_line(state, [line(LineKind.SUBSCRIPTION, 3000, END, NEXT_END)], EUR)
    assert second is not None and state.periods_used == 2 and state.finished
    third, _ = discount_line(
        state, [line(LineKind.SUBSCRIPTION, 3000, NEXT_END, NEXT_END + timedelta(days=30))], EUR
    )
    assert third is None


def test_inv6_amount_off_once_per_period_and_never_below_zero() -> None:
    state = Redemption(amount_off(500))
    cheap, state = discount_line(state, [line(LineKind.SUBSCRIPTION, 300)], EUR)
    assert cheap is not None and cheap.amount_minor == -300
    mid, _ = discount_line(state, [line(LineKind.PRORATION, 200, START + timedelta(days=9))], EUR)
    assert mid is None  # the period had its amount off


def test_inv6_applies_to_some_lines_only_and_not_usage() -> None:
    state = Redemption(percent("50", applies_to={"extra"}))
    lines = [
        line(LineKind.SUBSCRIPTION, 3000),
        line(LineKind.ADDON, 1000, code="extra"),
        line(LineKind.USAGE, 999),
    ]
    found, _ = discount_line(state, lines, EUR)
    assert found is not None and found.amount_minor == -500


def test_inv6_percent_on_a_credit_lowers_the_credit() -> None:
    """A downgrade's credit was paid 20% less: 20% less of it comes back."""
    state = Redemption(percent("20"))
    _, state = discount_line(state, [line(LineKind.SUBSCRIPTION, 6000)], EUR)
    lines = [line(LineKind.PRORATION, -3000, START + timedelta(days=15)),
             line(LineKind.PRORATION, 1500, START + timedelta(days=15))]  # fmt: skip
    found, _ = discount_line(state, lines, EUR)
    assert found is not None and found.amount_minor == 300


# -- taxes --------------------------------------------------------------------------------------


def test_inv7_exclusive_inclusive_and_reverse_charge() -> None:
    vat = TaxRate("de", Decimal(19), ("DE",), False, "VAT")
    tva = TaxRate("fr", Decimal(20), ("FR",), True, "TVA")
    (exclusive,) = tax_lines([line(LineKind.SUBSCRIPTION, 2999)], [vat], EUR)
    assert exclusive.amount_minor == 570 and exclusive.description == "VAT 19%"
    (inclusive,) = tax_lines([line(LineKind.SUBSCRIPTION, 2999)], [tva], EUR)
    assert inclusive.amount_minor == 0 and tax_of(inclusive) == 500
    assert inclusive.details["net_minor"] == 2499
    (reverse,) = tax_lines([line(LineKind.SUBSCRIPTION, 2999)], [vat], EUR, reverse_charge=True)
    assert reverse.amount_minor == 0 and reverse.details["reverse_charge"] is True
    assert tax_lines([line(LineKind.SUBSCRIPTION, 0)], [vat], EUR) == ()
    assert tax_lines([line(LineKind.SUBSCRIPTION, 100)], [], EUR) == ()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"rates": {"x": {"percent": "19"}}}, "countries: is required"),
        ({"rates": {"x": {"percent": "19", "countries": ["XX"]}}}, "'XX' is not an ISO 3166"),
        ({"rates": {"x": {"percent": "19", "countries": []}}}, "expected a list"),
        ({"rates": {"x": {"percent": "100", "countries": ["DE"]}}}, "must be below 100"),
        ({"rates": {"x": {"percent": "0", "countries": ["DE"]}}}, "greater than 0"),
        (
            {"rates": {"a": {"percent": "5", "countries": ["DE"]},
                       "b": {"percent": "5", "countries": ["DE"], "inclusive": True}}},
            "all inclusive or all exclusive",
        ),
        ({"reverse_charge": "yes"}, "expected true or false"),
    ],
)  # fmt: skip
def test_inv7_bad_tax_settings_name_their_path(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidConfig) as error:
        build_taxes(raw, "settings.taxes")
    assert error.value.path.startswith("settings.taxes")
    assert problem in error.value.message


def test_inv7_country_codes_are_iso_3166() -> None:
    """The 249 codes of ISO 3166-1, as CLDR (Babel) knows them, less its non-countries."""
    cldr = {code for code in Locale("en").territories if len(code) == 2 and code.isalpha()}
    assert cldr >= COUNTRIES
    assert len(COUNTRIES) == 249
    assert cldr - COUNTRIES == {
        "AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("country", "tax_id", "stored"),
    [
        ("DE", "DE123456789", "DE123456789"),
        ("de", "de 123.456-789", "DE123456789"),
        ("GR", "EL123456789", "EL123456789"),
        ("NL", "NL123456789B01", "NL123456789B01"),
        ("AT", "ATU12345678", "ATU12345678"),
        ("US", "12-3456789", "123456789"),
        ("DE", None, None),
        ("DE", "  ", None),
    ],
)
def test_inv7_billing_details_normalized(country: str, tax_id: str | None, stored: str) -> None:
    details = BillingDetails(" Acme GmbH ", country, " Street 1 \n Town ", tax_id)
    assert details.country == country.upper() and details.tax_id == stored
    assert details.legal_name == "Acme GmbH" and details.address == "Street 1\nTown"


@pytest.mark.parametrize(
    ("values", "code"),
    [
        (("Acme", "XX", None), "invalid_country"),
        (("Acme", "Germany", None), "invalid_country"),
        (("Acme", 49, None), "invalid_country"),
        (("Acme", "DE", "DE12345"), "invalid_tax_id"),
        (("Acme", "DE", "FR12345678901"), "invalid_tax_id"),
        (("Acme", "GR", "GR123456789"), "invalid_tax_id"),
        (("Acme", "US", "#!"), "invalid_tax_id"),
        (("Acme", "DE", 123), "invalid_tax_id"),
        (("", "DE", None), "invalid_input"),
        (("x" * 201, "DE", None), "invalid_input"),
    ],
)
def test_inv7_bad_billing_details_refused(values: tuple[object, object, object], code: str) -> None:
    """Bad inputs tried: an unknown or spelled-out country, a number for a country, VAT
    numbers too short, of another state, with the ISO code for Greece instead of EL,
    symbols, a number; an empty and a 201-character legal name."""
    with pytest.raises(InvalidInput) as error:
        BillingDetails.read(*values)
    assert error.value.code == code


# -- the property -------------------------------------------------------------------------------

_KINDS = st.sampled_from(
    [LineKind.SUBSCRIPTION, LineKind.PRORATION, LineKind.ADDON, LineKind.USAGE, LineKind.CREDITS]
)
_LINES = st.lists(
    st.tuples(_KINDS, st.integers(-500_000, 2_000_000), st.sampled_from(["basic", "pro", "x"])),
    min_size=1,
    max_size=8,
)
_PERCENTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99.99"), places=2)
_COUPONS = st.one_of(
    st.none(),
    st.builds(
        lambda p, to: percent(str(p), None, to),
        st.decimals(min_value=Decimal("0.5"), max_value=Decimal(100), places=1),
        st.one_of(st.none(), st.sets(st.sampled_from(["basic", "pro", "x"]), min_size=1)),
    ),
    st.builds(lambda a: amount_off(a), st.integers(1, 3_000_000)),
)


@settings(max_examples=300, deadline=None)
@given(
    raw=_LINES,
    percents=st.lists(_PERCENTS, min_size=0, max_size=3),
    inclusive=st.booleans(),
    coupon=_COUPONS,
)
def test_inv6_inv7_property_totals_taxes_and_splits(
    raw: list[tuple[LineKind, int, str]],
    percents: list[Decimal],
    inclusive: bool,
    coupon: Coupon | None,
) -> None:
    """For random lines, rates and coupons: the invoice total is the sum of its lines;
    each exclusive tax is the rate applied once to the rate's taxable base (within the one
    rounding, half a minor unit); inclusive splits add up to the gross exactly (and each
    part is within one minor unit of its exact share); a discount never takes an invoice
    that was at or above zero below zero, nor discounts more than its base, and it goes
    against its base (a credit for unused time of a discounted plan gives back less)."""
    lines = [
        line(LineKind.SUBSCRIPTION if i == 0 else kind, amount, code=code)
        for i, (kind, amount, code) in enumerate(raw)
    ]
    if coupon is not None:
        found, _ = discount_line(Redemption(coupon), lines, EUR)
        if found is not None:
            subtotal = sum(ln.amount_minor for ln in lines)
            if subtotal >= 0:
                assert subtotal + found.amount_minor >= 0  # never below zero
            base = found.details["base_minor"]
            assert isinstance(base, int) and abs(found.amount_minor) <= abs(base) + 1
            # it lowers what the lines it discounts charge, or what a credit gives back
            assert (found.amount_minor < 0) == (base > 0)
            lines.append(found)
    rates = [TaxRate(f"r{i}", p, ("DE",), inclusive, f"T{i}") for i, p in enumerate(percents)]
    taxes = tax_lines(lines, rates, EUR)
    taxable = sum(ln.amount_minor for ln in lines)
    all_lines = [*lines, *taxes]
    draft = settle(EUR, all_lines, 0)
    assert draft.total_minor == sum(ln.amount_minor for ln in all_lines)
    subtotal, discount, tax = breakdown(
        (ln.kind.value, ln.amount_minor, ln.details) for ln in all_lines
    )
    assert tax == sum(tax_of(t) for t in taxes)
    if not rates or taxable == 0:
        assert taxes == ()
        return
    assert len(taxes) == len(rates)
    if not inclusive:
        assert draft.total_minor == subtotal + discount + tax
        for rate, found_tax in zip(rates, taxes, strict=True):
            exact = Fraction(taxable) * Fraction(rate.percent) / 100
            assert found_tax.amount_minor == round_half_up(exact)
            assert abs(found_tax.amount_minor - exact) <= Fraction(1, 2)
            assert found_tax.details["taxable_minor"] == taxable
    else:
        assert draft.total_minor == subtotal + discount  # the tax is inside the prices
        net = taxes[0].details["net_minor"]
        assert isinstance(net, int)
        assert net + sum(tax_of(t) for t in taxes) == taxable
        weight = 100 + sum(Fraction(r.percent) for r in rates)
        for rate, found_tax in zip(rates, taxes, strict=True):
            exact = Fraction(taxable) * Fraction(rate.percent) / weight
            assert abs(tax_of(found_tax) - exact) < 1


def test_inv6_a_period_with_nothing_it_is_for_uses_up_no_period() -> None:
    """A coupon for Pro redeemed before subscribing (no plan to check yet): Basic periods
    are not discounted and do not use up its periods; after an upgrade to Pro it starts."""
    state = Redemption(percent("50", periods=1, applies_to={"pro"}))
    none, state = discount_line(state, [line(LineKind.SUBSCRIPTION, 3000)], EUR)
    assert none is None and state.periods_used == 0
    pro = [line(LineKind.SUBSCRIPTION, 6000, END, NEXT_END, code="pro")]
    found, state = discount_line(state, pro, EUR)
    assert found is not None and found.amount_minor == -3000 and state.periods_used == 1
