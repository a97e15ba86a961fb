"""Volume tiers (CAT-4): every unit at the unit price of the tier that holds the whole
quantity, plus that tier's flat price. A quantity of 0 costs nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from tabkeeper.domain.money import Exact
from tabkeeper.domain.pricing.priced import Priced, checked_quantity, show
from tabkeeper.domain.pricing.tiers import Tier, check_tiers, parse_tiers

MODEL = "volume"


@dataclass(frozen=True, slots=True)
class Volume:
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        check_tiers(self.tiers, "tiers")

    @classmethod
    def parse(cls, data: Mapping[str, object], path: str) -> Volume:
        return cls(parse_tiers(data, MODEL, path))

    def tier_for(self, units: Fraction) -> tuple[int, Tier]:
        """The tier that holds `units` (the first whose up_to is at least it)."""
        for index, tier in enumerate(self.tiers):
            if tier.up_to is None or units <= Fraction(tier.up_to):
                return index, tier
        raise AssertionError("the last tier is open")  # pragma: no cover - check_tiers


def price_volume(config: Volume, quantity: Exact) -> Priced:
    units = checked_quantity(quantity)
    if units == 0:
        return Priced(units, None, {"model": MODEL, "units": "0", "tier": None})
    index, tier = config.tier_for(units)
    amount = units * Fraction(tier.unit_price) + Fraction(tier.flat_price)
    details = {"model": MODEL, "units": show(units), "tier": {**tier.shown(), "index": index}}
    return Priced(amount, tier.unit_price, details)
