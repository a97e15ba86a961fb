"""A conversation's bounded state (domain/conversations.py) gives the batch computation's
windows (domain/sessions.py) whatever the order of arrival within the lateness horizon
(USE-3, USE-4), and leaves out exactly the late messages beyond it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabkeeper.domain.conversations import (
    RecentWindows,
    advance,
    compact,
    floor_at,
    from_stored,
    recover,
    stored_form,
    window_changes,
)
from tabkeeper.domain.sessions import Direction, Message, Window, windows

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HORIZON = timedelta(days=3)

MESSAGES = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 20 * 24 * 60), st.integers(0, 20).map(lambda d: d * 24 * 60)),
        st.sampled_from([Direction.INBOUND, Direction.OUTBOUND]),
        st.integers(0, 3 * 24 * 60),
    ),
    max_size=40,
)


def _run(
    arrivals: list[tuple[datetime, list[Message]]],
) -> tuple[Counter[Window], list[Message], RecentWindows]:
    """Feed batches (now, messages) through the bounded state as the service does: the
    windows counted (added minus removed), the messages left out as late, the state."""
    state = RecentWindows()
    stored: list[Message] = []
    counted: Counter[Window] = Counter()
    late: list[Message] = []
    for now, batch in arrivals:
        state = floor_at(state, now, HORIZON)
        taken = [m for m in batch if not state.is_late(m.at)]
        late += [m for m in batch if state.is_late(m.at)]
        partial, since = advance(state, taken)
        if since is not None:
            partial = recover(partial, since, [*stored, *taken])
        for (start, answered), delta in window_changes(state.windows, partial.windows).items():
            counted[Window(start, start + timedelta(hours=24), answered)] += delta
        stored += taken
        state = from_stored(stored_form(compact(partial)))
    return +counted, late, state


def _batches(
    raw: list[tuple[int, Direction, int]], cuts: list[int]
) -> list[tuple[datetime, list[Message]]]:
    """Messages arriving `lag` minutes after their time, in arrival order, cut into
    batches; a batch's `now` is its earliest arrival (so none in it is late)."""
    arriving = sorted(
        ((T0 + timedelta(minutes=t + lag), Message(T0 + timedelta(minutes=t), d))
         for t, d, lag in raw),
        key=lambda pair: pair[0],
    )  # fmt: skip
    edges = sorted({0, len(arriving), *[c % (len(arriving) + 1) for c in cuts]})
    return [(arriving[a][0], [m for _, m in arriving[a:b]]) for a, b in pairwise(edges) if a < b]


@settings(max_examples=300)
@given(raw=MESSAGES, cuts=st.lists(st.integers(0, 60), max_size=6))
def test_within_the_horizon_any_order_gives_the_batch_windows(
    raw: list[tuple[int, Direction, int]], cuts: list[int]
) -> None:
    """USE-3, USE-4: messages arriving out of order (up to the 3-day horizon late, in any
    batches) give exactly the windows of all the messages, answered flags included; none
    is late; the stored state keeps only windows that end after its floor."""
    counted, late, state = _run(_batches(raw, cuts))
    assert late == []
    assert counted == Counter(windows(Message(T0 + timedelta(minutes=t), d) for t, d, _ in raw))
    assert state.floor is not None or not raw
    assert all(w.end > state.floor for w in state.windows if state.floor is not None)


@settings(max_examples=300)
@given(raw=MESSAGES, cuts=st.lists(st.integers(0, 60), max_size=6), extra=st.integers(0, 6))
def test_late_messages_are_left_out_and_the_rest_counted_exactly(
    raw: list[tuple[int, Direction, int]], cuts: list[int], extra: int
) -> None:
    """USE-3: beyond the horizon a message is left out of billable sessions (said so), and
    the windows counted are exactly those of the messages that were taken."""
    stretched = [(t, d, lag * (1 + extra)) for t, d, lag in raw]
    batches = [(now + timedelta(days=extra), ms) for now, ms in _batches(stretched, cuts)]
    counted, late, _ = _run(batches)
    late_ids = {id(m) for m in late}
    taken = [m for _, ms in batches for m in ms if id(m) not in late_ids]
    assert counted == Counter(windows(taken))


def test_a_message_in_a_gap_re_covers_the_windows_after_it() -> None:
    """USE-3: out of order, 05:00 on day 0 before 20:00 (day 0) and 06:00, 02:00 (days 1, 2)
    shifts the later windows (the sessions.py example)."""
    day = timedelta(days=1)
    out, inb = Direction.OUTBOUND, Direction.INBOUND
    first = [Message(T0 + timedelta(hours=20), out), Message(T0 + day + timedelta(hours=6), inb),
             Message(T0 + 2 * day + timedelta(hours=2), inb)]  # fmt: skip
    state, since = advance(RecentWindows(), first)
    assert since is None
    late = Message(T0 + timedelta(hours=5), out)
    partial, since = advance(state, [late])
    assert since == late.at
    after = recover(partial, since, [*first, late])
    assert after.windows == windows([*first, late])


def test_the_earlier_stored_form_is_read() -> None:
    """A conversation stored with every message time (before the horizon) keeps its
    windows and has no floor yet."""
    state = from_stored(
        {"messages": ["2026-03-01T00:00:00Z"], "inbound": [],
         "windows": ["2026-03-01T00:00:00Z"], "answered": [False]}
    )  # fmt: skip
    assert state == RecentWindows(None, (T0,), (False,))


def test_the_horizon_is_a_setting() -> None:
    """TABKEEPER_LATE_EVENTS_HORIZON: 7 days by default; ISO 8601 or seconds; from 1 hour
    to 366 days (a shorter or longer one is refused)."""
    from pydantic import ValidationError

    from tabkeeper.settings import Settings

    assert Settings().late_events_horizon == timedelta(days=7)
    assert Settings(late_events_horizon="P3D").late_events_horizon == timedelta(days=3)
    assert Settings(late_events_horizon=7200).late_events_horizon == timedelta(hours=2)
    for bad in (60, "P400D", "soon"):
        with pytest.raises(ValidationError):
            Settings(late_events_horizon=bad)
