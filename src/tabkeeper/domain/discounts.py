"""Coupons and the discount line (SPEC INV-6).

A coupon is defined in the catalog (domain/coupons.py); `check_redeemable` says whether
it may be redeemed now.

A redeemed coupon (a `Redemption`) covers periods of the organization's subscription: the
first invoice that starts a period (it has a `subscription` line) with a line the coupon
is for, while periods are left, takes one and makes it the covered period. The discount
line of an invoice is computed on its eligible lines (kinds `subscription`, `proration`,
`addon`; of a plan or add-on in `applies_to`) that lie within the covered period, rounded
ONCE:
- percent: −(sum of those lines) × percent / 100. Proration lines are so discounted like
  the lines they prorate: the credit for unused time on a discounted plan gives back the
  discounted price, the charge for the new plan is discounted alike;
- amount: taken once per covered period, on the invoice that starts it: −min(amount, the
  eligible lines of that period). An invoice within the period (a mid-period change) gets
  none: the period had its amount off already; the credit and the charge of a change
  within one interval both carried it, and it cancels out (A × f − A × f).
Never below zero: on an invoice whose lines add up to S ≥ 0 the discount is at most S.
An invoice already negative (a downgrade's credit) keeps a percent discount, which then
lowers the credit (the customer paid that much less).

Usage, credit purchases and tax are never discounted; tax is computed after the discount
(domain/taxes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from tabkeeper.domain.coupons import Coupon
from tabkeeper.domain.errors import Refused
from tabkeeper.domain.invoicing import LineDraft, LineKind
from tabkeeper.domain.money import Currency, decimal_string, round_half_up
from tabkeeper.domain.utc import format_instant

ELIGIBLE = (LineKind.SUBSCRIPTION, LineKind.PRORATION, LineKind.ADDON)


def check_redeemable(
    coupon: Coupon, now: datetime, redeemed: int, plan: str | None, addons: Sequence[str] = ()
) -> None:
    """Refuse a redemption of `coupon` now (`redeemed`: how many were made already) for a
    subscription to `plan` with `addons` (plan None: no subscription yet, not checked).
    Codes: coupon_expired, coupon_exhausted, coupon_not_applicable."""
    if coupon.redeem_by is not None and now >= coupon.redeem_by:
        raise Refused(
            f"The coupon {coupon.code!r} could be redeemed until "
            f"{format_instant(coupon.redeem_by)}; it has expired.",
            code="coupon_expired",
        )
    if coupon.max_redemptions is not None and redeemed >= coupon.max_redemptions:
        raise Refused(
            f"The coupon {coupon.code!r} was redeemed as many times as it may be "
            f"({coupon.max_redemptions}).",
            code="coupon_exhausted",
        )
    applies = plan is None or any(coupon.applies_to_code(c) for c in (plan, *addons))
    if not applies:
        raise Refused(
            f"The coupon {coupon.code!r} is not for the plan {plan!r} "
            f"(it is for {', '.join(sorted(coupon.applies_to or ()))}).",
            code="coupon_not_applicable",
        )


@dataclass(frozen=True, slots=True)
class Redemption:
    """A coupon redeemed by an organization: how many periods it has covered, and the one
    it covers now (None before its first)."""

    coupon: Coupon
    periods_used: int = 0
    covered_start: datetime | None = None
    covered_end: datetime | None = None

    @property
    def periods_left(self) -> int | None:
        """None: forever."""
        periods = self.coupon.periods
        return None if periods is None else max(0, periods - self.periods_used)

    @property
    def finished(self) -> bool:
        """Every period it was for is covered and over (no more discounts to give)."""
        return self.periods_left == 0


def discount_line(
    redemption: Redemption, lines: Sequence[LineDraft], currency: Currency
) -> tuple[LineDraft | None, Redemption]:
    """The discount line of an invoice of `lines` (None: nothing to take off) and the
    redemption after it (a period taken when the invoice starts one)."""
    coupon = redemption.coupon
    after = redemption
    opened = False
    starting = next((ln for ln in lines if ln.kind is LineKind.SUBSCRIPTION), None)
    if starting is not None and starting.period_start is not None:
        is_covered = (starting.period_start, starting.period_end) == (
            redemption.covered_start,
            redemption.covered_end,
        )
        left = redemption.periods_left
        applies = any(
            ln.kind in ELIGIBLE
            and coupon.applies_to_code(_code_of(ln))
            and ln.period_start == starting.period_start
            for ln in lines
        )  # a period with nothing the coupon is for does not use up one of its periods
        if applies and not is_covered and (left is None or left > 0):
            after = replace(
                redemption,
                periods_used=redemption.periods_used + 1,
                covered_start=starting.period_start,
                covered_end=starting.period_end,
            )
            opened = True
    if after.covered_start is None or after.covered_end is None:
        return None, after
    start, end = after.covered_start, after.covered_end
    eligible = [
        ln
        for ln in lines
        if ln.kind in ELIGIBLE
        and coupon.applies_to_code(_code_of(ln))
        and ln.period_start is not None
        and ln.period_end is not None
        and start <= ln.period_start
        and ln.period_end <= end
    ]
    base = sum(ln.amount_minor for ln in eligible)
    if coupon.percent_off is not None:
        amount = -round_half_up(Fraction(base) * Fraction(coupon.percent_off) / 100)
    elif opened and coupon.amount_off is not None:
        amount = -min(coupon.amount_off.minor, max(0, base))
    else:
        amount = 0
    subtotal = sum(ln.amount_minor for ln in lines)
    if subtotal >= 0:
        amount = max(amount, -subtotal)  # never below zero (INV-6)
    if amount == 0:
        return None, after
    details: dict[str, object] = {"coupon": coupon.code, "base_minor": base}
    if coupon.percent_off is not None:
        details["percent_off"] = decimal_string(coupon.percent_off)
    else:
        assert coupon.amount_off is not None
        details["amount_off"] = coupon.amount_off.major_str()
    if coupon.periods is not None:
        details["period"] = f"{after.periods_used}/{coupon.periods}"
    line = LineDraft(LineKind.DISCOUNT, coupon.label, Decimal(1), None, amount, None, None, details)
    return line, after


def _code_of(line: LineDraft) -> str:
    code = line.details.get("plan", line.details.get("addon"))
    return code if isinstance(code, str) else ""
