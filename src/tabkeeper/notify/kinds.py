"""The notice kinds (SCENARIOS.md "Notice kinds at least", plus ours) and the kind filters
of webhook endpoints (NOT-1).

A filter is a known kind (`invoice.paid`), a usage kind of any meter
(`usage.minutes_80`), or a whole group (`usage.*`, `trial.*`). An endpoint without a
filter receives every kind, also kinds added after it was registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tabkeeper.domain.errors import InvalidInput

KINDS: tuple[str, ...] = (
    "trial.sessions_60",
    "trial.sessions_90",
    "trial.days_7",
    "trial.days_2",
    "trial.ended",
    "limit.sessions_80",
    "limit.sessions_100",
    "payment.failed",
    "subscription.past_due",
    "subscription.suspended",
    "subscription.renewed",
    "subscription.changed",
    "subscription.canceled",
    "subscription.ended",
    "invoice.issued",
    "invoice.paid",
    "invoice.uncollectible",
    "credits.exhausted",
    "phone_numbers.released",
    "demo.requested",
    "invoice.voided",
    "credit_note.issued",
    "credits.low",  # CRD-7
    "subscription.trial_ending",  # SUB-15: 3 days before a plan's trial converts
    "subscription.trial_converted",  # SUB-15: the plan's trial became the paid plan
    "payment.action_required",  # PAY-4: the bank wants the member (3-D Secure)
    "payment.disputed",  # PAY-3: charge.dispute.created from the provider
    "spend_cap_80",  # LIM-6
    "spend_cap_100",  # LIM-6
    "credits.auto_top_up",  # CRD-6
    "credits.auto_top_up_failed",  # CRD-6
)
"""Every kind but the usage kinds, which exist once per meter."""

USAGE_THRESHOLDS = (50, 80, 100)
_USAGE = re.compile(r"usage\.([a-z0-9][a-z0-9_.\-]{0,63})_(50|80|100)")
GROUPS: tuple[str, ...] = tuple(
    sorted({kind.split(".")[0] for kind in KINDS if "." in kind} | {"usage"})
)
"""The groups of kinds (`trial.*`); a kind without a dot (`spend_cap_80`) is in none."""


THRESHOLD_CROSSED = "usage.threshold_crossed"
"""INT-2: a usage threshold's webhook type, the meter and percent in its data; an endpoint
filter may name it (every meter, every percent) or, for one more version, the old
per-meter kinds (`usage.minutes_80`), which it stands for."""


def usage_kind(kind: str) -> tuple[str, int] | None:
    """(meter, threshold) of a usage kind: "usage.minutes_80" -> ("minutes", 80)."""
    found = _USAGE.fullmatch(kind)
    if found is None:
        return None
    return found.group(1), int(found.group(2))


def is_known(kind: str) -> bool:
    return kind in KINDS or usage_kind(kind) is not None or kind == THRESHOLD_CROSSED


def parse_filter(kinds: Iterable[object] | None) -> str | None:
    """A list of kind filters as stored on an endpoint: space-separated, sorted, without
    repeats; None (every kind) for None. Unknown kinds are refused, naming them."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        raise InvalidInput("kinds: expected a list of notice kinds, or none for every kind")
    chosen: set[str] = set()
    for index, kind in enumerate(kinds):
        if not isinstance(kind, str) or not (is_known(kind) or _is_group(kind)):
            raise InvalidInput(
                f"kinds[{index}]: unknown notice kind {kind!r}; expected a kind such as "
                f"'invoice.paid', 'usage.minutes_80', or a group such as 'trial.*' "
                f"(groups: {', '.join(GROUPS)})",
                code="unknown_kind",
            )
        chosen.add(kind)
    if not chosen:
        raise InvalidInput("kinds: give at least one notice kind, or none for every kind")
    return " ".join(sorted(chosen))


def _is_group(kind: str) -> bool:
    return kind.endswith(".*") and kind[:-2] in GROUPS


def matches(stored_filter: str | None, kind: str) -> bool:
    """Does an endpoint with this stored filter want notices of `kind`?"""
    if stored_filter is None:
        return True
    group = kind.split(".")[0]
    wanted = (kind, f"{group}.*", *((THRESHOLD_CROSSED,) if usage_kind(kind) else ()))
    return any(item in wanted for item in stored_filter.split())


def split_filter(stored_filter: str | None) -> tuple[str, ...] | None:
    return None if stored_filter is None else tuple(stored_filter.split())
