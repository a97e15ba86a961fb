"""Batches of events through POST /v1/events, on SQLite and PostgreSQL: values that no
database or counter could keep are refused by index with the rest of the batch kept
(USE-2); a meter whose field an event lacks leaves it out of that meter only, and says
so; a message beyond the late-events horizon is left out of billable sessions only
(USE-3); the counters equal a recount from the stored events (USE-1, USE-6)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.domain.periods import Period
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.subscriptions import plan_of, subscription_of
from tabkeeper.services.usage import recount_usage
from tests.api.billing import ACME, make_organization, subscribe
from tests.api.conftest import ApiWorld, make_api_world
from tests.api.test_metering import call, message, post_json, stored_events, used

CATALOG: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "minutes": {"kind": "sum", "event": "call.ended", "field": "duration_seconds",
                    "unit_seconds": 60, "rounding": "per_event_up"},
        "interactions": {"kind": "count", "event": "message", "filter": {"direction": "inbound"}},
        "conversations": {"kind": "unique_count", "event": "message", "field": "conversation"},
        "callers": {"kind": "unique_count", "event": "call.ended", "field": "caller"},
        "agents": {"kind": "unique_count", "event": "call.ended", "field": "agent"},
        "longest": {"kind": "max", "event": "call.ended", "field": "seconds_on_hold"},
    },
    "plans": {
        "team": {"name": "Team", "price": "30.00",
                 "includes": {"sessions": 100, "minutes": 1000, "interactions": 100},
                 "limits": {"agents": 2, "seats": 5}, "rank": 1},
    },
}  # fmt: skip


@pytest.fixture
def world(engine: Engine) -> ApiWorld:
    """acme on Team since Jan 1, the clock a day later."""
    api = make_api_world(engine)
    assert api.platform.post("/v1/catalog", {"catalog": CATALOG}).status_code == 201
    make_organization(api, ACME)
    subscribe(api, api.member("acme", "alice"), "acme", "team")
    api.world.clock.advance(timedelta(days=1))
    return api


def _call(event_id: str, seconds: object, **properties: Any) -> dict[str, Any]:
    """A call.ended event with more properties."""
    return {**call(event_id, seconds), "properties": {"duration_seconds": seconds, **properties}}


def _recounted(api: ApiWorld) -> dict[str, str]:
    """Every meter of acme's current period, recounted from the stored events."""
    with api.world.billing() as b:
        owner = organization_by_code(b, "acme")
        subscription = subscription_of(b, owner, lock=False)
        assert subscription is not None
        catalog, plan = plan_of(b, subscription)
        period = Period(subscription.period_start, subscription.period_end, 0)
        return {
            code: str(recount_usage(b, owner, meter, period, plan.answered_only))
            for code, meter in catalog.meters.items()
        }


DEEP = '{"a":' * 10_000 + "1" + "}" * 10_000
POISON: tuple[tuple[str, str], ...] = (
    (json.dumps(call("p1", 10**30)), "events[1].properties.duration_seconds: at most"),
    (json.dumps(call("p2", 1e308)), "events[2].properties.duration_seconds: at most"),
    (json.dumps(call("p3", int("9" * 400))), "events[3].properties.duration_seconds: at most"),
    (json.dumps(call("p4", 60, time="0001-01-01T00:00:00+05:00")),
     "events[4].time: '0001-01-01T00:00:00+05:00' is out of range"),
    (json.dumps(call("p5", 60))[:-1] + ', "properties": ' + DEEP + "}",
     "events[5]: nested more than 32 levels deep"),
    (json.dumps({**call("p6", 60), "properties": {"duration_seconds": 60,
                                                  "x": json.loads("[" * 40 + "]" * 40)}}),
     "events[6].properties: nested more than 32 levels deep"),
    (json.dumps({**call("p7", 60), "properties": {"duration_seconds": 60, "note": "x" * 70_000}}),
     "events[7].properties: larger than 65,536 bytes"),
    (json.dumps(_call("p8", 60, seconds_on_hold=1e30)), "events[8].properties.seconds_on_hold"),
    (json.dumps(call("p9", "1e400")), "events[9].properties.duration_seconds: at most"),
)  # fmt: skip
"""The bad inputs tried (USE-2), written as JSON text (a 10,000-level nesting cannot be
written by Python's json module), and the start of the reason each is refused with."""


def test_poison_values_are_refused_by_index_and_the_batch_kept(world: ApiWorld) -> None:
    """USE-2: a duration of 10^30, 1e308, a 400-digit integer or "1e400"; a time in year 1
    with an offset; properties nested 10,000 levels (more than the JSON reader follows)
    or 40; properties of 70,000 bytes; a max meter's field at 1e30: each refused by its
    index with a clear reason, the good events of the batch stored and counted."""
    good = [_call("g0", 61, caller="+1"), message("g10", "k1")]
    body = ('{"events": [' + json.dumps(good[0]) + ", " + ", ".join(t for t, _ in POISON)
            + ", " + json.dumps(good[1]) + "]}")  # fmt: skip
    response = world.platform.http.post(
        "/v1/events", content=body,
        headers={"Authorization": f"Bearer {world.platform.token}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 0), answer
    assert [r["index"] for r in answer["refused"]] == list(range(1, len(POISON) + 1))
    for refused, (_, reason) in zip(answer["refused"], POISON, strict=True):
        assert refused["reason"].startswith(reason), refused
    assert stored_events(world) == 2
    counted = used(world.platform)
    assert (counted["minutes"], counted["interactions"], counted["sessions"]) == ("2", "1", "1")
    assert counted == _recounted(world)


def test_an_event_without_a_meters_field_is_left_out_of_that_meter_only(world: ApiWorld) -> None:
    """CAT-3, USE-2: a unique_count of conversations reads the message's own conversation
    field (no property needed); a call without `caller` is left out of `callers` (said in
    `skipped`) and counted by every other meter; `agents` reads the call's agent."""
    batch = [
        message("m1", "k1"), message("m2", "k2", "outbound"), message("m3", "k1"),
        _call("c1", 61, caller="+1"), call("c2", 30), {**call("c3", 5), "agent": None},
    ]  # fmt: skip
    answer = post_json(world.platform, "/v1/events", {"events": batch}).json()
    assert answer["accepted"] == 6 and answer["refused"] == []
    hold = "the event has no seconds_on_hold"
    assert answer["skipped"] == [
        {"index": 3, "meter": "longest", "reason": hold},
        {"index": 4, "meter": "callers", "reason": "the event has no caller"},
        {"index": 4, "meter": "longest", "reason": hold},
        {"index": 5, "meter": "agents", "reason": "the event has no agent"},
        {"index": 5, "meter": "callers", "reason": "the event has no caller"},
        {"index": 5, "meter": "longest", "reason": hold},
    ]
    counted = used(world.platform)
    assert counted["conversations"] == "2"
    assert counted["callers"] == "1"
    assert counted["agents"] == "1"
    assert counted["minutes"] == "4"
    assert counted == _recounted(world)


def test_a_message_beyond_the_horizon_is_left_out_of_sessions_only(world: ApiWorld) -> None:
    """USE-3: a message 8 days late (the horizon is 7 days) is stored and counted as an
    interaction but left out of billable sessions, and the answer says so; one 6 days late
    opens its window. The recount leaves out the same message."""
    world.world.clock.advance(timedelta(days=9))
    now = world.world.clock.now()
    late = message("late", "k9", time=(now - timedelta(days=8)).isoformat())
    recent = message("recent", "k8", time=(now - timedelta(days=6)).isoformat())
    answer = post_json(world.platform, "/v1/events", {"events": [late, recent]}).json()
    assert answer["accepted"] == 2
    assert answer["skipped"] == [
        {"index": 0, "meter": "sessions",
         "reason": "older than the late-events horizon: left out of billable sessions"}
    ]  # fmt: skip
    counted = used(world.platform)
    assert (counted["sessions"], counted["interactions"]) == ("1", "2")
    assert counted == _recounted(world)
