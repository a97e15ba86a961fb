"""The spend cap (SPEC LIM-6) and auto top-up (CRD-6): pure rules.

What counts against the cap in a period is what is charged beyond the plan: the overage
accrued at its price (`overage_minor`, the amount the period's usage line would show, so
priced by the meter's own model and rounded once) and the credit purchases and auto
top-ups charged in the period. The service keeps both as counters on the billing
organization's credit balance row, so the check compares two numbers it has already read
(`cap_reached`). At the cap a meter billed as overage stops like a hard-stop quota and a
top-up is refused (`SpendCapReached`); `spend_cap_80` and `spend_cap_100` are told once per
period when the spend crosses 80% and 100% of the cap (`crossed_levels`).

Auto top-up: `auto_fires` says whether a change of the balance calls for one (below the
threshold, nothing in flight); the settings are validated by `auto_settings`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain.catalog import Plan
from tabkeeper.domain.decisions import SPEND_CAP_MESSAGE
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.ledger import MAX_CREDITS
from tabkeeper.domain.metering import quantity_decimal
from tabkeeper.domain.money import Currency, Money, to_fraction
from tabkeeper.domain.pricing import price as price_quantity
from tabkeeper.domain.utc import format_instant

SPEND_CAP_REACHED = "spend_cap_reached"
__all__ = ["SPEND_CAP_MESSAGE", "SpendCapReached"]

MAX_SPEND_CAP_MINOR = 2**31 - 1
"""The largest cap, in minor units (catalog amounts stay within 32 bits too)."""
LEVELS = (80, 100)
"""The notices' levels, in percent of the cap: `spend_cap_80`, `spend_cap_100`."""


class SpendCapReached(Refused):
    """LIM-6: the charge would take the period's spend past the cap; nothing changed."""

    code = SPEND_CAP_REACHED


def spend_cap(value: object, currency: Currency) -> int | None:
    """A cap given as a decimal string in major units of the platform's currency ("50.00")
    or None (no cap): its minor units, greater than zero."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f'amount: expected a decimal string in {currency.code} ("50.00"), got {value!r}',
            code="invalid_spend_cap",
        )
    try:
        minor = Money.parse(value, currency, "amount").minor
    except InvalidInput as error:
        raise InvalidInput(str(error), code="invalid_spend_cap") from error
    if not 1 <= minor <= MAX_SPEND_CAP_MINOR:
        top = Money(MAX_SPEND_CAP_MINOR, currency)
        raise InvalidInput(
            f"amount: a spend cap must be more than 0 and at most {top.major_str()}, got {value}",
            code="invalid_spend_cap",
        )
    return minor


def spend_key(subscription_id: int | None, period_start: datetime | None) -> str:
    """The period the spend counts for ("" without a subscription period)."""
    if subscription_id is None or period_start is None:
        return ""
    return f"{subscription_id}:{format_instant(period_start)}"


def overage_minor(plan: Plan, meter: str, used: Fraction | Decimal) -> int:
    """LIM-6: the overage of `meter` at `used` this period, at its price, in minor units
    (0 when the plan has no overage price for it or nothing is over the included part);
    the amount the period's usage line shows (domain/invoicing.py `usage_line`)."""
    config = plan.overage.get(meter)
    if config is None:
        return 0
    exact = to_fraction(quantity_decimal(used))
    included = to_fraction(plan.includes.get(meter, Decimal(0)))
    if exact <= included:
        return 0
    return price_quantity(config, exact, free_units=included).minor(plan.price.currency)


def cap_reached(spent: int, cap: int | None) -> bool:
    """LIM-6: the period's spend is at (or past) the cap."""
    return cap is not None and spent >= cap


def exceeds(spent: int, charge: int, cap: int | None) -> bool:
    """LIM-6: a charge of `charge` would take the spend past the cap (a top-up refused)."""
    return cap is not None and (spent >= cap or spent + charge > cap)


def cap_message(spent: int, cap: int, charge: int, currency: Currency) -> str:
    left = Money(max(cap - spent, 0), currency)
    return (
        f"Your spend cap of {Money(cap, currency).major_str()} {currency.code} for this "
        f"billing period leaves {left.major_str()}; this charge of "
        f"{Money(charge, currency).major_str()} would pass it. Raise the cap to continue."
    )


def crossed_levels(before: int, after: int, cap: int | None) -> tuple[int, ...]:
    """LIM-6: the levels (80, 100) the spend crossed going from `before` to `after`."""
    if cap is None:
        return ()
    return tuple(level for level in LEVELS if before * 100 < level * cap <= after * 100)


def reached_levels(spent: int, cap: int | None) -> tuple[int, ...]:
    """LIM-6: the levels the spend is at or past (a cap set below what was spent)."""
    return crossed_levels(0, spent, cap) if spent > 0 else ()


def auto_settings(threshold: object, credits: object) -> tuple[int, int]:
    """CRD-6: the threshold (whole credits 1..MAX_CREDITS) and the credits to buy each time
    (1..MAX_CREDITS)."""
    for name, value in (("threshold", threshold), ("credits", credits)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CREDITS:
            raise InvalidInput(
                f"{name}: expected a whole number of credits from 1 to {MAX_CREDITS:,}, "
                f"got {value!r}",
                code="invalid_auto_top_up",
            )
    assert isinstance(threshold, int) and isinstance(credits, int)
    return threshold, credits


def auto_fires(after: int, threshold: int | None, pending: str | None) -> bool:
    """CRD-6: a balance of `after` calls for an auto top-up: below the threshold, with
    none in flight."""
    return threshold is not None and pending is None and after < threshold
