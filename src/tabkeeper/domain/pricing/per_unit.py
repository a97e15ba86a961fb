"""Per-unit pricing (CAT-4): every unit at one price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain import fields
from tabkeeper.domain.money import Exact
from tabkeeper.domain.pricing.priced import Priced, check_price, checked_quantity, show

MODEL = "per_unit"


@dataclass(frozen=True, slots=True)
class PerUnit:
    unit_price: Decimal

    def __post_init__(self) -> None:
        check_price(self.unit_price, "unit_price")

    @classmethod
    def parse(cls, data: Mapping[str, object], path: str) -> PerUnit:
        fields.only_keys(data, ("model", "unit_price"), path)
        unit_price = fields.required(data, "unit_price", path)
        return cls(fields.decimal(unit_price, fields.at(path, "unit_price")))


def price_per_unit(config: PerUnit, quantity: Exact) -> Priced:
    units = checked_quantity(quantity)
    amount = units * Fraction(config.unit_price)
    details = {"model": MODEL, "units": show(units), "unit_price": show(config.unit_price)}
    return Priced(amount, config.unit_price, details)
