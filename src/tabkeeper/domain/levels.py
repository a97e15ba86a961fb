"""Usage levels for display (USE-7): under 50% fine, 50–80% watch, over 80% consider
upgrading, over 100% over (overage billed where the plan has an overage price).

Levels exist only for meters with an included quantity above 0 (SCENARIOS.md).
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Exact, to_fraction


class Level(StrEnum):
    OK = "ok"
    WATCH = "watch"
    CONSIDER_UPGRADE = "consider_upgrade"
    OVER = "over"


def usage_level(used: Exact, included: Exact) -> Level | None:
    """The level of `used` against `included`; None when nothing is included."""
    used_exact, included_exact = to_fraction(used), to_fraction(included)
    if used_exact < 0 or included_exact < 0:
        raise InvalidInput("usage and included quantities must not be negative")
    if included_exact == 0:
        return None
    ratio = used_exact / included_exact
    if ratio > 1:
        return Level.OVER
    if ratio > Fraction(4, 5):
        return Level.CONSIDER_UPGRADE
    if ratio >= Fraction(1, 2):
        return Level.WATCH
    return Level.OK
