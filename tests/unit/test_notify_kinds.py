"""Notice kinds and the kind filters of webhook endpoints (NOT-1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.notify.kinds import (
    GROUPS,
    KINDS,
    is_known,
    matches,
    parse_filter,
    split_filter,
    usage_kind,
)


@pytest.mark.parametrize(
    ("kind", "found"),
    [
        ("usage.minutes_80", ("minutes", 80)),
        ("usage.sessions_100", ("sessions", 100)),
        ("usage.voice-min.v2_50", ("voice-min.v2", 50)),
        ("usage.minutes_70", None),
        ("usage._50", None),
        ("usage.Minutes_50", None),
        ("trial.ended", None),
    ],
)
def test_usage_kinds_name_a_meter_and_a_threshold(kind: str, found: object) -> None:
    """USE-7: usage.<meter>_50|80|100."""
    assert usage_kind(kind) == found


def test_the_kinds_of_scenarios_md_are_known() -> None:
    """NOT-1: every kind SCENARIOS.md names, plus ours."""
    for kind in ("trial.sessions_60", "subscription.suspended", "credits.exhausted"):
        assert is_known(kind)
    assert is_known("usage.minutes_50") and not is_known("usage.minutes_51")
    assert GROUPS == (
        "credit_note", "credits", "demo", "invoice", "limit", "payment", "phone_numbers",
        "subscription", "trial", "usage",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kinds", "stored"),
    [
        (None, None),
        (["invoice.paid"], "invoice.paid"),
        (["trial.*", "invoice.paid", "trial.*"], "invoice.paid trial.*"),
        (("usage.minutes_80", "usage.*"), "usage.* usage.minutes_80"),
    ],
)
def test_filters_are_stored_sorted_without_repeats(
    kinds: list[str] | None, stored: str | None
) -> None:
    assert parse_filter(kinds) == stored
    assert split_filter(stored) == (None if stored is None else tuple(stored.split()))


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        (["invoice.payed"], "kinds[0]: unknown notice kind 'invoice.payed'"),
        (["trial.ended", 7], "kinds[1]: unknown notice kind 7"),
        (["*"], "kinds[0]"),
        (["nothing.*"], "kinds[0]"),
        ([], "at least one"),
        ("invoice.paid", "expected a list"),
    ],
)
def test_bad_filters_are_refused(kinds: object, message: str) -> None:
    """Bad inputs tried: a misspelt kind, not text, a bare star, an unknown group, an
    empty list, a string instead of a list."""
    with pytest.raises(InvalidInput) as refused:
        parse_filter(kinds)  # type: ignore[arg-type]
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("stored", "kind", "wanted"),
    [
        (None, "anything.at_all", True),
        ("invoice.paid", "invoice.paid", True),
        ("invoice.paid", "invoice.issued", False),
        ("invoice.*", "invoice.issued", True),
        ("usage.*", "usage.minutes_80", True),
        ("trial.* invoice.paid", "subscription.ended", False),
    ],
)
def test_matching(stored: str | None, kind: str, wanted: bool) -> None:
    """NOT-1: an endpoint gets the kinds it asked for, all of them without a filter."""
    assert matches(stored, kind) is wanted


@given(st.lists(st.sampled_from([*KINDS, *(f"{g}.*" for g in GROUPS)]), min_size=1))
def test_a_filter_takes_exactly_what_it_names(chosen: list[str]) -> None:
    """Property: a stored filter matches a kind iff the kind, or its group, was chosen."""
    stored = parse_filter(chosen)
    for kind in KINDS:
        named = kind in chosen or f"{kind.split('.')[0]}.*" in chosen
        assert matches(stored, kind) is named
