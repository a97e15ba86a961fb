"""Taxes (SPEC INV-7): the platform's rates per country, and the tax lines of an invoice.

The rates live in the platform's settings (`settings.taxes`, SCENARIOS.md), not in the
catalog: a rate belongs to where the customer is, not to what is sold, and it holds for
every catalog version alike (a new catalog must not drop the VAT):

    taxes:
      rates:
        de_vat: {percent: "19", countries: [DE], inclusive: false, name: "VAT"}
        fr_vat: {percent: "20", countries: [FR], inclusive: true}
      reverse_charge: false

An organization is taxed by the rates whose `countries` hold its billing country (its
billing details, domain/billing_details.py); none when it has no billing details or no
rate names its country. All rates of one country are exclusive, or all inclusive
(refused otherwise: one price cannot be both).

`tax_lines(lines, rates, reverse_charge=...)` gives one `tax` line per rate, after any
discount line (the taxable base is the sum of every line given, discount included):
- exclusive: tax = base × percent / 100, rounded ONCE per rate per invoice
  (`round_half_up`, halves away from zero); the line's amount is that tax, added to the
  total;
- inclusive: the prices already hold the tax; the base (gross) is split with
  `Money.allocate` over (100, percent₁, percent₂, ...) into the net and each rate's tax,
  which add up to the gross exactly (no minor unit lost). The line's `amount_minor` is 0
  (the tax is inside the other lines) and `details.included_minor` is the tax;
- reverse charge (when the settings enable it and the organization has a tax ID): one
  line of 0 per rate, "Reverse charge", with `details.reverse_charge: true`; nothing is
  charged (an inclusive price is then charged as it stands).
A base of 0 (a free plan) gives no tax line. A negative base (a credit for unused time)
gives a negative tax: the tax is carried back like the lines it was charged on.

`tax_of(line)` is the tax a tax line stands for (exclusive: its amount; inclusive: what
it includes), for invoice totals (`tax_minor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain import fields
from tabkeeper.domain.billing_details import COUNTRIES
from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.invoicing import LineDraft, LineKind
from tabkeeper.domain.money import Currency, Money, decimal_string, round_half_up

MAX_PERCENT = Decimal(100)


@dataclass(frozen=True, slots=True)
class TaxRate:
    """A rate the platform defines: `percent` of the taxable base, for `countries`."""

    code: str
    percent: Decimal
    countries: tuple[str, ...]
    inclusive: bool = False
    name: str = "Tax"

    @property
    def label(self) -> str:
        """What the invoice line says: "VAT 19%"."""
        return f"{self.name} {decimal_string(self.percent)}%"


@dataclass(frozen=True, slots=True)
class TaxTerms:
    """The platform's rates by code, and whether reverse charge applies to businesses."""

    rates: Mapping[str, TaxRate] = field(default_factory=dict)
    reverse_charge: bool = False

    def rates_for(self, country: str | None) -> tuple[TaxRate, ...]:
        """The rates of `country` (None: no billing details, no tax), by code."""
        if country is None:
            return ()
        return tuple(r for _, r in sorted(self.rates.items()) if country in r.countries)


def build_taxes(data: object, path: str = "taxes") -> TaxTerms:
    """`settings.taxes` read and checked; InvalidConfig names the path."""
    if data is None:
        return TaxTerms()
    doc = fields.mapping(data, path)
    fields.only_keys(doc, ("rates", "reverse_charge"), path)
    rates_path = fields.at(path, "rates")
    raw_rates = fields.mapping(doc.get("rates", {}), rates_path)
    rates: dict[str, TaxRate] = {}
    for code, raw in raw_rates.items():
        here = fields.at(rates_path, code)
        fields.name(code, here)
        rates[code] = _rate(code, raw, here)
    by_country: dict[str, bool] = {}
    for code, rate in sorted(rates.items()):
        for country in rate.countries:
            if by_country.setdefault(country, rate.inclusive) != rate.inclusive:
                raise InvalidConfig(
                    fields.at(fields.at(rates_path, code), "inclusive"),
                    f"the rates of {country} must be all inclusive or all exclusive",
                )
    reverse = fields.flag(doc.get("reverse_charge", False), fields.at(path, "reverse_charge"))
    return TaxTerms(rates, reverse)


def _rate(code: str, raw: object, path: str) -> TaxRate:
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, ("percent", "countries", "inclusive", "name"), path)
    percent = fields.positive_decimal(fields.required(doc, "percent", path), f"{path}.percent")
    if percent >= MAX_PERCENT:
        raise InvalidConfig(f"{path}.percent", f"must be below 100, got {percent}")
    countries_path = fields.at(path, "countries")
    raw_countries = fields.required(doc, "countries", path)
    if not isinstance(raw_countries, list | tuple) or not raw_countries:
        raise InvalidConfig(countries_path, "expected a list of ISO 3166 country codes")
    countries = []
    for i, country in enumerate(raw_countries):
        if not isinstance(country, str) or country not in COUNTRIES:
            raise InvalidConfig(
                fields.at(countries_path, i), f"{country!r} is not an ISO 3166 country code"
            )
        countries.append(country)
    inclusive = fields.flag(doc.get("inclusive", False), fields.at(path, "inclusive"))
    name = fields.text(doc.get("name", "Tax"), fields.at(path, "name")).strip()
    if len(name) > 60:
        raise InvalidConfig(fields.at(path, "name"), "at most 60 characters")
    return TaxRate(code, percent, tuple(countries), inclusive, name)


def tax_lines(
    lines: Sequence[LineDraft],
    rates: Sequence[TaxRate],
    currency: Currency,
    *,
    reverse_charge: bool = False,
) -> tuple[LineDraft, ...]:
    """The tax lines of an invoice of `lines` (see the module docstring)."""
    base = sum(line.amount_minor for line in lines if line.kind is not LineKind.TAX)
    if not rates or base == 0:
        return ()
    if reverse_charge:
        return tuple(
            _line(f"Reverse charge: {r.label}", 0, r, base, {"reverse_charge": True}) for r in rates
        )
    if rates[0].inclusive:
        weights = [Fraction(100), *(Fraction(r.percent) for r in rates)]
        net, *taxes = Money(base, currency).allocate(weights)
        return tuple(
            _line(
                f"{r.label} (included)",
                0,
                r,
                base,
                {"included_minor": tax.minor, "net_minor": net.minor},
            )
            for r, tax in zip(rates, taxes, strict=True)
        )
    return tuple(
        _line(r.label, round_half_up(Fraction(base) * Fraction(r.percent) / 100), r, base, {})
        for r in rates
    )


def tax_of(line: LineDraft) -> int:
    """The tax a `tax` line stands for: its amount, or what an inclusive price holds."""
    included = line.details.get("included_minor")
    return included if isinstance(included, int) else line.amount_minor


def _line(
    description: str, amount: int, rate: TaxRate, base: int, extra: Mapping[str, object]
) -> LineDraft:
    details: dict[str, object] = {
        "rate": rate.code,
        "percent": decimal_string(rate.percent),
        "inclusive": rate.inclusive,
        "taxable_minor": base,
        **extra,
    }
    return LineDraft(LineKind.TAX, description, Decimal(1), None, amount, None, None, details)


def breakdown(lines: Iterable[tuple[str, int, Mapping[str, object]]]) -> tuple[int, int, int]:
    """(subtotal, discount, tax) of an invoice's lines given as (kind, amount_minor,
    details): the subtotal sums the lines that are neither discount nor tax; the tax
    counts what inclusive prices hold too (so, with inclusive rates, total = subtotal +
    discount, and the tax is inside)."""
    subtotal = discount = tax = 0
    for kind, amount, details in lines:
        if kind == LineKind.DISCOUNT.value:
            discount += amount
        elif kind == LineKind.TAX.value:
            included = details.get("included_minor")
            tax += included if isinstance(included, int) else amount
        else:
            subtotal += amount
    return subtotal, discount, tax
