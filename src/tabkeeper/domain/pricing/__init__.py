"""Unit pricing models (CAT-4), one small module each, and a registry by model name.

    config = parse_pricing({"model": "per_unit", "unit_price": "0.10"}, "overage.minutes")
    priced = price(config, Decimal(520), free_units=Decimal(500))   # prices the 20 over
    priced.minor(usd) == 200

Every model is a pure function of a typed config that validates itself; it returns the
exact amount (a Fraction, in major units) and a breakdown an invoice line can show. The
invoice line rounds once (`Priced.minor`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tabkeeper.domain import fields
from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.money import Exact
from tabkeeper.domain.pricing import graduated, package, per_unit, volume
from tabkeeper.domain.pricing.graduated import Graduated, price_graduated
from tabkeeper.domain.pricing.package import Package, price_package
from tabkeeper.domain.pricing.per_unit import PerUnit, price_per_unit
from tabkeeper.domain.pricing.priced import Priced, checked_quantity, show
from tabkeeper.domain.pricing.tiers import Tier
from tabkeeper.domain.pricing.volume import Volume, price_volume

PricingConfig = PerUnit | Package | Graduated | Volume

__all__ = [
    "MODELS",
    "Graduated",
    "Package",
    "PerUnit",
    "Priced",
    "PricingConfig",
    "Tier",
    "Volume",
    "model_name",
    "parse_pricing",
    "price",
]


@dataclass(frozen=True, slots=True)
class PricingModel:
    """A registered model: how to read its config and how to price with it."""

    name: str
    config_type: type[Any]
    parse: Callable[[Mapping[str, object], str], PricingConfig]
    price: Callable[[Any, Exact], Priced]


MODELS: Mapping[str, PricingModel] = {
    model.name: model
    for model in (
        PricingModel(per_unit.MODEL, PerUnit, PerUnit.parse, price_per_unit),
        PricingModel(package.MODEL, Package, Package.parse, price_package),
        PricingModel(graduated.MODEL, Graduated, Graduated.parse, price_graduated),
        PricingModel(volume.MODEL, Volume, Volume.parse, price_volume),
    )
}


def parse_pricing(data: object, path: str) -> PricingConfig:
    """A pricing config from its document form: `{"model": name, ...fields}`."""
    entry = fields.mapping(data, path)
    model = fields.choice(
        fields.required(entry, "model", path), MODELS, fields.at(path, "model"), "pricing model"
    )
    return MODELS[model].parse(entry, path)


def model_name(config: PricingConfig) -> str:
    for model in MODELS.values():
        if isinstance(config, model.config_type):
            return model.name
    raise InvalidConfig("model", f"not a pricing config: {config!r}")


def price(config: PricingConfig, quantity: Exact, free_units: Exact = 0) -> Priced:
    """Price `quantity` less `free_units` (the plan's included quantity) under `config`.

    The billable quantity is max(0, quantity − free_units); the breakdown also shows the
    used and free quantities.
    """
    used = checked_quantity(quantity)
    free = checked_quantity(free_units)
    billable = max(used - free, used * 0)
    model = MODELS[model_name(config)]
    priced = model.price(config, billable)
    details = {**priced.details, "used": show(used), "free_units": show(free)}
    return Priced(priced.amount, priced.unit_amount, details)
