"""Billable sessions: 24-hour windows over a conversation's messages (SPEC USE-3, USE-4).

USE-3: for billing, a conversation's first message opens a window [start, start + 24h);
the first message at or after the window's end opens the next one. A message exactly at
start + 24h is outside the window and opens the next. Windows are the greedy cover of the
conversation's message times sorted ascending, so the order in which events arrive does
not matter (equal times in any order give the same windows). 36 hours of conversation are
2 billable sessions.

USE-4: a window is *answered* when the end user sent at least one message in it
(`Direction.INBOUND`). On an answered-only plan only answered windows are billable;
outbound-only windows are free.

Two forms, always equal (the tests prove it with hypothesis):

* batch: `windows(messages)` and `count_billable(messages, answered_only)`;
* incremental: `ConversationState` plus `add_message(state, message, answered_only)`,
  which returns the new state and the change of the billable count, for counters kept up
  to date as events arrive (DESIGN.md rule 7).

The delta of `add_message`:

* plain mode: never negative. The greedy cover is a minimum cover of the points by
  24-hour windows, and adding a point cannot make the minimum smaller.
* answered-only mode: CAN be negative, but only for an out-of-order message that opens a
  window before existing ones and so shifts later windows. Example: outbound 20:00,
  inbound 06:00 (+1 day), inbound 02:00 (+2 days) are 2 answered windows; an outbound
  message at 05:00 on the first day opens [05:00, 05:00 +24h) with no reply in it, and
  the next window holds both replies: 1 answered window, delta -1. A message at or after
  the last window's start (the in-order case) never gives a negative delta.

The delta is the change of the whole conversation's count. An out-of-order message can
shift later windows, and a shifted window may start in another billing period; a caller
that counts per period can compare the old and the new state's `windows`.

Stored shape of a `ConversationState` (four tuples, ready for a database row as JSON
arrays of ISO 8601 instants and booleans):

    message_times    sorted, distinct UTC instants of every message
    inbound_times    sorted, distinct UTC instants of inbound messages (a subset of the above)
    window_starts    sorted window starts (each one a message time); end = start + WINDOW
    window_answered  one bool per window: at least one inbound message in it

Messages at the same instant are kept once (they can never change the windows), so the
state grows with the number of distinct message instants. Every instant is kept because
an out-of-order message can make any later instant a window start.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.utc import require_utc

WINDOW = timedelta(hours=24)
"""Length of one billable session window (USE-3)."""


class Direction(StrEnum):
    """Who sent a message: the end user (inbound) or the agent (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"

    @classmethod
    def parse(cls, value: object, path: str = "properties.direction") -> Direction:
        """`value` ("inbound" or "outbound", exactly) as a Direction; anything else raises
        InvalidInput naming `path`."""
        if isinstance(value, Direction):
            return value
        if not isinstance(value, str):
            raise InvalidInput(
                f"{path}: expected 'inbound' or 'outbound', got {type(value).__name__} {value!r}"
            )
        try:
            return cls(value)
        except ValueError:
            raise InvalidInput(
                f"{path}: {value!r} is not a direction; expected 'inbound' (from the end user)"
                " or 'outbound' (from the agent)"
            ) from None


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation: when it was sent (UTC) and by whom.

    A naive `at` is refused, an aware one is converted to UTC; `direction` may be given as
    the string "inbound"/"outbound" and is parsed."""

    at: datetime
    direction: Direction

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_utc(self.at, "message time"))
        object.__setattr__(self, "direction", Direction.parse(self.direction, "direction"))

    @property
    def inbound(self) -> bool:
        return self.direction is Direction.INBOUND


@dataclass(frozen=True, slots=True)
class Window:
    """One billable session window [start, end) and whether the end user wrote in it."""

    start: datetime
    end: datetime
    answered: bool

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def billable_count(windows: Iterable[Window], answered_only: bool) -> int:
    """USE-3/USE-4: the number of windows, or of answered windows when `answered_only`."""
    return sum(1 for window in windows if window.answered or not answered_only)


def windows(messages: Iterable[Message]) -> tuple[Window, ...]:
    """USE-3: the billable windows of one conversation's messages, given in any order."""
    return ConversationState.of(messages).windows


def count_billable(messages: Iterable[Message], answered_only: bool) -> int:
    """USE-3/USE-4: billable sessions of one conversation's messages, given in any order."""
    return ConversationState.of(messages).billable(answered_only)


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What the billing needs to know about one conversation, kept exact under
    out-of-order events. Field shapes are in the module docstring.

    The constructor trusts its fields (cheap on a hot path); build states with `empty`,
    `of` or `add_message`, and pass a stored row back through `restore`, which checks it.
    """

    message_times: tuple[datetime, ...] = ()
    inbound_times: tuple[datetime, ...] = ()
    window_starts: tuple[datetime, ...] = ()
    window_answered: tuple[bool, ...] = ()

    @classmethod
    def empty(cls) -> ConversationState:
        """A conversation with no messages yet."""
        return cls()

    @classmethod
    def of(cls, messages: Iterable[Message]) -> ConversationState:
        """The state of a conversation with these messages (any order), in one pass."""
        times: set[datetime] = set()
        inbound: set[datetime] = set()
        for message in messages:
            times.add(message.at)
            if message.inbound:
                inbound.add(message.at)
        return _with_cover(tuple(sorted(times)), tuple(sorted(inbound)))

    @classmethod
    def restore(
        cls,
        message_times: Sequence[datetime],
        inbound_times: Sequence[datetime],
        window_starts: Sequence[datetime],
        window_answered: Sequence[bool],
    ) -> ConversationState:
        """A state read back from storage, checked against its own messages (O(n)).

        Raises InvalidInput when the times are not sorted, distinct, UTC-aware, when an
        inbound time is not a message time, or when the windows are not the ones the
        messages give."""
        times = _instants(message_times, "message_times")
        inbound = _instants(inbound_times, "inbound_times")
        if not set(inbound) <= set(times):
            raise InvalidInput("inbound_times: every inbound time must be a message time")
        expected = _with_cover(times, inbound)
        starts = _instants(window_starts, "window_starts")
        answered = tuple(window_answered)
        if starts != expected.window_starts or answered != expected.window_answered:
            raise InvalidInput(
                "window_starts/window_answered: do not match the windows of message_times"
            )
        return expected

    @property
    def windows(self) -> tuple[Window, ...]:
        """The billable windows, in time order."""
        return tuple(
            Window(start, start + WINDOW, answered)
            for start, answered in zip(self.window_starts, self.window_answered, strict=True)
        )

    def billable(self, answered_only: bool) -> int:
        """USE-3/USE-4: how many windows are billable."""
        if answered_only:
            return sum(self.window_answered)
        return len(self.window_starts)


def add_message(
    state: ConversationState, message: Message, answered_only: bool
) -> tuple[ConversationState, int]:
    """USE-3/USE-4: `state` with `message` added, and the change of the billable count.

    A message inside an existing window (always the case for an in-order message at or
    after the last window's start that is less than 24h after it) costs O(log n)
    comparisons; one after the last window opens a new window. An out-of-order message in
    a gap re-covers only from that message until the new windows meet an old window start
    again. The tuples are copied (O(n) memory copy), never rescanned. The delta is never
    negative in plain mode; in answered-only mode see the module docstring.
    """
    at = message.at
    times = _insert(state.message_times, at)
    inbound = _insert(state.inbound_times, at) if message.inbound else state.inbound_times
    starts, answered = state.window_starts, state.window_answered
    index = bisect_right(starts, at) - 1
    if index >= 0 and at < starts[index] + WINDOW:
        if not message.inbound or answered[index]:
            return ConversationState(times, inbound, starts, answered), 0
        flipped = (*answered[:index], True, *answered[index + 1 :])
        return ConversationState(times, inbound, starts, flipped), int(answered_only)
    first = index + 1
    new_starts, new_answered, resume = _cover(times, inbound, bisect_left(times, at), starts, first)
    new_state = ConversationState(
        times,
        inbound,
        (*starts[:first], *new_starts, *starts[resume:]),
        (*answered[:first], *new_answered, *answered[resume:]),
    )
    if answered_only:
        delta = sum(new_answered) - sum(answered[first:resume])
    else:
        delta = len(new_starts) - (resume - first)
    return new_state, delta


def _with_cover(times: tuple[datetime, ...], inbound: tuple[datetime, ...]) -> ConversationState:
    starts, answered, _ = _cover(times, inbound, 0, (), 0)
    return ConversationState(times, inbound, tuple(starts), tuple(answered))


def _cover(
    times: Sequence[datetime],
    inbound: Sequence[datetime],
    position: int,
    old_starts: Sequence[datetime],
    old_position: int,
) -> tuple[list[datetime], list[bool], int]:
    """Greedy windows over `times[position:]`, stopping as soon as a new window would
    start where an old one does (from there on the old windows are still right).

    Returns the new starts, their answered flags, and the index in `old_starts` from which
    the old windows are kept (len(old_starts) when none are)."""
    new_starts: list[datetime] = []
    new_answered: list[bool] = []
    while position < len(times):
        start = times[position]
        old_position = bisect_left(old_starts, start, old_position)
        if old_position < len(old_starts) and old_starts[old_position] == start:
            return new_starts, new_answered, old_position
        end = start + WINDOW
        first_inbound = bisect_left(inbound, start)
        new_starts.append(start)
        new_answered.append(first_inbound < len(inbound) and inbound[first_inbound] < end)
        position = bisect_left(times, end, position)
    return new_starts, new_answered, len(old_starts)


def _insert(times: tuple[datetime, ...], at: datetime) -> tuple[datetime, ...]:
    """`times` (sorted, distinct) with `at` added in its place, unless already there."""
    index = bisect_left(times, at)
    if index < len(times) and times[index] == at:
        return times
    return (*times[:index], at, *times[index:])


def _instants(values: Sequence[datetime], what: str) -> tuple[datetime, ...]:
    instants = tuple(require_utc(value, what) for value in values)
    if any(later <= earlier for earlier, later in pairwise(instants)):
        raise InvalidInput(f"{what}: must be sorted ascending without repeats")
    return instants
