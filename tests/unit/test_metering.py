"""Metering by a plain read: declared meters over usage events (CAT-3, USE-3, USE-4, USE-5)."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.catalog import Meter, MeterKind, Rounding
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.metering import UsageEvent, measure, quantity_decimal, quantity_string
from tabkeeper.domain.periods import Period

JAN = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), 0)
FEB = Period(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), 1)
JAN_FEB = Period(JAN.start, FEB.end, 0)
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)

SESSIONS = Meter("sessions", MeterKind.BILLABLE_SESSIONS, "message")
INTERACTIONS = Meter(
    "interactions", MeterKind.COUNT, "message", filter=MappingProxyType({"direction": "inbound"})
)
MINUTES = Meter(
    "minutes",
    MeterKind.SUM,
    "call.ended",
    field_name="duration_seconds",
    unit_seconds=60,
    rounding=Rounding.PER_EVENT_UP,
)


def sum_meter(unit_seconds: int | None = None, rounding: Rounding = Rounding.NONE) -> Meter:
    return Meter(
        "m", MeterKind.SUM, "call.ended", "duration_seconds", MappingProxyType({}),
        unit_seconds, rounding,
    )  # fmt: skip


def field_meter(kind: MeterKind, field: str = "value") -> Meter:
    return Meter("m", kind, "reading", field_name=field)


def event(
    id: str,
    properties: dict[str, object] | None = None,
    *,
    type: str = "call.ended",
    time: datetime = T0,
    conversation: str | None = None,
) -> UsageEvent:
    return UsageEvent(id, type, time, "a1", conversation, properties or {})


def calls(*seconds: object, time: datetime = T0) -> list[UsageEvent]:
    return [event(f"c{i}", {"duration_seconds": s}, time=time) for i, s in enumerate(seconds)]


def readings(*values: object) -> list[UsageEvent]:
    return [event(f"r{i}", {"value": v}, type="reading") for i, v in enumerate(values)]


def message(
    id: str, conversation: str, time: datetime, direction: object = "inbound"
) -> UsageEvent:
    return event(id, {"direction": direction}, type="message", time=time, conversation=conversation)


# -- count (CAT-3) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter", "events", "expected"),
    [
        ({}, [event("e1", type="message"), event("e2", type="message")], 2),
        ({}, [event("e1", type="message"), event("e2", type="ai.used")], 1),
        ({}, [], 0),
        (
            {"direction": "inbound"},
            [
                event("e1", {"direction": "inbound"}, type="message"),
                event("e2", {"direction": "outbound"}, type="message"),
                event("e3", {}, type="message"),  # a missing property does not match
            ],
            1,
        ),
        (
            {"direction": "inbound", "channel": "voice"},
            [
                event("e1", {"direction": "inbound", "channel": "voice"}, type="message"),
                event("e2", {"direction": "inbound", "channel": "web"}, type="message"),
                event("e3", {"direction": "inbound"}, type="message"),
            ],
            1,
        ),
        ({"vip": True}, [event("e1", {"vip": 1}, type="message")], 0),  # a flag is not 1
        ({"vip": True}, [event("e1", {"vip": True}, type="message")], 1),
        ({"tier": 2}, [event("e1", {"tier": 2}, type="message")], 1),
        ({"tier": 2}, [event("e1", {"tier": "2"}, type="message")], 0),
    ],
)
def test_count_meter_counts_matching_events_cat_3(
    filter: dict[str, str | int | bool], events: list[UsageEvent], expected: int
) -> None:
    """CAT-3: a count meter counts the period's events of its type matching every filter."""
    meter = Meter("m", MeterKind.COUNT, "message", filter=MappingProxyType(filter))
    assert measure(meter, events, JAN) == expected


# -- sum (CAT-3, USE-5) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit_seconds", "rounding", "values", "expected"),
    [
        (None, Rounding.NONE, [61, 59], Fraction(120)),
        (None, Rounding.NONE, [], Fraction(0)),
        (None, Rounding.NONE, ["1.5", Decimal("2.25"), 3], Fraction(27, 4)),
        (None, Rounding.PER_EVENT_UP, ["1.5", "2.25"], Fraction(5)),
        (None, Rounding.TOTAL_UP, ["1.5", "2.25"], Fraction(4)),
        (60, Rounding.NONE, [61, 59], Fraction(2)),
        (60, Rounding.NONE, [61], Fraction(61, 60)),
        (60, Rounding.PER_EVENT_UP, [61, 59], Fraction(3)),
        (60, Rounding.PER_EVENT_UP, [60, 0], Fraction(1)),
        (60, Rounding.TOTAL_UP, [61, 59], Fraction(2)),
        (60, Rounding.TOTAL_UP, [61, 60], Fraction(3)),
        (1, Rounding.NONE, [0.1, 0.2], Fraction(3, 10)),  # floats through their repr
        (None, Rounding.NONE, [Fraction(1, 3)], Fraction(1, 3)),
    ],
)
def test_sum_meter_converts_and_rounds_cat_3(
    unit_seconds: int | None, rounding: Rounding, values: list[object], expected: Fraction
) -> None:
    """CAT-3, USE-5: sum converts with unit_seconds, then rounds per event, total or not."""
    assert measure(sum_meter(unit_seconds, rounding), calls(*values), JAN) == expected


@pytest.mark.parametrize(
    ("rounding", "expected", "shown"),
    [
        (Rounding.PER_EVENT_UP, Fraction(520), "520"),
        (Rounding.NONE, Fraction(30728, 60), "512.133333"),
        (Rounding.TOTAL_UP, Fraction(513), "513"),
    ],
)
def test_voice_worked_example_use_5(rounding: Rounding, expected: Fraction, shown: str) -> None:
    """USE-5 (voice-overage.yaml): eight calls of 3841 s, each rounded up to the minute,
    are 8 × 65 = 520 minutes; per second they are exactly 30728/60."""
    meter = sum_meter(60, rounding)
    events = [
        event(f"c{day}", {"duration_seconds": 3841}, time=datetime(2026, 1, day, 10, tzinfo=UTC))
        for day in range(5, 13)
    ]
    assert measure(meter, events, JAN) == expected
    assert quantity_string(measure(meter, events, JAN)) == shown


def test_duplicate_event_is_measured_once_use_1() -> None:
    """USE-1: the same event passed twice (a retried delivery) counts once."""
    events = calls(3841) + calls(3841)
    assert measure(MINUTES, events, JAN) == 65


def test_two_events_with_one_id_are_refused() -> None:
    events = [*calls(3841), *calls(60)]
    with pytest.raises(InvalidInput, match="'c0'"):
        measure(MINUTES, events, JAN)


# -- max and unique_count (CAT-3) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [([3, 7, "5"], Fraction(7)), ([], Fraction(0)), (["0.5", Decimal("0.25")], Fraction(1, 2))],
)
def test_max_meter_takes_the_largest_value_cat_3(values: list[object], expected: Fraction) -> None:
    """CAT-3: max is the period's largest field value, 0 when there is none."""
    assert measure(field_meter(MeterKind.MAX), readings(*values), JAN) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "b", "a"], 2),
        ([1, "1", 2], 2),  # compared by string form
        ([Decimal("1.0"), 1], 2),
        ([True, "True", False], 2),
        ([], 0),
    ],
)
def test_unique_count_meter_counts_distinct_values_cat_3(
    values: list[object], expected: int
) -> None:
    """CAT-3: unique_count counts distinct field values, compared by their string form."""
    assert measure(field_meter(MeterKind.UNIQUE_COUNT), readings(*values), JAN) == expected


# -- period edges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meter", "events", "expected"),
    [
        (MINUTES, calls(60, time=JAN.start), 1),
        (MINUTES, calls(60, time=JAN.end), 0),
        (MINUTES, calls(60, time=JAN.start - timedelta(microseconds=1)), 0),
        (MINUTES, calls(60, time=JAN.end - timedelta(microseconds=1)), 1),
        (Meter("m", MeterKind.COUNT, "call.ended"), calls(60, time=JAN.start), 1),
        (Meter("m", MeterKind.COUNT, "call.ended"), calls(60, time=JAN.end), 0),
        (SESSIONS, [message("m1", "k1", JAN.start)], 1),
        (SESSIONS, [message("m1", "k1", JAN.end)], 0),
    ],
)
def test_period_edges_start_counts_end_does_not_use_6(
    meter: Meter, events: list[UsageEvent], expected: int
) -> None:
    """USE-6: usage counts for the period that contains it: [start, end)."""
    assert measure(meter, events, JAN) == expected


# -- billable sessions (USE-3, USE-4) ------------------------------------------------------


def test_36_hours_are_2_billable_sessions_use_3() -> None:
    """USE-3: 36 hours of one conversation are 2 billable sessions."""
    events = [message(f"m{h}", "k1", T0 + h * H) for h in range(0, 37, 6)]
    assert measure(SESSIONS, events, JAN) == 2


def test_window_started_before_the_period_is_not_counted_in_it_use_3() -> None:
    """USE-3: a window is counted in the period where it starts. Messages from Jan 31 20:00
    to Feb 1 10:00 are one window started in January: 1 in January, 0 in February. A
    message on Feb 1 21:00 opens a second window, counted in February."""
    events = [
        message("m1", "k1", datetime(2026, 1, 31, 20, tzinfo=UTC)),
        message("m2", "k1", datetime(2026, 2, 1, 10, tzinfo=UTC)),
    ]
    assert measure(SESSIONS, events, JAN) == 1
    assert measure(SESSIONS, events, FEB) == 0
    late = [*events, message("m3", "k1", datetime(2026, 2, 1, 21, tzinfo=UTC))]
    assert measure(SESSIONS, late, FEB) == 1
    assert measure(SESSIONS, late, JAN_FEB) == 2


def test_messages_before_the_period_decide_where_its_windows_start_use_3() -> None:
    """USE-3: with the Jan 31 20:00 message, Feb 1 10:00 lies in January's window and
    Feb 1 21:00 opens a window that also holds Feb 2 11:00 (1 in February); without it,
    February would wrongly count windows from Feb 1 10:00 and Feb 2 11:00 (2)."""
    events = [
        message("m1", "k1", datetime(2026, 1, 31, 20, tzinfo=UTC)),
        message("m2", "k1", datetime(2026, 2, 1, 10, tzinfo=UTC)),
        message("m3", "k1", datetime(2026, 2, 1, 21, tzinfo=UTC)),
        message("m4", "k1", datetime(2026, 2, 2, 11, tzinfo=UTC)),
    ]
    assert measure(SESSIONS, events, FEB) == 1
    assert measure(SESSIONS, events[1:], FEB) == 2


SESSIONS_ANSWERED_ONLY = [  # sessions-answered-only.yaml, out of order as delivered
    message("m4", "k1", datetime(2026, 1, 6, 10, tzinfo=UTC), "inbound"),
    message("m1", "k1", datetime(2026, 1, 5, 8, tzinfo=UTC), "outbound"),
    message("m5", "k1", datetime(2026, 1, 6, 14, tzinfo=UTC), "outbound"),
    message("m2", "k1", datetime(2026, 1, 5, 9, tzinfo=UTC), "inbound"),
    message("m3", "k1", datetime(2026, 1, 5, 20, tzinfo=UTC), "outbound"),
    message("m6", "k2", datetime(2026, 1, 7, 9, tzinfo=UTC), "outbound"),
]


@pytest.mark.parametrize(
    ("conversation", "answered_only", "expected"),
    [("k1", True, 2), ("k2", True, 0), (None, True, 2), ("k1", False, 2), (None, False, 3)],
)
def test_sessions_answered_only_scenario_use_4(
    conversation: str | None, answered_only: bool, expected: int
) -> None:
    """USE-4 (sessions-answered-only.yaml): k1 has end-user replies in both of its windows
    (2), k2 is one outbound message with no reply (0 on an answered-only plan)."""
    events = [e for e in SESSIONS_ANSWERED_ONLY if conversation in (None, e.conversation)]
    assert measure(SESSIONS, events, JAN, answered_only=answered_only) == expected


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([event("m1", {}, type="message", conversation="k1")], r"'m1'.*direction is missing"),
        ([message("m1", "k1", T0, "sideways")], r"'m1'.*direction"),
        ([message("m1", "k1", T0, None)], r"'m1'.*direction"),
        ([event("m1", {"direction": "inbound"}, type="message")], r"'m1'.*conversation"),
        # outside the period, it still decides windows, so it is checked too
        ([message("m1", "k1", FEB.start, 7)], r"'m1'.*direction"),
    ],
)
def test_bad_messages_are_refused_naming_the_event(events: list[UsageEvent], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        measure(SESSIONS, events, JAN)


# -- bad values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        (MeterKind.SUM, None, "missing"),
        (MeterKind.SUM, -1, "negative"),
        (MeterKind.SUM, "-1.5", "negative"),
        (MeterKind.SUM, Decimal(-2), "negative"),
        (MeterKind.SUM, "61 s", "decimal string"),
        (MeterKind.SUM, "1e3", "decimal string"),
        (MeterKind.SUM, True, "number"),
        (MeterKind.SUM, [61], "number"),
        (MeterKind.SUM, float("nan"), "finite"),
        (MeterKind.SUM, float("inf"), "finite"),
        (MeterKind.SUM, Decimal("NaN"), "finite"),
        (MeterKind.MAX, None, "missing"),
        (MeterKind.MAX, -0.5, "negative"),
        (MeterKind.MAX, "many", "decimal string"),
        (MeterKind.UNIQUE_COUNT, None, "missing"),
    ],
)
def test_bad_field_values_are_refused_naming_event_and_field(
    kind: MeterKind, value: object, problem: str
) -> None:
    """USE-2: a missing, negative or non-numeric value is refused, naming the event id and
    the field (ingestion refuses such events; a plain read must not bill them)."""
    events = [
        event("ok", {"value": 3}, type="reading"),
        event("bad", {"value": value}, type="reading"),
    ]
    with pytest.raises(InvalidInput, match=rf"'bad'.*properties\.value.*{problem}"):
        measure(field_meter(kind), events, JAN)


def test_bad_values_outside_the_period_are_not_read() -> None:
    events = [event("bad", {"value": -1}, type="reading", time=FEB.start)]
    assert measure(field_meter(MeterKind.SUM), events, JAN) == 0


def test_missing_field_is_refused_even_without_the_key() -> None:
    events = [event("bad", {"other": 1}, type="reading")]
    with pytest.raises(InvalidInput, match=r"'bad'.*properties\.value is missing"):
        measure(field_meter(MeterKind.SUM), events, JAN)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (("minutes", [], JAN, False), "expected a Meter"),
        ((MINUTES, [], "2026-01", False), "expected a Period"),
        ((MINUTES, [], JAN, "yes"), "answered_only"),
        ((MINUTES, ["c1"], JAN, False), "expected a UsageEvent"),
        ((Meter("m", MeterKind.SUM, "call.ended"), calls(1), JAN, False), "needs a field"),
        ((sum_meter(unit_seconds=0), calls(1), JAN, False), "unit_seconds"),
        ((sum_meter(unit_seconds=True), calls(1), JAN, False), "unit_seconds"),
    ],
)
def test_bad_arguments_are_refused(arguments: tuple[object, ...], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        measure(*arguments)  # type: ignore[arg-type]


# -- UsageEvent ----------------------------------------------------------------------------


def test_usage_event_is_utc_and_frozen() -> None:
    plus_two = timezone(timedelta(hours=2))
    properties = {"duration_seconds": 61}
    stored = UsageEvent(
        "c1", "call.ended", datetime(2026, 1, 1, 2, tzinfo=plus_two), None, None, properties
    )
    properties["duration_seconds"] = 1
    assert stored.time == datetime(2026, 1, 1, tzinfo=UTC)
    assert stored.time.tzinfo is UTC
    assert stored.properties["duration_seconds"] == 61
    assert UsageEvent("c1", "call.ended", T0).properties == {}


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (("", "message", T0), "event id"),
        ((7, "message", T0), "event id"),
        (("e1", "", T0), "type"),
        (("e1", "message", datetime(2026, 1, 1)), "no timezone"),
        (("e1", "message", "2026-01-01T00:00:00Z"), "expected a datetime"),
        (("e1", "message", T0, ""), "agent"),
        (("e1", "message", T0, None, 5), "conversation"),
        (("e1", "message", T0, None, None, ["direction"]), "properties"),
        (("e1", "message", T0, None, None, {1: "x"}), "properties"),
    ],
)
def test_bad_usage_events_are_refused(arguments: tuple[object, ...], match: str) -> None:
    """USE-2: a bad event is refused with a reason."""
    with pytest.raises(InvalidInput, match=match):
        UsageEvent(*arguments)  # type: ignore[arg-type]


# -- quantity_string -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Fraction(520), "520"),
        (Fraction(5121, 10), "512.1"),
        (Fraction(30728, 60), "512.133333"),
        (Fraction(2, 3), "0.666667"),
        (Fraction(1, 8), "0.125"),
        (Fraction(1, 3_000_000), "0"),
        (Fraction(1, 1_500_000), "0.000001"),  # 0.00000066…, half up
        (Fraction(1, 2_000_000), "0.0000005"),  # finite: exact, whatever its places
        (Fraction(-2, 3), "-0.666667"),
        (Fraction(1, 7) + 5, "5.142857"),
        (Decimal("1.500"), "1.5"),
        (0, "0"),
    ],
)
def test_quantity_string(value: Fraction, shown: str) -> None:
    assert quantity_string(value) == shown
    assert quantity_decimal(value) == Decimal(shown)


def test_quantity_string_refuses_floats() -> None:
    with pytest.raises(InvalidInput):
        quantity_string(0.5)  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------

SPAN_SECONDS = int((JAN_FEB.end - JAN_FEB.start).total_seconds())
moments = st.integers(-3600 * 30, SPAN_SECONDS + 3600 * 30).map(
    lambda s: JAN_FEB.start + timedelta(seconds=s)
)


@st.composite
def mixed_events(draw: st.DrawFn) -> list[UsageEvent]:
    """Calls, readings and messages over January, February and a little around them."""
    items = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["call.ended", "message", "other"]),
                moments,
                st.integers(0, 10_000),
                st.sampled_from(["inbound", "outbound"]),
                st.sampled_from(["k1", "k2", "k3"]),
            ),
            max_size=30,
        )
    )
    return [
        UsageEvent(
            f"e{i}",
            kind,
            time,
            "a1",
            conversation,
            {"duration_seconds": seconds, "direction": direction},
        )
        for i, (kind, time, seconds, direction, conversation) in enumerate(items)
    ]


ALL_METERS = [
    MINUTES,
    sum_meter(60, Rounding.NONE),
    sum_meter(60, Rounding.TOTAL_UP),
    sum_meter(None, Rounding.NONE),
    INTERACTIONS,
    SESSIONS,
    Meter("m", MeterKind.MAX, "call.ended", field_name="duration_seconds"),
    Meter("m", MeterKind.UNIQUE_COUNT, "call.ended", field_name="duration_seconds"),
]


@given(
    events=mixed_events(),
    meter=st.sampled_from(ALL_METERS),
    answered_only=st.booleans(),
    data=st.data(),
)
def test_measure_does_not_depend_on_event_order(
    events: list[UsageEvent], meter: Meter, answered_only: bool, data: st.DataObject
) -> None:
    """Property: measure gives the same quantity for the events in any order (USE-3:
    out-of-order events give the same count)."""
    shuffled = data.draw(st.permutations(events))
    for period in (JAN, FEB, JAN_FEB):
        assert measure(meter, shuffled, period, answered_only) == measure(
            meter, events, period, answered_only
        )


@given(
    events=mixed_events(),
    meter=st.sampled_from(
        [MINUTES, sum_meter(60, Rounding.NONE), sum_meter(None, Rounding.NONE), INTERACTIONS]
    ),
)
def test_adjacent_periods_add_up(events: list[UsageEvent], meter: Meter) -> None:
    """Property: for count and sum meters (per_event_up or none rounding), the measures of
    two adjacent periods add up to the measure over both (USE-6: usage counts once, for
    the period that contains it)."""
    assert measure(meter, events, JAN) + measure(meter, events, FEB) == measure(
        meter, events, JAN_FEB
    )
