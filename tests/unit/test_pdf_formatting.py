"""How invoice PDFs show amounts and quantities (INV-3): the stored integers formatted with
the currency's ISO 4217 exponent and symbol, never rounded again."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.pdf.formatting import format_amount, format_quantity, format_unit_amount


@pytest.mark.parametrize(
    ("minor", "code", "shown"),
    [
        (4900, "USD", "$49.00"),
        (-1500, "USD", "-$15.00"),
        (0, "USD", "$0.00"),
        (123456789, "EUR", "€1,234,567.89"),
        (500, "JPY", "¥500"),
        (1500, "KWD", "KWD 1.500"),
        (100, "CHF", "CHF 1.00"),
        (7, "USD", "$0.07"),
    ],
)
def test_inv3_amounts_use_the_currency_exponent_and_symbol(
    minor: int, code: str, shown: str
) -> None:
    """INV-3: an amount is the stored minor units with the currency's decimals."""
    assert format_amount(minor, Currency.of(code)) == shown


@pytest.mark.parametrize(
    ("text", "code", "shown"),
    [
        ("30.00", "USD", "$30.00"),
        ("30", "USD", "$30.00"),
        ("0.125", "USD", "$0.125"),
        ("0.10", "JPY", "¥0.10"),
        ("1200", "JPY", "¥1,200"),
    ],
)
def test_inv3_unit_amounts_keep_every_decimal_they_were_priced_with(
    text: str, code: str, shown: str
) -> None:
    """INV-3: a unit price with more decimals than the currency is shown whole."""
    assert format_unit_amount(text, Currency.of(code)) == shown


@pytest.mark.parametrize(
    ("text", "shown"), [("1", "1"), ("1250", "1,250"), ("0.5", "0.5"), ("-2", "-2")]
)
def test_inv3_quantities_are_shown_as_stored(text: str, shown: str) -> None:
    assert format_quantity(text) == shown


@pytest.mark.parametrize("bad", ["1e3", "abc", "", "1,000"])
def test_inv3_a_malformed_stored_number_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        format_unit_amount(bad, Currency.of("USD"))
    with pytest.raises(InvalidInput):
        format_quantity(bad)


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["USD", "JPY", "KWD"]))
def test_inv3_formatting_loses_nothing(minor: int, code: str) -> None:
    """Property: stripping the symbol and separators from a formatted amount gives back
    exactly Money(minor).major_str(): no rounding, no lost digits."""
    currency = Currency.of(code)
    shown = format_amount(minor, currency)
    digits = "".join(c for c in shown if c.isdigit() or c in "-.")
    assert digits == Money(minor, currency).major_str()
