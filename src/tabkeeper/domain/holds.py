"""Credit holds and the low-balance alert: the rules, without storage (SPEC CRD-5, CRD-7).

A hold reserves an estimate of an AI call's credits at once: they leave the balance (a
`hold` entry, drawn from the grants in draw order, domain/ledger.py `allocate`), so
concurrent holds and uses can never spend them twice. It then ends one way:
- settled at the real cost: the estimate is put back (a `release` entry) and the cost
  taken as a use (a `use` entry). When the balance cannot cover the cost, the use takes
  what there is (the balance goes to zero) and the rest is a shortfall, recorded on the
  use entry and owed; the next top-up repays it first (a `repayment` entry);
- released: the estimate is put back;
- expired: not settled by `expires_at` (`timeout_seconds` after it was made), the billing
  clock releases it.
A hold that has ended cannot be settled or released again (`hold_closed`).

The low-balance alert (CRD-7): the balance fell below the threshold when it was at or
above it before a change and below it after; so it is told once per crossing, and again
only after the balance went back to the threshold or above.
"""

from __future__ import annotations

from enum import StrEnum

from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.ledger import MAX_CREDITS

MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 86_400
"""A hold lasts at most one day."""
DEFAULT_TIMEOUT_SECONDS = 600


class HoldState(StrEnum):
    HELD = "held"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


class HoldClosed(Refused):
    """CRD-5: the hold was settled, released or expired already; nothing changed."""

    code = "hold_closed"


def timeout_seconds(value: object) -> int:
    """A hold's timeout: whole seconds from 1 to one day; anything else is refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS
    ):
        raise InvalidInput(
            f"timeout_seconds: expected whole seconds from {MIN_TIMEOUT_SECONDS} to "
            f"{MAX_TIMEOUT_SECONDS:,}, got {value!r}",
            code="invalid_timeout",
        )
    return value


def settle_split(cost: int, balance: int) -> tuple[int, int]:
    """CRD-5: what a settle of `cost` takes from `balance` (the balance once the hold's
    estimate is back), and the shortfall the balance cannot cover."""
    taken = min(cost, max(balance, 0))
    return taken, cost - taken


def repayment(owed: int, granted: int) -> int:
    """CRD-5: what a top-up of `granted` credits repays of a shortfall `owed` (first)."""
    return min(owed, granted)


def fell_below(before: int, after: int, threshold: int | None) -> bool:
    """CRD-7: a change from `before` to `after` took the balance below `threshold`."""
    return threshold is not None and before >= threshold > after


def low_threshold(value: object) -> int | None:
    """The low-balance threshold: whole credits from 1 to MAX_CREDITS, or None (off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CREDITS:
        raise InvalidInput(
            f"threshold: expected a whole number of credits from 1 to {MAX_CREDITS:,}, or null "
            f"to turn the alert off, got {value!r}",
            code="invalid_threshold",
        )
    return value
