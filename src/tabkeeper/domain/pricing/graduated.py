"""Graduated tiers (CAT-4): each tier the quantity reaches adds its flat price and its
own units at its own unit price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from tabkeeper.domain.money import Exact
from tabkeeper.domain.pricing.priced import Priced, checked_quantity, show
from tabkeeper.domain.pricing.tiers import Tier, check_tiers, parse_tiers

MODEL = "graduated"


@dataclass(frozen=True, slots=True)
class Graduated:
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        check_tiers(self.tiers, "tiers")

    @classmethod
    def parse(cls, data: Mapping[str, object], path: str) -> Graduated:
        return cls(parse_tiers(data, MODEL, path))


def price_graduated(config: Graduated, quantity: Exact) -> Priced:
    units = checked_quantity(quantity)
    amount = Fraction(0)
    lower = Fraction(0)
    breakdown: list[dict[str, object]] = []
    for tier in config.tiers:
        if units <= lower:
            break
        upper = units if tier.up_to is None else min(units, Fraction(tier.up_to))
        in_tier = upper - lower
        tier_amount = Fraction(tier.flat_price) + in_tier * Fraction(tier.unit_price)
        amount += tier_amount
        breakdown.append({**tier.shown(), "units": show(in_tier), "amount": show(tier_amount)})
        if tier.up_to is not None:
            lower = Fraction(tier.up_to)
    details = {"model": MODEL, "units": show(units), "tiers": breakdown}
    return Priced(amount, None, details)
