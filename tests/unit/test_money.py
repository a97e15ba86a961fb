"""Money and currencies (DESIGN.md rule 1; CAT-1: money is integer minor units)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from babel.numbers import list_currencies
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.currencies import KNOWN_CODES, exponent_of
from tabkeeper.domain.errors import CurrencyMismatch, InvalidInput, UnknownCurrency
from tabkeeper.domain.money import (
    Currency,
    Money,
    decimal_string,
    parse_decimal,
    round_half_up,
    round_to_minor,
    sum_money,
    to_fraction,
)

USD = Currency.of("USD")
JPY = Currency.of("JPY")
KWD = Currency.of("KWD")
EUR = Currency.of("EUR")


def test_every_code_babel_knows_is_a_currency() -> None:
    assert set(list_currencies()) == KNOWN_CODES
    for code in KNOWN_CODES:
        assert Currency.of(code).exponent in (0, 2, 3, 4)


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("IQD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("IRR", 2),
        ("RSD", 2),
        ("ISK", 0),
    ],
)
def test_iso_4217_exponents(code: str, exponent: int) -> None:
    assert Currency.of(code).exponent == exponent
    assert exponent_of(code) == exponent


@pytest.mark.parametrize("code", ["usd", "US", "ABC", "", "USDX", None, 840])
def test_unknown_currency_is_refused(code: object) -> None:
    with pytest.raises(UnknownCurrency, match="unknown currency"):
        Currency.of(code)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("49.00", USD, 4900),
        ("49", USD, 4900),
        ("0.10", USD, 10),
        ("0.1", USD, 10),
        ("-15.00", USD, -1500),
        ("500", JPY, 500),
        ("1.234", KWD, 1234),
        ("0", USD, 0),
        ("49.000", USD, 4900),
    ],
)
def test_parse_major_units(text: str, currency: Currency, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    "text",
    [
        "49.001",
        "1.5e2",
        "NaN",
        "Infinity",
        " 49",
        "49,00",
        "1_000",
        "",
        "+5",
        ".5",
        "5.",
        "00.5",
        49.0,
        49,
        None,
        "--1",
        "0x10",
    ],
)
def test_parse_refuses_bad_amounts(text: object) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(text, USD)


def test_parse_refuses_decimals_for_jpy() -> None:
    with pytest.raises(InvalidInput, match="more decimals than JPY allows"):
        Money.parse("1.5", JPY)


def test_parse_decimal_names_what() -> None:
    with pytest.raises(InvalidInput, match="plans.starter.price"):
        parse_decimal("abc", "plans.starter.price")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 2), 1),
        (Fraction(-1, 2), -1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),
        (Fraction(149, 100), 1),
        (Fraction(-149, 100), -1),
        (Decimal("2.5"), 3),
        (Decimal("-2.5"), -3),
        (7, 7),
        (Fraction(-7, 3), -2),
    ],
)
def test_round_half_up_goes_away_from_zero(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


def test_of_major_rounds_once() -> None:
    assert Money.of_major(Fraction(1, 3), USD) == Money(33, USD)
    assert Money.of_major(Decimal("-0.005"), USD) == Money(-1, USD)


def test_round_to_minor_is_the_currency_exponent() -> None:
    assert round_to_minor(Decimal("0.005"), USD) == 1
    assert round_to_minor(Decimal("0.0049"), USD) == 0
    assert round_to_minor(Decimal("0.5"), JPY) == 1
    assert round_to_minor(Decimal("0.0005"), KWD) == 1
    assert round_to_minor(Fraction(1, 3), USD) == 33


@pytest.mark.parametrize("value", [0.5, float("nan"), Decimal("NaN"), Decimal("Infinity"), True])
def test_floats_and_non_finite_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput):
        to_fraction(value)  # type: ignore[arg-type]


def test_money_must_be_whole_minor_units() -> None:
    with pytest.raises(InvalidInput):
        Money(1.5, USD)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Money(True, USD)


def test_arithmetic_within_one_currency() -> None:
    a, b = Money(4900, USD), Money(200, USD)
    assert a + b == Money(5100, USD)
    assert a - b == Money(4700, USD)
    assert -b == Money(-200, USD)
    assert b < a and b <= a and a > b and a >= b and a >= a
    assert sum_money([a, b, b], USD) == Money(5300, USD)
    assert sum_money([], USD) == Money.zero(USD)


def test_mixing_currencies_raises() -> None:
    usd, eur = Money(100, USD), Money(100, EUR)
    for operation in (
        lambda: usd + eur,
        lambda: usd - eur,
        lambda: usd < eur,
        lambda: usd <= eur,
        lambda: usd > eur,
        lambda: usd >= eur,
        lambda: sum_money([usd, eur], USD),
    ):
        with pytest.raises(CurrencyMismatch, match="USD with EUR|EUR with USD"):
            operation()
    assert usd != eur
    with pytest.raises(InvalidInput):
        usd + 1  # type: ignore[operator]


def test_times_rounds_once() -> None:
    assert Money(3000, USD).times(Fraction(15, 30)) == Money(1500, USD)
    assert Money(1000, USD).times(Fraction(1, 3)) == Money(333, USD)
    assert Money(1000, USD).times(Fraction(2, 3)) == Money(667, USD)
    assert Money(-1000, USD).times(Fraction(2, 3)) == Money(-667, USD)
    assert Money(1, USD).times(Decimal("0.5")) == Money(1, USD)


def test_major_units_and_strings() -> None:
    assert Money(4900, USD).major_str() == "49.00"
    assert Money(-1500, USD).major_str() == "-15.00"
    assert Money(5, USD).major_str() == "0.05"
    assert Money(500, JPY).major_str() == "500"
    assert Money(1234, KWD).major_str() == "1.234"
    assert str(Money(4900, USD)) == "49.00 USD"
    assert Money(4900, USD).as_fraction() == 49
    assert str(USD) == "USD"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(1, 10), "0.1"),
        (520, "520"),
        (Fraction(-31, 2), "-15.5"),
        (0, "0"),
        (Decimal("1.500"), "1.5"),
        (Fraction(1, 8), "0.125"),
        (Fraction(-1, 200), "-0.005"),
    ],
)
def test_decimal_string(value: Fraction, text: str) -> None:
    assert decimal_string(value) == text


def test_decimal_string_refuses_repeating() -> None:
    with pytest.raises(InvalidInput, match="no finite decimal"):
        decimal_string(Fraction(1, 3))


def test_allocate_examples() -> None:
    assert Money(100, USD).allocate([1, 1, 1]) == [Money(34, USD), Money(33, USD), Money(33, USD)]
    assert Money(5, USD).allocate([3, 7]) == [Money(2, USD), Money(3, USD)]
    assert Money(-100, USD).allocate([1, 1, 1]) == [
        Money(-34, USD),
        Money(-33, USD),
        Money(-33, USD),
    ]
    assert Money(10, USD).allocate([0, 1]) == [Money(0, USD), Money(10, USD)]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_bad_weights(weights: list[int]) -> None:
    with pytest.raises(InvalidInput):
        Money(100, USD).allocate(weights)


@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(
        st.one_of(st.integers(0, 10**6), st.fractions(min_value=0, max_value=1000)),
        min_size=1,
        max_size=20,
    ).filter(lambda ws: sum(ws) > 0),
)
def test_allocation_sums_exactly_to_the_amount(minor: int, weights: list[Fraction]) -> None:
    """Property (issue 2): allocating any amount over any weights sums exactly."""
    shares = Money(minor, USD).allocate(weights)
    assert sum(s.minor for s in shares) == minor
    assert len(shares) == len(weights)
    total = sum(weights, Fraction(0))
    for share, weight in zip(shares, weights, strict=True):
        assert abs(Fraction(share.minor) - Fraction(minor) * weight / total) < 1
