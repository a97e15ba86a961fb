"""Package pricing (CAT-4): a price per started block of `size` units."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain import fields
from tabkeeper.domain.money import Exact
from tabkeeper.domain.pricing.priced import Priced, check_price, checked_quantity, show

MODEL = "package"


@dataclass(frozen=True, slots=True)
class Package:
    size: Decimal
    price: Decimal

    def __post_init__(self) -> None:
        check_price(self.size, "size", positive=True)
        check_price(self.price, "price")

    @classmethod
    def parse(cls, data: Mapping[str, object], path: str) -> Package:
        fields.only_keys(data, ("model", "size", "price"), path)
        size = fields.positive_decimal(fields.required(data, "size", path), fields.at(path, "size"))
        price = fields.decimal(fields.required(data, "price", path), fields.at(path, "price"))
        return cls(size, price)


def price_package(config: Package, quantity: Exact) -> Priced:
    units = checked_quantity(quantity)
    packages = math.ceil(units / Fraction(config.size))
    details = {
        "model": MODEL,
        "units": show(units),
        "size": show(config.size),
        "packages": packages,
        "package_price": show(config.price),
    }
    return Priced(packages * Fraction(config.price), None, details)
