"""Money: integer minor units of one ISO 4217 currency.

Rules (DESIGN.md, house rule 1): amounts are ints of minor units in a frozen value object;
mixing currencies raises; intermediate values are Decimal or Fraction; rounding to minor
units happens in one named function, `round_to_minor`, ROUND_HALF_UP (halves away from
zero), once per invoice line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain.currencies import exponent_of
from tabkeeper.domain.errors import CurrencyMismatch, InvalidInput, UnknownCurrency

Exact = int | Decimal | Fraction
"""A number that converts to a Fraction without loss (never a float)."""

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: its code and its exponent (JPY 0, USD 2, KWD 3)."""

    code: str
    exponent: int

    @classmethod
    def of(cls, code: str) -> Currency:
        exponent = exponent_of(code) if isinstance(code, str) else None
        if exponent is None:
            raise UnknownCurrency(f"unknown currency {code!r}: expected an ISO 4217 code")
        return cls(code, exponent)

    @property
    def scale(self) -> int:
        """How many minor units make one major unit."""
        return int(10**self.exponent)

    def __str__(self) -> str:
        return self.code


def to_fraction(value: Exact) -> Fraction:
    """`value` as an exact Fraction; floats, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | Fraction):
        raise InvalidInput(f"expected an exact number (int, Decimal, Fraction), got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidInput(f"expected a finite number, got {value}")
    return Fraction(value)


def round_half_up(value: Exact) -> int:
    """The nearest integer to `value`; an exact half goes away from zero."""
    exact = to_fraction(value)
    magnitude = abs(exact)
    rounded = (2 * magnitude.numerator + magnitude.denominator) // (2 * magnitude.denominator)
    return rounded if exact >= 0 else -rounded


def round_to_minor(amount_major: Exact, currency: Currency) -> int:
    """THE rounding of tabkeeper: an exact amount in major units to whole minor units of
    `currency`, ROUND_HALF_UP to the currency's exponent."""
    return round_half_up(to_fraction(amount_major) * currency.scale)


def parse_decimal(text: object, what: str = "amount") -> Decimal:
    """A decimal string such as "49.00" or "-0.125" as an exact Decimal.

    Only plain digits with an optional sign and point are accepted: no floats, exponents,
    spaces, thousands separators, NaN or infinity, so that what a person typed is what
    is billed.
    """
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise InvalidInput(f'{what}: expected a decimal string such as "49.00", got {text!r}')
    return Decimal(text)


def decimal_string(value: Exact) -> str:
    """An exact number as a plain decimal string ("0.1", "520", "-15.5").

    Raises for values with no finite decimal expansion (1/3): those must be rounded first.
    """
    exact = to_fraction(value)
    denominator = exact.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        raise InvalidInput(f"{exact} has no finite decimal expansion")
    places = max(twos, fives)
    scaled = exact * 10**places
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
    if places == 0:
        return sign + digits
    whole, fraction = digits[:-places], digits[-places:].rstrip("0")
    return sign + whole + ("." + fraction if fraction else "")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money: integer minor units of one currency (4900 USD is $49.00)."""

    minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise InvalidInput(f"money is whole minor units, got {self.minor!r}")

    @classmethod
    def zero(cls, currency: Currency) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: object, currency: Currency, what: str = "amount") -> Money:
        """A decimal string in major units ("49.00") as Money; more decimals than the
        currency has (e.g. "49.001" in USD) is an error, never a silent rounding."""
        value = parse_decimal(text, what)
        scaled = to_fraction(value) * currency.scale
        if scaled.denominator != 1:
            raise InvalidInput(
                f"{what}: {text} has more decimals than {currency.code} allows "
                f"({currency.exponent})"
            )
        return cls(scaled.numerator, currency)

    @classmethod
    def of_major(cls, amount_major: Exact, currency: Currency) -> Money:
        """An exact amount in major units, rounded once by `round_to_minor`."""
        return cls(round_to_minor(amount_major, currency), currency)

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise InvalidInput(f"cannot combine money with {other!r}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency.code} with {other.currency.code}"
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor >= other.minor

    def times(self, factor: Exact) -> Money:
        """This amount multiplied by an exact factor, rounded once (ROUND_HALF_UP)."""
        return Money(round_half_up(self.minor * to_fraction(factor)), self.currency)

    def allocate(self, weights: Sequence[Exact]) -> list[Money]:
        """Split this amount over `weights` in proportion, losing no minor unit.

        Each share is first rounded down; the minor units left over go one each to the
        shares with the largest remainders (the earlier share on a tie). The shares always
        add up to exactly this amount. A negative amount is split as its magnitude.
        """
        exact_weights = [to_fraction(w) for w in weights]
        if not exact_weights:
            raise InvalidInput("allocate needs at least one weight")
        if any(w < 0 for w in exact_weights):
            raise InvalidInput("allocation weights must not be negative")
        total = sum(exact_weights, Fraction(0))
        if total == 0:
            raise InvalidInput("allocation weights must not all be zero")
        magnitude = abs(self.minor)
        exact_shares = [magnitude * w / total for w in exact_weights]
        shares = [s.numerator // s.denominator for s in exact_shares]
        left_over = magnitude - sum(shares)
        by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact_shares[i] - shares[i]), i))
        for i in by_remainder[:left_over]:
            shares[i] += 1
        sign = -1 if self.minor < 0 else 1
        return [Money(sign * share, self.currency) for share in shares]

    def as_fraction(self) -> Fraction:
        """The amount in major units, exactly."""
        return Fraction(self.minor, self.currency.scale)

    def as_decimal(self) -> Decimal:
        """The amount in major units, exactly, with the currency's decimals."""
        return Decimal(self.minor).scaleb(-self.currency.exponent)

    def major_str(self) -> str:
        """The amount in major units with the currency's decimals: "49.00", "-15.00", "500"."""
        return f"{self.as_decimal():f}"

    def __str__(self) -> str:
        return f"{self.major_str()} {self.currency.code}"


def sum_money(amounts: Iterable[Money], currency: Currency) -> Money:
    """The exact sum of `amounts`, all in `currency` (zero when empty)."""
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total
