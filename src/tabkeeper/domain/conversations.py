"""A conversation's billable windows as stored between events, bounded (USE-3, USE-4).

domain/sessions.py defines the windows: the greedy cover of a conversation's message times
by 24-hour windows, each answered when the end user wrote in it. Kept incrementally with
every message time (sessions.ConversationState), a conversation's state grows with each
message; this is the bounded form the counters are kept with.

**The lateness horizon.** Out-of-order messages are welcome only so far back: a message
is *late* when its time is before the conversation's `floor`, and each batch moves the
floor up to `now - horizon` (`LATE_EVENTS_HORIZON` by default, a setting: see
settings.py). A late message is stored and counted by every other meter, but it is left
out of billable sessions (the answer to the batch says so, and the stored event says so
too: the recount leaves it out the same way). So:

* a window that ends at or before the floor can never change again: only messages at
  or after the floor are still taken, and adding a time never changes a window that ends
  before it. The stored state keeps only the windows that end after the floor (at most
  horizon / 24h + 1 of them) and no message times at all.
* a message inside a kept window only marks it answered (inbound); a message after the
  last window opens the next one. Both need nothing but the kept windows.
* a message in a gap between kept windows (out of order) re-covers from its own time:
  the windows before it stay, and from it on the greedy cover of every message at or
  after it (those stored before, which the caller reads, and the new ones) replaces the
  rest (`recover`). Those messages are all within the horizon.

Within the horizon the result is the batch computation's, whatever the order of arrival
(tests/unit/test_conversations.py proves it with hypothesis).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tabkeeper.domain.sessions import WINDOW, Message, Window
from tabkeeper.domain.utc import format_instant, parse_instant

LATE_EVENTS_HORIZON = timedelta(days=7)
"""How far back a message may arrive and still move billable sessions (the default)."""


@dataclass(frozen=True, slots=True)
class RecentWindows:
    """The kept windows of a conversation (sorted starts, their answered flags) and the
    floor: messages before it are late. A None floor: nothing is late yet."""

    floor: datetime | None = None
    starts: tuple[datetime, ...] = ()
    answered: tuple[bool, ...] = ()

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(
            Window(start, start + WINDOW, flag)
            for start, flag in zip(self.starts, self.answered, strict=True)
        )

    def is_late(self, at: datetime) -> bool:
        return self.floor is not None and at < self.floor

    def open_at(self, at: datetime) -> bool:
        """USE-3: `at` falls in the last window (a start there is no new session)."""
        return bool(self.starts) and self.starts[-1] <= at < self.starts[-1] + WINDOW


def floor_at(state: RecentWindows, now: datetime, horizon: timedelta) -> RecentWindows:
    """`state` with its floor moved up to `now - horizon` (never down); windows kept."""
    floor = now - horizon
    if state.floor is not None and state.floor >= floor:
        return state
    return RecentWindows(floor, state.starts, state.answered)


def advance(
    state: RecentWindows, messages: Iterable[Message]
) -> tuple[RecentWindows, datetime | None]:
    """`state` with `messages` (none late) added, and None; or, when one falls in a gap
    between kept windows, the state with the messages before it added and its time: the
    caller must `recover` from there."""
    starts, answered = list(state.starts), list(state.answered)
    for message in sorted(messages, key=lambda m: (m.at, not m.inbound)):
        at = message.at
        index = bisect_right(starts, at) - 1
        if index >= 0 and at < starts[index] + WINDOW:
            answered[index] = answered[index] or message.inbound
        elif index == len(starts) - 1:
            starts.append(at)
            answered.append(message.inbound)
        else:
            return RecentWindows(state.floor, tuple(starts), tuple(answered)), at
    return RecentWindows(state.floor, tuple(starts), tuple(answered)), None


def recover(state: RecentWindows, since: datetime, messages: Iterable[Message]) -> RecentWindows:
    """The windows of `state` that start before `since`, then the greedy cover of
    `messages`: every message of the conversation at or after `since` that is not late
    (stored before or new; repeats are harmless)."""
    keep = bisect_left(state.starts, since)
    times = sorted({m.at for m in messages if m.at >= since})
    inbound = sorted({m.at for m in messages if m.at >= since and m.inbound})
    starts, answered = list(state.starts[:keep]), list(state.answered[:keep])
    position = 0
    while position < len(times):
        start = times[position]
        end = start + WINDOW
        first_inbound = bisect_left(inbound, start)
        starts.append(start)
        answered.append(first_inbound < len(inbound) and inbound[first_inbound] < end)
        position = bisect_left(times, end, position)
    return RecentWindows(state.floor, tuple(starts), tuple(answered))


def compact(state: RecentWindows) -> RecentWindows:
    """Only the windows that end after the floor: the others can never change."""
    if state.floor is None:
        return state
    first = bisect_right(state.starts, state.floor - WINDOW)
    return RecentWindows(state.floor, state.starts[first:], state.answered[first:])


def window_changes(
    before: Sequence[Window], after: Sequence[Window]
) -> dict[tuple[datetime, bool], int]:
    """How many windows (by start and answered flag) `after` has more than `before`,
    leaving out the ones both have."""
    change: dict[tuple[datetime, bool], int] = {}
    for window in before:
        key = (window.start, window.answered)
        change[key] = change.get(key, 0) - 1
    for window in after:
        key = (window.start, window.answered)
        change[key] = change.get(key, 0) + 1
    return {key: delta for key, delta in change.items() if delta}


def stored_form(state: RecentWindows) -> dict[str, Any]:
    """The JSON a conversation row keeps: `{"floor", "windows": [[start, answered], …]}`."""
    return {
        "floor": None if state.floor is None else format_instant(state.floor),
        "windows": [
            [format_instant(start), flag]
            for start, flag in zip(state.starts, state.answered, strict=True)
        ],
    }


def from_stored(data: Mapping[str, Any]) -> RecentWindows:
    """A stored state; also the earlier form that kept every message time (its windows
    are kept, with no floor yet)."""
    if "floor" not in data:
        return RecentWindows(
            None,
            tuple(parse_instant(t) for t in data.get("windows", ())),
            tuple(bool(a) for a in data.get("answered", ())),
        )
    floor = data["floor"]
    return RecentWindows(
        None if floor is None else parse_instant(floor),
        tuple(parse_instant(start) for start, _ in data["windows"]),
        tuple(bool(flag) for _, flag in data["windows"]),
    )
