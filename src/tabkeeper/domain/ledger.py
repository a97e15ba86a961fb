"""Prepaid AI credits: grants, the order they pay for a use in, expiry, and what a use or
a top-up costs (SPEC CRD-1, CRD-2, CRD-3; INV-1 for the top-up price).

The ledger (services/credits.py keeps it) is append-only: every change is an entry, a
grant (+amount), a use (−credits) or an expiry (−what a grant had left), so the balance
is always the sum of the entries (CRD-2). Each grant keeps what is left of it
(`remaining`), never below zero; the balance is also the sum of `remaining` over the
grants that have not expired.

Which grants pay for a use (`allocate`), in this order (CRD-2):
1. plan-included credits first;
2. then the lower `priority` number (0 to 100, default 50: as payment providers number
   credit grants);
3. then the earlier expiry (a grant that never expires comes after every one that does);
4. then the older grant (the lower id).
A use larger than the first grant's remainder draws from the next ones too.

A grant has expired at `expires_at` (a deadline equal to `now` has passed); what it had
left then leaves the balance as an expiry entry. Purchased credits never expire and are
never refunded; plan-included credits expire at their period's end (or never, if the plan
says so).

Quantities are whole credits: a top-up or grant 1 to `MAX_CREDITS`, a use 1 to `MAX_USES`
uses of a feature; anything else (0, negative, fractional, text, true/false, huge) is
refused with InvalidInput naming it. A top-up's default price is credits × the catalog's
credit price, rounded once (`round_to_minor`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tabkeeper.domain.catalog import Catalog
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money, round_to_minor
from tabkeeper.domain.utc import format_instant, require_utc

MAX_CREDITS = 10_000_000
"""The most credits one top-up or grant may add."""
MAX_USES = 10_000
"""The most uses of one feature one consumption may carry."""
MAX_BATCH_USES = 1_000
"""The most uses one batch of consumptions may carry."""
MAX_PRICE_MINOR = 2_147_483_647
"""The largest top-up price in minor units (an invoice amount's column)."""
DEFAULT_PRIORITY = 50
LOWEST_PRIORITY = 100


class GrantKind(StrEnum):
    """Where a grant's credits come from."""

    PURCHASED = "purchased"  # a top-up: never expires, never refunded
    INCLUDED = "included"  # the plan's credits of one period: used first
    ADJUSTMENT = "adjustment"  # given by the platform (goodwill, promotion)


class EntryKind(StrEnum):
    GRANT = "grant"
    USE = "use"
    EXPIRY = "expiry"
    HOLD = "hold"  # CRD-5: credits reserved (domain/holds.py)
    RELEASE = "release"  # CRD-5: a hold's credits put back (settled, released, expired)
    REPAYMENT = "repayment"  # CRD-5: a top-up repaying a settle's shortfall


class CreditsExhausted(Refused):
    """CRD-3: the balance cannot cover the use; nothing was taken."""

    code = "credits_exhausted"


def whole_credits(value: object, what: str, maximum: int = MAX_CREDITS) -> int:
    """`value` as a whole number of credits from 1 to `maximum`; anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInput(
            f"{what}: expected a whole number of credits from 1 to {maximum:,}, got {value!r}",
            code="invalid_credits",
        )
    if isinstance(value, Decimal) and (not value.is_finite() or value != value.to_integral_value()):
        raise InvalidInput(
            f"{what}: credits are whole numbers, got {value}", code="invalid_credits"
        )
    number = int(value)
    if not 1 <= number <= maximum:
        raise InvalidInput(
            f"{what}: expected a whole number of credits from 1 to {maximum:,}, got {number}",
            code="invalid_credits",
        )
    return number


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant of credits and what is left of it."""

    id: int
    kind: GrantKind
    amount: int
    remaining: int
    priority: int = DEFAULT_PRIORITY
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", GrantKind(self.kind))
        for name in ("id", "amount", "remaining", "priority"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"grant {name}: expected a whole number, got {value!r}")
        if not 0 <= self.remaining <= self.amount:
            raise InvalidInput(
                f"grant {self.id}: remaining {self.remaining} must be from 0 to its amount "
                f"{self.amount}"
            )
        require_priority(self.priority)
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", require_utc(self.expires_at, "expires_at"))

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def live(self, now: datetime) -> bool:
        """Has credits left that may pay for a use at `now`."""
        return self.remaining > 0 and not self.expired(now)


def require_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LOWEST_PRIORITY:
        raise InvalidInput(
            f"priority: expected a whole number from 0 to {LOWEST_PRIORITY}, got {value!r}",
            code="invalid_priority",
        )
    return value


def draw_order(grant: Grant) -> tuple[bool, int, bool, str, int]:
    """The sort key of `allocate`: included first, then priority, earlier expiry, older."""
    expiry = "" if grant.expires_at is None else format_instant(grant.expires_at)
    return (
        grant.kind is not GrantKind.INCLUDED,
        grant.priority,
        grant.expires_at is None,
        expiry,
        grant.id,
    )


@dataclass(frozen=True, slots=True)
class Draw:
    """Part of a use paid by one grant."""

    grant_id: int
    credits: int


def balance_of(grants: Iterable[Grant], now: datetime) -> int:
    """What the grants can still pay at `now`."""
    now = require_utc(now, "now")
    return sum(grant.remaining for grant in grants if grant.live(now))


def allocate(grants: Iterable[Grant], cost: int, now: datetime) -> tuple[Draw, ...]:
    """CRD-2: the grants that pay for a use of `cost` credits at `now`, in draw order.

    CreditsExhausted when the live grants hold less than `cost` (CRD-3)."""
    cost = whole_credits(cost, "cost", MAX_CREDITS * MAX_USES)
    now = require_utc(now, "now")
    live = sorted((g for g in grants if g.live(now)), key=draw_order)
    balance = sum(grant.remaining for grant in live)
    if balance < cost:
        raise CreditsExhausted(exhausted_message(balance, cost))
    draws = []
    left = cost
    for grant in live:
        taken = min(left, grant.remaining)
        draws.append(Draw(grant.id, taken))
        left -= taken
        if left == 0:
            break
    return tuple(draws)


def exhausted_message(balance: int, cost: int) -> str:
    return (
        f"Not enough AI credits for this feature: it costs {cost:,} and the balance is "
        f"{balance:,}. Top up credits to continue."
    )


@dataclass(frozen=True, slots=True)
class Expiry:
    """What a grant had left when it expired, and when."""

    grant_id: int
    credits: int
    at: datetime


def expiries(grants: Iterable[Grant], now: datetime) -> tuple[Expiry, ...]:
    """The grants that have expired by `now` with credits left, earliest first."""
    now = require_utc(now, "now")
    due = [g for g in grants if g.remaining > 0 and g.expired(now)]
    return tuple(
        Expiry(g.id, g.remaining, g.expires_at)
        for g in sorted(due, key=lambda g: (g.expires_at, g.id))
        if g.expires_at is not None
    )


def next_expiry(grants: Iterable[Grant]) -> datetime | None:
    """The earliest expiry of a grant with credits left (when the balance next drops)."""
    found = [g.expires_at for g in grants if g.remaining > 0 and g.expires_at is not None]
    return min(found) if found else None


def use_cost(catalog: Catalog, feature: object, uses: object = 1) -> int:
    """CRD-1: the credits `uses` uses of `feature` cost at the platform's rate."""
    if not isinstance(feature, str) or feature not in catalog.ai_features:
        known = ", ".join(sorted(catalog.ai_features)) or "none"
        raise InvalidInput(
            f"feature: unknown AI feature {feature!r}; the platform sets credit rates for: {known}",
            code="unknown_feature",
        )
    count = whole_credits(uses, "quantity", MAX_USES)
    return catalog.ai_features[feature].credits * count


def cheapest_use(catalog: Catalog) -> int:
    """The cost of the cheapest AI feature (1 when there are none): below it, the balance
    pays for nothing and the organization is told (`credits.exhausted`)."""
    return min((f.credits for f in catalog.ai_features.values()), default=1)


def crossed_into_exhaustion(before: int, after: int, cheapest: int) -> bool:
    """This use took the balance from covering the cheapest feature to not covering it."""
    return before >= cheapest > after


def top_up_price(catalog: Catalog, credits: int, price: Money | None, currency: Currency) -> Money:
    """INV-1: the total of a top-up: `price` when given, else credits × the catalog's
    credit price, rounded once. Refused when neither is known, or out of range."""
    credits = whole_credits(credits, "credits")
    if price is None:
        if catalog.credit_price is None:
            raise InvalidInput(
                "price: the catalog sets no credit_price, so a top-up needs its price",
                code="price_required",
            )
        price = Money(round_to_minor(catalog.credit_price * credits, currency), currency)
    if not isinstance(price, Money) or price.currency != currency:
        raise InvalidInput(f"price: expected an amount in {currency.code}, got {price!r}")
    if not 0 <= price.minor <= MAX_PRICE_MINOR:
        raise InvalidInput(
            f"price: must be from 0 to {Money(MAX_PRICE_MINOR, currency)}, got {price}",
            code="invalid_price",
        )
    return price
