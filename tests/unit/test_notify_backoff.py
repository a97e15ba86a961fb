"""Retries of deliveries (NOT-2): exponential backoff, given up after 3 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.notify.dispatcher import GIVE_UP_AFTER, next_attempt_at, retry_delay

T0 = datetime(2026, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (1, timedelta(seconds=30)),
        (2, timedelta(minutes=1)),
        (3, timedelta(minutes=2)),
        (10, timedelta(seconds=30 * 512)),
        (11, timedelta(hours=6)),
        (500, timedelta(hours=6)),
    ],
)
def test_retry_delay_doubles_up_to_six_hours(attempts: int, delay: timedelta) -> None:
    """NOT-2: 30 s × 2^(attempts−1), at most 6 hours."""
    assert retry_delay(attempts) == delay


def test_retry_delay_refuses_no_attempt() -> None:
    with pytest.raises(InvalidInput, match="attempts"):
        retry_delay(0)


def test_next_attempt_gives_up_past_three_days() -> None:
    """NOT-2: no try more than 3 days after the delivery was made."""
    assert next_attempt_at(1, T0, T0) == T0 + timedelta(seconds=30)
    late = T0 + GIVE_UP_AFTER - timedelta(hours=6)
    assert next_attempt_at(20, late, T0) == T0 + GIVE_UP_AFTER
    assert next_attempt_at(20, late + timedelta(seconds=1), T0) is None


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        next_attempt_at(1, datetime(2026, 1, 8), T0)


@given(st.integers(min_value=1, max_value=200))
def test_delays_never_shrink(attempts: int) -> None:
    """Property: each wait is at least the one before, and between 30 s and 6 hours."""
    assert retry_delay(attempts) <= retry_delay(attempts + 1)
    assert timedelta(seconds=30) <= retry_delay(attempts) <= timedelta(hours=6)


@given(st.integers(min_value=0, max_value=3 * 24 * 3600 + 60), st.integers(1, 40))
def test_every_retry_is_within_three_days(offset: int, attempts: int) -> None:
    """Property: a retry is never scheduled more than 3 days after the delivery was
    made, and always after now."""
    now = T0 + timedelta(seconds=offset)
    moment = next_attempt_at(attempts, now, T0)
    assert moment is None or now < moment <= T0 + GIVE_UP_AFTER
