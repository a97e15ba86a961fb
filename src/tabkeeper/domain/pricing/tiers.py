"""Tiers shared by graduated and volume pricing (CAT-4).

`up_to` is inclusive; the last tier has `up_to: None` (no upper bound); bounds rise
strictly. `unit_price` and `flat_price` default to 0 and may have more decimals than the
currency (they are rounded once, on the invoice line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tabkeeper.domain import fields
from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.pricing.priced import check_price, show


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None
    unit_price: Decimal = Decimal(0)
    flat_price: Decimal = Decimal(0)

    def shown(self) -> dict[str, object]:
        return {
            "up_to": None if self.up_to is None else show(self.up_to),
            "unit_price": show(self.unit_price),
            "flat_price": show(self.flat_price),
        }


def check_tiers(tiers: Sequence[Tier], path: str) -> tuple[Tier, ...]:
    """The tiers as a tuple, or InvalidConfig naming the first tier that breaks a rule."""
    result = tuple(tiers)
    if not result:
        raise InvalidConfig(path, "needs at least one tier")
    previous: Decimal = Decimal(0)
    for i, tier in enumerate(result):
        here = fields.at(path, i)
        check_price(tier.unit_price, fields.at(here, "unit_price"))
        check_price(tier.flat_price, fields.at(here, "flat_price"))
        if tier.up_to is not None:
            check_price(tier.up_to, fields.at(here, "up_to"), positive=True)
        last = i == len(result) - 1
        if tier.up_to is None:
            if not last:
                raise InvalidConfig(fields.at(here, "up_to"), "only the last tier may be open")
            continue
        if last:
            raise InvalidConfig(fields.at(here, "up_to"), "the last tier must have up_to: null")
        if tier.up_to <= previous:
            raise InvalidConfig(
                fields.at(here, "up_to"), f"must be greater than {previous}, got {tier.up_to}"
            )
        previous = tier.up_to
    return result


def parse_tiers(data: Mapping[str, object], model: str, path: str) -> tuple[Tier, ...]:
    fields.only_keys(data, ("model", "tiers"), path)
    raw = fields.required(data, "tiers", path)
    tiers_path = fields.at(path, "tiers")
    if not isinstance(raw, list):
        raise InvalidConfig(tiers_path, f"{model} pricing needs a list of tiers")
    tiers = []
    for i, item in enumerate(raw):
        here = fields.at(tiers_path, i)
        entry = fields.mapping(item, here)
        fields.only_keys(entry, ("up_to", "unit_price", "flat_price"), here)
        if "up_to" not in entry:
            raise InvalidConfig(fields.at(here, "up_to"), "is required (null for the last tier)")
        up_to = entry["up_to"]
        tiers.append(
            Tier(
                None if up_to is None else fields.decimal(up_to, fields.at(here, "up_to")),
                fields.decimal(entry.get("unit_price", 0), fields.at(here, "unit_price")),
                fields.decimal(entry.get("flat_price", 0), fields.at(here, "flat_price")),
            )
        )
    return check_tiers(tiers, tiers_path)
