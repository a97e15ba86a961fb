"""Coupons as the catalog defines them (SPEC INV-6; SCENARIOS.md `catalog.coupons`).

    coupons:
      launch: {percent_off: "20", duration: {periods: 3}, applies_to: [pro, extra_agent]}
      fiver: {amount_off: "5.00", duration: forever, max_redemptions: 100,
              redeem_by: "2027-01-01T00:00:00Z", name: "Five off"}

`percent_off` (above 0, at most 100) or `amount_off` (in the catalog's currency, above
0); `duration` `once` (one period, the default), `forever` or `{periods: N}`;
`applies_to` plan and add-on codes of the catalog (left out: every plan and add-on);
`max_redemptions` (how many organizations may redeem it, all told); `redeem_by` (from
then on, no new redemption; those made keep running). What a coupon takes off an invoice
is domain/discounts.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tabkeeper.domain import fields
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency, Money, decimal_string
from tabkeeper.domain.utc import parse_instant, require_utc

MAX_MINOR = 2_147_483_647


@dataclass(frozen=True, slots=True)
class Coupon:
    """A coupon of the catalog; exactly one of `percent_off` and `amount_off`.
    `periods` None: forever."""

    code: str
    name: str
    percent_off: Decimal | None
    amount_off: Money | None
    periods: int | None
    applies_to: frozenset[str] | None = None
    max_redemptions: int | None = None
    redeem_by: datetime | None = None

    @property
    def label(self) -> str:
        """What the discount line says: "Launch (20% off)", "Five off (5.00 off)"."""
        if self.percent_off is not None:
            return f"{self.name} ({decimal_string(self.percent_off)}% off)"
        assert self.amount_off is not None
        return f"{self.name} ({self.amount_off.major_str()} off)"

    def applies_to_code(self, code: str) -> bool:
        return self.applies_to is None or code in self.applies_to


def build_coupons(
    data: object, currency: Currency, known: frozenset[str], path: str = "coupons"
) -> Mapping[str, Coupon]:
    """`catalog.coupons` read and checked; `known`: the catalog's plan and add-on codes."""
    doc = fields.mapping(data, path)
    coupons = {}
    for code, raw in doc.items():
        here = fields.at(path, code)
        fields.name(code, here)
        coupons[code] = _coupon(code, raw, here, currency, known)
    return coupons


_FIELDS = (
    "name", "percent_off", "amount_off", "duration", "applies_to", "max_redemptions", "redeem_by"
)  # fmt: skip


def _coupon(code: str, raw: object, path: str, currency: Currency, known: frozenset[str]) -> Coupon:
    doc = fields.mapping(raw, path)
    fields.only_keys(doc, _FIELDS, path)
    if ("percent_off" in doc) == ("amount_off" in doc):
        raise InvalidConfig(path, "give either percent_off or amount_off (one of them)")
    percent = amount = None
    if "percent_off" in doc:
        percent = fields.positive_decimal(doc["percent_off"], fields.at(path, "percent_off"))
        if percent > 100:
            raise InvalidConfig(fields.at(path, "percent_off"), f"at most 100, got {percent}")
    else:
        try:
            amount = Money.parse(doc["amount_off"], currency, "amount_off")
        except InvalidInput as error:
            raise InvalidConfig(fields.at(path, "amount_off"), error.message) from None
        if amount.minor <= 0 or amount.minor > MAX_MINOR:
            raise InvalidConfig(fields.at(path, "amount_off"), "must be above 0")
    periods = _duration(doc.get("duration", "once"), fields.at(path, "duration"))
    applies_to = None
    if doc.get("applies_to") is not None:
        codes = fields.names(doc["applies_to"], fields.at(path, "applies_to"))
        for i, item in enumerate(codes):
            if item not in known:
                raise InvalidConfig(
                    fields.at(fields.at(path, "applies_to"), i), f"unknown plan or add-on {item!r}"
                )
        applies_to = frozenset(codes)
    limit = doc.get("max_redemptions")
    redeem_by = doc.get("redeem_by")
    name = fields.text(doc.get("name", code), fields.at(path, "name")).strip()[:80]
    return Coupon(
        code=code,
        name=name,
        percent_off=percent,
        amount_off=amount,
        periods=periods,
        applies_to=applies_to,
        max_redemptions=None
        if limit is None
        else fields.whole(limit, fields.at(path, "max_redemptions"), minimum=1),
        redeem_by=None if redeem_by is None else _instant(redeem_by, fields.at(path, "redeem_by")),
    )


def _duration(value: object, path: str) -> int | None:
    if value == "once":
        return 1
    if value == "forever":
        return None
    if isinstance(value, Mapping):
        fields.only_keys(value, ("periods",), path)
        return fields.whole(fields.required(value, "periods", path), f"{path}.periods", minimum=1)
    raise InvalidConfig(path, f"expected once, forever or {{periods: N}}, got {value!r}")


def _instant(value: object, path: str) -> datetime:
    if isinstance(value, datetime):
        try:
            return require_utc(value, path)
        except InvalidInput as error:
            raise InvalidConfig(path, error.message) from None
    try:
        return parse_instant(value, path)
    except InvalidInput as error:
        raise InvalidConfig(path, error.message.removeprefix(f"{path}: ")) from None
