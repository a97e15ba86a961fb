"""What a pricing model returns: an exact amount and the breakdown an invoice line shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency, Exact, decimal_string, round_to_minor, to_fraction

Details = Mapping[str, object]
"""JSON-ready breakdown: numbers as decimal strings, counts as ints."""


@dataclass(frozen=True, slots=True)
class Priced:
    """The price of a quantity under one model, before rounding.

    `amount` is exact, in major units; an invoice line rounds it once with
    `minor(currency)`. `unit_amount` is the one unit price that applies, or None where
    no single unit price does (graduated tiers, packages). `details` is the breakdown.
    """

    amount: Fraction
    unit_amount: Decimal | None
    details: Details

    def minor(self, currency: Currency) -> int:
        """The amount rounded once to `currency`'s minor units (ROUND_HALF_UP)."""
        return round_to_minor(self.amount, currency)


def checked_quantity(quantity: Exact) -> Fraction:
    """A quantity to price: exact and not negative."""
    exact = to_fraction(quantity)
    if exact < 0:
        raise InvalidInput(f"a quantity to price must not be negative, got {quantity}")
    return exact


def check_price(value: object, path: str, *, positive: bool = False) -> Decimal:
    """A price or size in a config built in code: a finite Decimal, not negative (or > 0)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidConfig(path, f"expected a Decimal, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise InvalidConfig(path, f"must be {'greater than' if positive else 'at least'} 0")
    return value


def show(value: Fraction | Decimal | int) -> str:
    """A number as the decimal string a breakdown shows (a Decimal as it was written)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    return decimal_string(value)
