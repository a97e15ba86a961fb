"""Amounts and dates as an invoice shows them to a person (INV-3), with Babel (CLDR).

Amounts are the stored integers of minor units, only formatted here: "$49.00", "-$15.00",
"¥500", "KWD 1.500". The number of decimals is the currency's ISO 4217 exponent
(domain/currencies.py), never CLDR's own digits, which differ for a few codes; a unit
amount keeps every decimal it was priced with ("$0.125"). Dates are UTC calendar dates
("Jan 1, 2026").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_decimal, get_currency_symbol

from tabkeeper.domain.money import Currency, parse_decimal
from tabkeeper.domain.utc import require_utc

LOCALE = "en_US"


def format_amount(minor: int, currency: Currency) -> str:
    """`minor` units of `currency` with its symbol and exactly its exponent's decimals."""
    return _with_symbol(Decimal(minor).scaleb(-currency.exponent), currency, currency.exponent)


def format_unit_amount(text: str, currency: Currency) -> str:
    """A line's unit amount (a decimal string in major units, as stored) with the symbol;
    at least the currency's decimals, and more when the price has more."""
    value = parse_decimal(text, "unit amount")
    exponent = value.as_tuple().exponent
    places = max(currency.exponent, -exponent if isinstance(exponent, int) else 0)
    return _with_symbol(value, currency, places)


def format_quantity(text: str) -> str:
    """A line's quantity (a decimal string) with thousands separators: "1,250", "0.5"."""
    value = parse_decimal(text, "quantity")
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return str(format_decimal(value, format=pattern, locale=LOCALE))


def format_day(moment: datetime) -> str:
    """The UTC date of `moment`: "Jan 1, 2026"."""
    return str(format_date(require_utc(moment, "date").date(), "medium", locale=LOCALE))


def format_period(start: datetime | None, end: datetime | None) -> str | None:
    """A billing period's dates, "Jan 1, 2026 – Feb 1, 2026"; None when there is none."""
    if start is None or end is None:
        return None
    return f"{format_day(start)} – {format_day(end)}"


def _with_symbol(value: Decimal, currency: Currency, places: int) -> str:
    symbol = str(get_currency_symbol(currency.code, locale=LOCALE))
    pattern = "#,##0" + ("." + "0" * places if places else "")
    number = str(format_decimal(abs(value), format=pattern, locale=LOCALE))
    space = " " if symbol[-1:].isalpha() else ""
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{space}{number}"
