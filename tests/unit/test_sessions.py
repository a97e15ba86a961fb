"""Billable sessions: 24-hour windows and answered-only (USE-3, USE-4)."""

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.sessions import (
    WINDOW,
    ConversationState,
    Direction,
    Message,
    Window,
    add_message,
    billable_count,
    count_billable,
    windows,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
IN = Direction.INBOUND
OUT = Direction.OUTBOUND
H = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def msgs(*items: tuple[float, Direction]) -> list[Message]:
    return [Message(at(hours), direction) for hours, direction in items]


def feed(messages: list[Message], answered_only: bool) -> tuple[ConversationState, list[int]]:
    state = ConversationState.empty()
    deltas = []
    for message in messages:
        state, delta = add_message(state, message, answered_only)
        deltas.append(delta)
    return state, deltas


# --- USE-3 examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        pytest.param([0], 1, id="single-message"),
        pytest.param([0, 6, 12, 18, 24, 30, 36], 2, id="36-hours-every-6h"),
        pytest.param([0, 36], 2, id="36-hours-two-messages"),
        pytest.param([0, 24], 2, id="exactly-24h-apart"),
        pytest.param([0, 24 - 1 / 3600], 1, id="23h59m59s-apart"),
        pytest.param([0, 1, 100], 2, id="gap-of-days-opens-new-window"),
        pytest.param([0, 24, 48, 72], 4, id="every-24h"),
        pytest.param([0, 23, 24, 47, 48], 3, id="boundaries-chain"),
        pytest.param([], 0, id="no-messages"),
        pytest.param([5, 5, 5], 1, id="same-instant"),
    ],
)
def test_billable_windows_use_3(hours: list[float], expected: int) -> None:
    """USE-3: a 24-hour window opens at the first message and at the first one after it."""
    messages = [Message(at(h), OUT) for h in hours]
    assert count_billable(messages, answered_only=False) == expected
    assert len(windows(messages)) == expected
    assert feed(messages, answered_only=False)[0].billable(False) == expected


def test_36_hours_are_2_billable_sessions_with_exact_windows() -> None:
    """USE-3: 36 hours of conversation are 2 billable sessions: [t0, t0+24h), [t0+24h, +48h)."""
    messages = [Message(at(h), IN) for h in range(0, 37, 6)]
    assert windows(messages) == (
        Window(at(0), at(24), True),
        Window(at(24), at(48), True),
    )


def test_message_exactly_at_window_end_opens_next_window() -> None:
    """USE-3: a window is [start, start + 24h); the end instant is outside."""
    (first, second) = windows(msgs((0, OUT), (24, OUT)))
    assert at(24) not in first
    assert at(24 - 1 / 3600) in first
    assert second.start == at(24) == first.end
    assert timedelta(hours=24) == WINDOW


def test_next_window_starts_at_first_message_after_close_not_at_close() -> None:
    """USE-3: the first event after a window closes opens the next (at its own time)."""
    assert [w.start for w in windows(msgs((0, OUT), (30, OUT), (50, OUT)))] == [at(0), at(30)]


def test_out_of_order_gives_same_windows_use_3() -> None:
    """USE-3: events arriving out of order give the same count as in order."""
    in_order = msgs((0, OUT), (6, IN), (25, OUT), (49, IN))
    shuffled = [in_order[2], in_order[0], in_order[3], in_order[1]]
    assert windows(in_order) == windows(shuffled)
    assert feed(shuffled, False)[0] == feed(in_order, False)[0]


# --- The sessions-answered-only scenario ------------------------------------------------

JAN = datetime(2026, 1, 1, tzinfo=UTC)


def jan(day: int, hour: int) -> datetime:
    return JAN.replace(day=day, hour=hour)


# arrival order of the scenario file: m4, m1, m5, m2, m3
K1 = [
    Message(jan(6, 10), IN),
    Message(jan(5, 8), OUT),
    Message(jan(6, 14), OUT),
    Message(jan(5, 9), IN),
    Message(jan(5, 20), OUT),
]
K2 = [Message(jan(7, 9), OUT)]


def test_scenario_answered_only_k1_two_answered_windows() -> None:
    """USE-3, USE-4 (sessions-answered-only.yaml): k1 has 2 answered windows."""
    assert windows(K1) == (
        Window(jan(5, 8), jan(6, 8), True),
        Window(jan(6, 10), jan(7, 10), True),
    )
    assert count_billable(K1, answered_only=True) == 2
    assert count_billable(K1, answered_only=False) == 2


@pytest.mark.parametrize(("answered_only", "expected"), [(True, 0), (False, 1)])
def test_scenario_answered_only_k2_outbound_only(answered_only: bool, expected: int) -> None:
    """USE-4 (sessions-answered-only.yaml): k2, one outbound message: 0 answered-only, 1 plain."""
    assert count_billable(K2, answered_only) == expected
    state, deltas = feed(K2, answered_only)
    assert sum(deltas) == expected == state.billable(answered_only)


@pytest.mark.parametrize("answered_only", [True, False])
def test_scenario_answered_only_incremental_arrival_order(answered_only: bool) -> None:
    """USE-3, USE-4: fed in the scenario's arrival order, the deltas add up to 2 (k1)."""
    state, deltas = feed(K1, answered_only)
    assert sum(deltas) == 2
    assert state.windows == windows(K1)


# --- USE-4 examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "answered", "plain"),
    [
        pytest.param([(0, OUT), (30, OUT), (60, OUT)], 0, 3, id="outbound-only"),
        pytest.param([(0, OUT), (23, IN)], 1, 1, id="late-reply-in-window-counts"),
        pytest.param([(0, OUT), (24, IN)], 1, 2, id="reply-at-window-end-is-next-window"),
        pytest.param([(0, OUT), (10, OUT), (30, IN)], 1, 2, id="inbound-only-in-second"),
        pytest.param([(0, IN), (30, OUT)], 1, 2, id="inbound-only-in-first"),
        pytest.param([(0, IN), (30, IN)], 2, 2, id="both-answered"),
        pytest.param([(5, OUT), (5, IN)], 1, 1, id="same-instant-in-and-out"),
    ],
)
def test_answered_only_use_4(
    items: list[tuple[float, Direction]], answered: int, plain: int
) -> None:
    """USE-4: on answered-only plans a window counts only with an end-user message in it."""
    messages = msgs(*items)
    assert count_billable(messages, answered_only=True) == answered
    assert count_billable(messages, answered_only=False) == plain
    assert billable_count(windows(messages), answered_only=True) == answered
    assert billable_count(windows(messages), answered_only=False) == plain
    for answered_only, expected in ((True, answered), (False, plain)):
        state, deltas = feed(messages, answered_only)
        assert sum(deltas) == expected == state.billable(answered_only)


# --- Incremental form -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "new", "answered_only", "delta"),
    [
        pytest.param([], (0, OUT), False, 1, id="first-message-plain"),
        pytest.param([], (0, OUT), True, 0, id="first-outbound-answered-only"),
        pytest.param([], (0, IN), True, 1, id="first-inbound-answered-only"),
        pytest.param([(0, OUT)], (5, OUT), False, 0, id="inside-last-window"),
        pytest.param([(0, OUT)], (5, IN), True, 1, id="reply-makes-window-answered"),
        pytest.param([(0, OUT)], (5, IN), False, 0, id="reply-no-change-plain"),
        pytest.param([(0, IN)], (5, IN), True, 0, id="already-answered"),
        pytest.param([(0, OUT)], (24, OUT), False, 1, id="at-window-end-opens-next"),
        pytest.param([(0, OUT)], (24, OUT), True, 0, id="unanswered-new-window"),
        pytest.param([(0, OUT), (30, OUT)], (10, IN), True, 1, id="reply-in-earlier-window"),
        pytest.param([(0, OUT), (30, OUT)], (10, OUT), False, 0, id="earlier-window-no-change"),
        pytest.param([(0, OUT), (30, OUT)], (0, OUT), False, 0, id="duplicate-instant"),
        pytest.param([(30, OUT)], (0, OUT), False, 1, id="before-first-window-separate"),
        pytest.param([(20, OUT)], (0, OUT), False, 0, id="before-first-takes-over-window"),
        pytest.param([(20, OUT), (30, OUT)], (0, OUT), False, 1, id="before-first-splits"),
        pytest.param([(10, OUT), (40, OUT)], (0, OUT), False, 0, id="before-first-resyncs"),
        pytest.param([(0, OUT), (30, OUT)], (25, OUT), False, 0, id="gap-resyncs-at-once"),
        pytest.param([(0, OUT), (40, OUT), (60, OUT)], (30, OUT), False, 1, id="gap-shifts-to-end"),
        pytest.param([(0, OUT), (40, OUT), (70, OUT)], (30, OUT), False, 0, id="gap-shift-resyncs"),
        pytest.param([(0, OUT), (40, IN), (70, OUT)], (30, OUT), True, 0, id="gap-answered-kept"),
    ],
)
def test_add_message_delta(
    before: list[tuple[float, Direction]],
    new: tuple[float, Direction],
    answered_only: bool,
    delta: int,
) -> None:
    """USE-3, USE-4: the delta of one message and the state equal a batch recount."""
    state = ConversationState.of(msgs(*before))
    after, got = add_message(state, Message(at(new[0]), new[1]), answered_only)
    everything = msgs(*before, new)
    assert got == delta
    assert after == ConversationState.of(everything)
    assert after.billable(answered_only) - state.billable(answered_only) == delta


def test_answered_only_delta_can_be_negative() -> None:
    """USE-4: an out-of-order outbound message can shift windows and lose an answered one.

    outbound 20:00, inbound +10h, inbound +30h are 2 answered windows; outbound 15h before
    the first message opens an unanswered window, and one window then holds both replies.
    """
    state = ConversationState.of(msgs((0, OUT), (10, IN), (30, IN)))
    assert state.billable(True) == 2
    after, delta = add_message(state, Message(at(-15), OUT), answered_only=True)
    assert delta == -1
    assert after.windows == (Window(at(-15), at(9), False), Window(at(10), at(34), True))
    assert after.billable(False) == state.billable(False) == 2


def test_state_shape_is_plain_tuples() -> None:
    """USE-3: the stored state is four tuples of instants and booleans."""
    state = ConversationState.of(msgs((0, OUT), (6, IN), (30, OUT)))
    assert state.message_times == (at(0), at(6), at(30))
    assert state.inbound_times == (at(6),)
    assert state.window_starts == (at(0), at(30))
    assert state.window_answered == (True, False)
    assert ConversationState.empty() == ConversationState()
    assert ConversationState.empty().windows == ()


def test_restore_round_trips() -> None:
    """USE-3: a state written to storage and read back is the same state."""
    state = ConversationState.of(msgs((0, OUT), (6, IN), (30, OUT), (70, IN)))
    restored = ConversationState.restore(
        list(state.message_times),
        list(state.inbound_times),
        list(state.window_starts),
        list(state.window_answered),
    )
    assert restored == state


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        pytest.param(([at(1), at(0)], [], [at(0)], [False]), "message_times: must be sorted"),
        pytest.param(([at(0), at(0)], [], [at(0)], [False]), "without repeats"),
        pytest.param(([datetime(2026, 1, 1)], [], [], []), "message_times: .* no timezone"),
        pytest.param(([at(0)], [at(1)], [at(0)], [False]), "inbound time must be a message"),
        pytest.param(([at(0)], [], [at(1)], [False]), "do not match"),
        pytest.param(([at(0)], [], [at(0)], [True]), "do not match"),
        pytest.param(([at(0), at(30)], [], [at(0)], [False]), "do not match"),
    ],
)
def test_restore_refuses_inconsistent_state(
    fields: tuple[list[datetime], list[datetime], list[datetime], list[bool]], match: str
) -> None:
    """USE-3: a corrupted stored state is refused with a message naming the field."""
    with pytest.raises(InvalidInput, match=match):
        ConversationState.restore(*fields)


# --- Bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inbound", "outbound", IN, OUT])
def test_direction_parse_accepts(value: object) -> None:
    assert Direction.parse(value, "events[0].properties.direction") in (IN, OUT)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("incoming", r"events\[0\].properties.direction: 'incoming' is not a direction"),
        ("Inbound", "'Inbound' is not a direction; expected 'inbound'"),
        (" inbound", "is not a direction"),
        ("", "'' is not a direction"),
        (None, "expected 'inbound' or 'outbound', got NoneType None"),
        (1, "got int 1"),
        (True, "got bool True"),
        (b"inbound", "got bytes"),
    ],
)
def test_direction_parse_refuses(value: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Direction.parse(value, "events[0].properties.direction")


def test_message_refuses_naive_time() -> None:
    with pytest.raises(InvalidInput, match="message time: .* has no timezone; use UTC"):
        Message(datetime(2026, 1, 5, 8, 0), IN)


def test_message_refuses_non_datetime_time() -> None:
    with pytest.raises(InvalidInput, match="message time: expected a datetime"):
        Message("2026-01-05T08:00:00Z", IN)  # type: ignore[arg-type]


@pytest.mark.parametrize("direction", ["sideways", 7, None])
def test_message_refuses_bad_direction(direction: object) -> None:
    with pytest.raises(InvalidInput, match="direction: "):
        Message(T0, direction)  # type: ignore[arg-type]


def test_message_normalizes_to_utc_and_parses_direction() -> None:
    plus_two = datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    message = Message(plus_two, "inbound")  # type: ignore[arg-type]
    assert message.at == T0
    assert message.at.tzinfo is UTC
    assert message.direction is IN
    assert message.inbound


def test_bad_message_changes_nothing() -> None:
    """A refused message never reaches the state: the state is immutable."""
    state = ConversationState.of(msgs((0, OUT)))
    with pytest.raises(InvalidInput):
        add_message(state, Message(datetime(2026, 1, 5), OUT), answered_only=False)
    assert state == ConversationState.of(msgs((0, OUT)))


# --- Properties ---------------------------------------------------------------------------

# Minutes over 0..5 days; often whole hours and whole days so that equal times and exact
# 24-hour boundaries are common.
MINUTE_OFFSETS = st.one_of(
    st.integers(0, 5 * 24 * 60),
    st.integers(0, 5 * 24).map(lambda hours: hours * 60),
    st.integers(0, 5).map(lambda days: days * 24 * 60),
)
MESSAGES = st.lists(
    st.builds(
        lambda minutes, direction: Message(T0 + timedelta(minutes=minutes), direction),
        MINUTE_OFFSETS,
        st.sampled_from(Direction),
    ),
    max_size=30,
)


@given(MESSAGES, st.randoms(use_true_random=False))
def test_property_count_does_not_depend_on_order(
    messages: list[Message], rnd: random.Random
) -> None:
    """Property: the billable-session count does not depend on event order (USE-3).

    Any permutation gives the same windows and the same counts, plain and answered-only."""
    shuffled = list(messages)
    rnd.shuffle(shuffled)
    assert windows(shuffled) == windows(messages)
    for answered_only in (True, False):
        assert count_billable(shuffled, answered_only) == count_billable(messages, answered_only)


@given(MESSAGES, st.booleans())
def test_property_incremental_equals_batch(messages: list[Message], answered_only: bool) -> None:
    """Property: the incremental form equals the batch form (USE-3, USE-4).

    Fed one by one in any order, the deltas add up to the batch count and the final state
    is the batch state (same windows)."""
    state, deltas = feed(messages, answered_only)
    assert sum(deltas) == count_billable(messages, answered_only)
    assert state.windows == windows(messages)
    assert state == ConversationState.of(messages)


@given(MESSAGES)
def test_property_windows_partition_the_messages(messages: list[Message]) -> None:
    """Property: windows never overlap, each starts at a message time and lasts 24 hours,
    every message lies in exactly one window, and a window is answered exactly when an
    inbound message lies in it (USE-3, USE-4)."""
    found = windows(messages)
    times = {message.at for message in messages}
    for earlier, later in itertools.pairwise(found):
        assert earlier.end <= later.start
    for window in found:
        assert window.start in times
        assert window.end - window.start == WINDOW
        assert window.answered == any(m.inbound and m.at in window for m in messages)
    for message in messages:
        assert sum(message.at in window for window in found) == 1


@given(MESSAGES, st.data())
def test_property_plain_delta_never_negative(messages: list[Message], data: st.DataObject) -> None:
    """Property: in plain mode adding a message never lowers the billable count (USE-3)."""
    state = ConversationState.of(messages)
    extra = data.draw(MESSAGES.filter(bool)).pop()
    _, delta = add_message(state, extra, answered_only=False)
    assert delta >= 0


@given(MESSAGES, st.data())
def test_property_in_order_answered_delta_never_negative(
    messages: list[Message], data: st.DataObject
) -> None:
    """Property: a message at or after the last window's start never lowers the
    answered-only count (USE-4); only out-of-order messages can."""
    state = ConversationState.of(messages)
    extra = data.draw(MESSAGES.filter(bool)).pop()
    if state.window_starts and extra.at < state.window_starts[-1]:
        extra = Message(state.window_starts[-1] + (extra.at - T0) % WINDOW * 2, extra.direction)
    after, delta = add_message(state, extra, answered_only=True)
    assert delta >= 0
    assert after.window_starts[: len(state.window_starts)] == state.window_starts
