"""What a plan card of the billing tab says besides its price and included usage (PRT-1;
issue 12 item 8): its limits (agents, team seats, phone numbers, channels; 0 is "No …"),
what usage over the included costs (each overage price, by its model), and which meters
stop at the included quantity (a hard stop). Pure: text from the catalog's plan."""

from __future__ import annotations

from decimal import Decimal

from tabkeeper.domain.catalog import Plan, Resource
from tabkeeper.domain.money import Currency
from tabkeeper.domain.pricing import Graduated, Package, PerUnit, PricingConfig, Volume

NOUNS = {
    Resource.AGENTS: ("agent", "agents"),
    Resource.SEATS: ("team seat", "team seats"),
    Resource.PHONE_NUMBERS: ("phone number", "phone numbers"),
    Resource.CHANNELS: ("channel", "channels"),
}


def _amount(value: Decimal, currency: Currency) -> str:
    """A unit price as the catalog wrote it, at least to the currency's exponent
    ("0.05 USD", "0.001 USD", "5 JPY")."""
    whole, _, fraction = format(value.normalize(), "f").partition(".")
    fraction = fraction.ljust(currency.exponent, "0")
    return f"{whole}.{fraction} {currency.code}" if fraction else f"{whole} {currency.code}"


def _label(meter: str) -> str:
    return meter.replace("_", " ")


def limit_texts(plan: Plan) -> list[str]:
    """ "1 agent", "No team seats", "3 phone numbers": each limit the plan sets."""
    texts = []
    for resource, (one, many) in NOUNS.items():
        count = plan.limit(resource)
        if count is None:
            continue
        texts.append(f"No {many}" if count == 0 else f"{count:,} {one if count == 1 else many}")
    return texts


def overage_text(meter: str, config: PricingConfig, currency: Currency, included: bool) -> str:
    """What usage of `meter` (over the included, when the plan includes some) costs."""
    label = _label(meter)
    what = f"Over the included {label}" if included else label.capitalize()
    if isinstance(config, PerUnit):
        return f"{what}: {_amount(config.unit_price, currency)} each"
    if isinstance(config, Package):
        size = format(config.size.normalize(), "f")
        return f"{what}: {_amount(config.price, currency)} per {size} started"
    assert isinstance(config, Graduated | Volume)
    kind = "graduated" if isinstance(config, Graduated) else "volume"
    first = config.tiers[0].unit_price
    return f"{what}: {kind} tiers from {_amount(first, currency)} each"


def plan_facts(plan: Plan) -> tuple[str, ...]:
    """The plan card's lines after its included usage: limits, overage prices, hard stops."""
    currency = plan.price.currency
    texts = limit_texts(plan)
    for meter in plan.includes:
        if meter in plan.overage:
            texts.append(overage_text(meter, plan.overage[meter], currency, True))
        else:
            texts.append(f"Stops at the included {_label(meter)} (no overage)")
    for meter, config in plan.overage.items():
        if meter not in plan.includes:
            texts.append(overage_text(meter, config, currency, False))
    return tuple(texts)
